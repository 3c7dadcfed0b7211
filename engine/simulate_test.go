package engine_test

import (
	"fmt"
	"testing"

	"github.com/leadrouter/leadrouter/engine"
)

const simulateV1 = `
reps: [{id: a}, {id: b}, {id: c}, {id: d}]
pools:
  - {id: east, members: [{rep_id: a}, {rep_id: b}]}
  - {id: west, strategy: WEIGHTED_ROUND_ROBIN, members: [{rep_id: c, weight: 3}, {rep_id: d, weight: 1}]}
  - {id: intl, members: [{rep_id: a}]}
  - {id: ranked, strategy: LEAST_LOADED, members: [{rep_id: b}]}
rules:
  - {id: us-east, match: {countries: [US], regions: [NY, MA]}, targets: [{pool_id: east}]}
  - {id: us-west, match: {countries: [US], regions: [CA, WA]}, targets: [{pool_id: west}]}
  - {id: fr, match: {countries: [FR]}, targets: [{pool_id: intl}]}
`

// simulateV2 moves the WA territory from us-west to us-east and drops the
// fr rule: the FR leads match nothing.
const simulateV2 = `
reps: [{id: a}, {id: b}, {id: c}, {id: d}]
pools:
  - {id: east, members: [{rep_id: a}, {rep_id: b}]}
  - {id: west, strategy: WEIGHTED_ROUND_ROBIN, members: [{rep_id: c, weight: 3}, {rep_id: d, weight: 1}]}
  - {id: intl, members: [{rep_id: a}]}
  - {id: ranked, strategy: LEAST_LOADED, members: [{rep_id: b}]}
rules:
  - {id: us-east, match: {countries: [US], regions: [NY, MA, WA]}, targets: [{pool_id: east}]}
  - {id: us-west, match: {countries: [US], regions: [CA]}, targets: [{pool_id: west}]}
`

// TestSimulateConfigMovesATerritory: the workspace's recent leads are
// replayed against a config that moves a territory, and every count is
// the one worked out by hand; nothing is written.
func TestSimulateConfigMovesATerritory(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		v1 := f.apply(simulateV1)
		// 5 NY, 3 CA, 2 WA, 2 FR, 1 DE (matches nothing in either), oldest
		// first.
		n := 0
		add := func(count int, country, region string) {
			for i := 0; i < count; i++ {
				n++
				f.assign(engine.Lead{ID: fmt.Sprintf("l%02d-%s%s", n, country, region), Country: country, Region: region})
			}
		}
		add(5, "US", "NY")
		add(3, "US", "CA")
		add(2, "US", "WA")
		add(2, "FR", "")
		add(1, "DE", "")
		stored, err := f.eng.StoredLeads(f.ctx, f.ws)
		if err != nil {
			t.Fatal(err)
		}
		keysBefore := fmt.Sprint(f.keys("*"))

		sim, err := f.eng.SimulateConfig(f.ctx, f.ws, parseCfg(t, simulateV2), 0)
		if err != nil {
			t.Fatal(err)
		}
		if sim.Replayed != 13 || sim.Note == "" {
			t.Fatalf("replayed %d, note %q", sim.Replayed, sim.Note)
		}
		// Rules: the proposed config's in order, then the one it drops.
		if got := fmt.Sprint(sim.Rules); got != "[{us-east 5 7} {us-west 5 3} {fr 2 0}]" {
			t.Fatalf("rules %s", got)
		}
		if got := fmt.Sprint(sim.Pools); got != "[{east 5 7} {west 5 3} {intl 2 0} {ranked 0 0}]" {
			t.Fatalf("pools %s", got)
		}
		if sim.UnroutableBefore != 1 || sim.UnroutableAfter != 3 || sim.BecomeUnroutable != 2 {
			t.Fatalf("unroutable %d -> %d, %d newly", sim.UnroutableBefore, sim.UnroutableAfter, sim.BecomeUnroutable)
		}
		// The changed leads, newest first: the two FR, then the two WA.
		if sim.ChangedTotal != 4 || len(sim.Changed) != 4 {
			t.Fatalf("changed %d %+v", sim.ChangedTotal, sim.Changed)
		}
		var ids []string
		for _, c := range sim.Changed {
			ids = append(ids, fmt.Sprintf("%s:%s/%s->%s/%s", c.LeadID, c.Before.RuleID, c.Before.PoolID, c.After.RuleID, c.After.PoolID))
		}
		if got := fmt.Sprint(ids); got != "[l12-FR:fr/intl->/ l11-FR:fr/intl->/ l10-USWA:us-west/west->us-east/east l09-USWA:us-west/west->us-east/east]" {
			t.Fatalf("changed %s", got)
		}
		wa := sim.Changed[2]
		if last := wa.Before.Rules[len(wa.Before.Rules)-1]; last.RuleID != "us-west" || !last.Matched {
			t.Fatalf("before trace %+v", wa.Before.Rules)
		}
		if last := wa.After.Rules[len(wa.After.Rules)-1]; last.RuleID != "us-east" || !last.Matched {
			t.Fatalf("after trace %+v", wa.After.Rules)
		}
		if fr := sim.Changed[0].After.Rules; len(fr) != 2 || fr[0].Matched || fr[1].Matched {
			t.Fatalf("FR after trace %+v", fr)
		}
		// Rotation shares: east splits 7 evenly, west 3 by weight 3:1,
		// intl gets none; the least-loaded pool has no share.
		var shares []string
		for _, p := range sim.Shares {
			for _, m := range p.Members {
				shares = append(shares, fmt.Sprintf("%s/%s:%.2f=%.2f", p.PoolID, m.RepID, m.Share, m.Expected))
			}
		}
		if got := fmt.Sprint(shares); got != "[east/a:0.50=3.50 east/b:0.50=3.50 west/c:0.75=2.25 west/d:0.25=0.75 intl/a:1.00=0.00]" {
			t.Fatalf("shares %s", got)
		}
		if sim.Oldest.After(sim.Newest) || sim.Newest.Sub(sim.Oldest).Milliseconds() != 12 {
			t.Fatalf("range %v .. %v", sim.Oldest, sim.Newest)
		}

		// Nothing written: the same keys, records, counts and config.
		if got := fmt.Sprint(f.keys("*")); got != keysBefore {
			t.Fatalf("keys changed:\n%s\n%s", keysBefore, got)
		}
		if after, _ := f.eng.StoredLeads(f.ctx, f.ws); fmt.Sprint(after) != fmt.Sprint(stored) {
			t.Fatalf("stored %v, was %v", after, stored)
		}
		if cur, _ := f.eng.Config(f.ctx, f.ws); cur.Version != v1 {
			t.Fatalf("config v%d", cur.Version)
		}
		if a := f.get("l10-USWA"); a.RuleID != "us-west" || a.PoolID != "west" {
			t.Fatalf("record changed: %+v", a)
		}

		// A limit replays the newest leads only: the DE and FR ones.
		sim, err = f.eng.SimulateConfig(f.ctx, f.ws, parseCfg(t, simulateV2), 3)
		if err != nil || sim.Replayed != 3 || sim.UnroutableAfter != 3 || sim.ChangedTotal != 2 {
			t.Fatalf("limit 3: %v %+v", err, sim)
		}
		// An erased lead is no longer replayed.
		if _, err := f.eng.EraseLead(f.ctx, f.ws, "l13-DE"); err != nil {
			t.Fatal(err)
		}
		if sim, err = f.eng.SimulateConfig(f.ctx, f.ws, parseCfg(t, simulateV2), 0); err != nil || sim.Replayed != 12 {
			t.Fatalf("after erasing: %v %+v", err, sim)
		}
	})
}

// TestSimulateConfigInvalid: a limit over the bound and an invalid config
// are INVALID_ARGUMENT, with every problem at its path.
func TestSimulateConfigInvalid(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		f.apply(simulateV1)
		bad := parseCfg(t, `
reps: [{id: a}]
pools: [{id: p, members: [{rep_id: ghost}]}]
rules: [{id: r, targets: [{pool_id: nowhere}]}]
`)
		_, err := f.eng.SimulateConfig(f.ctx, f.ws, bad, engine.RecentLeadsKept+1)
		fields := violationFields(t, err)
		for _, want := range []string{"limit", "config.pools[0].members[0].rep_id", "config.rules[0].targets[0].pool_id"} {
			if !fields[want] {
				t.Errorf("no violation at %s: %v", want, err)
			}
		}
		if _, err := f.eng.SimulateConfig(f.ctx, f.ws, parseCfg(t, simulateV1), -1); len(violationFields(t, err)) != 1 || !violationFields(t, err)["limit"] {
			t.Fatalf("limit -1: %v", err)
		}
	})
}

// TestSimulateConfigNoConfig: a workspace with no config yet has no leads;
// the simulation replays none and says so.
func TestSimulateConfigNoConfig(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		sim, err := f.eng.SimulateConfig(f.ctx, f.ws, parseCfg(t, simulateV1), 0)
		if err != nil || sim.Replayed != 0 || sim.ChangedTotal != 0 || len(sim.Rules) != 3 {
			t.Fatalf("%v %+v", err, sim)
		}
	})
}
