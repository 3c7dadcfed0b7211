package server_test

import (
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/leadrouter/leadrouter/server"

	pb "github.com/leadrouter/leadrouter/gen/leadrouter/v1"
	"github.com/leadrouter/leadrouter/internal/logbuf"
	"github.com/leadrouter/leadrouter/internal/redistest"
)

// TestLogsCarryNoPersonalDataAtInfo: at debug level every decision is one
// "lead decided" line; at info level nothing of a lead's email or name is
// logged, for a lead that is assigned nor for one rejected as invalid, nor
// when the person is erased.
func TestLogsCarryNoPersonalDataAtInfo(t *testing.T) {
	const email, name = "jane.private@acme.example", "Janeprivate"
	for _, level := range []slog.Level{slog.LevelDebug, slog.LevelInfo} {
		t.Run(level.String(), func(t *testing.T) {
			in, ws, out := startLogging(t, level)
			for _, id := range []string{"l1", "l2", "l3"} {
				if _, err := in.routing.AssignLead(ctxT(t), &pb.AssignLeadRequest{Workspace: ws,
					Lead: &pb.Lead{Id: id, Email: email, FirstName: name, LastName: name, Country: "DE"}}); err != nil {
					t.Fatal(err)
				}
			}
			_, err := in.routing.AssignLead(ctxT(t), &pb.AssignLeadRequest{Workspace: ws,
				Lead: &pb.Lead{Id: "bad", Email: "not-an-email " + name, FirstName: name, Country: "DE"}})
			if v := violations(wantCode(t, err, codes.InvalidArgument)); v["lead.email"] == "" {
				t.Fatalf("bad email: violations %v, want lead.email", v)
			}

			// Erasing the person, and a malformed erasure, log no address.
			erased, err := in.admin.EraseContact(ctxT(t), &pb.EraseContactRequest{Workspace: ws, Email: strings.ToUpper(email)})
			if err != nil || erased.GetErased() != 3 {
				t.Fatalf("erase: %v %v, want 3 erased", erased, err)
			}
			_, err = in.admin.EraseContact(ctxT(t), &pb.EraseContactRequest{Workspace: ws, Email: name + " <" + email})
			if v := violations(wantCode(t, err, codes.InvalidArgument)); v["email"] == "" {
				t.Fatalf("malformed erasure: violations %v, want email", v)
			}

			logged := out.String()
			decided := strings.Count(logged, `"msg":"lead decided"`)
			if level == slog.LevelDebug && decided != 3 {
				t.Errorf("debug: %d lead decided lines for 3 decisions:\n%s", decided, logged)
			}
			if level == slog.LevelInfo {
				if decided != 0 {
					t.Errorf("info: lead decided lines logged:\n%s", logged)
				}
				if strings.Contains(logged, email) || strings.Contains(logged, name) {
					t.Errorf("info: the log carries a lead's email or name:\n%s", logged)
				}
			}
		})
	}
}

// TestFinishedCallLog: each finished call is one "finished call" line with
// the service, method, code and time, at debug level when it succeeded and
// at info level for a client's mistake (with the error); at info level a
// successful call logs nothing.
func TestFinishedCallLog(t *testing.T) {
	for _, level := range []slog.Level{slog.LevelDebug, slog.LevelInfo} {
		t.Run(level.String(), func(t *testing.T) {
			in, ws, out := startLogging(t, level)
			if _, err := in.routing.AssignLead(ctxT(t), &pb.AssignLeadRequest{Workspace: ws,
				Lead: &pb.Lead{Id: "ok", Email: "a@acme.example", Country: "DE"}}); err != nil {
				t.Fatal(err)
			}
			_, err := in.routing.AssignLead(ctxT(t), &pb.AssignLeadRequest{Workspace: ws, Lead: &pb.Lead{Country: "DE"}})
			wantCode(t, err, codes.InvalidArgument)

			var lines []map[string]any
			for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
				var m map[string]any
				if err := json.Unmarshal([]byte(l), &m); err != nil {
					t.Fatalf("log line %q: %v", l, err)
				}
				if m["msg"] == "finished call" && m["grpc.method"] == "AssignLead" {
					lines = append(lines, m)
				}
			}
			want := []string{"OK", "InvalidArgument"}
			if level == slog.LevelInfo {
				want = want[1:]
			}
			if len(lines) != len(want) {
				t.Fatalf("%d finished AssignLead lines, want %d:\n%s", len(lines), len(want), out.String())
			}
			for i, m := range lines {
				wantLevel := map[string]string{"OK": "DEBUG", "InvalidArgument": "INFO"}[want[i]]
				if m["grpc.code"] != want[i] || m["level"] != wantLevel || m["grpc.service"] != "leadrouter.v1.RoutingService" ||
					m["grpc.method_type"] != "unary" || m["peer.address"] == nil {
					t.Errorf("line %d = %v, want code %s at %s", i, m, want[i], wantLevel)
				}
				if ms, ok := m["grpc.time_ms"].(float64); !ok || ms <= 0 {
					t.Errorf("line %d: grpc.time_ms = %v", i, m["grpc.time_ms"])
				}
				if _, hasErr := m["grpc.error"]; hasErr != (want[i] != "OK") {
					t.Errorf("line %d: grpc.error = %v", i, m["grpc.error"])
				}
			}
		})
	}
}

// startLogging starts a server logging JSON at level into the returned
// buffer, with a workspace of three reps.
func startLogging(t *testing.T, level slog.Level) (*instance, string, *logbuf.Buffer) {
	t.Helper()
	out := &logbuf.Buffer{}
	log := slog.New(slog.NewJSONHandler(out, &slog.HandlerOptions{Level: level}))
	in := startWith(t, redistest.RealStore(t), server.Options{Logger: log})
	ws := redistest.Workspace(t)
	in.applyYAML(t, ws, threeReps)
	return in, ws, out
}
