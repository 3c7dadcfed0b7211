package engine_test

import (
	"strings"
	"testing"
	"time"

	"github.com/leadrouter/leadrouter/engine"
)

const accounts = `
reps: [{id: owner}, {id: a}, {id: b}, {id: f1}]
pools:
  - {id: team, members: [{rep_id: a}, {rep_id: b}]}
  - {id: fallback, members: [{rep_id: f1}]}
rules: [{id: all, targets: [{pool_id: team}]}]
accounts:
  - {domain: acme.com, owner_rep_id: owner, fallback_pool_id: fallback}
  - {domain: globex.com, owner_rep_id: owner}
`

func TestAccountOwnership(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		f.apply(accounts)
		// The owner takes the account's leads, without a rotation turn.
		a := f.assign(engine.Lead{ID: "1", Email: "jane@acme.com"})
		if a.RepID != "owner" || a.Route != engine.RouteAccountOwner || a.PoolID != "" {
			t.Fatalf("owned lead: %+v", a)
		}
		if te := a.Trace.Targets[0]; te.Label != "account owner of acme.com" || !strings.Contains(a.Trace.Summary, "account owner of acme.com") {
			t.Fatalf("trace %+v / %q", te, a.Trace.Summary)
		}
		if got := f.assign(engine.Lead{ID: "2", Email: "x@other.com"}).RepID; got != "a" {
			t.Fatalf("rotation moved for an owned lead: next is %s", got)
		}
		// A subdomain belongs to the account too.
		if got := f.assign(engine.Lead{ID: "3", CompanyDomain: "eu.acme.com"}).RepID; got != "owner" {
			t.Fatalf("subdomain went to %s", got)
		}
		// Owner away: the fallback pool, and the trace says why.
		f.status("owner", engine.StatusAway)
		a = f.assign(engine.Lead{ID: "4", Email: "joe@acme.com"})
		if a.RepID != "f1" || a.PoolID != "fallback" || a.Route != engine.RouteRule {
			t.Fatalf("owner away: %+v", a)
		}
		if c := a.Trace.Targets[0].Candidates; len(c) != 1 || c[0].RepID != "owner" || c[0].SkipReason != "away" {
			t.Fatalf("owner skip not traced: %+v", a.Trace.Targets)
		}
		// No fallback: the normal rules.
		a = f.assign(engine.Lead{ID: "5", CompanyDomain: "globex.com"})
		if a.RepID != "b" || a.PoolID != "team" || a.RuleID != "all" {
			t.Fatalf("owner away, no fallback: %+v", a)
		}
	})
}

func TestStickyDedupe(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		f.apply(onePool("a", "b", "c") + "settings: {sticky_window: 1h}\n")
		first := f.assign(engine.Lead{ID: "1", Email: "Jane@Acme.com"})
		again := f.assign(engine.Lead{ID: "2", Email: "jane@acme.COM"})
		if again.RepID != first.RepID || again.Route != engine.RouteStickyOwner {
			t.Fatalf("second form fill: %+v (first went to %s)", again, first.RepID)
		}
		if lbl := again.Trace.Targets[0].Label; lbl != "owner of the person's open lead 1" {
			t.Fatalf("label %q", lbl)
		}
		if got := f.assign(engine.Lead{ID: "3", Email: "bob@x.com"}).RepID; got != "b" {
			t.Fatalf("sticky lead took a rotation turn: next is %s", got)
		}
		// The sticky owner away: normal routing, and the trace says so.
		f.status("a", engine.StatusAway)
		a := f.assign(engine.Lead{ID: "4", Email: "jane@acme.com"})
		if a.RepID != "c" || a.Route != engine.RouteRule || a.Trace.Targets[0].Candidates[0].SkipReason != "away" {
			t.Fatalf("sticky owner away: %+v", a)
		}
		f.status("a", engine.StatusAvailable)
		// Past the window, the person is routed normally again.
		f.clock.Advance(2 * time.Hour)
		f.assign(engine.Lead{ID: "5", Email: "ann@y.com"}) // a
		p, _, _ := f.eng.PreviewAssignment(f.ctx, f.ws, engine.Lead{ID: "6", Email: "jane@acme.com"})
		if p.Route != engine.RouteRule {
			t.Fatalf("sticky after the window: %+v", p)
		}
	})
}

func TestStickyEndsWithTheAssignment(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		f.apply(onePool("a", "b"))
		f.assign(engine.Lead{ID: "1", Email: "jane@acme.com"}) // a
		if _, err := f.eng.ReleaseAssignment(f.ctx, f.ws, "1", "done"); err != nil {
			t.Fatal(err)
		}
		if a := f.assign(engine.Lead{ID: "2", Email: "jane@acme.com"}); a.RepID != "b" || a.Route != engine.RouteRule {
			t.Fatalf("released person still sticky: %+v", a)
		}
	})
}
