package main

import (
	"log/slog"
	"net"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/leadrouter/leadrouter/auth"
	"github.com/leadrouter/leadrouter/engine"
	"github.com/leadrouter/leadrouter/internal/testpki"
	"github.com/leadrouter/leadrouter/server"
	"github.com/leadrouter/leadrouter/store"
)

// TestTokenCommand: leadctl token prints a token and a file entry that
// loads and knows that token; a bad role is refused.
func TestTokenCommand(t *testing.T) {
	out := mustRun(t, "unused", "token", "--workspace", "acme", "--role", "rep", "--rep", "ava", "--name", "ava-desktop")
	var token string
	for _, line := range strings.Split(out, "\n") {
		if s := strings.TrimPrefix(line, "# "); strings.HasPrefix(s, auth.TokenPrefix) {
			token = s
		}
	}
	set, err := auth.ParseFile(strings.NewReader(out)) // the comments are YAML comments
	if err != nil {
		t.Fatalf("entry does not load: %v\n%s", err, out)
	}
	id, err := set.Lookup(token)
	if err != nil || id.Workspace != "acme" || id.Role != auth.RoleRep || id.RepID != "ava" || id.Name != "ava-desktop" {
		t.Fatalf("token %q: %+v %v\n%s", token, id, err, out)
	}
	if _, err := leadctl(t, "unused", "token", "--role", "root"); err == nil {
		t.Fatal("role root accepted")
	}
	// --file appends to a token file, creating it first.
	file := t.TempDir() + "/tokens.yaml"
	mustRun(t, "unused", "token", "--file", file, "--role", "intake", "--workspace", "acme")
	mustRun(t, "unused", "token", "--file", file, "--role", "manager", "--workspace", "acme")
	if set, err := auth.LoadFile(file); err != nil || set.Len() != 2 {
		t.Fatalf("token file after two appends: %v %v", set, err)
	}
}

// TestTLSAndToken: leadctl reaches a TLS server with --ca and a token, and
// is refused without the token.
func TestTLSAndToken(t *testing.T) {
	pki := testpki.New(t)
	tok, e, _ := auth.NewToken(auth.Entry{Workspace: "default", Role: auth.RoleAdmin})
	set, err := auth.ParseFile(strings.NewReader("tokens: [{sha256: " + e.SHA256 + ", workspace: default, role: admin}]"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.StartEmbedded()
	if err != nil {
		t.Fatal(err)
	}
	creds, err := credentials.NewServerTLSFromFile(pki.ServerCert, pki.ServerKey)
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.DiscardHandler)
	srv := server.New(engine.New(st, engine.WithLogger(quiet)), server.Options{Logger: quiet,
		Auth: server.NewAuth(set, server.AuthOptions{}), ServerOptions: []grpc.ServerOption{grpc.Creds(creds)}})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(lis)
	t.Cleanup(func() { srv.Stop(); st.Close() })
	addr := lis.Addr().String()
	mustRun(t, addr, "--ca", pki.CA, "--token", tok, "apply", "-f", "../../examples/routing.yaml")
	if out := mustRun(t, addr, "--ca", pki.CA, "--token", tok, "reps"); !strings.Contains(out, "felix") {
		t.Fatalf("reps over TLS: %s", out)
	}
	if _, err := leadctl(t, addr, "--ca", pki.CA, "reps"); err == nil || !strings.Contains(err.Error(), "Unauthenticated") {
		t.Fatalf("without a token: %v", err)
	}
}
