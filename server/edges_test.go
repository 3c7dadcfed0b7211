package server_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	pb "github.com/leadrouter/leadrouter/gen/leadrouter/v1"
	"github.com/leadrouter/leadrouter/internal/redistest"
)

// TestStreamEdges: a filter naming an unknown kind is INVALID_ARGUMENT; a
// resume position no history could have sent (past the head, later than
// the store's clock) is OUT_OF_RANGE.
func TestStreamEdges(t *testing.T) {
	for _, b := range redistest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			in := start(t, b.Open(t))
			ws := redistest.Workspace(t)
			in.applyYAML(t, ws, `
reps: [{id: a}]
pools: [{id: p, accept_within: 0s, members: [{rep_id: a}]}]
rules: [{id: all, targets: [{pool_id: p}]}]
`)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			events := pb.NewEventServiceClient(in.conn)
			recvErr := func(req *pb.WatchEventsRequest) error {
				s, err := events.WatchEvents(ctx, req)
				if err != nil {
					return err
				}
				_, err = s.Recv()
				return err
			}
			err := recvErr(&pb.WatchEventsRequest{Workspace: ws, Kinds: []pb.EventKind{pb.EventKind_EVENT_KIND_ASSIGNED, pb.EventKind(99)}})
			if v := violations(wantCode(t, err, codes.InvalidArgument)); v["kinds[1]"] == "" {
				t.Fatalf("unknown kind: violations %v", v)
			}
			if _, err := in.routing.AssignLead(ctxT(t), &pb.AssignLeadRequest{Workspace: ws, Lead: &pb.Lead{Id: "l"}}); err != nil {
				t.Fatal(err)
			}
			s := openWatch(ctx, t, in, ws, nil)
			hdr, _ := s.Header()
			epoch := hdr.Get("leadrouter-epoch")[0]
			future := time.Now().Add(24 * time.Hour).UnixMilli()
			err = recvErr(&pb.WatchEventsRequest{Workspace: ws, ResumeFrom: &pb.Position{Epoch: epoch, Offset: strconv.FormatInt(future, 10) + "-0"}})
			wantCode(t, err, codes.OutOfRange)
		})
	}
}
