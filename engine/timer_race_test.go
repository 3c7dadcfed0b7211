package engine_test

import (
	"testing"
	"time"

	"github.com/leadrouter/leadrouter/engine"
)

// TestStaleTimerReadingClaimsNothing: two replicas read the same due offer
// timer. The first withdraws the offer and offers the lead to the next rep,
// which sets the lead's offer timer again, for later. The second, acting on
// its older reading, must not take that new timer: the new offer must still
// expire on time.
func TestStaleTimerReadingClaimsNothing(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		f.apply(`
reps: [{id: a}, {id: b}, {id: c}]
pools: [{id: p, accept_within: 30s, members: [{rep_id: a}, {rep_id: b}, {rep_id: c}]}]
rules: [{id: all, targets: [{pool_id: p}]}]
`)
		f.assign(lead("x")) // offered to a
		f.clock.Advance(31 * time.Second)
		stale := f.get("x") // what the second replica read: offered to a
		f.sweep()           // the first replica: withdrawn from a, offered to b
		if a := f.get("x"); a.State != engine.StateOffered || a.RepID != "b" {
			t.Fatalf("after the first firing: %+v", a)
		}
		// The second replica fires with its stale reading.
		cfg, err := f.st.LoadConfig(f.ctx, f.ws)
		if err != nil {
			t.Fatal(err)
		}
		res, err := f.st.Reroute(f.ctx, f.ws, cfg.ID, &engine.Rerouting{Mode: engine.RerouteTimeout, Assignment: stale,
			RepID: "a", Targets: []engine.DecisionTarget{{Pool: &cfg.Config.Pools[0]}}, FirstIndex: 1}, f.clock.Now())
		if err != nil || res.Done {
			t.Fatalf("stale firing: %+v %v", res, err)
		}
		// b's offer still expires on time.
		f.clock.Advance(31 * time.Second)
		f.sweep()
		if a := f.get("x"); a.State != engine.StateOffered || a.RepID != "c" {
			t.Fatalf("b's offer did not expire: %+v", a)
		}
	})
}
