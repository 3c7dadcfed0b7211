package engine_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/leadrouter/leadrouter/engine"
	"github.com/leadrouter/leadrouter/internal/redistest"
)

// Records are bounded (docs/design.md, "The record"): a history keeps the
// latest engine.MaxHistory entries and counts the rest, and a closed lead
// takes no more contacts.

const boundConfig = `
reps: [{id: a}]
pools: [{id: p, members: [{rep_id: a}]}]
rules: [{id: all, targets: [{pool_id: p}]}]
`

// maxLead is a lead at every validation limit: each text field and every
// attribute at its size limit, as many attributes as allowed.
func maxLead(id string) engine.Lead {
	field := strings.Repeat("x", engine.MaxLeadFieldBytes)
	l := engine.Lead{ID: id + strings.Repeat("i", engine.MaxIDBytes-len(id)), Email: "max@acme.com",
		FirstName: field, LastName: field, Company: field, Country: "DE", Region: field, PostalCode: field,
		Industry: field, Source: field, Product: field, Language: "de", Attributes: map[string]string{}}
	for i := 0; i < engine.MaxAttributes; i++ {
		k := fmt.Sprintf("%03d", i) + strings.Repeat("k", engine.MaxAttrKeyBytes-3)
		l.Attributes[k] = strings.Repeat("v", engine.MaxAttrValueBytes)
	}
	return l
}

// TestHistoryBounded: 1,000 contacts leave a record with the latest
// MaxHistory entries, the newest last, and the rest counted; a closed lead
// refuses a contact with FAILED_PRECONDITION's error and is unchanged.
func TestHistoryBounded(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		f.apply(boundConfig)
		a := f.assign(lead("l1"))
		if a.State != engine.StateAssigned {
			t.Fatalf("l1: %s", a.State)
		}
		const contacts = 1000
		for i := 0; i < contacts; i++ {
			channel := "call"
			if i == contacts-1 {
				channel = "meeting"
			}
			if _, err := f.eng.RecordContact(f.ctx, f.ws, "l1", "a", channel, f.clock.Now()); err != nil {
				t.Fatalf("contact %d: %v", i, err)
			}
		}
		got := f.get("l1")
		// received, assigned, then the contacts.
		if len(got.History) != engine.MaxHistory || got.HistoryFolded != 2+contacts-engine.MaxHistory {
			t.Fatalf("history %d entries, %d folded; want %d and %d", len(got.History), got.HistoryFolded,
				engine.MaxHistory, 2+contacts-engine.MaxHistory)
		}
		if last := got.History[len(got.History)-1]; last.Kind != "contacted" || last.Detail != "meeting" {
			t.Fatalf("newest entry %+v, want the last contact", last)
		}
		if got.Contacts != contacts {
			t.Fatalf("contacts = %d, want %d", got.Contacts, contacts)
		}

		if _, err := f.eng.ReleaseAssignment(f.ctx, f.ws, "l1", "done"); err != nil {
			t.Fatal(err)
		}
		closed := f.get("l1")
		_, err := f.eng.RecordContact(f.ctx, f.ws, "l1", "a", "call", f.clock.Now())
		if !errors.Is(err, engine.ErrNotAssigned) || !strings.Contains(err.Error(), "closed") {
			t.Fatalf("a contact on a closed lead: %v, want ErrNotAssigned naming it closed", err)
		}
		after := f.get("l1")
		if after.Contacts != closed.Contacts || len(after.History) != len(closed.History) || after.HistoryFolded != closed.HistoryFolded {
			t.Fatalf("the refused contact changed the record: %d contacts, %d+%d history", after.Contacts, len(after.History), after.HistoryFolded)
		}
	})
}

// TestRecordSizeAtMaximum: a lead at every validation limit, with the
// longest rule trace a config can give it and a full history, stays within the documented maximum record size
// (docs/design.md, "The record"), and 5,000 more contacts do not grow it.
func TestRecordSizeAtMaximum(t *testing.T) {
	st := redistest.RealStore(t)
	clock := engine.NewManualClock(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	f := &fixture{t: t, ctx: context.Background(), st: st, clock: clock, ws: redistest.Workspace(t),
		eng: engine.New(st, engine.WithClock(clock), engine.WithLogger(quiet))}
	// More rules that miss than a trace lists, each with a long list of
	// industries its miss names, and one that matches.
	var cfg strings.Builder
	cfg.WriteString("reps: [{id: a}]\npools: [{id: p, members: [{rep_id: a}]}]\nrules:\n")
	for r := 0; r < 40; r++ {
		fmt.Fprintf(&cfg, "  - {id: r%02d%s, match: {industries: [", r, strings.Repeat("r", 100))
		for i := 0; i < 2000; i++ {
			if i > 0 {
				cfg.WriteString(", ")
			}
			fmt.Fprintf(&cfg, "'%s%06d'", strings.Repeat("i", 200), i)
		}
		cfg.WriteString("]}, targets: [{pool_id: p}]}\n")
	}
	cfg.WriteString("  - {id: all, targets: [{pool_id: p}]}\n")
	f.apply(cfg.String())
	l := maxLead("max")
	if _, _, err := f.eng.AssignLead(f.ctx, f.ws, l); err != nil {
		t.Fatal(err)
	}
	size := func() int64 {
		n, err := f.st.Client().MemoryUsage(f.ctx, f.st.Prefix()+":{"+f.ws+"}:lead:"+l.ID, 0).Result()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	contact := func(n int) {
		for i := 0; i < n; i++ {
			if _, err := f.eng.RecordContact(f.ctx, f.ws, l.ID, "a", "meeting", f.clock.Now()); err != nil {
				t.Fatal(err)
			}
			f.clock.Advance(time.Millisecond)
		}
	}
	contact(engine.MaxHistory)
	full := size()
	contact(5000)
	after := size()
	t.Logf("a maximum lead's record: %d B with a full history, %d B after 5,000 more contacts", full, after)
	if full > engine.MaxRecordBytes || after > engine.MaxRecordBytes {
		t.Fatalf("record %d B, then %d B: over the documented maximum %d B", full, after, engine.MaxRecordBytes)
	}
	if after > full+full/50 {
		t.Fatalf("5,000 contacts grew a full record from %d to %d B", full, after)
	}
}
