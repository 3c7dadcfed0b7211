package engine_test

import (
	"fmt"
	"testing"

	"github.com/leadrouter/leadrouter/engine"
)

func TestQueuedThenDrainedWhenRepReturns(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		f.apply(twoTargets)
		for _, r := range []string{"a", "b", "c"} {
			f.status(r, engine.StatusAway)
		}
		for i := 1; i <= 3; i++ {
			a := f.assign(lead(fmt.Sprint("q", i)))
			if a.State != engine.StateQueued || a.PoolID != "first" || a.Reason == "" {
				t.Fatalf("q%d: %+v", i, a)
			}
		}
		// c belongs to the second target only: the queue is on the first.
		f.status("c", engine.StatusAvailable)
		if a, _ := f.eng.GetAssignment(f.ctx, f.ws, "q1"); a.State != engine.StateQueued {
			t.Fatalf("q1 drained by a member of another pool: %+v", a)
		}
		f.status("b", engine.StatusAvailable)
		for i := 1; i <= 3; i++ {
			a, err := f.eng.GetAssignment(f.ctx, f.ws, fmt.Sprint("q", i))
			if err != nil || a.State != engine.StateAssigned || a.RepID != "b" || a.PoolID != "first" {
				t.Fatalf("q%d after b returned: %v %+v", i, err, a)
			}
		}
		if ids, _ := f.st.QueuedLeads(f.ctx, f.ws, "first", 0, 10); len(ids) != 0 {
			t.Fatalf("queue not empty: %v", ids)
		}
	})
}

// TestQueueKeepsArrivalOrder: a lead arriving while earlier leads wait on
// its pool queues behind them, and the drain assigns all in arrival order.
func TestQueueKeepsArrivalOrder(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		f.apply(onePool("a", "b"))
		f.status("a", engine.StatusAway)
		f.status("b", engine.StatusAway)
		for i := 1; i <= 4; i++ {
			f.assign(lead(fmt.Sprint("l", i)))
		}
		ids, err := f.st.QueuedLeads(f.ctx, f.ws, "p", 0, 10)
		if err != nil || fmt.Sprint(ids) != "[l1 l2 l3 l4]" {
			t.Fatalf("queue %v %v", ids, err)
		}
		// Both return behind the engine's back: no drain has run yet.
		f.rawStatus("a", engine.StatusAvailable)
		f.rawStatus("b", engine.StatusAvailable)
		a := f.assign(lead("l5"))
		if a.State != engine.StateAssigned {
			t.Fatalf("l5 not assigned after the drain: %+v", a)
		}
		want := map[string]string{"l1": "a", "l2": "b", "l3": "a", "l4": "b", "l5": "a"}
		for id, rep := range want {
			got, err := f.eng.GetAssignment(f.ctx, f.ws, id)
			if err != nil || got.RepID != rep {
				t.Errorf("%s: got %+v (%v), want rep %s", id, got, err, rep)
			}
		}
	})
}

func TestIdempotentAssign(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		f.apply(onePool("a", "b", "c"))
		first := f.assign(engine.Lead{ID: "dup", Email: "jane@acme.com"})
		again, dup, err := f.eng.AssignLead(f.ctx, f.ws, engine.Lead{ID: "dup", Email: "other@x.com", Country: "US"})
		if err != nil || !dup || again.RepID != first.RepID || again.Lead.Email != "jane@acme.com" {
			t.Fatalf("repeat: dup=%v err=%v %+v", dup, err, again)
		}
		if !again.DecidedAt.Equal(first.DecidedAt) {
			t.Fatalf("decided_at changed: %v vs %v", again.DecidedAt, first.DecidedAt)
		}
		// The repeat took no turn.
		if next := f.assign(lead("next")); next.RepID != "b" {
			t.Fatalf("next lead went to %s, want b", next.RepID)
		}
	})
}

func TestPreviewWritesNothing(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		f.apply(onePool("a", "b", "c"))
		f.status("a", engine.StatusAway)
		p1, dup, err := f.eng.PreviewAssignment(f.ctx, f.ws, lead("x"))
		if err != nil || dup || p1.RepID != "b" {
			t.Fatalf("preview: %v %v %+v", err, dup, p1)
		}
		p2, _, _ := f.eng.PreviewAssignment(f.ctx, f.ws, lead("x"))
		if p2.RepID != "b" {
			t.Fatalf("second preview moved the rotation: %s", p2.RepID)
		}
		if _, err := f.eng.GetAssignment(f.ctx, f.ws, "x"); err == nil {
			t.Fatal("preview stored an assignment")
		}
		real := f.assign(lead("x"))
		if real.RepID != p1.RepID || fmt.Sprint(real.Trace) != fmt.Sprint(p1.Trace) {
			t.Fatalf("assign differs from preview:\n%+v\n%+v", real.Trace, p1.Trace)
		}
		reps, _ := f.eng.Reps(f.ctx, f.ws)
		var total int64
		for _, r := range reps {
			total += r.AssignedTotal
		}
		if total != 1 {
			t.Fatalf("assigned totals add up to %d, want 1", total)
		}
		// Nobody eligible: preview says QUEUED but queues nothing.
		for _, r := range []string{"b", "c"} {
			f.status(r, engine.StatusOffline)
		}
		q, _, _ := f.eng.PreviewAssignment(f.ctx, f.ws, lead("y"))
		if q.State != engine.StateQueued {
			t.Fatalf("preview with nobody available: %+v", q)
		}
		if ids, _ := f.st.QueuedLeads(f.ctx, f.ws, "p", 0, 10); len(ids) != 0 {
			t.Fatalf("preview queued %v", ids)
		}
	})
}

func TestNoConfig(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		_, _, err := f.eng.AssignLead(f.ctx, f.ws, lead("x"))
		wantErr(t, err, engine.ErrNoConfig)
		_, err = f.eng.SetRepStatus(f.ctx, f.ws, "a", engine.StatusAway)
		wantErr(t, err, engine.ErrNoConfig)
		_, err = f.eng.GetAssignment(f.ctx, f.ws, "x")
		wantErr(t, err, engine.ErrNotFound)
	})
}

func TestSetRepStatus(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		f.apply(onePool("a"))
		prev, err := f.eng.SetRepStatus(f.ctx, f.ws, "a", engine.StatusAway)
		if err != nil || prev != engine.StatusAvailable {
			t.Fatalf("prev %s err %v", prev, err)
		}
		_, err = f.eng.SetRepStatus(f.ctx, f.ws, "ghost", engine.StatusAway)
		wantErr(t, err, engine.ErrRepNotInConfig)
		_, err = f.eng.SetRepStatus(f.ctx, f.ws, "a", "BUSY")
		wantErr(t, err, engine.ErrInvalid)
		r, err := f.eng.Rep(f.ctx, f.ws, "a")
		if err != nil || r.Status != engine.StatusAway || r.StatusChangedAt.IsZero() || len(r.PoolIDs) != 1 {
			t.Fatalf("rep %+v %v", r, err)
		}
	})
}
