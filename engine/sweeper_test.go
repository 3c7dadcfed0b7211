package engine_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/leadrouter/leadrouter/engine"
)

// TestSweeperSurvivesBadTimers: timers whose leads are gone (more than a
// batch of them) and a timer of an unknown kind are dropped, and a real
// deadline behind them still fires in the same sweep.
func TestSweeperSurvivesBadTimers(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		f.apply(`
reps: [{id: a}, {id: b}]
pools: [{id: p, accept_within: 30s, members: [{rep_id: a}, {rep_id: b}]}]
rules: [{id: all, targets: [{pool_id: p}]}]
`)
		timers := f.st.Prefix() + ":{" + f.ws + "}:timers"
		due := f.clock.Now().UnixMilli()
		var bad []redis.Z
		for i := 0; i < 300; i++ {
			bad = append(bad, redis.Z{Score: float64(due - 1000), Member: fmt.Sprintf("offer|gone-%d", i)})
		}
		bad = append(bad, redis.Z{Score: float64(due - 1000), Member: "bogus|x"})
		if err := f.st.Client().ZAdd(f.ctx, timers, bad...).Err(); err != nil {
			t.Fatal(err)
		}
		f.assign(lead("real")) // offered to a, due in 30s
		f.clock.Advance(31 * time.Second)
		f.sweep()
		if a := f.get("real"); a.State != engine.StateOffered || a.RepID != "b" {
			t.Fatalf("the real deadline did not fire behind the bad timers: %+v", a)
		}
		if n, _ := f.st.Client().ZCard(f.ctx, timers).Result(); n != 1 { // b's new offer timer
			t.Fatalf("%d timers left, want only b's offer", n)
		}
	})
}

// TestLostRegistrationHeals: a workspace whose entry in the workspace list
// is gone (an apply whose registration was lost) is not swept, until the
// sweeper's registration check finds its config and registers it again;
// its overdue offer then fires.
func TestLostRegistrationHeals(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		f.apply(`
reps: [{id: a}, {id: b}]
pools: [{id: p, accept_within: 30s, members: [{rep_id: a}, {rep_id: b}]}]
rules: [{id: all, targets: [{pool_id: p}]}]
`)
		list := f.st.Prefix() + ":workspaces"
		if ok, _ := f.st.Client().SIsMember(f.ctx, list, f.ws).Result(); !ok {
			t.Fatal("the apply did not register the workspace")
		}
		f.assign(lead("l1")) // offered to a, due in 30s
		if err := f.st.Client().SRem(f.ctx, list, f.ws).Err(); err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(31 * time.Second)
		f.sweep()
		if a := f.get("l1"); a.State != engine.StateOffered || a.RepID != "a" {
			t.Fatalf("an unregistered workspace was swept: %+v", a)
		}
		ctx, cancel := context.WithCancel(f.ctx)
		defer cancel()
		done := make(chan struct{})
		go func() { f.eng.RunSweeper(ctx, 10*time.Millisecond); close(done) }()
		defer func() { cancel(); <-done }()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			if a := f.get("l1"); a.RepID == "b" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the overdue offer never fired: %+v", f.get("l1"))
			}
		}
		if ok, _ := f.st.Client().SIsMember(f.ctx, list, f.ws).Result(); !ok {
			t.Fatal("the workspace is not registered again")
		}
	})
}
