package server_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/leadrouter/leadrouter/engine"
	pb "github.com/leadrouter/leadrouter/gen/leadrouter/v1"
	"github.com/leadrouter/leadrouter/internal/redistest"
	"github.com/leadrouter/leadrouter/metrics"
	"github.com/leadrouter/leadrouter/server"
)

// TestClusterMasterDownStaysLocal: a Redis Cluster whose replicas do not
// fail over (cluster-replica-no-failover) and that serves the slots it
// has (cluster-require-full-coverage no), one workspace per master, and a
// master killed. Only its workspace's calls fail, UNAVAILABLE; the other
// workspaces are served, their offers still expire (the sweeper goes on),
// the replica stays SERVING, and leadrouter_redis_unreachable_masters is 1.
func TestClusterMasterDownStaysLocal(t *testing.T) {
	if !redistest.ClusterMode() {
		t.Skip("kills a Redis Cluster master: LEADROUTER_TEST_CLUSTER=1 (make test-cluster)")
	}
	c := redistest.StartCluster(t, "--cluster-replica-no-failover", "yes", "--cluster-require-full-coverage", "no")
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, metrics.Options{})
	in := startWith(t, redistest.OpenStore(t, c.URL), server.Options{Metrics: m})
	wss := make([]string, c.Shards())
	for i := range wss {
		wss[i] = c.WorkspaceOn(t, i)
		in.applyYAML(t, wss[i], `
reps: [{id: a}, {id: b}]
pools:
  - {id: p, accept_within: 1s, max_missed_offers: 0, members: [{rep_id: a}]}
  - {id: direct, accept_within: 0s, members: [{rep_id: b}]}
rules: [{id: all, targets: [{pool_id: p}, {pool_id: direct}]}]
`)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sweep, stopSweep := context.WithCancel(ctx)
	defer stopSweep()
	go in.eng.RunSweeper(sweep, 50*time.Millisecond)
	time.Sleep(time.Second) // past the sweeper's start-up repairs: a running replica
	victim, err := c.Master(ctx, c.ShardStart(0))
	if err != nil {
		t.Fatal(err)
	}
	victim.Kill(t)
	// The cluster marks the master failed after its node timeout.
	assign := func(ws, id string) (*pb.AssignLeadResponse, error) {
		cctx, ccancel := context.WithTimeout(ctx, 2*time.Second)
		defer ccancel()
		return in.routing.AssignLead(cctx, &pb.AssignLeadRequest{Workspace: ws, Lead: &pb.Lead{Id: id}})
	}
	for i := 0; ; i++ {
		_, err := assign(wss[0], fmt.Sprint("down-", i))
		if status.Code(err) == codes.Unavailable {
			break
		}
		if err != nil {
			t.Fatalf("the dead master's workspace: %v, want UNAVAILABLE", err)
		}
		if i > 100 {
			t.Fatal("calls to the dead master's workspace still succeed")
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(redistest.NodeTimeout) // the cluster has declared it failed by now
	for i, ws := range wss[1:] {
		resp, err := assign(ws, "up")
		if err != nil || resp.GetAssignment().GetState() != pb.AssignmentState_ASSIGNMENT_STATE_OFFERED {
			t.Fatalf("workspace on master %d while master 0 is down: %v %v", i+1, resp, err)
		}
	}
	if _, err := assign(wss[0], "still-down"); status.Code(err) != codes.Unavailable {
		t.Fatalf("the dead master's workspace: %v, want UNAVAILABLE", err)
	}
	hc := healthpb.NewHealthClient(in.conn)
	for deadline := time.Now().Add(5 * time.Second); testutil.ToFloat64(gaugeOf(t, reg, "leadrouter_redis_unreachable_masters")) != 1; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("leadrouter_redis_unreachable_masters never became 1")
		}
	}
	if resp, err := hc.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health with one master of three down: %v %v", resp, err)
	}
	// The other workspaces' offers expire: a, 1 s, then b without an offer.
	for _, ws := range wss[1:] {
		for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			a, err := in.eng.GetAssignment(ctx, ws, "up")
			if err == nil && a.State == engine.StateAssigned && a.RepID == "b" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("workspace %s: the offer never expired with master 0 down: %+v %v", ws, a, err)
			}
		}
	}
}

// gaugeOf finds a registered gauge by name.
func gaugeOf(t *testing.T, reg *prometheus.Registry, name string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name})
			g.Set(mf.GetMetric()[0].GetGauge().GetValue())
			return g
		}
	}
	t.Fatalf("no %s", name)
	return nil
}
