package engine_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/leadrouter/leadrouter/engine"
)

// Retention (settings.retain_closed) and the quota (settings.max_stored_leads):
// a CLOSED or UNROUTABLE lead's record is removed once the retention has
// passed, with its timers and sticky binding, and the workspace's record
// count falls with it.

const retainConfig = `
settings: {retain_closed: 1h, max_stored_leads: %d}
reps: [{id: a}]
pools: [{id: p, members: [{rep_id: a}]}]
rules: [{id: web, match: {sources: [web]}, targets: [{pool_id: p}]}]
`

func storedCount(t *testing.T, f *fixture) string {
	t.Helper()
	n, err := f.st.Client().HGet(f.ctx, f.st.Prefix()+":{"+f.ws+"}:config", "stored").Result()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestRetentionRemovesFinishedLeads: a closed and an unroutable record
// exist at retain_closed - 1s and are gone at + 1s after the next sweep,
// with their sticky binding and timers; the lead id then routes anew.
func TestRetentionRemovesFinishedLeads(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		f.apply(fmt.Sprintf(retainConfig, 0))
		closed := f.assign(engine.Lead{ID: "closed", Source: "web", Email: "jane@acme.com"})
		if closed.State != engine.StateAssigned {
			t.Fatalf("closed: %s", closed.State)
		}
		if _, err := f.eng.ReleaseAssignment(f.ctx, f.ws, "closed", "done"); err != nil {
			t.Fatal(err)
		}
		if u := f.assign(engine.Lead{ID: "unroutable", Source: "fax"}); u.State != engine.StateUnroutable {
			t.Fatalf("unroutable: %s", u.State)
		}
		open := f.assign(engine.Lead{ID: "open", Source: "web"})
		if got := storedCount(t, f); got != "3" {
			t.Fatalf("stored = %s, want 3", got)
		}

		f.clock.Advance(time.Hour - time.Second)
		f.sweep()
		for _, id := range []string{"closed", "unroutable", "open"} {
			f.get(id)
		}
		f.clock.Advance(2 * time.Second)
		f.sweep()
		for _, id := range []string{"closed", "unroutable"} {
			if _, err := f.eng.GetAssignment(f.ctx, f.ws, id); !errors.Is(err, engine.ErrNotFound) {
				t.Fatalf("%s after its retention: %v, want ErrNotFound", id, err)
			}
		}
		if a := f.get("open"); a.State != open.State {
			t.Fatalf("the open lead changed: %s", a.State)
		}
		keys := f.keys(f.st.Prefix() + ":{" + f.ws + "}:*")
		if len(keys) == 0 {
			t.Fatal("the workspace has no keys: the check below could not fail")
		}
		for _, k := range keys {
			if strings.Contains(k, ":lead:closed") || strings.Contains(k, ":lead:unroutable") || strings.Contains(k, "sticky:") {
				t.Errorf("key %s is left", k)
			}
		}
		timers, err := f.st.Client().ZRange(f.ctx, f.st.Prefix()+":{"+f.ws+"}:timers", 0, -1).Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range timers {
			if strings.HasSuffix(m, "|closed") || strings.HasSuffix(m, "|unroutable") {
				t.Errorf("timer %s is left", m)
			}
		}
		if got := storedCount(t, f); got != "1" {
			t.Fatalf("stored = %s after the removals, want 1", got)
		}
		again, dup, err := f.eng.AssignLead(f.ctx, f.ws, engine.Lead{ID: "closed", Source: "web"})
		if err != nil || dup || again.State != engine.StateAssigned {
			t.Fatalf("the removed lead's id sent again: %v duplicate=%v %v, want a new assignment", again, dup, err)
		}
	})
}

// TestQuotaIsolatesWorkspaces: a workspace at its max_stored_leads is
// refused with the quota named, a duplicate of its leads is still
// answered, another workspace still routes, and once a record is removed
// the first takes a lead again.
func TestQuotaIsolatesWorkspaces(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		f.apply(fmt.Sprintf(retainConfig, 3))
		for i := 0; i < 3; i++ {
			f.assign(engine.Lead{ID: fmt.Sprint("a", i), Source: "web"})
		}
		_, _, err := f.eng.AssignLead(f.ctx, f.ws, engine.Lead{ID: "a3", Source: "web"})
		if !errors.Is(err, engine.ErrQuota) || !strings.Contains(err.Error(), "settings.max_stored_leads") {
			t.Fatalf("the fourth lead: %v, want ErrQuota naming settings.max_stored_leads", err)
		}
		if a, dup, err := f.eng.AssignLead(f.ctx, f.ws, engine.Lead{ID: "a0", Source: "web"}); err != nil || !dup || a.RepID != "a" {
			t.Fatalf("a duplicate at the quota: %v %v %v", a, dup, err)
		}

		other := *f
		other.ws = f.ws + "-b"
		other.apply(fmt.Sprintf(retainConfig, 0))
		if a := other.assign(engine.Lead{ID: "b0", Source: "web"}); a.State != engine.StateAssigned {
			t.Fatalf("the other workspace: %s", a.State)
		}

		if _, err := f.eng.ReleaseAssignment(f.ctx, f.ws, "a0", "done"); err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(time.Hour + time.Second)
		f.sweep()
		if a := f.assign(engine.Lead{ID: "a3", Source: "web"}); a.State != engine.StateAssigned {
			t.Fatalf("after a removal: %s", a.State)
		}
	})
}

// TestRetentionSettingsValidated: retain_closed outside 1m to 10 years and
// a negative quota are invalid, each named by its field.
func TestRetentionSettingsValidated(t *testing.T) {
	for _, c := range []struct{ settings, field string }{
		{"{retain_closed: 30s}", "settings.retain_closed"},
		{"{retain_closed: 87660h1m}", "settings.retain_closed"},
		{"{max_stored_leads: -1}", "settings.max_stored_leads"},
	} {
		cfg, err := engine.ParseConfigYAML(strings.NewReader("settings: " + c.settings + "\nreps: [{id: a}]\npools: [{id: p, members: [{rep_id: a}]}]\nrules: [{id: r, targets: [{pool_id: p}]}]\n"))
		if err == nil {
			err = cfg.Validate()
		}
		var ve *engine.ValidationError
		if !errors.As(err, &ve) || len(ve.Violations) != 1 || ve.Violations[0].Field != c.field {
			t.Errorf("%s: %v, want one violation of %s", c.settings, err, c.field)
		}
	}
}

// TestRetentionBackfill: records written before retention existed (no
// retain timer, no record count) get both from a sweep, once, and are
// removed when their retention ends.
func TestRetentionBackfill(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		f.apply(fmt.Sprintf(retainConfig, 0))
		for i := 0; i < 5; i++ {
			id := fmt.Sprint("old", i)
			f.assign(engine.Lead{ID: id, Source: "web"})
			if i < 3 {
				if _, err := f.eng.ReleaseAssignment(f.ctx, f.ws, id, "done"); err != nil {
					t.Fatal(err)
				}
			}
		}
		// As an earlier version left them.
		c, base := f.st.Client(), f.st.Prefix()+":{"+f.ws+"}:"
		for i := 0; i < 3; i++ {
			c.ZRem(f.ctx, base+"timers", fmt.Sprint("retain|old", i))
		}
		c.HDel(f.ctx, base+"config", "stored", "retention")

		f.sweep() // starts the backfill in the background
		deadline := time.Now().Add(10 * time.Second)
		for {
			done, _ := c.HExists(f.ctx, base+"config", "retention").Result()
			if done {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the backfill never finished")
			}
			time.Sleep(10 * time.Millisecond)
		}
		if got := storedCount(t, f); got != "5" {
			t.Fatalf("stored = %s after the backfill, want 5", got)
		}
		f.clock.Advance(time.Hour + time.Second)
		f.sweep()
		for i := 0; i < 5; i++ {
			_, err := f.eng.GetAssignment(f.ctx, f.ws, fmt.Sprint("old", i))
			if gone := errors.Is(err, engine.ErrNotFound); gone != (i < 3) {
				t.Errorf("old%d: %v (closed: %v)", i, err, i < 3)
			}
		}
		if got := storedCount(t, f); got != "2" {
			t.Fatalf("stored = %s, want 2", got)
		}
	})
}
