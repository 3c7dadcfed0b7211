package engine_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/leadrouter/leadrouter/engine"
)

// An operator's moves (RequeueLead, ReassignLead, a release of a queued
// lead) from every state, with the counts, queues, timers and events they
// must leave behind.

// opConfig: pool p (a, b, c) offers leads for 30 s; max_queue_age 1h.
const opConfig = `
reps: [{id: a}, {id: b}, {id: c}]
pools:
  - {id: p, accept_within: 30s, members: [{rep_id: a}, {rep_id: b}, {rep_id: c}]}
rules: [{id: all, targets: [{pool_id: p}]}]
settings: {max_queue_age: 1h}
`

// historyKinds is a record's history as "kind rep" strings.
func historyKinds(a *engine.Assignment) string { return strings.Join(ofrHistory(a), ", ") }

// eventsOf lists the workspace's events of a lead as "kind rep" strings.
func eventsOf(t *testing.T, f *fixture, leadID string) []string {
	t.Helper()
	events, err := f.st.EventsAfter(f.ctx, f.ws, "0-0", 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range events {
		if e.LeadID == leadID {
			out = append(out, strings.TrimSpace(string(e.Kind)+" "+e.RepID))
		}
	}
	return out
}

func TestRequeueFromEveryState(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		f.apply(opConfig)

		// OFFERED: the offer is withdrawn and goes to the next rep.
		offered := f.assign(lead("offered"))
		if offered.State != engine.StateOffered || offered.RepID != "a" {
			t.Fatalf("offered: %+v", offered)
		}
		got, err := f.eng.RequeueLead(f.ctx, f.ws, "offered", "wrong territory")
		if err != nil || got.State != engine.StateOffered || got.RepID != "b" {
			t.Fatalf("requeue an offer: %v %+v", err, got)
		}
		if e, ok := ofrEvent(got, "requeued", "a"); !ok || e.Detail != "wrong territory" {
			t.Fatalf("history %s", historyKinds(got))
		}
		if ev := eventsOf(t, f, "offered"); !slices.Contains(ev, "offer_withdrawn a") {
			t.Fatalf("events %v", ev)
		}
		checkWorkspaceAgrees(t, f)

		// ASSIGNED: the hold is closed; the next rep is offered it.
		f.clock.Advance(time.Millisecond)
		held := f.assign(lead("held"))
		if _, err := f.eng.AcceptOffer(f.ctx, f.ws, "held", held.RepID); err != nil {
			t.Fatal(err)
		}
		got, err = f.eng.RequeueLead(f.ctx, f.ws, "held", "rep left")
		if err != nil || got.State != engine.StateOffered || got.RepID == held.RepID || !got.AcceptedAt.IsZero() {
			t.Fatalf("requeue an assignment held by %s: %v %+v", held.RepID, err, got)
		}
		if ev := eventsOf(t, f, "held"); !slices.Contains(ev, "reassigned "+held.RepID) {
			t.Fatalf("events %v", ev)
		}
		checkWorkspaceAgrees(t, f)

		// QUEUED: it leaves its queue and is routed again now.
		for _, r := range []string{"a", "b", "c"} {
			f.status(r, engine.StatusAway)
		}
		queued := f.assign(lead("queued"))
		if queued.State != engine.StateQueued {
			t.Fatalf("queued: %+v", queued)
		}
		f.rawStatus("c", engine.StatusAvailable) // behind the engine's back: no drain
		got, err = f.eng.RequeueLead(f.ctx, f.ws, "queued", "")
		if err != nil || got.State != engine.StateOffered || got.RepID != "c" {
			t.Fatalf("requeue a queued lead: %v %+v", err, got)
		}
		checkWorkspaceAgrees(t, f)

		// UNROUTABLE (past max_queue_age), routed again once a rep is back.
		f.status("c", engine.StatusAway)
		f.assign(lead("stale"))
		f.clock.Advance(61 * time.Minute)
		f.sweep()
		stale := f.get("stale")
		if stale.State != engine.StateUnroutable {
			t.Fatalf("stale: %+v", stale)
		}
		if _, ok := ofrEvent(stale, "unroutable", ""); !ok {
			t.Fatalf("the UNROUTABLE transition is missing from the history: %s", historyKinds(stale))
		}
		// Still nobody: queued again, with a fresh expiry.
		got, err = f.eng.RequeueLead(f.ctx, f.ws, "stale", "retry")
		if err != nil || got.State != engine.StateQueued {
			t.Fatalf("requeue with nobody eligible: %v %+v", err, got)
		}
		f.status("b", engine.StatusAvailable) // drains it
		if got = f.get("stale"); got.State != engine.StateOffered || got.RepID != "b" {
			t.Fatalf("after b came back: %+v", got)
		}
		checkWorkspaceAgrees(t, f)

		// CLOSED and unknown leads.
		if _, err := f.eng.AcceptOffer(f.ctx, f.ws, "stale", "b"); err != nil {
			t.Fatal(err)
		}
		if _, err := f.eng.ReleaseAssignment(f.ctx, f.ws, "stale", "done"); err != nil {
			t.Fatal(err)
		}
		_, err = f.eng.RequeueLead(f.ctx, f.ws, "stale", "")
		wantErr(t, err, engine.ErrNotAssigned)
		_, err = f.eng.RequeueLead(f.ctx, f.ws, "nope", "")
		wantErr(t, err, engine.ErrNotFound)
		_, err = f.eng.RequeueLead(f.ctx, f.ws, "", strings.Repeat("x", 300))
		var v *engine.ValidationError
		if !errors.As(err, &v) || len(v.Violations) != 2 {
			t.Fatalf("bad input: %v", err)
		}
		checkWorkspaceAgrees(t, f)
	})
}

func TestReassignBypassesEligibility(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		f.apply(opConfig)
		f.status("c", engine.StatusAway)
		l := f.assign(engine.Lead{ID: "l", Email: "jane@acme.com"})
		if l.State != engine.StateOffered || l.RepID != "a" {
			t.Fatalf("l: %+v", l)
		}
		// c is AWAY: a reassignment places the lead with c anyway, at once.
		got, err := f.eng.ReassignLead(f.ctx, f.ws, "l", "c", "knows the account")
		if err != nil || got.State != engine.StateAssigned || got.RepID != "c" || got.Route != engine.RouteOperator {
			t.Fatalf("reassign: %v %+v", err, got)
		}
		if e, ok := ofrEvent(got, "moved", "a"); !ok || e.Detail != "knows the account" {
			t.Fatalf("history %s", historyKinds(got))
		}
		if len(got.Trace.Targets) != 1 || !strings.Contains(got.Trace.Targets[0].Label, "knows the account") ||
			!strings.Contains(got.Trace.Summary, "placed by an operator: knows the account") {
			t.Fatalf("trace %+v", got.Trace)
		}
		if ev := eventsOf(t, f, "l"); !slices.Contains(ev, "offer_withdrawn a") || !slices.Contains(ev, "assigned c") {
			t.Fatalf("events %v", ev)
		}
		checkWorkspaceAgrees(t, f)
		// Again to the holder: nothing changes.
		again, err := f.eng.ReassignLead(f.ctx, f.ws, "l", "c", "")
		if err != nil || again.RepID != "c" || len(again.History) != len(got.History) {
			t.Fatalf("again: %v %+v", err, again)
		}
		// A queued lead, to a rep who is away.
		f.status("a", engine.StatusAway)
		f.status("b", engine.StatusAway)
		q := f.assign(lead("q"))
		if q.State != engine.StateQueued {
			t.Fatalf("q: %+v", q)
		}
		if got, err = f.eng.ReassignLead(f.ctx, f.ws, "q", "b", ""); err != nil || got.State != engine.StateAssigned || got.RepID != "b" {
			t.Fatalf("reassign a queued lead: %v %+v", err, got)
		}
		checkWorkspaceAgrees(t, f)

		_, err = f.eng.ReassignLead(f.ctx, f.ws, "q", "zed", "")
		var v *engine.ValidationError
		if !errors.As(err, &v) || v.Violations[0].Field != "rep_id" {
			t.Fatalf("unknown rep: %v", err)
		}
		_, err = f.eng.ReassignLead(f.ctx, f.ws, "nope", "a", "")
		wantErr(t, err, engine.ErrNotFound)
	})
}

func TestReleaseCancelsQueuedLead(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		f.apply(opConfig)
		for _, r := range []string{"a", "b", "c"} {
			f.status(r, engine.StatusAway)
		}
		f.assign(lead("q1"))
		f.assign(lead("q2"))
		got, err := f.eng.ReleaseAssignment(f.ctx, f.ws, "q1", "duplicate form fill")
		if err != nil || got.State != engine.StateClosed || got.CloseReason != "duplicate form fill" {
			t.Fatalf("release a queued lead: %v %+v", err, got)
		}
		if _, ok := ofrEvent(got, "cancelled", ""); !ok {
			t.Fatalf("history %s", historyKinds(got))
		}
		if ids, _ := f.st.QueuedLeads(f.ctx, f.ws, "p", 0, 10); len(ids) != 1 || ids[0] != "q2" {
			t.Fatalf("queue %v", ids)
		}
		timers := f.st.Client().ZRange(f.ctx, f.st.Prefix()+":{"+f.ws+"}:timers", 0, -1).Val()
		if slices.Contains(timers, "expire|q1") {
			t.Fatalf("the cancelled lead's expiry is still set: %v", timers)
		}
		checkWorkspaceAgrees(t, f)
		// Again: unchanged.
		if again, err := f.eng.ReleaseAssignment(f.ctx, f.ws, "q1", "x"); err != nil || again.CloseReason != "duplicate form fill" {
			t.Fatalf("again: %v %+v", err, again)
		}
		// An offer is not released: it is requeued.
		f.status("a", engine.StatusAvailable)
		if o := f.get("q2"); o.State != engine.StateOffered {
			t.Fatalf("q2: %+v", o)
		}
		_, err = f.eng.ReleaseAssignment(f.ctx, f.ws, "q2", "")
		wantErr(t, err, engine.ErrNotAssigned)
	})
}

// TestDrainRecordsItsConfigVersion: a lead queued under one config and
// drained under the next says the version it was placed under, and its
// trace says it was offered.
func TestDrainRecordsItsConfigVersion(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		v1 := f.apply(opConfig)
		for _, r := range []string{"a", "b", "c"} {
			f.status(r, engine.StatusAway)
		}
		if q := f.assign(lead("q")); q.ConfigVersion != v1 {
			t.Fatalf("queued under %d: %+v", v1, q)
		}
		v2 := f.apply(strings.Replace(opConfig, "max_queue_age: 1h", "max_queue_age: 2h", 1))
		f.status("b", engine.StatusAvailable)
		got := f.get("q")
		if got.State != engine.StateOffered || got.ConfigVersion != v2 {
			t.Fatalf("drained under %d: %+v", v2, got)
		}
		if c, ok := got.Trace.Targets[0].Chosen(); !ok || c.RepID != "b" ||
			!strings.HasPrefix(got.Trace.Targets[0].Outcome, "offered to b") {
			t.Fatalf("trace %+v", got.Trace.Targets)
		}
	})
}

// TestRemovedRepCanDoNothing: once a rep is out of the config, no rep call
// on their behalf succeeds, though they held a lead; an operator moves it.
func TestRemovedRepCanDoNothing(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		f.apply(onePool("a", "b"))
		held := f.assign(lead("held"))
		if held.RepID != "a" || held.State != engine.StateAssigned {
			t.Fatalf("held: %+v", held)
		}
		// A config without a, applied past the orphan check (as a version
		// before it could): a's lead is orphaned.
		cur, err := f.eng.Config(f.ctx, f.ws)
		if err != nil {
			t.Fatal(err)
		}
		next := parseCfg(t, onePool("b"))
		if err := next.Validate(); err != nil {
			t.Fatal(err)
		}
		if _, err := f.st.ApplyConfig(f.ctx, f.ws, cur.ID, cur.Config, next, f.clock.Now(), false); err != nil {
			t.Fatal(err)
		}
		f.eng = f.another() // no cached config
		calls := map[string]func() error{
			"contact": func() error {
				_, err := f.eng.RecordContact(f.ctx, f.ws, "held", "a", "call", time.Time{})
				return err
			},
			"disposition": func() error {
				_, err := f.eng.SetDisposition(f.ctx, f.ws, "held", "a", engine.Qualified, "")
				return err
			},
			"accept": func() error { _, err := f.eng.AcceptOffer(f.ctx, f.ws, "held", "a"); return err },
			"reject": func() error { _, err := f.eng.RejectOffer(f.ctx, f.ws, "held", "a", ""); return err },
			"status": func() error { _, err := f.eng.SetRepStatus(f.ctx, f.ws, "a", engine.StatusAway); return err },
		}
		for name, call := range calls {
			if err := call(); !errors.Is(err, engine.ErrRepNotInConfig) {
				t.Errorf("%s by a removed rep: %v", name, err)
			}
		}
		if got := f.get("held"); got.State != engine.StateAssigned || got.FirstContactAt != (time.Time{}) {
			t.Fatalf("a refused call changed the lead: %+v", got)
		}
		if got, err := f.eng.RequeueLead(f.ctx, f.ws, "held", "rep left"); err != nil || got.RepID != "b" {
			t.Fatalf("requeue the orphan: %v %+v", err, got)
		}
	})
}
