package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/leadrouter/leadrouter/auth"
	pb "github.com/leadrouter/leadrouter/gen/leadrouter/v1"
	"github.com/leadrouter/leadrouter/internal/testpki"
)

func tlsCreds(t *testing.T, pki *testpki.PKI, withClientCert bool) grpc.DialOption {
	t.Helper()
	return grpc.WithTransportCredentials(credentials.NewTLS(clientTLS(t, pki, withClientCert)))
}

// clientTLS is a client's TLS config trusting the PKI's CA, with its
// client certificate or without.
func clientTLS(t *testing.T, pki *testpki.PKI, withClientCert bool) *tls.Config {
	t.Helper()
	pem, err := os.ReadFile(pki.CA)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{RootCAs: x509.NewCertPool(), MinVersion: tls.VersionTLS12}
	cfg.RootCAs.AppendCertsFromPEM(pem)
	if withClientCert {
		c, err := tls.LoadX509KeyPair(pki.ClientCert, pki.ClientKey)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{c}
	}
	return cfg
}

// writeTokens writes a token file with one admin token for the default
// workspace and returns the token.
func writeTokens(t *testing.T, path string) string {
	t.Helper()
	tok, e, err := auth.NewToken(auth.Entry{Name: "ops", Workspace: "default", Role: auth.RoleAdmin})
	if err != nil {
		t.Fatal(err)
	}
	body := "tokens:\n  - {sha256: " + e.SHA256 + ", name: ops, workspace: default, role: admin}\n"
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestTLSTokensAndReload: leadrouterd over mTLS with a token file. A client
// needs the certificate and a token; SIGHUP swaps the tokens without
// dropping the connection.
func TestTLSTokensAndReload(t *testing.T) {
	pki := testpki.New(t)
	tokens := filepath.Join(t.TempDir(), "tokens.yaml")
	old := writeTokens(t, tokens)
	d := launch(t, nil, tlsCreds(t, pki, true), "--tls-cert", pki.ServerCert, "--tls-key", pki.ServerKey,
		"--tls-client-ca", pki.CA, "--token-file", tokens, "--config", "../../examples/routing.yaml")
	assign := func(conn *grpc.ClientConn, token, id string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if token != "" {
			ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
		}
		_, err := pb.NewRoutingServiceClient(conn).AssignLead(ctx, &pb.AssignLeadRequest{Lead: &pb.Lead{Id: id, Country: "DE"}})
		return err
	}
	if err := assign(d.conn, old, "tls-1"); err != nil {
		t.Fatalf("mTLS with a token: %v\n%s", err, d.log)
	}
	if err := assign(d.conn, "", "tls-2"); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("no token: %v, want UNAUTHENTICATED", err)
	}
	noCert, err := grpc.NewClient(d.addr, tlsCreds(t, pki, false))
	if err != nil {
		t.Fatal(err)
	}
	defer noCert.Close()
	if err := assign(noCert, old, "tls-3"); status.Code(err) != codes.Unavailable {
		t.Fatalf("no client certificate: %v, want the handshake refused (UNAVAILABLE)", err)
	}
	plain, err := grpc.NewClient(d.addr, grpc.WithTransportCredentials(insecureCreds()))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if err := assign(plain, old, "tls-4"); err == nil {
		t.Fatal("a plaintext client was served by the TLS listener")
	}

	fresh := writeTokens(t, tokens)
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for assign(d.conn, fresh, "tls-5") != nil {
		if time.Now().After(deadline) {
			t.Fatalf("the new token is not accepted after SIGHUP\n%s", d.log)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := assign(d.conn, old, "tls-6"); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("old token after SIGHUP: %v, want UNAUTHENTICATED", err)
	}
	// A broken file leaves the tokens in force.
	if err := os.WriteFile(tokens, []byte("tokens: [{sha256: nope}]"), 0o600); err != nil {
		t.Fatal(err)
	}
	d.cmd.Process.Signal(syscall.SIGHUP)
	time.Sleep(200 * time.Millisecond)
	if err := assign(d.conn, fresh, "tls-7"); err != nil {
		t.Fatalf("after a bad reload: %v", err)
	}
	d.stop(t)
	for _, want := range []string{"gRPC over TLS", "client certificates required", "bearer tokens required", "tokens reloaded", "tokens not reloaded"} {
		if !strings.Contains(d.log.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, d.log)
		}
	}
}

// TestRefusedStarts: plaintext needs --insecure; TLS needs tokens; the
// pairs of flags go together; --ack-replicas needs a Redis.
func TestRefusedStarts(t *testing.T) {
	pki := testpki.New(t)
	shortSecret := filepath.Join(t.TempDir(), "short.key")
	if err := os.WriteFile(shortSecret, []byte("short"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "refusing to serve plaintext gRPC"},
		{[]string{"--tls-cert", pki.ServerCert, "--tls-key", pki.ServerKey}, "--tls-cert needs --token-file or --jwt-key"},
		{[]string{"--insecure", "--jwt-issuer", "idp"}, "need --jwt-key"},
		{[]string{"--insecure", "--jwt-key", shortSecret}, "at least 32"},
		{[]string{"--tls-cert", pki.ServerCert}, "--tls-cert and --tls-key go together"},
		{[]string{"--insecure", "--tls-client-ca", pki.CA}, "--tls-client-ca needs --tls-cert"},
		{[]string{"--insecure", "--tls-cert", pki.ServerCert, "--tls-key", pki.ServerKey}, "contradict"},
		{[]string{"--insecure", "--token-file", "/nonexistent/tokens.yaml"}, "no such file"},
		{[]string{"--insecure", "--ack-replicas", "1"}, "the embedded store has no replicas"},
		{[]string{"--insecure", "--ack-replicas", "-1", "--redis-url", "redis://127.0.0.1:1"}, "--ack-replicas: -1 is negative"},
	} {
		cmd := exec.Command(build(t), append([]string{"--listen", "127.0.0.1:0", "--metrics-listen", "", "--http-listen", ""}, c.args...)...)
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), c.want) {
			t.Errorf("%v: exit %v, output %q; want a refusal saying %q", c.args, err, out, c.want)
		}
	}
}

// TestJWTKeyAndReload: with --jwt-key alone (no token file) leadrouterd
// accepts JWTs the key verifies; SIGHUP after a key rotation accepts the
// new key's JWTs and refuses the old key's.
func TestJWTKeyAndReload(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "jwt.key")
	rotate := func(secret string) {
		if err := os.WriteFile(keyFile, []byte(secret+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	issue := func(secret string) string {
		tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "ops", "workspace": "default",
			"role": "admin", "iss": "idp", "exp": time.Now().Add(time.Hour).Unix()}).SignedString([]byte(secret))
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	const first, second = "first-secret-0123456789abcdef0123456789", "second-secret-0123456789abcdef012345678"
	rotate(first)
	d := startDaemon(t, nil, "--jwt-key", keyFile, "--jwt-issuer", "idp", "--config", "../../examples/routing.yaml")
	assign := func(token, id string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
		_, err := pb.NewRoutingServiceClient(d.conn).AssignLead(ctx, &pb.AssignLeadRequest{Lead: &pb.Lead{Id: id, Country: "DE"}})
		return err
	}
	if err := assign(issue(first), "jwt-1"); err != nil {
		t.Fatalf("JWT of the key: %v\n%s", err, d.log)
	}
	if err := assign(issue(second), "jwt-2"); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("JWT of another key: %v, want UNAUTHENTICATED", err)
	}
	rotate(second)
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for assign(issue(second), "jwt-3") != nil {
		if time.Now().After(deadline) {
			t.Fatalf("the rotated key's JWT is not accepted after SIGHUP\n%s", d.log)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := assign(issue(first), "jwt-4"); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("old key's JWT after the rotation: %v, want UNAUTHENTICATED", err)
	}
	if !strings.Contains(d.log.String(), "JWTs accepted") {
		t.Errorf("log lacks the JWT line:\n%s", d.log)
	}
}

func insecureCreds() credentials.TransportCredentials { return insecure.NewCredentials() }
