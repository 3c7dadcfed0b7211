package engine_test

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/leadrouter/leadrouter/engine"
)

// Erasure (AdminService.EraseContact, EraseLead): every record of a person
// goes, in whatever state it was, giving back what it held as the
// lifecycle would, and nothing in Redis names their address afterwards.

const eraseConfig = `
settings: {sticky_window: 1h, retain_closed: 1h}
reps: [{id: a, max_open: 1}, {id: b, max_open: 1}, {id: c}]
pools:
  - {id: p, members: [{rep_id: a}]}
  - {id: o, accept_within: 5m, first_contact_within: 1h, members: [{rep_id: b}]}
  - {id: q, members: [{rep_id: c}]}
rules:
  - {id: web, match: {sources: [web]}, targets: [{pool_id: p}]}
  - {id: ads, match: {sources: [ads]}, targets: [{pool_id: o}]}
  - {id: chat, match: {sources: [chat]}, targets: [{pool_id: q}]}
`

// dumpWorkspace is every key of the workspace and every value in it:
// strings, hash fields and values, set and sorted-set members with their
// scores, list items and stream entries, one line each.
func dumpWorkspace(t *testing.T, f *fixture) string {
	t.Helper()
	c := f.st.Client()
	var b strings.Builder
	keys := f.keys("*{" + f.ws + "}*")
	if len(keys) == 0 {
		t.Fatal("the workspace has no keys")
	}
	for _, k := range keys {
		typ, err := c.Type(f.ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s (%s):", k, typ)
		switch typ {
		case "string":
			fmt.Fprint(&b, c.Get(f.ctx, k).Val())
		case "hash":
			fmt.Fprint(&b, c.HGetAll(f.ctx, k).Val())
		case "set":
			fmt.Fprint(&b, c.SMembers(f.ctx, k).Val())
		case "zset":
			fmt.Fprint(&b, c.ZRangeWithScores(f.ctx, k, 0, -1).Val())
		case "list":
			fmt.Fprint(&b, c.LRange(f.ctx, k, 0, -1).Val())
		case "stream":
			fmt.Fprint(&b, c.XRange(f.ctx, k, "-", "+").Val())
		case "none":
		default:
			t.Fatalf("key %s of type %s is not dumped", k, typ)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// TestEraseContact erases a person's five leads, one in each state, and
// finds their address nowhere in a dump of the workspace, with every count,
// queue, timer and binding given back.
func TestEraseContact(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		f.apply(eraseConfig)
		const jane = "jane.doe@acme-erase.example"
		f.status("c", engine.StatusAway)
		mk := func(id, source, email string) *engine.Assignment {
			return f.assign(engine.Lead{ID: id, Source: source, Email: email, FirstName: "Jane", Company: "Acme"})
		}
		mk("j0", "web", jane)
		if _, err := f.eng.ReleaseAssignment(f.ctx, f.ws, "j0", "done"); err != nil {
			t.Fatal(err)
		}
		// In this order, so the sticky binding never decides: j2 binds
		// the person to b, who is full when j1 comes.
		want := map[string]engine.State{"j0": engine.StateClosed}
		want["j3"] = mk("j3", "chat", jane).State
		want["j4"] = mk("j4", "fax", jane).State
		want["j2"] = mk("j2", "ads", jane).State
		want["j1"] = mk("j1", "web", "Jane.Doe@ACME-erase.example").State
		if fmt.Sprint(want) != "map[j0:CLOSED j1:ASSIGNED j2:OFFERED j3:QUEUED j4:UNROUTABLE]" {
			t.Fatalf("the person's leads: %v", want)
		}
		// Another person's lead waits for a's capacity, which j1 holds.
		if k := mk("k1", "web", "bob@example.org"); k.State != engine.StateQueued {
			t.Fatalf("k1: %s", k.State)
		}
		before := dumpWorkspace(t, f)
		if !strings.Contains(before, jane) {
			t.Fatal("the dump does not hold the address before the erasure: the check below could not fail")
		}
		for _, k := range f.keys("*{" + f.ws + "}*") {
			if strings.Contains(k, "@") {
				t.Errorf("key %s names an address", k)
			}
		}

		erased, err := f.eng.EraseContact(f.ctx, f.ws, "  JANE.DOE@acme-erase.example ")
		if err != nil {
			t.Fatal(err)
		}
		sort.Strings(erased)
		if fmt.Sprint(erased) != "[j0 j1 j2 j3 j4]" {
			t.Fatalf("erased %v", erased)
		}
		after := dumpWorkspace(t, f)
		for _, s := range []string{jane, strings.ToUpper(jane), "jane.doe"} {
			if strings.Contains(strings.ToLower(after), strings.ToLower(s)) {
				t.Errorf("the dump still holds %q:\n%s", s, after)
			}
		}
		for id := range want {
			if _, err := f.eng.GetAssignment(f.ctx, f.ws, id); !errors.Is(err, engine.ErrNotFound) {
				t.Errorf("%s after the erasure: %v", id, err)
			}
			if strings.Contains(after, "|"+id) || strings.Contains(after, ":lead:"+id) {
				t.Errorf("the dump still names %s's timers, record or index entry", id)
			}
		}
		// What the leads held is given back: a's capacity went to k1 (the
		// drain), b's offer is uncounted, q's queue is empty.
		if k := f.get("k1"); k.State != engine.StateAssigned || k.RepID != "a" {
			t.Fatalf("k1 after a's capacity came back: %s %s", k.State, k.RepID)
		}
		reps, err := f.eng.Reps(f.ctx, f.ws)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, r := range reps {
			got[r.Rep.ID] = fmt.Sprintf("open %d total %d", r.Open, r.AssignedTotal)
		}
		if fmt.Sprint(got) != "map[a:open 1 total 3 b:open 0 total 0 c:open 0 total 0]" {
			t.Fatalf("rep counts: %v", got)
		}
		if n := f.st.Client().ZCard(f.ctx, f.st.Prefix()+":{"+f.ws+"}:queue:q").Val(); n != 0 {
			t.Fatalf("q still queues %d leads", n)
		}
		if f.st.Client().SIsMember(f.ctx, f.st.Prefix()+":{"+f.ws+"}:queued_pools", "q").Val() {
			t.Fatal("q is still listed as queueing")
		}
		if got := storedCount(t, f); got != "1" {
			t.Fatalf("stored = %s, want 1 (k1)", got)
		}
		// One erased event per lead, naming no one.
		events, err := f.st.EventsAfter(f.ctx, f.ws, "0", 1000)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, e := range events {
			if e.Kind == engine.EventErased {
				ids = append(ids, e.LeadID)
				if e.Detail != "" {
					t.Errorf("erased event detail %q", e.Detail)
				}
			}
		}
		sort.Strings(ids)
		if fmt.Sprint(ids) != "[j0 j1 j2 j3 j4]" {
			t.Fatalf("erased events: %v", ids)
		}
		// The sticky binding went: the person's next lead routes by rule,
		// and its id, once erased, is free again.
		f.status("c", engine.StatusAvailable)
		if a := mk("j1", "chat", jane); a.Route == engine.RouteStickyOwner || a.State != engine.StateAssigned || a.RepID != "c" {
			t.Fatalf("the person's next lead: %s %s by %s", a.State, a.RepID, a.Route)
		}
		// Nothing left to erase but the new lead; an unknown address erases
		// nothing.
		if again, err := f.eng.EraseContact(f.ctx, f.ws, jane); err != nil || fmt.Sprint(again) != "[j1]" {
			t.Fatalf("erasing again: %v %v", again, err)
		}
		if none, err := f.eng.EraseContact(f.ctx, f.ws, "nobody@example.org"); err != nil || len(none) != 0 {
			t.Fatalf("an unknown address: %v %v", none, err)
		}
	})
}

// TestEraseLead erases one lead in each state it can hold something in,
// and answers NOT_FOUND for a lead with no record.
func TestEraseLead(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		f.apply(eraseConfig)
		f.assign(engine.Lead{ID: "l1", Source: "web", Email: "x@example.org"})
		f.assign(engine.Lead{ID: "l2", Source: "web"}) // queued behind l1
		st, err := f.eng.EraseLead(f.ctx, f.ws, "l1")
		if err != nil || st != engine.StateAssigned {
			t.Fatalf("erase l1: %s %v", st, err)
		}
		if a := f.get("l2"); a.State != engine.StateAssigned || a.RepID != "a" {
			t.Fatalf("l2 after l1's erasure: %s %s", a.State, a.RepID)
		}
		off := f.assign(engine.Lead{ID: "l3", Source: "ads"})
		if off.State != engine.StateOffered {
			t.Fatalf("l3: %s", off.State)
		}
		if st, err := f.eng.EraseLead(f.ctx, f.ws, "l3"); err != nil || st != engine.StateOffered {
			t.Fatalf("erase l3: %s %v", st, err)
		}
		// The offer's timer went with it: nothing fires when it would have.
		f.clock.Advance(10 * time.Minute)
		f.sweep()
		timers, err := f.st.Client().ZRange(f.ctx, f.st.Prefix()+":{"+f.ws+"}:timers", 0, -1).Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range timers {
			if strings.HasSuffix(m, "|l1") || strings.HasSuffix(m, "|l3") {
				t.Errorf("timer %s is left", m)
			}
		}
		if _, err := f.eng.EraseLead(f.ctx, f.ws, "l3"); !errors.Is(err, engine.ErrNotFound) {
			t.Fatalf("erasing l3 again: %v, want ErrNotFound", err)
		}
		if _, err := f.eng.EraseLead(f.ctx, f.ws, "nope"); !errors.Is(err, engine.ErrNotFound) {
			t.Fatalf("an unknown lead: %v, want ErrNotFound", err)
		}
	})
}

// TestEraseBadInput: a malformed address or a missing lead id is a
// validation error naming the field.
func TestEraseBadInput(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		f.apply(eraseConfig)
		for in, field := range map[string]string{"": "email", "not-an-address": "email", "Jane <jane@x.org>": "email"} {
			_, err := f.eng.EraseContact(f.ctx, f.ws, in)
			var ve *engine.ValidationError
			if !errors.As(err, &ve) || len(ve.Violations) != 1 || ve.Violations[0].Field != field {
				t.Errorf("EraseContact(%q): %v", in, err)
			}
		}
		_, err := f.eng.EraseLead(f.ctx, f.ws, "")
		var ve *engine.ValidationError
		if !errors.As(err, &ve) || ve.Violations[0].Field != "lead_id" {
			t.Errorf("EraseLead(\"\"): %v", err)
		}
	})
}

// TestBackfillPeople: a record and a sticky key written before person
// hashes (an address field, a key named by the address, no index entry)
// are converted once, after which the person can be erased and the
// binding still holds.
func TestBackfillPeople(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		f.apply(eraseConfig)
		const jane = "jane@old-format.example"
		f.assign(engine.Lead{ID: "old", Source: "chat", Email: jane})
		sc, err := f.st.LoadConfig(f.ctx, f.ws)
		if err != nil {
			t.Fatal(err)
		}
		if len(sc.PersonKey) != 64 {
			t.Fatalf("person key %q", sc.PersonKey)
		}
		person := engine.Person(sc.PersonKey, jane)
		base := f.st.Prefix() + ":{" + f.ws + "}:"
		c := f.st.Client()
		// Back to the old format.
		if _, err := c.TxPipelined(f.ctx, func(p redis.Pipeliner) error {
			p.HDel(f.ctx, base+"lead:old", "person")
			p.HSet(f.ctx, base+"lead:old", "email", jane)
			p.ZRem(f.ctx, base+"people", person+"|old")
			p.Rename(f.ctx, base+"sticky:"+person, base+"sticky:"+jane)
			p.HDel(f.ctx, base+"config", "people")
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		converted, done, err := f.st.BackfillPeople(f.ctx, f.ws, sc.PersonKey)
		if err != nil || done || converted != 2 {
			t.Fatalf("backfill: %d %v %v, want 2 converted", converted, done, err)
		}
		if _, done, _ := f.st.BackfillPeople(f.ctx, f.ws, sc.PersonKey); !done {
			t.Fatal("a second backfill ran again")
		}
		if v := c.HMGet(f.ctx, base+"lead:old", "person", "email").Val(); v[0] != person || v[1] != nil {
			t.Fatalf("record person, email: %v", v)
		}
		if c.Exists(f.ctx, base+"sticky:"+jane).Val() != 0 || c.Exists(f.ctx, base+"sticky:"+person).Val() != 1 {
			t.Fatal("the sticky key was not renamed")
		}
		// The binding holds under its new name.
		if a := f.assign(engine.Lead{ID: "new", Source: "chat", Email: jane}); a.Route != engine.RouteStickyOwner {
			t.Fatalf("after the backfill: %s by %s", a.RepID, a.Route)
		}
		if erased, err := f.eng.EraseContact(f.ctx, f.ws, jane); err != nil || len(erased) != 2 {
			t.Fatalf("erase: %v %v", erased, err)
		}
	})
}
