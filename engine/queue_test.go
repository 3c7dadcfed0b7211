package engine_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/leadrouter/leadrouter/engine"
)

func score(n int32) *int32 { return &n }

// TestQueueDrainsByScoreThenAge: queued leads go out highest score first,
// then oldest first; unscored leads last.
func TestQueueDrainsByScoreThenAge(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		f.apply(onePool("a", "b"))
		f.status("a", engine.StatusAway)
		f.status("b", engine.StatusAway)
		for _, l := range []engine.Lead{
			{ID: "s10", Score: score(10)}, {ID: "none"}, {ID: "s90-old", Score: score(90)},
			{ID: "s50", Score: score(50)}, {ID: "s90-new", Score: score(90)},
		} {
			if a := f.assign(l); a.State != engine.StateQueued {
				t.Fatalf("%s: %s", l.ID, a.State)
			}
		}
		ids, _ := f.st.QueuedLeads(f.ctx, f.ws, "p", 0, 10)
		if fmt.Sprint(ids) != "[s90-old s90-new s50 s10 none]" {
			t.Fatalf("queue order %v", ids)
		}
		f.rawStatus("a", engine.StatusAvailable)
		f.status("b", engine.StatusAvailable) // drains: a, b, a, b, a
		want := map[string]string{"s90-old": "a", "s90-new": "b", "s50": "a", "s10": "b", "none": "a"}
		for id, rep := range want {
			if got, _ := f.eng.GetAssignment(f.ctx, f.ws, id); got.RepID != rep {
				t.Errorf("%s went to %s, want %s", id, got.RepID, rep)
			}
		}
	})
}

const escalation = `
reps: [{id: a}, {id: b}, {id: c}]
pools:
  - {id: first, members: [{rep_id: a}]}
  - {id: second, members: [{rep_id: b}]}
  - {id: third, members: [{rep_id: c}]}
rules:
  - id: all
    targets: [{pool_id: first, wait: 10m}, {pool_id: second, wait: 5m}, {pool_id: third}]
`

func TestEscalationAfterWait(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		f.apply(escalation)
		f.status("a", engine.StatusAway)
		f.status("b", engine.StatusAway)
		a := f.assign(lead("x"))
		if a.State != engine.StateQueued || a.PoolID != "first" || !strings.Contains(a.Reason, "escalates to second after 600s") {
			t.Fatalf("queued: %+v", a)
		}
		// Not yet due: nothing moves.
		f.clock.Advance(9 * time.Minute)
		f.sweep()
		if a := f.get("x"); a.PoolID != "first" {
			t.Fatalf("escalated early: %+v", a)
		}
		// Due: to the second target, where b is away too: queued there.
		f.clock.Advance(2 * time.Minute)
		f.sweep()
		a = f.get("x")
		if a.State != engine.StateQueued || a.PoolID != "second" {
			t.Fatalf("after 11m: %+v", a)
		}
		if a.Trace.Targets[0].PoolID != "first" || !strings.Contains(a.Trace.Targets[0].Outcome, "escalated") {
			t.Fatalf("escalation not traced: %+v", a.Trace.Targets)
		}
		if ids, _ := f.st.QueuedLeads(f.ctx, f.ws, "first", 0, 10); len(ids) != 0 {
			t.Fatalf("still on the first queue: %v", ids)
		}
		// Another sweep at the same time does nothing more: fired once.
		f.sweep()
		if got := f.get("x"); got.PoolID != "second" {
			t.Fatalf("fired twice: %+v", got)
		}
		// Second wait passes: the third target has c available.
		f.clock.Advance(6 * time.Minute)
		f.sweep()
		if a := f.get("x"); a.State != engine.StateAssigned || a.RepID != "c" || a.PoolID != "third" {
			t.Fatalf("after the second wait: %+v", a)
		}
	})
}

func TestEscalationCancelledByAssignment(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		f.apply(escalation)
		f.status("a", engine.StatusAway)
		f.assign(lead("x"))
		f.status("a", engine.StatusAvailable) // drains x to a
		f.clock.Advance(11 * time.Minute)
		f.sweep()
		if a := f.get("x"); a.State != engine.StateAssigned || a.RepID != "a" {
			t.Fatalf("escalation fired after assignment: %+v", a)
		}
	})
}

func TestMaxQueueAgeMakesUnroutable(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		f.apply(onePool("a") + "settings: {max_queue_age: 1h}\n")
		f.status("a", engine.StatusOffline)
		f.assign(lead("old"))
		f.clock.Advance(30 * time.Minute)
		f.assign(lead("young"))
		f.clock.Advance(31 * time.Minute)
		f.sweep()
		old, young := f.get("old"), f.get("young")
		if old.State != engine.StateUnroutable || !strings.Contains(old.Reason, "max_queue_age (1h0m0s)") {
			t.Fatalf("old: %+v", old)
		}
		if young.State != engine.StateQueued {
			t.Fatalf("young: %+v", young)
		}
		// The event says so.
		events, err := f.st.Client().XRange(f.ctx, f.st.Prefix()+":{"+f.ws+"}:events", "-", "+").Result()
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, e := range events {
			if e.Values["kind"] == "unroutable" && e.Values["lead"] == "old" {
				found = true
			}
		}
		if !found {
			t.Fatalf("no unroutable event for the expired lead in %v", events)
		}
		// It is off the queue: a returning rep gets only the young lead.
		f.status("a", engine.StatusAvailable)
		if got := f.get("young"); got.State != engine.StateAssigned {
			t.Fatalf("young after return: %+v", got)
		}
		if got := f.get("old"); got.State != engine.StateUnroutable {
			t.Fatalf("expired lead assigned: %+v", got)
		}
	})
}

func TestSkipIfUnavailable(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		f.apply(`
reps: [{id: a}, {id: b}]
pools:
  - {id: overflow, members: [{rep_id: a}]}
  - {id: main, members: [{rep_id: b}]}
rules: [{id: all, targets: [{pool_id: overflow, skip_if_unavailable: true}, {pool_id: main}]}]
`)
		f.status("a", engine.StatusAway)
		f.status("b", engine.StatusAway)
		if a := f.assign(lead("x")); a.State != engine.StateQueued || a.PoolID != "main" {
			t.Fatalf("queued on %+v, want main (overflow is skip_if_unavailable)", a)
		}
	})
}

func TestReleaseAssignment(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		f.apply(onePool("a"))
		f.assign(lead("1"))
		r, err := f.eng.ReleaseAssignment(f.ctx, f.ws, "1", "converted in CRM")
		if err != nil || r.State != engine.StateClosed || r.RepID != "a" || r.CloseReason != "converted in CRM" || r.ClosedAt.IsZero() {
			t.Fatalf("release: %v %+v", err, r)
		}
		if rep, _ := f.eng.Rep(f.ctx, f.ws, "a"); rep.Open != 0 || rep.AssignedTotal != 1 {
			t.Fatalf("rep after release: %+v", rep.RepRuntime)
		}
		again, err := f.eng.ReleaseAssignment(f.ctx, f.ws, "1", "again")
		if err != nil || again.CloseReason != "converted in CRM" {
			t.Fatalf("second release: %v %+v", err, again)
		}
		f.status("a", engine.StatusAway)
		f.assign(lead("q"))
		f.assign(lead("q2"))
		// A queued lead is cancelled (TestReleaseCancelsQueuedLead); one stays
		// queued for the removal below.
		if c, err := f.eng.ReleaseAssignment(f.ctx, f.ws, "q2", ""); err != nil || c.State != engine.StateClosed {
			t.Fatalf("release a queued lead: %v %+v", err, c)
		}
		_, err = f.eng.ReleaseAssignment(f.ctx, f.ws, "never", "")
		wantErr(t, err, engine.ErrNotFound)
		// A pool with a queue cannot be removed from the config.
		cfg, _ := engine.ParseConfigYAML(strings.NewReader(`
reps: [{id: a}]
pools: [{id: other, members: [{rep_id: a}]}]
rules: [{id: all, targets: [{pool_id: other}]}]
`))
		_, err = f.eng.ApplyConfig(f.ctx, f.ws, cfg, nil)
		if !errors.Is(err, engine.ErrPoolHasQueue) || !strings.Contains(err.Error(), `"p"`) {
			t.Fatalf("removing a pool with a queue: %v", err)
		}
	})
}
