package server_test

import (
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
// logged, for a lead that is assigned nor for one rejected as invalid.
func TestLogsCarryNoPersonalDataAtInfo(t *testing.T) {
	const email, name = "jane.private@acme.example", "Janeprivate"
	for _, level := range []slog.Level{slog.LevelDebug, slog.LevelInfo} {
		t.Run(level.String(), func(t *testing.T) {
			var out logbuf.Buffer
			log := slog.New(slog.NewJSONHandler(&out, &slog.HandlerOptions{Level: level}))
			in := startWith(t, redistest.RealStore(t), server.Options{Logger: log})
			ws := redistest.Workspace(t)
			in.applyYAML(t, ws, threeReps)
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
