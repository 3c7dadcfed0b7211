package server_test

import (
	"context"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	pb "github.com/leadrouter/leadrouter/gen/leadrouter/v1"
	"github.com/leadrouter/leadrouter/store"
)

// TestHealthFollowsStore: the health status turns NOT_SERVING when Redis
// goes away, calls fail with UNAVAILABLE, and both recover on their own when
// Redis returns.
func TestHealthFollowsStore(t *testing.T) {
	mr := miniredis.RunT(t)
	st := store.New(redis.NewClient(&redis.Options{Addr: mr.Addr(), DialTimeout: 200 * time.Millisecond, MaxRetries: -1}), "")
	t.Cleanup(func() { st.Close() })
	in := start(t, st)
	in.applyYAML(t, "h", threeReps)
	hc := healthpb.NewHealthClient(in.conn)
	waitFor := func(want healthpb.HealthCheckResponse_ServingStatus) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			resp, err := hc.Check(ctxT(t), &healthpb.HealthCheckRequest{})
			if err == nil && resp.GetStatus() == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("health never became %s: %v %v", want, resp, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor(healthpb.HealthCheckResponse_SERVING)
	mr.Close()
	waitFor(healthpb.HealthCheckResponse_NOT_SERVING)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := in.routing.AssignLead(ctx, &pb.AssignLeadRequest{Workspace: "h", Lead: &pb.Lead{Id: "1", Country: "DE"}})
	wantCode(t, err, codes.Unavailable)
	if err := mr.Restart(); err != nil {
		t.Fatal(err)
	}
	waitFor(healthpb.HealthCheckResponse_SERVING)
	resp, err := in.routing.AssignLead(ctxT(t), &pb.AssignLeadRequest{Workspace: "h", Lead: &pb.Lead{Id: "1", Country: "DE"}})
	if err != nil || resp.GetAssignment().GetRepId() != "a" {
		t.Fatalf("after Redis returned: %v %v", resp, err)
	}
}
