package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/leadrouter/leadrouter/gen/leadrouter/v1"
)

// TestSinksCommands: `leadctl sinks` prints a sink of the config with
// nothing pending, `replay-dead-letters` replays none, and an unknown sink
// is NOT_FOUND for both.
func TestSinksCommands(t *testing.T) {
	addr := serve(t)
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	const routing = `
reps: [{id: ann}]
pools:
  - {id: inbound, members: [{rep_id: ann}]}
rules:
  - {id: all, targets: [{pool_id: inbound}]}
`
	mustRun(t, addr, "apply", "-f", write("plain.yaml", routing))
	if out := mustRun(t, addr, "sinks"); out != "no sinks configured\n" {
		t.Fatalf("sinks of a config without any: %q", out)
	}
	t.Setenv("LR_SINK_TEST", "whsec_dGVzdC1zZWNyZXQtdGVzdC1zZWNyZXQ=")
	mustRun(t, addr, "apply", "-f", write("sinks.yaml", routing+`
sinks:
  - {id: crm, kind: WEBHOOK, url: "http://127.0.0.1:1/x", secret_env: LR_SINK_TEST}
`))
	for _, args := range [][]string{{"sinks"}, {"sinks", "--sink", "crm"}} {
		out := mustRun(t, addr, args...)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 2 || strings.Join(strings.Fields(lines[0]), " ") != "SINK KIND PENDING OLDEST DEAD LOST LAST ERROR" ||
			strings.Join(strings.Fields(lines[1]), " ") != "crm WEBHOOK 0 - 0 0 -" {
			t.Fatalf("leadctl %v:\n%s", args, out)
		}
	}
	if out := mustRun(t, addr, "replay-dead-letters", "crm", "--limit", "5"); out != "replayed 0 dead letters of sink crm\n" {
		t.Fatalf("replay-dead-letters: %q", out)
	}
	for _, args := range [][]string{{"sinks", "--sink", "nope"}, {"replay-dead-letters", "nope"}} {
		_, err := leadctl(t, addr, args...)
		if status.Code(err) != codes.NotFound || !strings.Contains(err.Error(), `no sink "nope"`) {
			t.Fatalf("leadctl %v: %v, want NOT_FOUND", args, err)
		}
	}
	if _, err := leadctl(t, addr, "replay-dead-letters", "crm", "--limit", "10001"); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("--limit 10001: %v", err)
	}
	if _, err := leadctl(t, addr, "replay-dead-letters"); err == nil || !strings.Contains(err.Error(), "want SINK") {
		t.Fatalf("replay-dead-letters without a sink: %v", err)
	}
}

// TestPrintSinks: the columns of a sink with a backlog, dropped dead
// letters, losses and a long error.
func TestPrintSinks(t *testing.T) {
	at := time.Date(2025, 3, 4, 9, 30, 0, 0, time.UTC)
	long := "POST http://crm.example/hook: 503 Service Unavailable\n\t" + strings.Repeat("retry later ", 10)
	tests := []struct {
		name string
		sink *pb.SinkStatus
		want string // the sink's line, runs of spaces as one
	}{
		{
			name: "idle",
			sink: &pb.SinkStatus{SinkId: "crm", Kind: "WEBHOOK"},
			want: "crm WEBHOOK 0 - 0 0 -",
		},
		{
			name: "behind with dead letters",
			sink: &pb.SinkStatus{SinkId: "crm", Kind: "WEBHOOK", Pending: 12, OldestUndeliveredAge: durationpb.New(3*time.Second + 400*time.Millisecond),
				DeadLetters: 10000, DeadLettersDropped: 7, Lost: 2, LastError: "503 Service Unavailable", LastErrorAt: timestamppb.New(at)},
			want: "crm WEBHOOK 12 3s 10000 +7 dropped 2 2025-03-04T09:30:00Z 503 Service Unavailable",
		},
		{
			name: "long error on one line",
			sink: &pb.SinkStatus{SinkId: "archive", Kind: "POSTGRES", Pending: 1, OldestUndeliveredAge: durationpb.New(250 * time.Millisecond),
				LastError: long, LastErrorAt: timestamppb.New(at)},
			want: "archive POSTGRES 1 250ms 0 0 2025-03-04T09:30:00Z POST http://crm.example/hook: 503 Service Unavailable ret...",
		},
		{
			name: "hours",
			sink: &pb.SinkStatus{SinkId: "s", Kind: "SLACK", Pending: 1, OldestUndeliveredAge: durationpb.New(26*time.Hour + 5*time.Second)},
			want: "s SLACK 1 26h0m5s 0 0 -",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			printSinks(&out, []*pb.SinkStatus{tt.sink})
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			if len(lines) != 2 || strings.Join(strings.Fields(lines[1]), " ") != tt.want {
				t.Fatalf("got\n%s\nwant the line %q", out.String(), tt.want)
			}
		})
	}
}
