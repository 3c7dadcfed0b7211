package main

import (
	"bytes"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/leadrouter/leadrouter/engine"
	pb "github.com/leadrouter/leadrouter/gen/leadrouter/v1"
	"github.com/leadrouter/leadrouter/server"
	"github.com/leadrouter/leadrouter/store"
)

// serve starts leadrouter on the embedded store and returns its address.
func serve(t *testing.T) string {
	t.Helper()
	st, err := store.StartEmbedded()
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.DiscardHandler)
	srv := server.New(engine.New(st, engine.WithLogger(quiet)), server.Options{Logger: quiet})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(lis)
	t.Cleanup(func() { srv.Stop(); st.Close() })
	return lis.Addr().String()
}

func leadctl(t *testing.T, addr string, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := run(append([]string{"--addr", addr}, args...), &out)
	return out.String(), err
}

func mustRun(t *testing.T, addr string, args ...string) string {
	t.Helper()
	out, err := leadctl(t, addr, args...)
	if err != nil {
		t.Fatalf("leadctl %v: %v\n%s", args, err, out)
	}
	return out
}

func TestCommands(t *testing.T) {
	addr := serve(t)
	if out := mustRun(t, addr, "apply", "-f", "../../examples/routing.yaml"); !strings.Contains(out, "version 1") {
		t.Fatalf("apply: %s", out)
	}
	got := mustRun(t, addr, "get")
	if !strings.Contains(got, "# version 1") || !strings.Contains(got, "id: dach-german") {
		t.Fatalf("get: %s", got)
	}
	// What `get` prints applies again unchanged (round trip through YAML).
	f, _ := os.CreateTemp(t.TempDir(), "*.yaml")
	f.WriteString(got)
	f.Close()
	if out := mustRun(t, addr, "apply", "-f", f.Name(), "--expected-version", "1"); !strings.Contains(out, "version 2") {
		t.Fatalf("re-apply: %s", out)
	}
	if _, err := leadctl(t, addr, "apply", "-f", f.Name(), "--expected-version", "1"); err == nil {
		t.Fatal("stale --expected-version accepted")
	}
	if out := mustRun(t, addr, "apply", "-f", f.Name(), "--dry-run"); !strings.Contains(out, "dry run of") || !strings.Contains(out, "over version 2") ||
		!strings.Contains(out, "no changes") {
		t.Fatalf("apply --dry-run: %s", out)
	}
	if out := mustRun(t, addr, "history"); !strings.Contains(out, "v2 ") || !strings.Contains(out, "no changes") ||
		!strings.Contains(out, "v1 ") || !strings.Contains(out, "reps +") {
		t.Fatalf("history: %s", out)
	}
	if out := mustRun(t, addr, "diff", "1", "2"); !strings.Contains(out, "1 -> 2: no changes") {
		t.Fatalf("diff: %s", out)
	}
	if out := mustRun(t, addr, "get", "--version", "1"); !strings.Contains(out, "# version 1") {
		t.Fatalf("get --version: %s", out)
	}
	if out := mustRun(t, addr, "rollback", "1", "--dry-run"); !strings.Contains(out, "dry run of a rollback to v1 over version 2") {
		t.Fatalf("rollback --dry-run: %s", out)
	}
	if _, err := leadctl(t, addr, "rollback", "99"); err == nil || !strings.Contains(err.Error(), "versions 1 to 2 are") {
		t.Fatalf("rollback to an unknown version: %v", err)
	}

	out := mustRun(t, addr, "assign", "--id", "w1", "--email", "jane@acme.de", "--country", "DE", "--language", "de", "--score", "80", "--attr", "utm=ads")
	if !strings.Contains(out, "w1  OFFERED  rep=felix  pool=emea-dach  rule=dach-german") || !strings.Contains(out, "offer expires:") {
		t.Fatalf("assign: %s", out)
	}
	if _, err := leadctl(t, addr, "accept", "w1", "--rep", "greta"); err == nil || !strings.Contains(err.Error(), "offered to rep felix") {
		t.Fatalf("accepting another rep's offer: %v", err)
	}
	for i := 0; i < 2; i++ { // the second accept is a no-op
		if out := mustRun(t, addr, "accept", "w1", "--rep", "felix"); !strings.Contains(out, "w1  ASSIGNED  rep=felix") {
			t.Fatalf("accept: %s", out)
		}
	}
	if out := mustRun(t, addr, "contact", "w1", "--rep", "felix", "--channel", "call"); !strings.Contains(out, "speed to lead:") {
		t.Fatalf("contact: %s", out)
	}
	if out := mustRun(t, addr, "dispose", "w1", "--rep", "felix", "--disposition", "qualified"); !strings.Contains(out, "w1  CLOSED") ||
		!strings.Contains(out, "disposition: QUALIFIED") || !strings.Contains(out, "dispositioned") {
		t.Fatalf("dispose: %s", out)
	}
	lead := t.TempDir() + "/lead.json"
	os.WriteFile(lead, []byte(`{"id": "w2", "country": "AT", "language": "de-AT"}`), 0o644)
	if out := mustRun(t, addr, "assign", "--json-file", lead); !strings.Contains(out, "rep=greta") {
		t.Fatalf("assign --json-file: %s", out)
	}
	if out := mustRun(t, addr, "assign", "--id", "w1", "--country", "DE"); !strings.Contains(out, "duplicate") {
		t.Fatalf("repeat: %s", out)
	}
	if out := mustRun(t, addr, "reps", "status", "felix", "away"); !strings.Contains(out, "felix: available -> away") {
		t.Fatalf("status: %s", out)
	}
	if out := mustRun(t, addr, "preview", "--country", "CH", "--language", "de"); !strings.Contains(out, "nothing written") ||
		!strings.Contains(out, "rep=greta") || !strings.Contains(out, "felix (away)") {
		t.Fatalf("preview: %s", out)
	}
	if out := mustRun(t, addr, "assignment", "w2"); !strings.Contains(out, "w2  OFFERED  rep=greta") {
		t.Fatalf("assignment: %s", out)
	}
	mustRun(t, addr, "accept", "w2", "--rep", "greta")
	reps := mustRun(t, addr, "reps")
	if !strings.Contains(reps, "felix        away") || !strings.Contains(reps, "kai          away") {
		t.Fatalf("reps: %s", reps)
	}
	var rep pb.GetRepResponse
	if out := mustRun(t, addr, "--json", "reps", "get", "greta"); protojson.Unmarshal([]byte(out), &rep) != nil ||
		rep.GetRep().GetAssignedTotal() != 1 {
		t.Fatalf("reps get: %s", out)
	}
	if out := mustRun(t, addr, "release", "w2", "--reason", "won"); !strings.Contains(out, "w2  CLOSED  rep=greta") {
		t.Fatalf("release: %s", out)
	}
	mustRun(t, addr, "assign", "--id", "w3", "--country", "DE", "--language", "de")
	if out := mustRun(t, addr, "requeue", "w3", "--reason", "retry"); !strings.Contains(out, "w3  OFFERED") || !strings.Contains(out, "requeued") {
		t.Fatalf("requeue: %s", out)
	}
	if out := mustRun(t, addr, "reassign", "w3", "--rep", "kai", "--reason", "vip"); !strings.Contains(out, "w3  ASSIGNED  rep=kai") ||
		!strings.Contains(out, "placed by an operator: vip") {
		t.Fatalf("reassign: %s", out)
	}
	if _, err := leadctl(t, addr, "reassign", "w3", "--rep", "nobody"); err == nil || !strings.Contains(err.Error(), "rep_id") {
		t.Fatalf("reassign to an unknown rep: %v", err)
	}
	if out := mustRun(t, addr, "erase", "contact", "JANE@acme.de"); !strings.Contains(out, "erased 1 lead: w1") {
		t.Fatalf("erase contact: %s", out)
	}
	if out := mustRun(t, addr, "erase", "lead", "w2"); !strings.Contains(out, "erased w2 (it was CLOSED)") {
		t.Fatalf("erase lead: %s", out)
	}
	if _, err := leadctl(t, addr, "erase", "contact", "not-an-address"); err == nil || !strings.Contains(err.Error(), "email") {
		t.Fatalf("erase of a malformed address: %v", err)
	}
	if _, err := leadctl(t, addr, "assign", "--id", "bad", "--country", "XX"); err == nil {
		t.Fatal("invalid lead accepted")
	}
	// events and watch: an unknown epoch starts with RESET; live events
	// follow while the tail runs.
	if out := mustRun(t, addr, "events", "--max", "1", "--from", "0-0"); !strings.Contains(out, "reset") {
		t.Fatalf("events from an unknown epoch: %s", out)
	}
	tail := make(chan string, 1)
	go func() {
		out, err := leadctl(t, addr, "events", "--max", "1", "--kinds", "rep_status_changed")
		if err != nil {
			out = err.Error()
		}
		tail <- out
	}()
	deadline := time.After(10 * time.Second)
	for done := false; !done; {
		mustRun(t, addr, "reps", "status", "kai", "available")
		mustRun(t, addr, "reps", "status", "kai", "away")
		select {
		case out := <-tail:
			if !strings.Contains(out, "rep_status_changed") || !strings.Contains(out, "rep=kai") {
				t.Fatalf("events tail: %s", out)
			}
			done = true
		case <-deadline:
			t.Fatal("events tail printed nothing")
		case <-time.After(100 * time.Millisecond):
		}
	}
	if _, err := leadctl(t, addr, "frobnicate"); err == nil {
		t.Fatal("unknown command accepted")
	}
}
