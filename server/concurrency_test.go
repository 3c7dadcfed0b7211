package server_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	pb "github.com/leadrouter/leadrouter/gen/leadrouter/v1"
	"github.com/leadrouter/leadrouter/internal/parallel"
	"github.com/leadrouter/leadrouter/internal/redistest"
)

// TestConcurrentAssignAcrossReplicas: three engine instances, each a real
// gRPC server with its own Redis client, share one real Redis. 16 client
// goroutines send 20,000 distinct leads to one pool of 7 reps. Every lead
// gets exactly one assignment and per-rep counts differ by at most 1. Then
// every lead id is sent again, concurrently to two instances: no new
// assignment, the same rep back.
func TestConcurrentAssignAcrossReplicas(t *testing.T) {
	const (
		leads   = 20000
		workers = 16
	)
	replicas := []*instance{
		start(t, redistest.RealStore(t)),
		start(t, redistest.RealStore(t)),
		start(t, redistest.RealStore(t)),
	}
	ws := redistest.Workspace(t)
	replicas[0].applyYAML(t, ws, `
reps: [{id: r1}, {id: r2}, {id: r3}, {id: r4}, {id: r5}, {id: r6}, {id: r7}]
pools:
  - id: team
    members: [{rep_id: r1}, {rep_id: r2}, {rep_id: r3}, {rep_id: r4}, {rep_id: r5}, {rep_id: r6}, {rep_id: r7}]
rules: [{id: all, targets: [{pool_id: team}]}]
`)
	// Generous: under -race on two cores the two phases take about a minute.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	reps := make([]string, leads)
	run := func(work func(i int) error) {
		t.Helper()
		for _, err := range parallel.Each(workers, leads, work) {
			t.Fatal(err)
		}
	}

	run(func(i int) error {
		resp, err := replicas[i%3].routing.AssignLead(ctx, &pb.AssignLeadRequest{Workspace: ws,
			Lead: &pb.Lead{Id: fmt.Sprint("lead-", i), Country: "US"}})
		if err != nil {
			return fmt.Errorf("lead %d: %w", i, err)
		}
		a := resp.GetAssignment()
		if resp.GetDuplicate() || a.GetState() != pb.AssignmentState_ASSIGNMENT_STATE_ASSIGNED || a.GetRepId() == "" {
			return fmt.Errorf("lead %d: %v (duplicate %v)", i, a, resp.GetDuplicate())
		}
		reps[i] = a.GetRepId()
		return nil
	})

	// Count from the store, not from the replies: the per-rep counters the
	// scripts keep, and every lead's record.
	counted := map[string]int{}
	for _, r := range reps {
		counted[r]++
	}
	list, err := replicas[1].admin.ListReps(ctx, &pb.ListRepsRequest{Workspace: ws})
	if err != nil {
		t.Fatal(err)
	}
	lo, hi, total := leads, 0, 0
	for _, r := range list.GetReps() {
		n := int(r.GetAssignedTotal())
		if n != counted[r.GetRep().GetId()] {
			t.Errorf("%s: store counts %d assignments, replies say %d", r.GetRep().GetId(), n, counted[r.GetRep().GetId()])
		}
		lo, hi, total = min(lo, n), max(hi, n), total+n
	}
	if total != leads {
		t.Fatalf("store counts %d assignments for %d leads", total, leads)
	}
	if hi-lo > 1 {
		t.Fatalf("per-rep counts range %d..%d, want a spread of at most 1", lo, hi)
	}
	t.Logf("20,000 leads over 7 reps: %d..%d each", lo, hi)

	// Every lead id again, to two replicas at once.
	run(func(i int) error {
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for k, in := range []*instance{replicas[i%3], replicas[(i+1)%3]} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := in.routing.AssignLead(ctx, &pb.AssignLeadRequest{Workspace: ws,
					Lead: &pb.Lead{Id: fmt.Sprint("lead-", i), Country: "US"}})
				switch {
				case err != nil:
					errs[k] = err
				case !resp.GetDuplicate() || resp.GetAssignment().GetRepId() != reps[i]:
					errs[k] = fmt.Errorf("lead %d resent: duplicate=%v rep %s, want %s", i,
						resp.GetDuplicate(), resp.GetAssignment().GetRepId(), reps[i])
				}
			}()
		}
		wg.Wait()
		if errs[0] != nil {
			return errs[0]
		}
		return errs[1]
	})
	list, err = replicas[2].admin.ListReps(context.Background(), &pb.ListRepsRequest{Workspace: ws})
	if err != nil {
		t.Fatal(err)
	}
	total = 0
	for _, r := range list.GetReps() {
		total += int(r.GetAssignedTotal())
	}
	if total != leads {
		t.Fatalf("after resending, the store counts %d assignments, want %d", total, leads)
	}
}

// TestConcurrentDuplicatesOfNewLeads: the same new lead id sent at once to
// three replicas is assigned once; all three get the same rep.
func TestConcurrentDuplicatesOfNewLeads(t *testing.T) {
	replicas := []*instance{start(t, redistest.RealStore(t)), start(t, redistest.RealStore(t)), start(t, redistest.RealStore(t))}
	ws := redistest.Workspace(t)
	replicas[0].applyYAML(t, ws, threeReps)
	ctx := ctxT(t)
	for i := 0; i < 300; i++ {
		var wg sync.WaitGroup
		got := make([]*pb.AssignLeadResponse, 3)
		for k, in := range replicas {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := in.routing.AssignLead(ctx, &pb.AssignLeadRequest{Workspace: ws,
					Lead: &pb.Lead{Id: fmt.Sprint("race-", i), Country: "DE"}})
				if err != nil {
					t.Error(err)
					return
				}
				got[k] = resp
			}()
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		originals := 0
		for _, r := range got {
			if !r.GetDuplicate() {
				originals++
			}
			if r.GetAssignment().GetRepId() != got[0].GetAssignment().GetRepId() {
				t.Fatalf("lead %d: replicas disagree: %v", i, got)
			}
		}
		if originals != 1 {
			t.Fatalf("lead %d: %d replies claim to be the original", i, originals)
		}
	}
	list, _ := replicas[0].admin.ListReps(ctx, &pb.ListRepsRequest{Workspace: ws})
	var total int64
	for _, r := range list.GetReps() {
		total += r.GetAssignedTotal()
	}
	if total != 300 {
		t.Fatalf("%d assignments for 300 leads", total)
	}
}
