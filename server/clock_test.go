package server_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/leadrouter/leadrouter/engine"
	pb "github.com/leadrouter/leadrouter/gen/leadrouter/v1"
	"github.com/leadrouter/leadrouter/internal/redistest"
)

// skewedClock is the wall clock off by a settable offset.
type skewedClock struct{ by atomic.Int64 }

func (c *skewedClock) Now() time.Time { return time.Now().Add(time.Duration(c.by.Load())) }

// waitHealth waits until the instance's health service reports want.
func waitHealth(t *testing.T, in *instance, want healthpb.HealthCheckResponse_ServingStatus) {
	t.Helper()
	hc := healthpb.NewHealthClient(in.conn)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		resp, err := hc.Check(ctxT(t), &healthpb.HealthCheckRequest{})
		if err == nil && resp.GetStatus() == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("health never became %s: %v %v", want, resp, err)
		}
	}
}

// TestSkewedReplicaStandsDown: a replica whose clock runs 121 s ahead of
// Redis's, next to one whose clock is right. An offer of 120 s made through
// the right one is overdue by the skewed clock; the skewed replica measures
// its offset at its health check, goes NOT_SERVING, refuses decisions with
// UNAVAILABLE naming the offset, and its sweeper withdraws nothing, so the
// rep's accept through the right replica succeeds. Once its clock is
// right again it serves.
func TestSkewedReplicaStandsDown(t *testing.T) {
	const max = 250 * time.Millisecond
	ws := redistest.Workspace(t)
	good := start(t, redistest.RealStore(t), engine.WithMaxClockOffset(max))
	clock := &skewedClock{}
	clock.by.Store(int64(121 * time.Second))
	bad := start(t, redistest.RealStore(t), engine.WithClock(clock), engine.WithMaxClockOffset(max))
	good.applyYAML(t, ws, `
reps: [{id: a}, {id: b}]
pools: [{id: p, accept_within: 120s, members: [{rep_id: a}, {rep_id: b}]}]
rules: [{id: all, targets: [{pool_id: p}]}]
`)
	waitHealth(t, good, healthpb.HealthCheckResponse_SERVING)
	waitHealth(t, bad, healthpb.HealthCheckResponse_NOT_SERVING)
	resp, err := good.routing.AssignLead(ctxT(t), &pb.AssignLeadRequest{Workspace: ws, Lead: &pb.Lead{Id: "l1"}})
	if err != nil || resp.GetAssignment().GetState() != pb.AssignmentState_ASSIGNMENT_STATE_OFFERED {
		t.Fatalf("offer through the right replica: %v %v", resp, err)
	}
	rep := resp.GetAssignment().GetRepId()

	_, err = bad.routing.AssignLead(ctxT(t), &pb.AssignLeadRequest{Workspace: ws, Lead: &pb.Lead{Id: "l2"}})
	if status.Code(err) != codes.Unavailable || !strings.Contains(status.Convert(err).Message(), "clock") {
		t.Fatalf("the skewed replica decided: %v", err)
	}
	if err := bad.eng.Sweep(ctxT(t), true); !errors.Is(err, engine.ErrClockOffset) {
		t.Fatalf("the skewed replica swept: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { bad.eng.RunSweeper(ctx, 10*time.Millisecond); close(done) }()
	time.Sleep(300 * time.Millisecond)
	cancel()
	<-done

	acc, err := good.rep.AcceptOffer(ctxT(t), &pb.AcceptOfferRequest{Workspace: ws, LeadId: "l1", RepId: rep})
	if err != nil || acc.GetAssignment().GetState() != pb.AssignmentState_ASSIGNMENT_STATE_ASSIGNED {
		t.Fatalf("the rep's accept through the right replica: %v %v", acc, err)
	}

	clock.by.Store(0) // time sync fixed
	waitHealth(t, bad, healthpb.HealthCheckResponse_SERVING)
	if _, err := bad.routing.AssignLead(ctxT(t), &pb.AssignLeadRequest{Workspace: ws, Lead: &pb.Lead{Id: "l2"}}); err != nil {
		t.Fatalf("the replica whose clock is right again: %v", err)
	}
	if offset, err := good.eng.CheckClock(ctxT(t)); err != nil || offset < -max || offset > max {
		t.Fatalf("the right replica's offset: %v %v", offset, err)
	}
}
