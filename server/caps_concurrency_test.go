package server_test

import (
	"context"
	"fmt"
	"math/rand"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/leadrouter/leadrouter/engine"
	pb "github.com/leadrouter/leadrouter/gen/leadrouter/v1"
	"github.com/leadrouter/leadrouter/internal/redistest"
	"github.com/leadrouter/leadrouter/store"
)

// TestCapsHoldAcrossReplicas: three replicas, 16 client goroutines assigning
// and releasing at once, 7 reps with max_open 3 and daily_cap 30. No rep
// ever holds more than 3 open assignments or takes more than 30 in the day:
// every count is checked from the store afterwards, and the open counters
// equal the ASSIGNED records they count.
func TestCapsHoldAcrossReplicas(t *testing.T) {
	const (
		reps, maxOpen, dailyCap = 7, 3, 30
		leads, workers          = 1500, 16
	)
	clock := engine.NewManualClock(time.Date(2026, 6, 10, 12, 0, 0, 0, time.UTC)) // far from any midnight
	stores := []*store.Redis{redistest.RealStore(t), redistest.RealStore(t), redistest.RealStore(t)}
	var replicas []*instance
	for _, st := range stores {
		replicas = append(replicas, start(t, st, engine.WithClock(clock)))
	}
	ws := redistest.Workspace(t)
	var cfg strings.Builder
	cfg.WriteString("reps:\n")
	for i := 1; i <= reps; i++ {
		fmt.Fprintf(&cfg, "  - {id: r%d, max_open: %d, daily_cap: %d}\n", i, maxOpen, dailyCap)
	}
	cfg.WriteString("pools:\n  - id: team\n    strategy: least_loaded\n    members:\n")
	for i := 1; i <= reps; i++ {
		fmt.Fprintf(&cfg, "      - rep_id: r%d\n", i)
	}
	cfg.WriteString("rules: [{id: all, targets: [{pool_id: team}]}]\n")
	replicas[0].applyYAML(t, ws, cfg.String())

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var (
		next     atomic.Int64
		mu       sync.Mutex
		assigned []string // lead ids seen ASSIGNED, to release
		wg       sync.WaitGroup
		failures = make(chan error, workers)
	)
	release := func(in *instance, id string) error {
		_, err := in.admin.ReleaseAssignment(ctx, &pb.ReleaseAssignmentRequest{Workspace: ws, LeadId: id, Reason: "churn"})
		return err
	}
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rng := rand.New(rand.NewSource(int64(w)))
			var queued []string // this worker's leads that were queued
			for {
				i := int(next.Add(1)) - 1
				if i >= leads {
					break
				}
				in := replicas[i%len(replicas)]
				resp, err := in.routing.AssignLead(ctx, &pb.AssignLeadRequest{Workspace: ws, Lead: &pb.Lead{Id: fmt.Sprint("c-", i)}})
				if err != nil {
					failures <- err
					return
				}
				a := resp.GetAssignment()
				if a.GetState() == pb.AssignmentState_ASSIGNMENT_STATE_QUEUED {
					queued = append(queued, a.GetLeadId())
				}
				mu.Lock()
				if a.GetState() == pb.AssignmentState_ASSIGNMENT_STATE_ASSIGNED {
					assigned = append(assigned, a.GetLeadId())
				}
				var victim string
				if len(assigned) > 0 && rng.Intn(10) != 0 {
					k := rng.Intn(len(assigned))
					victim = assigned[k]
					assigned = append(assigned[:k], assigned[k+1:]...)
				}
				mu.Unlock()
				if victim != "" {
					if err := release(replicas[(i+1)%len(replicas)], victim); err != nil {
						failures <- fmt.Errorf("release %s: %w", victim, err)
						return
					}
				}
			}
			// Churn: release this worker's leads as drains assign them, on
			// every replica at once, until a pass finds none assigned.
			for pass := 0; len(queued) > 0; pass++ {
				progress := false
				kept := queued[:0]
				for j, id := range queued {
					in := replicas[(w+j+pass)%len(replicas)]
					got, err := in.routing.GetAssignment(ctx, &pb.GetAssignmentRequest{Workspace: ws, LeadId: id})
					if err != nil {
						failures <- err
						return
					}
					switch got.GetAssignment().GetState() {
					case pb.AssignmentState_ASSIGNMENT_STATE_ASSIGNED:
						if err := release(in, id); err != nil {
							failures <- fmt.Errorf("release %s: %w", id, err)
							return
						}
						progress = true
					case pb.AssignmentState_ASSIGNMENT_STATE_QUEUED:
						kept = append(kept, id)
					}
				}
				queued = kept
				if !progress && pass > 3 {
					break
				}
			}
		}(w)
	}
	wg.Wait()
	close(failures)
	for err := range failures {
		t.Fatal(err)
	}

	// Everything from the store.
	rc := stores[0].Client()
	k := func(name string) string { return stores[0].Prefix() + ":{" + ws + "}:" + name }
	open, _ := rc.HGetAll(ctx, k("open")).Result()
	daily, _ := rc.HGetAll(ctx, k("daily")).Result()
	total, _ := rc.HGetAll(ctx, k("assigned")).Result()
	records := map[string]int{}
	states := map[string]int{}
	for i := 0; i < leads; i++ {
		f, err := rc.HMGet(ctx, k(fmt.Sprint("lead:c-", i)), "state", "rep").Result()
		if err != nil || f[0] == nil {
			t.Fatalf("lead c-%d has no record: %v", i, err)
		}
		states[f[0].(string)]++
		if f[0] == "ASSIGNED" {
			records[f[1].(string)]++
		}
	}
	sum := 0
	for i := 1; i <= reps; i++ {
		rep := fmt.Sprint("r", i)
		o, _ := strconv.Atoi(open[rep])
		n, _ := strconv.Atoi(total[rep])
		_, day, _ := strings.Cut(daily[rep], ":")
		d, _ := strconv.Atoi(day)
		if o > maxOpen || o != records[rep] {
			t.Errorf("%s: open counter %d, ASSIGNED records %d, max_open %d", rep, o, records[rep], maxOpen)
		}
		if n > dailyCap || d != n {
			t.Errorf("%s: %d assignments today (daily counter %d), daily_cap %d", rep, n, d, dailyCap)
		}
		sum += n
	}
	if states["ASSIGNED"]+states["CLOSED"] != sum || states["ASSIGNED"]+states["CLOSED"]+states["QUEUED"] != leads {
		t.Fatalf("states %v do not add up to %d leads with %d assignments", states, leads, sum)
	}
	t.Logf("%d leads: %v; %d assignments in all (cap %d)", leads, states, sum, reps*dailyCap)
	if sum != reps*dailyCap {
		t.Errorf("the daily caps were never all reached (%d of %d): the test did not exercise them", sum, reps*dailyCap)
	}
}
