package engine_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/leadrouter/leadrouter/engine"
)

// countingStore counts DrainQueue calls.
type countingStore struct {
	engine.Store
	drains atomic.Int64
}

func (c *countingStore) DrainQueue(ctx context.Context, ws, configID string, pool *engine.Pool, ids []string, sticky time.Duration, local engine.LocalTimes, now time.Time) (*engine.DrainResult, error) {
	c.drains.Add(1)
	return c.Store.DrainQueue(ctx, ws, configID, pool, ids, sticky, local, now)
}

// R1: after max_offers, with every member offered once, the lead waits
// forever: no rep may take it, and it never expires (no expire timer).
// Every drain of its pool spins 101 script calls.
func TestReviewMaxOffersStuckForever(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		f.apply(`
settings: {max_queue_age: 1h}
reps: [{id: a}, {id: b}]
pools: [{id: p, accept_within: 30s, max_offers: 2, max_missed_offers: 0, members: [{rep_id: a}, {rep_id: b}]}]
rules: [{id: all, targets: [{pool_id: p}]}]
`)
		f.assign(lead("x"))
		for i := 0; i < 2; i++ {
			f.clock.Advance(31 * time.Second)
			if err := f.eng.Sweep(f.ctx, false); err != nil {
				t.Fatal(err)
			}
		}
		x := f.get("x")
		if x.State != engine.StateQueued {
			t.Fatalf("want queued, got %+v", x)
		}
		timers, _ := f.st.Client().ZRangeWithScores(f.ctx, f.st.Prefix()+":{"+f.ws+"}:timers", 0, -1).Result()
		t.Logf("timers after requeue: %v", timers)
		// Hours later both a and b are available: the lead is still queued.
		f.clock.Advance(3 * time.Hour)
		f.sweep()
		x = f.get("x")
		t.Logf("3h later: state=%s reason=%q", x.State, x.Reason)
		// Drain cost: count DrainQueue calls of one new lead.
		cs := &countingStore{Store: f.st}
		eng := engine.New(cs, engine.WithClock(f.clock), engine.WithLogger(quiet))
		y, _, err := eng.AssignLead(f.ctx, f.ws, lead("y"))
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("new lead y: %s to %s; DrainQueue calls: %d", y.State, y.RepID, cs.drains.Load())
		cs.drains.Store(0)
		if err := eng.Sweep(f.ctx, true); err != nil {
			t.Logf("sweep err: %v", err)
		}
		t.Logf("one sweep with drain: DrainQueue calls: %d", cs.drains.Load())
		if x.State == engine.StateQueued {
			t.Errorf("lead x still QUEUED 3h after max_queue_age 1h, with a and b available")
		}
	})
}

// R2: a withdrawn offer requeued by lead_reroute goes on the lead's current
// pool, not on the target route_targets chose; no escalate timer is set even
// though the reason says it escalates.
func TestReviewRequeueIgnoresWaitTarget(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		f.apply(`
settings: {max_queue_age: 1h}
reps: [{id: a}, {id: b}]
pools:
  - {id: A, accept_within: 30s, members: [{rep_id: a}]}
  - {id: B, accept_within: 0s, members: [{rep_id: b}]}
rules: [{id: all, targets: [{pool_id: A, wait: 10m}, {pool_id: B}]}]
`)
		f.assign(lead("x"))
		ofrOffered(f, "x", "a")
		x, err := f.eng.RejectOffer(f.ctx, f.ws, "x", "a", "busy")
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("after reject: %s on %s reason %q", x.State, x.PoolID, x.Reason)
		f.rawStatus("a", engine.StatusAway)
		timers, _ := f.st.Client().ZRangeWithScores(f.ctx, f.st.Prefix()+":{"+f.ws+"}:timers", 0, -1).Result()
		t.Logf("timers: %v", timers)
		f.clock.Advance(11 * time.Minute)
		f.sweep()
		f.clock.Advance(2 * time.Hour)
		f.sweep()
		x = f.get("x")
		t.Logf("2h11m later: %s on %s rep %q reason %q", x.State, x.PoolID, x.RepID, x.Reason)
		if x.State == engine.StateQueued {
			t.Errorf("lead still queued on %s: no escalation to B (b available) and no expiry", x.PoolID)
		}
	})
}

// R3: skip_if_unavailable target holds a withdrawn lead.
func TestReviewRequeueOnSkipTarget(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		f.apply(`
reps: [{id: a}, {id: b, initial_status: away}]
pools:
  - {id: A, accept_within: 30s, members: [{rep_id: a}]}
  - {id: B, accept_within: 0s, members: [{rep_id: b}]}
rules: [{id: all, targets: [{pool_id: A, skip_if_unavailable: true}, {pool_id: B}]}]
`)
		f.assign(lead("x"))
		ofrOffered(f, "x", "a")
		x, err := f.eng.RejectOffer(f.ctx, f.ws, "x", "a", "busy")
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("after reject: %s on %s reason %q", x.State, x.PoolID, x.Reason)
		f.rawStatus("a", engine.StatusAway)
		f.status("b", engine.StatusAvailable) // drains B
		f.sweep()
		x = f.get("x")
		t.Logf("b available: %s on %s rep %q", x.State, x.PoolID, x.RepID)
		if x.PoolID == "A" && x.State == engine.StateQueued {
			t.Errorf("lead held on skip_if_unavailable pool A while b in B is available")
		}
	})
}

// R4: a sticky-routed offer that is withdrawn takes back a pool daily count
// it never added: the pool cap is exceeded.
func TestReviewStickyWithdrawDailyDrift(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		f.apply(`
reps: [{id: a}]
pools: [{id: p, accept_within: 30s, reject_cooldown: 1h, members: [{rep_id: a, daily_cap: 1}]}]
rules: [{id: all, targets: [{pool_id: p}]}]
`)
		daily := func() string {
			v, _ := f.st.Client().HGet(f.ctx, f.st.Prefix()+":{"+f.ws+"}:daily", "p/a").Result()
			return v
		}
		f.assign(engine.Lead{ID: "l1", Email: "x@example.com"})
		ofrAccept(f, "l1", "a")
		t.Logf("after l1: p/a = %s", daily())
		l2 := f.assign(engine.Lead{ID: "l2", Email: "x@example.com"})
		t.Logf("l2: %s to %s via %s pool %s; p/a = %s", l2.State, l2.RepID, l2.Route, l2.PoolID, daily())
		f.clock.Advance(31 * time.Second)
		f.sweep()
		l2 = f.get("l2")
		t.Logf("l2 after timeout: %s to %s; p/a = %s; trace %+v", l2.State, l2.RepID, daily(), l2.Trace.Targets)
		if c, ok := l2.Trace.Targets[len(l2.Trace.Targets)-1].Chosen(); ok && c.RepID == "a" {
			t.Errorf("a picked from pool p for l2 although l1 already used a's pool daily_cap 1 (p/a=%s)", daily())
		}
		if l2.State == engine.StateOffered {
			ofrAccept(f, "l2", "a")
		}
		l3 := f.assign(engine.Lead{ID: "l3", Email: "y@example.com"})
		t.Logf("l3: %s to %s; p/a = %s", l3.State, l3.RepID, daily())
		n := 0
		for _, id := range []string{"l1", "l2", "l3"} {
			a := f.get(id)
			if a.RepID == "a" && a.PoolID == "p" && a.Route == engine.RouteRule {
				n++
			}
		}
		if n > 1 {
			t.Errorf("a took %d rule leads from p today with a pool daily_cap of 1", n)
		}
	})
}

// R5: a rep that just rejected is offered the lead again by the next drain.
func TestReviewRejectBouncesBack(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		f.apply(ofrPool("accept_within: 30s", "a"))
		f.assign(lead("x"))
		if _, err := f.eng.RejectOffer(f.ctx, f.ws, "x", "a", "no"); err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(time.Second)
		f.sweep()
		x := f.get("x")
		t.Logf("1s after the reject: %s to %q offered %v", x.State, x.RepID, ofrOfferedTo(x))
	})
}

var _ = fmt.Sprint
var _ = strings.Contains

// R6: an SLA warning or breach that already fired is set again (in the past)
// by every later offer of the lead, and fires again.
func TestReviewSLATimersRefire(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		f.apply(ofrPool("accept_within: 30s, max_missed_offers: 0, first_contact_within: 60s, warn_at: 20s", "a", "b", "c", "d"))
		f.assign(lead("x"))
		for i := 0; i < 8; i++ {
			f.clock.Advance(10 * time.Second)
			f.sweep()
		}
		x := f.get("x")
		t.Logf("state %s rep %s breaches %d history %v", x.State, x.RepID, x.Breaches, ofrHistory(x))
		if w, b := ofrCount(x, "sla_warning"), ofrCount(x, "sla_breached"); w > 1 || b > 1 {
			t.Errorf("one SLA, %d warnings and %d breaches", w, b)
		}
	})
}

// R7: after a REASSIGN breach, a lead that waits in the queue gives the next
// rep an SLA that ran out before the rep got the lead: breached at once,
// excluded for good; the lead ends stuck.
func TestReviewBreachWindowFromBreachTime(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		f.apply(`
reps: [{id: a}, {id: b, initial_status: away}]
pools: [{id: p, accept_within: 0s, first_contact_within: 5m, on_breach: reassign, members: [{rep_id: a}, {rep_id: b}]}]
rules: [{id: all, targets: [{pool_id: p}]}]
`)
		f.assign(lead("x"))
		f.clock.Advance(5*time.Minute + time.Second)
		f.sweep() // a breaches; b away: queued
		x := f.get("x")
		t.Logf("after a's breach: %s %q", x.State, x.Reason)
		f.clock.Advance(10 * time.Minute)
		f.status("b", engine.StatusAvailable) // drains: b gets it
		x = f.get("x")
		t.Logf("b back: %s to %s, first contact due %v (now %v)", x.State, x.RepID, x.FirstContactDue, f.clock.Now())
		f.clock.Advance(100 * time.Millisecond)
		f.sweep()
		x = f.get("x")
		t.Logf("100ms later: %s to %q history %v", x.State, x.RepID, ofrHistory(x))
		if x.RepID != "b" {
			t.Errorf("b lost the lead 100ms after getting it")
		}
	})
}

// R8: an offer made before local midnight and withdrawn after it takes the
// new day's count down: the rep exceeds its daily cap.
func TestReviewWithdrawAcrossMidnight(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		f.apply(`
reps: [{id: a, daily_cap: 1}]
pools: [{id: p, accept_within: 30s, max_missed_offers: 0, members: [{rep_id: a}]}]
rules: [{id: all, targets: [{pool_id: p}]}]
`)
		midnight := time.Date(2026, 3, 3, 0, 0, 0, 0, time.UTC)
		ofrUntil(f, midnight.Add(-10*time.Second))
		f.assign(lead("x")) // offered to a, day 1 count 1
		ofrUntil(f, midnight.Add(5*time.Second))
		y := f.assign(lead("y")) // day 2 count 1: cap reached
		ofrAccept(f, "y", "a")
		ofrUntil(f, midnight.Add(25*time.Second))
		f.sweep() // x times out: takes day 2's count to 0, re-offered to a
		x := f.get("x")
		t.Logf("y: %s %s; x now %s to %q", y.State, y.RepID, x.State, x.RepID)
		if x.State == engine.StateOffered && x.RepID == "a" {
			ofrAccept(f, "x", "a")
			t.Errorf("a holds x and y, both counted on day 2, with daily_cap 1; AssignedToday=%d", ofrRep(f, "a").AssignedToday)
		}
	})
}

// R9: an offer to the account owner is made under the first target's
// policy, but its withdrawal reads the policies of pool "" (the record's
// pool): no auto-pause, no reject cooldown, no max_offers.
func TestReviewOwnerOfferPolicies(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		f.apply(`
accounts: [{domain: acme.com, owner_rep_id: a}]
reps: [{id: a}, {id: b}]
pools: [{id: p, accept_within: 30s, max_missed_offers: 1, members: [{rep_id: a}, {rep_id: b}]}]
rules: [{id: all, targets: [{pool_id: p}]}]
`)
		x := f.assign(engine.Lead{ID: "x", CompanyDomain: "acme.com"})
		t.Logf("x: %s to %s route %s pool %q", x.State, x.RepID, x.Route, x.PoolID)
		f.clock.Advance(31 * time.Second)
		f.sweep()
		r := ofrRep(f, "a")
		t.Logf("a after one missed owner offer (max_missed_offers 1): %s", r.Status)
		if r.Status != engine.StatusAway {
			t.Errorf("a missed an offer made under pool p's policy (max_missed_offers 1) and stays %s", r.Status)
		}
	})
}

// R10: closing the person's later lead forgets the sticky owner although an
// earlier lead of the same person is still open with that rep.
func TestReviewStickyForgottenWhileOpen(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		f.apply(onePool("a", "b"))
		f.assign(engine.Lead{ID: "l1", Email: "x@example.com"})
		l2 := f.assign(engine.Lead{ID: "l2", Email: "x@example.com"})
		if _, err := f.eng.SetDisposition(f.ctx, f.ws, "l2", l2.RepID, engine.Recycled, ""); err != nil {
			t.Fatal(err)
		}
		l1 := f.get("l1")
		l3 := f.assign(engine.Lead{ID: "l3", Email: "x@example.com"})
		t.Logf("l1 %s to %s (open); l3 to %s via %s", l1.State, l1.RepID, l3.RepID, l3.Route)
		if l3.RepID != l1.RepID {
			t.Errorf("person's open lead l1 is with %s, new lead l3 went to %s", l1.RepID, l3.RepID)
		}
	})
}

// R11: 64 unservable leads at the head of a queue starve every lead behind
// them, with an eligible rep.
func TestReviewRestrictedHeadStarvesQueue(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		f.apply(ofrPool("accept_within: 30s, max_offers: 1, max_missed_offers: 0", "a"))
		for i := 0; i < 64; i++ {
			f.assign(lead(fmt.Sprintf("h%02d", i)))
		}
		f.clock.Advance(31 * time.Second)
		if err := f.eng.Sweep(f.ctx, false); err != nil {
			t.Fatal(err)
		}
		z := f.assign(engine.Lead{ID: "z"})
		f.clock.Advance(time.Minute)
		f.sweep()
		z = f.get("z")
		t.Logf("z: %s %q; a open=%d", z.State, z.Reason, ofrRep(f, "a").Open)
		if z.State == engine.StateQueued {
			t.Errorf("z waits forever behind 64 leads nobody may take; a is available with nothing open")
		}
	})
}
