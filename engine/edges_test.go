package engine_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/leadrouter/leadrouter/engine"
)

// TestSubmittedAtInTheFuture: a submitted_at a little ahead of the time
// received (a fast clock) is clamped and the history says so; further
// ahead it is refused; a timestamp the wire could not carry says so.
func TestSubmittedAtInTheFuture(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		f.apply(onePool("a"))
		now := f.clock.Now()
		ahead := now.Add(2 * time.Minute)
		a := f.assign(engine.Lead{ID: "fast", SubmittedAt: ahead})
		if !a.Lead.SubmittedAt.Equal(now) {
			t.Fatalf("submitted_at %v, want clamped to %v", a.Lead.SubmittedAt, now)
		}
		got := f.get("fast")
		if len(got.History) == 0 || got.History[0].Kind != "received" ||
			!strings.Contains(got.History[0].Detail, ahead.Format(time.RFC3339Nano)+" was later than the time received; clamped") {
			t.Fatalf("history %+v", got.History)
		}
		// A contact right away is not "before the lead was submitted".
		if _, err := f.eng.RecordContact(f.ctx, f.ws, "fast", "a", "call", time.Time{}); err != nil {
			t.Fatalf("contact: %v", err)
		}
		for _, c := range []struct {
			at   time.Time
			want string
		}{
			{f.clock.Now().Add(engine.SubmittedAtTolerance + time.Second), "is later than the time received"},
			{engine.OutOfRangeTime, "out of range"},
			{time.Date(1999, 1, 1, 0, 0, 0, 0, time.UTC), "is before 2000-01-01"},
		} {
			_, _, err := f.eng.AssignLead(f.ctx, f.ws, engine.Lead{ID: "x", SubmittedAt: c.at})
			var v *engine.ValidationError
			if !errors.As(err, &v) || v.Violations[0].Field != "lead.submitted_at" || !strings.Contains(v.Violations[0].Description, c.want) {
				t.Errorf("submitted_at %v: %v, want %q", c.at, err, c.want)
			}
		}
		if _, err := f.eng.GetAssignment(f.ctx, f.ws, "x"); !errors.Is(err, engine.ErrNotFound) {
			t.Fatalf("a refused lead was written: %v", err)
		}
	})
}

// TestDuplicateSaysContentDiffers: a repeat of a lead id answers the
// stored lead, and says when what was sent differs from it.
func TestDuplicateSaysContentDiffers(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		f.apply(onePool("a", "b"))
		score := int32(40)
		orig := engine.Lead{ID: "d", Email: "Jane@Acme.com", Country: "de", Score: &score, Attributes: map[string]string{"utm": "ads"}}
		if a := f.assign(orig); a.ContentDiffers {
			t.Fatalf("a new lead: %+v", a)
		}
		same := orig
		same.Email = " jane@acme.com " // normalizes to the stored value
		if a, dup, err := f.eng.AssignLead(f.ctx, f.ws, same); err != nil || !dup || a.ContentDiffers {
			t.Fatalf("the same lead again: dup=%v err=%v differs=%v", dup, err, a.ContentDiffers)
		}
		for name, change := range map[string]func(l *engine.Lead){
			"country":   func(l *engine.Lead) { l.Country = "FR" },
			"score":     func(l *engine.Lead) { s := int32(41); l.Score = &s },
			"attribute": func(l *engine.Lead) { l.Attributes = map[string]string{"utm": "mail"} },
			"submitted": func(l *engine.Lead) { l.SubmittedAt = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) },
		} {
			l := orig
			change(&l)
			a, dup, err := f.eng.AssignLead(f.ctx, f.ws, l)
			if err != nil || !dup || !a.ContentDiffers || a.Lead.Country != "DE" {
				t.Errorf("%s changed: dup=%v err=%v differs=%v stored %+v", name, dup, err, a.ContentDiffers, a.Lead)
			}
		}
	})
}

// TestStickyIgnorePlus: with settings.sticky_ignore_plus a plus-address is
// the same person as its base address for sticky routing; without it, it
// is another person.
func TestStickyIgnorePlus(t *testing.T) {
	for _, ignore := range []bool{false, true} {
		forEachBackend(t, func(t *testing.T, f *fixture) {
			cfg := onePool("a", "b")
			if ignore {
				cfg += "settings: {sticky_ignore_plus: true}\n"
			}
			f.apply(cfg)
			first := f.assign(engine.Lead{ID: "1", Email: "jane+demo@acme.com"})
			second := f.assign(engine.Lead{ID: "2", Email: "jane@acme.com"})
			if same := second.RepID == first.RepID; same != ignore {
				t.Fatalf("sticky_ignore_plus %v: first to %s, second to %s (route %s)", ignore, first.RepID, second.RepID, second.Route)
			}
			if ignore {
				// One person: erasing either address erases both leads.
				ids, err := f.eng.EraseContact(f.ctx, f.ws, "jane@acme.com")
				if err != nil || len(ids) != 2 {
					t.Fatalf("erase: %v %v", ids, err)
				}
			}
		})
	}
}
