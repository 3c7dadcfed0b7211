package engine_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/leadrouter/leadrouter/engine"
)

// The offer lifecycle on the injected clock: offers, accepts, timeouts,
// rejects, auto-away, max_offers, the first-contact SLA, dispositions and
// every wrong-caller case. Every config sets accept_within explicitly (the
// fixture's apply turns unset into 0).

// ofrPool is a config of one pool "p" of the given reps, with the pool
// policies in policy (YAML flow-map entries, e.g. "accept_within: 30s").
func ofrPool(policy string, reps ...string) string {
	var b strings.Builder
	b.WriteString("reps:\n")
	for _, r := range reps {
		fmt.Fprintf(&b, "  - {id: %s}\n", r)
	}
	fmt.Fprintf(&b, "pools:\n  - {id: p, %s, members: [", policy)
	for i, r := range reps {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "{rep_id: %s}", r)
	}
	b.WriteString("]}\nrules: [{id: all, targets: [{pool_id: p}]}]\n")
	return b.String()
}

// ofrHistory is a record's history as "kind rep" strings.
func ofrHistory(a *engine.Assignment) []string {
	out := make([]string, len(a.History))
	for i, e := range a.History {
		out[i] = strings.TrimSpace(e.Kind + " " + e.RepID)
	}
	return out
}

// ofrEvent returns the last history event of a kind (and rep, unless "").
func ofrEvent(a *engine.Assignment, kind, rep string) (engine.LifecycleEvent, bool) {
	for i := len(a.History) - 1; i >= 0; i-- {
		if e := a.History[i]; e.Kind == kind && (rep == "" || e.RepID == rep) {
			return e, true
		}
	}
	return engine.LifecycleEvent{}, false
}

func ofrCount(a *engine.Assignment, kind string) int {
	n := 0
	for _, e := range a.History {
		if e.Kind == kind {
			n++
		}
	}
	return n
}

// ofrOfferedTo lists the reps a lead was offered to, in order.
func ofrOfferedTo(a *engine.Assignment) []string {
	var out []string
	for _, e := range a.History {
		if e.Kind == "offered" {
			out = append(out, e.RepID)
		}
	}
	return out
}

func ofrRep(f *fixture, id string) *engine.RepState {
	f.t.Helper()
	r, err := f.eng.Rep(f.ctx, f.ws, id)
	if err != nil {
		f.t.Fatalf("rep %s: %v", id, err)
	}
	return r
}

// ofrOpen checks a rep's open and assigned-total counts.
func ofrOpen(f *fixture, id string, open, total int64) {
	f.t.Helper()
	if r := ofrRep(f, id); r.Open != open || r.AssignedTotal != total {
		f.t.Fatalf("rep %s: open %d total %d, want %d and %d", id, r.Open, r.AssignedTotal, open, total)
	}
}

func ofrAccept(f *fixture, leadID, rep string) *engine.Assignment {
	f.t.Helper()
	a, err := f.eng.AcceptOffer(f.ctx, f.ws, leadID, rep)
	if err != nil {
		f.t.Fatalf("%s accepts %s: %v", rep, leadID, err)
	}
	if a.State != engine.StateAssigned || a.RepID != rep {
		f.t.Fatalf("%s accepted %s: %+v", rep, leadID, a)
	}
	return a
}

// ofrOffered checks that a lead is offered to rep.
func ofrOffered(f *fixture, leadID, rep string) *engine.Assignment {
	f.t.Helper()
	a := f.get(leadID)
	if a.State != engine.StateOffered || a.RepID != rep {
		f.t.Fatalf("%s: %s to %q, want OFFERED to %s; history %v", leadID, a.State, a.RepID, rep, ofrHistory(a))
	}
	return a
}

// ofrUntil moves the clock to t (never back).
func ofrUntil(f *fixture, t time.Time) {
	if d := t.Sub(f.clock.Now()); d > 0 {
		f.clock.Advance(d)
	}
}

// ofrStream returns the workspace's events stream entries as maps, each
// detail rendered as the store's readers render it (engine.RenderNote).
func ofrStream(f *fixture) []map[string]any {
	f.t.Helper()
	msgs, err := f.st.Client().XRange(f.ctx, f.st.Prefix()+":{"+f.ws+"}:events", "-", "+").Result()
	if err != nil {
		f.t.Fatal(err)
	}
	out := make([]map[string]any, len(msgs))
	for i, m := range msgs {
		if d, ok := m.Values["detail"].(string); ok {
			m.Values["detail"] = engine.RenderNote(d)
		}
		out[i] = m.Values
	}
	return out
}

// ofrErr checks err against a sentinel and a piece of its message.
func ofrErr(t *testing.T, what string, err, target error, text string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: err = %v, want %v", what, err, target)
	}
	if !strings.Contains(err.Error(), text) {
		t.Fatalf("%s: message %q does not say %q", what, err.Error(), text)
	}
}

// 1. An offer, its accept, an idempotent second accept, and a timer that
// never fires after the accept.
func TestOfferAcceptStopsTheTimer(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		f.apply(ofrPool("accept_within: 30s", "a", "b"))
		offeredAt := f.clock.Now()
		o := f.assign(lead("x"))
		if o.State != engine.StateOffered || o.RepID != "a" || o.Offers != 1 || !o.AcceptedAt.IsZero() {
			t.Fatalf("offer: %+v", o)
		}
		if !o.OfferExpiresAt.Equal(offeredAt.Add(30 * time.Second)) {
			t.Fatalf("offer expires at %v, want %v", o.OfferExpiresAt, offeredAt.Add(30*time.Second))
		}
		if !strings.Contains(o.Trace.Summary, "Offered to a until") {
			t.Fatalf("summary %q", o.Trace.Summary)
		}
		ofrOpen(f, "a", 1, 1) // an offer reserves the rep's capacity

		f.clock.Advance(10 * time.Second)
		acceptedAt := f.clock.Now()
		a := ofrAccept(f, "x", "a")
		if !a.AcceptedAt.Equal(acceptedAt) || !a.OfferExpiresAt.IsZero() {
			t.Fatalf("accepted: %+v", a)
		}
		if got := fmt.Sprint(ofrHistory(a)); got != "[received offered a accepted a]" {
			t.Fatalf("history %s", got)
		}

		// Accepting again changes nothing.
		f.clock.Advance(5 * time.Second)
		again := ofrAccept(f, "x", "a")
		if !again.AcceptedAt.Equal(acceptedAt) || len(again.History) != len(a.History) {
			t.Fatalf("second accept changed the record: %+v", again)
		}

		// The offer's deadline passes: nothing fires.
		f.clock.Advance(time.Minute)
		f.sweep()
		got := f.get("x")
		if got.State != engine.StateAssigned || got.RepID != "a" || got.Offers != 1 || ofrCount(got, "offer_expired") != 0 {
			t.Fatalf("after the deadline: %+v %v", got, ofrHistory(got))
		}
		ofrOpen(f, "a", 1, 1)
		if n, err := f.st.Client().ZCard(f.ctx, f.st.Prefix()+":{"+f.ws+"}:timers").Result(); err != nil || n != 0 {
			t.Fatalf("timers left: %d %v", n, err)
		}
	})
}

// 2. Offers time out from rep to rep; nobody is offered the lead twice while
// someone else is eligible; withdrawn offers give the capacity back.
func TestOfferTimeoutChain(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		f.apply(ofrPool("accept_within: 30s", "a", "b", "c"))
		f.assign(lead("x"))
		ofrOffered(f, "x", "a")
		ofrOpen(f, "a", 1, 1)

		f.clock.Advance(31 * time.Second)
		f.sweep()
		withdrawnAt := f.clock.Now()
		x := ofrOffered(f, "x", "b")
		if e, ok := ofrEvent(x, "offer_expired", "a"); !ok || !e.At.Equal(withdrawnAt) {
			t.Fatalf("no offer_expired for a at %v: %v", withdrawnAt, x.History)
		}
		if got := fmt.Sprint(ofrHistory(x)); got != "[received offered a offer_expired a offered b]" {
			t.Fatalf("history %s", got)
		}
		if !x.OfferExpiresAt.Equal(withdrawnAt.Add(30*time.Second)) || x.Offers != 2 {
			t.Fatalf("second offer: %+v", x)
		}
		ofrOpen(f, "a", 0, 0) // a never had the lead
		if r := ofrRep(f, "a"); r.AssignedToday != 0 {
			t.Fatalf("a's daily count kept the withdrawn offer: %+v", r.RepRuntime)
		}
		ofrOpen(f, "b", 1, 1)

		// Another lead takes c's turn (and c accepts it), so the rotation
		// reaches a and b first when x moves on: both are passed over.
		f.assign(lead("y"))
		ofrAccept(f, "y", "c")

		f.clock.Advance(31 * time.Second)
		f.sweep()
		x = ofrOffered(f, "x", "c")
		ofrOpen(f, "b", 0, 0)
		ofrOpen(f, "c", 2, 2)
		te := x.Trace.Targets[0]
		if len(te.Candidates) != 3 || te.Candidates[0].RepID != "a" || te.Candidates[1].RepID != "b" ||
			te.Candidates[0].SkipReason != "offered this lead already" || te.Candidates[1].SkipReason != "offered this lead already" ||
			!te.Candidates[2].Chosen {
			t.Fatalf("third offer's trace: %+v", te)
		}
		if got := fmt.Sprint(ofrOfferedTo(x)); got != "[a b c]" {
			t.Fatalf("offered to %s", got)
		}

		// Everyone had it: only now does a rep get it a second time.
		f.clock.Advance(31 * time.Second)
		f.sweep()
		x = f.get("x")
		if x.State != engine.StateOffered || x.Offers != 4 || fmt.Sprint(ofrOfferedTo(x)) != "[a b c a]" {
			t.Fatalf("fourth offer: %+v %v", x, ofrHistory(x))
		}
		ofrOpen(f, "c", 1, 1) // y only
		ofrOpen(f, "a", 1, 1)
		if got := ofrCount(x, "offer_expired"); got != 3 {
			t.Fatalf("%d offer_expired entries, want 3", got)
		}
	})
}

// 3. A reject moves the lead on at once and cools the rep down in the pool.
func TestOfferRejectCooldown(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		f.apply(ofrPool("accept_within: 30s, reject_cooldown: 10m", "a", "b"))
		f.assign(lead("x"))
		r, err := f.eng.RejectOffer(f.ctx, f.ws, "x", "a", "not my territory")
		if err != nil || r.State != engine.StateOffered || r.RepID != "b" {
			t.Fatalf("reject: %v %+v", err, r)
		}
		e, ok := ofrEvent(r, "rejected", "a")
		if !ok || e.Detail != "not my territory" {
			t.Fatalf("rejection not in history: %v", r.History)
		}
		if got := fmt.Sprint(ofrHistory(r)); got != "[received offered a rejected a offered b]" {
			t.Fatalf("history %s", got)
		}
		ofrOpen(f, "a", 0, 0)
		ofrAccept(f, "x", "b")
		rejectedAt := f.clock.Now()

		// a's turn comes, but a is cooling down.
		y := f.assign(lead("y"))
		if y.RepID != "b" {
			t.Fatalf("y went to %s, want b", y.RepID)
		}
		if c := y.Trace.Targets[0].Candidates; len(c) != 2 || c[0].RepID != "a" || !strings.HasPrefix(c[0].SkipReason, "in cooldown") {
			t.Fatalf("y's trace: %+v", y.Trace.Targets)
		}
		ofrAccept(f, "y", "b")

		// Still cooling just before the end.
		ofrUntil(f, rejectedAt.Add(10*time.Minute-time.Second))
		if z := f.assign(lead("z")); z.RepID != "b" {
			t.Fatalf("z went to %s during the cooldown", z.RepID)
		}
		ofrAccept(f, "z", "b")
		// After it, a is eligible again.
		ofrUntil(f, rejectedAt.Add(10*time.Minute+time.Second))
		w := f.assign(lead("w"))
		if w.RepID != "a" {
			t.Fatalf("after the cooldown w went to %s: %+v", w.RepID, w.Trace.Targets)
		}
		for _, c := range w.Trace.Targets[0].Candidates {
			if c.SkipReason != "" {
				t.Fatalf("w's trace has a skip: %+v", c)
			}
		}
	})
}

// 4. max_missed_offers consecutive timeouts set the rep AWAY; an accept in
// between resets the count.
func TestOfferMissedOffersAutoAway(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		f.apply(ofrPool("accept_within: 30s, max_missed_offers: 2", "a", "b"))
		// expire lets the offer of id to a time out; b takes it.
		expire := func(id string) *engine.Assignment {
			t.Helper()
			ofrOffered(f, id, "a")
			f.clock.Advance(31 * time.Second)
			f.sweep()
			ofrOffered(f, id, "b")
			return ofrAccept(f, id, "b")
		}
		f.assign(lead("l1"))
		expire("l1") // a: 1 miss
		f.assign(lead("l2"))
		ofrAccept(f, "l2", "a") // a: count reset
		f.assign(lead("l3"))
		ofrAccept(f, "l3", "b")
		f.assign(lead("l4"))
		l4 := expire("l4") // a: 1 miss, not 2
		if r := ofrRep(f, "a"); r.Status != engine.StatusAvailable || ofrCount(l4, "auto_paused") != 0 {
			t.Fatalf("a paused although an accept reset the count: %+v %v", r.RepRuntime, ofrHistory(l4))
		}
		f.assign(lead("l5"))
		l5 := expire("l5") // a: 2 misses in a row
		pausedAt := l5.History[len(l5.History)-1].At
		r := ofrRep(f, "a")
		if r.Status != engine.StatusAway {
			t.Fatalf("a after 2 misses in a row: %+v", r.RepRuntime)
		}
		e, ok := ofrEvent(l5, "auto_paused", "a")
		if !ok || !strings.Contains(e.Detail, "2 offers in a row") {
			t.Fatalf("no auto_paused in l5's history: %v", l5.History)
		}
		if !r.StatusChangedAt.Equal(e.At) || e.At.After(pausedAt) {
			t.Fatalf("status changed at %v, paused at %v", r.StatusChangedAt, e.At)
		}
		// The lead went on to b after the pause.
		if got := fmt.Sprint(ofrHistory(l5)[2:]); got != "[offer_expired a auto_paused a offered b accepted b]" {
			t.Fatalf("l5 history %s", got)
		}
		found := 0
		for _, v := range ofrStream(f) {
			if v["kind"] == "auto_paused" {
				found++
				if v["rep"] != "a" || v["pool"] != "p" || !strings.Contains(fmt.Sprint(v["detail"]), "2 offers in a row") {
					t.Fatalf("auto_paused event %v", v)
				}
			}
		}
		if found != 1 {
			t.Fatalf("%d auto_paused events, want 1", found)
		}
		// a is AWAY: the next lead skips it.
		l6 := f.assign(lead("l6"))
		if l6.RepID != "b" || l6.Trace.Targets[0].Candidates[0].SkipReason != "away" {
			t.Fatalf("l6 with a away: %+v", l6.Trace.Targets)
		}
		// Back, a starts from zero misses.
		f.status("a", engine.StatusAvailable)
		ofrAccept(f, "l6", "b")
		f.assign(lead("l7"))
		expire("l7")
		if r := ofrRep(f, "a"); r.Status != engine.StatusAvailable {
			t.Fatalf("a paused after one miss on return: %+v", r.RepRuntime)
		}
	})
}

// 5. After max_offers withdrawn offers the lead is QUEUED with the reason.
func TestOfferMaxOffersQueues(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		f.apply(ofrPool("accept_within: 30s, max_offers: 2, max_missed_offers: 0", "a", "b", "c"))
		f.assign(lead("x"))
		fire := func() { // fire due timers without draining queues
			t.Helper()
			f.clock.Advance(31 * time.Second)
			if err := f.eng.Sweep(f.ctx, false); err != nil {
				t.Fatal(err)
			}
		}
		fire()
		ofrOffered(f, "x", "b")
		fire()
		x := f.get("x")
		if x.State != engine.StateQueued || x.PoolID != "p" || x.RepID != "" ||
			!strings.Contains(x.Reason, "max_offers 2") || !strings.Contains(x.Reason, "2 offers withdrawn") {
			t.Fatalf("after 2 withdrawn offers: %+v", x)
		}
		if got := fmt.Sprint(ofrHistory(x)); got != "[received offered a offer_expired a offered b offer_expired b queued]" {
			t.Fatalf("history %s", got)
		}
		for _, r := range []string{"a", "b", "c"} {
			ofrOpen(f, r, 0, 0)
		}
		if ids, _ := f.st.QueuedLeads(f.ctx, f.ws, "p", 0, 10); fmt.Sprint(ids) != "[x]" {
			t.Fatalf("queue %v", ids)
		}
		// c was never offered the lead: its accept finds no offer of its
		// own, and no expiry either.
		_, err := f.eng.AcceptOffer(f.ctx, f.ws, "x", "c")
		ofrErr(t, "c accepts the queued lead", err, engine.ErrWrongCaller, "has no offer to accept: it is QUEUED")
		var gone *engine.OfferGoneError
		if !errors.As(err, &gone) || !gone.ExpiredAt.IsZero() {
			t.Fatalf("c was told of an expiry: %#v", err)
		}
		// a was: its accept says when its offer expired.
		_, err = f.eng.AcceptOffer(f.ctx, f.ws, "x", "a")
		ofrErr(t, "a accepts the queued lead", err, engine.ErrWrongCaller, "offer expired at")

		// What the code does next: the queue is a pool queue like any other,
		// so the next drain offers the lead again (to c, whose turn it is);
		// that offer timing out queues it at once (the count is past
		// max_offers), to wait for the drain after.
		f.sweep()
		x = ofrOffered(f, "x", "c")
		fire()
		if x = f.get("x"); x.State != engine.StateQueued || !strings.Contains(x.Reason, "3 offers withdrawn") {
			t.Fatalf("after the third withdrawn offer: %+v", x)
		}
	})
}

// 6. First-contact SLA with NOTIFY: warning, breach, the lead stays; a
// contact stops both timers; speed to lead.
func TestOfferFirstContactSLANotify(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		f.apply(ofrPool("accept_within: 30s, first_contact_within: 5m, warn_at: 3m", "a", "b"))
		sub := f.clock.Now()
		x := f.assign(engine.Lead{ID: "x", SubmittedAt: sub})
		if !x.FirstContactDue.Equal(sub.Add(5 * time.Minute)) {
			t.Fatalf("first contact due %v", x.FirstContactDue)
		}
		f.clock.Advance(10 * time.Second)
		ofrAccept(f, "x", "a")

		ofrUntil(f, sub.Add(3*time.Minute-time.Millisecond))
		f.sweep()
		if x = f.get("x"); ofrCount(x, "sla_warning") != 0 {
			t.Fatalf("warned early: %v", ofrHistory(x))
		}
		ofrUntil(f, sub.Add(3*time.Minute))
		f.sweep()
		x = f.get("x")
		if e, ok := ofrEvent(x, "sla_warning", "a"); !ok || !e.At.Equal(sub.Add(3*time.Minute)) {
			t.Fatalf("no warning at 3m: %v", x.History)
		}
		if x.Breaches != 0 || ofrCount(x, "sla_breached") != 0 {
			t.Fatalf("breached at the warning: %+v", x)
		}
		ofrUntil(f, sub.Add(5*time.Minute))
		f.sweep()
		x = f.get("x")
		if e, ok := ofrEvent(x, "sla_breached", "a"); !ok || !e.At.Equal(sub.Add(5*time.Minute)) {
			t.Fatalf("no breach at 5m: %v", x.History)
		}
		if x.State != engine.StateAssigned || x.RepID != "a" || x.Breaches != 1 {
			t.Fatalf("NOTIFY moved the lead: %+v", x)
		}
		ofrOpen(f, "a", 1, 1)
		// Each fires once.
		f.clock.Advance(time.Hour)
		f.sweep()
		if x = f.get("x"); ofrCount(x, "sla_warning") != 1 || ofrCount(x, "sla_breached") != 1 || x.Breaches != 1 {
			t.Fatalf("fired again: %v", ofrHistory(x))
		}
		kinds := map[string]int{}
		for _, v := range ofrStream(f) {
			if v["lead"] == "x" {
				kinds[fmt.Sprint(v["kind"])]++
			}
		}
		if kinds["sla_warning"] != 1 || kinds["sla_breached"] != 1 {
			t.Fatalf("events %v", kinds)
		}

		// A contact before the warning: neither timer fires.
		sub = f.clock.Now().Add(-30 * time.Second) // the form was filled in before it arrived
		y := f.assign(engine.Lead{ID: "y", SubmittedAt: sub})
		if y.RepID != "b" || !y.Lead.SubmittedAt.Equal(sub) || !y.FirstContactDue.Equal(sub.Add(5*time.Minute)) {
			t.Fatalf("y: %+v", y)
		}
		ofrAccept(f, "y", "b")
		ofrUntil(f, sub.Add(2*time.Minute))
		contactAt := sub.Add(90 * time.Second) // logged a little after the call
		y, err := f.eng.RecordContact(f.ctx, f.ws, "y", "b", "call", contactAt)
		if err != nil {
			t.Fatal(err)
		}
		if !y.FirstContactAt.Equal(contactAt) || y.FirstContactChannel != "call" || y.Contacts != 1 ||
			y.SpeedToLead() != 90*time.Second {
			t.Fatalf("first contact: %+v (speed %v)", y, y.SpeedToLead())
		}
		f.clock.Advance(time.Minute)
		y, err = f.eng.RecordContact(f.ctx, f.ws, "y", "b", "email", time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		if y.Contacts != 2 || !y.FirstContactAt.Equal(contactAt) || y.FirstContactChannel != "call" || y.SpeedToLead() != 90*time.Second {
			t.Fatalf("second contact: %+v", y)
		}
		ofrUntil(f, sub.Add(time.Hour))
		f.sweep()
		y = f.get("y")
		if ofrCount(y, "sla_warning")+ofrCount(y, "sla_breached") != 0 || y.Breaches != 0 || y.State != engine.StateAssigned {
			t.Fatalf("SLA fired after the contact: %+v %v", y, ofrHistory(y))
		}
		if got := fmt.Sprint(ofrHistory(y)); got != "[received offered b accepted b contacted b contacted b]" {
			t.Fatalf("y history %s", got)
		}
	})
}

// 7. First-contact SLA with REASSIGN: the breaching rep loses the lead and
// never gets it back; the next reps get a fresh SLA window.
func TestOfferFirstContactSLAReassign(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		f.apply(ofrPool("accept_within: 30s, first_contact_within: 5m, warn_at: 4m, on_breach: reassign, max_missed_offers: 0", "a", "b", "c"))
		sub := f.clock.Now()
		f.assign(engine.Lead{ID: "x", SubmittedAt: sub})
		ofrAccept(f, "x", "a")
		ofrOpen(f, "a", 1, 1)

		ofrUntil(f, sub.Add(5*time.Minute))
		f.sweep()
		breachAt := f.clock.Now()
		x := ofrOffered(f, "x", "b")
		ofrOpen(f, "a", 0, 1) // the hold is gone; the assignment happened
		// (The warning, due at 4m, fires in the same sweep, first.)
		if got := fmt.Sprint(ofrHistory(x)); got != "[received offered a accepted a sla_warning a sla_breached a reassigned a offered b]" {
			t.Fatalf("history %s", got)
		}
		if e, _ := ofrEvent(x, "reassigned", "a"); !strings.Contains(e.Detail, "SLA breached") {
			t.Fatalf("reassigned entry %+v", e)
		}
		if x.Breaches != 1 || !x.FirstContactDue.Equal(breachAt.Add(5*time.Minute)) {
			t.Fatalf("after the breach: %+v", x)
		}
		if !x.AcceptedAt.IsZero() {
			t.Fatalf("offered to b, but accepted at %v (a's accept)", x.AcceptedAt)
		}
		// a can no longer act on it.
		_, err := f.eng.RecordContact(f.ctx, f.ws, "x", "a", "call", time.Time{})
		wantErr(t, err, engine.ErrNotAssigned) // offered (to b) now

		// b and c let it expire: everyone but a had it, and a breached: the
		// lead goes round b and c, never back to a, and each offer keeps
		// the fresh window (no breach notice for reps who just got it).
		for i, want := range []string{"c", "b", "c"} {
			f.clock.Advance(31 * time.Second)
			f.sweep()
			if x = f.get("x"); x.State != engine.StateOffered || x.RepID != want {
				t.Fatalf("timeout %d: %s to %s, want %s; history %v", i+1, x.State, x.RepID, want, ofrHistory(x))
			}
			if !x.FirstContactDue.Equal(breachAt.Add(5*time.Minute)) || x.Breaches != 1 {
				t.Fatalf("timeout %d lost the fresh SLA window: due %v, %d breaches; history %v",
					i+1, x.FirstContactDue, x.Breaches, ofrHistory(x))
			}
		}
		ofrAccept(f, "x", "c")
		ofrOpen(f, "a", 0, 1)
		ofrUntil(f, breachAt.Add(4*time.Minute))
		f.sweep()
		ofrUntil(f, breachAt.Add(5*time.Minute-time.Second))
		f.sweep()
		if x = f.get("x"); x.State != engine.StateAssigned || x.RepID != "c" || ofrCount(x, "sla_breached") != 1 {
			t.Fatalf("c before its deadline: %+v %v", x, ofrHistory(x))
		}
		if e, ok := ofrEvent(x, "sla_warning", "c"); !ok || !e.At.Equal(breachAt.Add(4*time.Minute)) {
			t.Fatalf("no warning for c at 4m into its window: %v", x.History)
		}
		// c breaches too: b is the only rep left who may have it.
		ofrUntil(f, breachAt.Add(5*time.Minute))
		f.sweep()
		x = ofrOffered(f, "x", "b")
		ofrOpen(f, "c", 0, 1)
		if x.Breaches != 2 || ofrCount(x, "reassigned") != 2 {
			t.Fatalf("second breach: %+v %v", x, ofrHistory(x))
		}
		f.clock.Advance(31 * time.Second)
		f.sweep()
		ofrOffered(f, "x", "b") // nobody else: b again, never a or c
	})
}

// 8. Dispositions close the assignment; the same again is a no-op, another
// one a conflict; the history is kept.
func TestOfferDispositions(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		f.apply(ofrPool("accept_within: 30s", "a", "b"))
		f.assign(lead("q")) // a
		f.assign(lead("r")) // b
		f.assign(lead("s")) // a
		for _, id := range []string{"q", "s"} {
			ofrAccept(f, id, "a")
		}
		// Not accepted yet: nothing to disposition.
		_, err := f.eng.SetDisposition(f.ctx, f.ws, "r", "b", engine.Qualified, "")
		ofrErr(t, "disposition of an offer", err, engine.ErrNotAssigned, "is OFFERED")
		ofrAccept(f, "r", "b")
		ofrOpen(f, "a", 2, 2)

		if _, err := f.eng.RecordContact(f.ctx, f.ws, "q", "a", "call", time.Time{}); err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(time.Minute)
		closedAt := f.clock.Now()
		q, err := f.eng.SetDisposition(f.ctx, f.ws, "q", "a", engine.Qualified, "")
		if err != nil || q.State != engine.StateClosed || q.Disposition != engine.Qualified || !q.ClosedAt.Equal(closedAt) ||
			q.CloseReason != "disposition QUALIFIED" || q.RepID != "a" {
			t.Fatalf("QUALIFIED: %v %+v", err, q)
		}
		ofrOpen(f, "a", 1, 2)
		// The same again: a no-op.
		f.clock.Advance(time.Minute)
		again, err := f.eng.SetDisposition(f.ctx, f.ws, "q", "a", engine.Qualified, "")
		if err != nil || !again.ClosedAt.Equal(closedAt) || len(again.History) != len(q.History) {
			t.Fatalf("QUALIFIED again: %v %+v", err, again)
		}
		ofrOpen(f, "a", 1, 2)
		// Another one afterwards: refused.
		_, err = f.eng.SetDisposition(f.ctx, f.ws, "q", "a", engine.Recycled, "")
		ofrErr(t, "RECYCLED after QUALIFIED", err, engine.ErrNotAssigned, "already closed as QUALIFIED")

		// REJECTED needs a reason code.
		_, err = f.eng.SetDisposition(f.ctx, f.ws, "r", "b", engine.Rejected, "")
		ofrErr(t, "REJECTED without a code", err, engine.ErrInvalid, "reason_code: required with REJECTED")
		_, err = f.eng.SetDisposition(f.ctx, f.ws, "r", "b", "WON", "")
		ofrErr(t, "unknown disposition", err, engine.ErrInvalid, `"WON" is not one of`)
		if got := f.get("r"); got.State != engine.StateAssigned {
			t.Fatalf("refused dispositions changed r: %+v", got)
		}
		r, err := f.eng.SetDisposition(f.ctx, f.ws, "r", "b", engine.Rejected, "no_budget")
		if err != nil || r.State != engine.StateClosed || r.Disposition != engine.Rejected || r.ReasonCode != "no_budget" {
			t.Fatalf("REJECTED: %v %+v", err, r)
		}
		if e, _ := ofrEvent(r, "dispositioned", "b"); e.Detail != "REJECTED no_budget" {
			t.Fatalf("REJECTED history: %v", r.History)
		}
		ofrOpen(f, "b", 0, 1)

		s, err := f.eng.SetDisposition(f.ctx, f.ws, "s", "a", engine.Recycled, "")
		if err != nil || s.State != engine.StateClosed || s.Disposition != engine.Recycled {
			t.Fatalf("RECYCLED: %v %+v", err, s)
		}
		ofrOpen(f, "a", 0, 2)

		// The closed record keeps its whole history, in order.
		q = f.get("q")
		if got := fmt.Sprint(ofrHistory(q)); got != "[received offered a accepted a contacted a dispositioned a]" {
			t.Fatalf("q history %s", got)
		}
		for i := 1; i < len(q.History); i++ {
			if q.History[i].At.Before(q.History[i-1].At) {
				t.Fatalf("history out of order: %v", q.History)
			}
		}
		if q.History[len(q.History)-1].Detail != "QUALIFIED" || q.AcceptedAt.IsZero() || q.FirstContactAt.IsZero() {
			t.Fatalf("closed record: %+v", q)
		}
		// Releasing a closed lead returns it unchanged; accepting it is
		// refused without claiming an expiry (a accepted its offer).
		if rel, err := f.eng.ReleaseAssignment(f.ctx, f.ws, "q", ""); err != nil || rel.Disposition != engine.Qualified {
			t.Fatalf("release of a closed lead: %v %+v", err, rel)
		}
		_, err = f.eng.AcceptOffer(f.ctx, f.ws, "q", "a")
		ofrErr(t, "accepting a closed lead", err, engine.ErrWrongCaller, "it is CLOSED")
	})
}

// 9. Every call by the wrong rep, or on the wrong state.
func TestOfferWrongCaller(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		f.apply(ofrPool("accept_within: 30s", "a", "b", "c"))
		offeredAt := f.clock.Now()
		f.assign(lead("x")) // offered to a
		before := f.get("x")

		_, err := f.eng.AcceptOffer(f.ctx, f.ws, "x", "b")
		ofrErr(t, "b accepts a's offer", err, engine.ErrWrongCaller, "offered to rep a")
		var wrong *engine.WrongRepError
		if !errors.As(err, &wrong) || wrong.Holder != "a" {
			t.Fatalf("not a WrongRepError for a: %#v", err)
		}
		_, err = f.eng.RejectOffer(f.ctx, f.ws, "x", "b", "")
		ofrErr(t, "b rejects a's offer", err, engine.ErrWrongCaller, "offered to rep a")
		_, err = f.eng.RecordContact(f.ctx, f.ws, "x", "a", "call", time.Time{})
		ofrErr(t, "contact on an offer", err, engine.ErrNotAssigned, "is OFFERED; a contact needs an accepted assignment")
		_, err = f.eng.SetDisposition(f.ctx, f.ws, "x", "a", engine.Qualified, "")
		ofrErr(t, "disposition of an offer", err, engine.ErrNotAssigned, "is OFFERED")
		if got := f.get("x"); got.State != engine.StateOffered || got.RepID != "a" || len(got.History) != len(before.History) {
			t.Fatalf("refused calls changed the offer: %+v", got)
		}

		// a's offer expires: a is told when.
		f.clock.Advance(31 * time.Second)
		f.sweep()
		sweptAt := f.clock.Now()
		ofrOffered(f, "x", "b")
		_, err = f.eng.AcceptOffer(f.ctx, f.ws, "x", "a")
		ofrErr(t, "a accepts its expired offer", err, engine.ErrWrongCaller, "offer expired at")
		var gone *engine.OfferGoneError
		if !errors.As(err, &gone) || gone.ExpiredAt.Before(offeredAt.Add(30*time.Second)) || gone.ExpiredAt.After(sweptAt) ||
			gone.State != engine.StateOffered {
			t.Fatalf("expired offer: %#v", err)
		}
		if !strings.Contains(err.Error(), gone.ExpiredAt.Format(time.RFC3339)) {
			t.Fatalf("message %q lacks the time", err)
		}
		_, err = f.eng.RejectOffer(f.ctx, f.ws, "x", "a", "")
		ofrErr(t, "a rejects b's offer", err, engine.ErrWrongCaller, "offered to rep b")

		// b accepts: the lead is b's.
		ofrAccept(f, "x", "b")
		_, err = f.eng.RecordContact(f.ctx, f.ws, "x", "c", "call", time.Time{})
		ofrErr(t, "c records a contact on b's lead", err, engine.ErrWrongCaller, "assigned to rep b")
		_, err = f.eng.SetDisposition(f.ctx, f.ws, "x", "c", engine.Qualified, "")
		ofrErr(t, "c dispositions b's lead", err, engine.ErrWrongCaller, "assigned to rep b")
		// (store/redis.go words every WRONG_REP from an accept as "offered",
		// even for an ASSIGNED lead; only the holder is asserted here.)
		_, err = f.eng.AcceptOffer(f.ctx, f.ws, "x", "c")
		ofrErr(t, "c accepts b's lead", err, engine.ErrWrongCaller, "to rep b")
		_, err = f.eng.AcceptOffer(f.ctx, f.ws, "x", "a")
		ofrErr(t, "a accepts after b did", err, engine.ErrWrongCaller, "offer expired at")
		_, err = f.eng.RejectOffer(f.ctx, f.ws, "x", "b", "")
		ofrErr(t, "b rejects its accepted lead", err, engine.ErrNotAssigned, "no offer to reject")
		if got := f.get("x"); got.State != engine.StateAssigned || got.RepID != "b" || got.Contacts != 0 {
			t.Fatalf("refused calls changed the assignment: %+v", got)
		}

		// A queued lead was never offered.
		for _, r := range []string{"a", "b", "c"} {
			f.status(r, engine.StatusAway)
		}
		if q := f.assign(lead("q")); q.State != engine.StateQueued {
			t.Fatalf("q: %+v", q)
		}
		_, err = f.eng.AcceptOffer(f.ctx, f.ws, "q", "a")
		ofrErr(t, "accepting a queued lead", err, engine.ErrWrongCaller, `lead "q" has no offer to accept: it is QUEUED`)
		_, err = f.eng.RejectOffer(f.ctx, f.ws, "q", "a", "")
		ofrErr(t, "rejecting a queued lead", err, engine.ErrNotAssigned, "no offer to reject")
		_, err = f.eng.RecordContact(f.ctx, f.ws, "q", "a", "call", time.Time{})
		ofrErr(t, "contact on a queued lead", err, engine.ErrNotAssigned, "is QUEUED")

		// An unknown lead.
		_, err = f.eng.AcceptOffer(f.ctx, f.ws, "nope", "a")
		ofrErr(t, "accepting an unknown lead", err, engine.ErrNotFound, `"nope"`)
		_, err = f.eng.RejectOffer(f.ctx, f.ws, "nope", "a", "")
		wantErr(t, err, engine.ErrNotFound)
		_, err = f.eng.RecordContact(f.ctx, f.ws, "nope", "a", "call", time.Time{})
		wantErr(t, err, engine.ErrNotFound)
		_, err = f.eng.SetDisposition(f.ctx, f.ws, "nope", "a", engine.Qualified, "")
		wantErr(t, err, engine.ErrNotFound)

		// Arguments are checked first.
		_, err = f.eng.AcceptOffer(f.ctx, f.ws, "x", "")
		ofrErr(t, "no rep", err, engine.ErrInvalid, "rep_id: required")
		_, err = f.eng.RecordContact(f.ctx, f.ws, "x", "b", "pigeon", time.Time{})
		ofrErr(t, "bad channel", err, engine.ErrInvalid, `"pigeon" is not one of`)
	})
}

// 10. Nobody else eligible after a withdrawal: the same rep is offered the
// lead again, until max_missed_offers sets it AWAY; then it queues.
func TestOfferSingleRepOfferedAgain(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		f.apply(ofrPool("accept_within: 30s, max_missed_offers: 3", "a"))
		f.assign(lead("x"))
		for n := 2; n <= 3; n++ {
			f.clock.Advance(31 * time.Second)
			f.sweep()
			x := ofrOffered(f, "x", "a")
			if x.Offers != n || !x.OfferExpiresAt.Equal(f.clock.Now().Add(30*time.Second)) {
				t.Fatalf("offer %d: %+v", n, x)
			}
			if c := x.Trace.Targets[0].Candidates; len(c) != 1 || !c[0].Chosen {
				t.Fatalf("offer %d trace: %+v", n, x.Trace.Targets)
			}
			ofrOpen(f, "a", 1, 1) // one hold, however often offered
		}
		// The third miss in a row: a is set AWAY and nobody is left.
		f.clock.Advance(31 * time.Second)
		f.sweep()
		x := f.get("x")
		if x.State != engine.StateQueued || !strings.Contains(x.Reason, "nobody else eligible in p") {
			t.Fatalf("after the third miss: %+v", x)
		}
		if got := fmt.Sprint(ofrHistory(x)[len(x.History)-3:]); got != "[offer_expired a auto_paused a queued]" {
			t.Fatalf("history %v", ofrHistory(x))
		}
		if r := ofrRep(f, "a"); r.Status != engine.StatusAway || r.Open != 0 {
			t.Fatalf("a: %+v", r.RepRuntime)
		}
		// Back, a is offered it again and takes it.
		f.status("a", engine.StatusAvailable)
		ofrOffered(f, "x", "a")
		ofrAccept(f, "x", "a")

		// A reject with a cooldown: nobody is eligible, the lead waits for
		// the cooldown's end.
		f.apply(ofrPool("accept_within: 30s, reject_cooldown: 5m", "a"))
		f.assign(lead("y"))
		y, err := f.eng.RejectOffer(f.ctx, f.ws, "y", "a", "busy")
		if err != nil || y.State != engine.StateQueued || !strings.Contains(y.Reason, "nobody else eligible") {
			t.Fatalf("reject with cooldown: %v %+v", err, y)
		}
		f.clock.Advance(4 * time.Minute)
		f.sweep()
		if got := f.get("y"); got.State != engine.StateQueued {
			t.Fatalf("offered during the cooldown: %+v", got)
		}
		f.clock.Advance(2 * time.Minute)
		f.sweep()
		ofrOffered(f, "y", "a")
		ofrAccept(f, "y", "a")

		// Even without a cooldown, the rep who just rejected the lead is not
		// offered it again by the same reroute: with nobody else eligible
		// it is queued (and drained later like any queued lead).
		f.apply(ofrPool("accept_within: 30s", "a"))
		f.assign(lead("z"))
		z, err := f.eng.RejectOffer(f.ctx, f.ws, "z", "a", "busy")
		if err != nil || z.State != engine.StateQueued || fmt.Sprint(ofrOfferedTo(z)) != "[a]" {
			t.Fatalf("reject without cooldown: %v %+v", err, z)
		}
	})
}

// A withdrawn offer gives the rep its capacity back, and least-loaded
// routing sees it at once: the next lead goes to the rep with the fewest
// open leads, not to one whose stale score happens to sort first.
func TestOfferWithdrawalKeepsLeastLoadedOrder(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		f.apply(ofrPool("strategy: least_loaded, accept_within: 30s, max_missed_offers: 0", "a", "b", "c"))
		for _, l := range []struct{ id, rep string }{{"l1", "a"}, {"l2", "b"}} {
			f.assign(lead(l.id))
			ofrAccept(f, l.id, l.rep)
		}
		f.assign(lead("l3"))
		ofrOffered(f, "l3", "c") // each has one open lead now
		f.clock.Advance(31 * time.Second)
		f.sweep()
		ofrOffered(f, "l3", "a") // c had it; a is the least loaded (longest idle) of a and b
		ofrOpen(f, "c", 0, 0)
		ofrOpen(f, "a", 2, 2)
		// c holds nothing: it takes the next lead.
		if l4 := f.assign(lead("l4")); l4.RepID != "c" {
			t.Fatalf("l4 went to %s with c holding nothing: %+v", l4.RepID, l4.Trace.Targets)
		}
	})
}

// A reason is kept in the history as one entry, whatever it contains: a
// line break must not forge entries.
func TestOfferReasonCannotForgeHistory(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		f.apply(ofrPool("accept_within: 30s", "a", "b"))
		f.assign(lead("x"))
		forged := "busy\n1772442000000\tcontacted\ta\tcall\n1772442000000\toffer_expired\tb\t"
		x, err := f.eng.RejectOffer(f.ctx, f.ws, "x", "a", forged)
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(ofrHistory(x)); got != "[received offered a rejected a offered b]" {
			t.Fatalf("history %s", got)
		}
		if e, _ := ofrEvent(x, "rejected", "a"); !strings.HasPrefix(e.Detail, "busy") || !strings.Contains(e.Detail, "offer_expired") {
			t.Fatalf("reason not kept: %q", e.Detail)
		}
		ofrAccept(f, "x", "b")
		r, err := f.eng.ReleaseAssignment(f.ctx, f.ws, "x", "done\n1772442000000\tdispositioned\tb\tQUALIFIED")
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(ofrHistory(r)); got != "[received offered a rejected a offered b accepted b released b]" {
			t.Fatalf("history after release %s", got)
		}
	})
}
