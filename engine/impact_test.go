package engine_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/leadrouter/leadrouter/engine"
)

const impactV1 = `
reps: [{id: a}, {id: b}, {id: c}]
pools:
  - {id: p, members: [{rep_id: a}, {rep_id: b}]}
  - {id: o, members: [{rep_id: c}]}
rules:
  - {id: fr, match: {countries: [FR]}, targets: [{pool_id: o}]}
  - {id: all, targets: [{pool_id: p}]}
`

func parseCfg(t *testing.T, yaml string) *engine.Config {
	t.Helper()
	cfg, err := engine.ParseConfigYAML(strings.NewReader(yaml))
	if err != nil {
		t.Fatal(err)
	}
	noOffers(cfg) // as fixture.apply does
	return cfg
}

func changes(d engine.ConfigDiff) []string {
	var out []string
	for _, c := range d.Changes {
		out = append(out, fmt.Sprintf("%s %s %s %v", c.Op, c.Section, c.ID, c.Fields))
	}
	return out
}

// TestApplyImpactAndOrphans: a dry run tells the diff and the leads an
// apply would strand; a real apply that strands leads is refused unless it
// requeues or reassigns them, and then every count agrees.
func TestApplyImpactAndOrphans(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		v1 := f.apply(impactV1)
		f.assign(lead("l1")) // a
		f.assign(lead("l2")) // b
		f.status("c", engine.StatusAway)
		if q := f.assign(engine.Lead{ID: "lq", Country: "FR"}); q.State != engine.StateQueued {
			t.Fatalf("lq: %+v", q)
		}
		// v2 removes rep a and pool o, and the fr rule with it.
		v2 := parseCfg(t, `
reps: [{id: b}, {id: c}]
pools: [{id: p, members: [{rep_id: b}]}]
rules: [{id: all, targets: [{pool_id: p}]}]
settings: {max_queue_age: 1h}
`)
		res, err := f.eng.ApplyConfigWith(f.ctx, f.ws, v2, engine.ApplyOptions{DryRun: true})
		if err != nil || !res.DryRun || res.Version != v1 {
			t.Fatalf("dry run: %v %+v", err, res)
		}
		want := []string{"removed reps a []", "changed pools p [members]", "removed pools o []", "removed rules fr []", "changed settings  [max_queue_age]"}
		if got := changes(res.Diff); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("diff %q, want %q", got, want)
		}
		if s := res.Diff.Summary(); s != "reps -1, pools -1 ~1, rules -1, settings ~1" {
			t.Fatalf("summary %q", s)
		}
		im := res.Impact
		if im.HeldTotal != 1 || im.Held[0] != (engine.HeldLead{LeadID: "l1", RepID: "a", State: engine.StateAssigned}) ||
			im.QueuedTotal != 1 || im.Queued[0] != (engine.QueuedLead{LeadID: "lq", PoolID: "o"}) ||
			fmt.Sprint(im.Leaving) != "[{p a}]" {
			t.Fatalf("impact %+v", im)
		}
		if cur, _ := f.eng.Config(f.ctx, f.ws); cur.Version != v1 {
			t.Fatalf("a dry run applied: v%d", cur.Version)
		}
		// A real apply that orphans l1 is refused and writes nothing.
		_, err = f.eng.ApplyConfigWith(f.ctx, f.ws, v2, engine.ApplyOptions{})
		var orphans *engine.OrphansError
		if !errors.As(err, &orphans) || !errors.Is(err, engine.ErrOrphanedLeads) || !strings.Contains(err.Error(), "l1 (ASSIGNED to a)") {
			t.Fatalf("orphaning apply: %v", err)
		}
		_, err = f.eng.ApplyConfigWith(f.ctx, f.ws, v2, engine.ApplyOptions{Orphans: engine.OrphansReassign, ReassignTo: "a"})
		var v *engine.ValidationError
		if !errors.As(err, &v) || v.Violations[0].Field != "reassign_to" {
			t.Fatalf("reassign to a removed rep: %v", err)
		}
		if cur, _ := f.eng.Config(f.ctx, f.ws); cur.Version != v1 {
			t.Fatalf("a refused apply applied: v%d", cur.Version)
		}
		// Requeue: l1 (held by a) and lq (queued on o) are routed under v2.
		res, err = f.eng.ApplyConfigWith(f.ctx, f.ws, v2, engine.ApplyOptions{Orphans: engine.OrphansRequeue})
		if err != nil || res.Version != v1+1 || fmt.Sprint(sorted(res.Moved)) != "[l1 lq]" {
			t.Fatalf("apply with requeue: %v %+v", err, res)
		}
		for _, id := range []string{"l1", "lq"} {
			if l := f.get(id); l.RepID != "b" || l.PoolID != "p" || l.ConfigVersion != v1+1 {
				t.Fatalf("%s after the apply: %+v", id, l)
			}
		}
		if ids, _ := f.st.QueuedLeads(f.ctx, f.ws, "o", 0, 10); len(ids) != 0 {
			t.Fatalf("the removed pool's queue still holds %v", ids)
		}
		checkWorkspaceAgrees(t, f)
	})
}

// TestConfigHistoryAndRollback: every apply is kept with who made it and
// what changed, up to ConfigHistoryKept; a rollback across a pool removal
// with queued leads is refused, then allowed with requeue.
func TestConfigHistoryAndRollback(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		apply := func(yaml string, o engine.ApplyOptions) *engine.ApplyResult {
			t.Helper()
			res, err := f.eng.ApplyConfigWith(f.ctx, f.ws, parseCfg(t, yaml), o)
			if err != nil {
				t.Fatal(err)
			}
			return res
		}
		apply(onePool("a", "b", "c"), engine.ApplyOptions{By: "ops"}) // v1: no pool o
		apply(impactV1, engine.ApplyOptions{By: "revops"})            // v2: pool o and rule fr
		f.status("c", engine.StatusAway)
		if q := f.assign(engine.Lead{ID: "lq", Country: "FR"}); q.State != engine.StateQueued || q.PoolID != "o" {
			t.Fatalf("lq: %+v", q)
		}
		// Back to v1 removes pool o, where lq waits: refused...
		_, err := f.eng.RollbackConfig(f.ctx, f.ws, 1, engine.ApplyOptions{})
		wantErr(t, err, engine.ErrPoolHasQueue)
		// ...unless it requeues: lq goes to pool p under the v1 body.
		res, err := f.eng.RollbackConfig(f.ctx, f.ws, 1, engine.ApplyOptions{Orphans: engine.OrphansRequeue, By: "ops"})
		if err != nil || res.Version != 3 || fmt.Sprint(res.Moved) != "[lq]" {
			t.Fatalf("rollback with requeue: %v %+v", err, res)
		}
		if lq := f.get("lq"); lq.PoolID != "p" || lq.State != engine.StateAssigned {
			t.Fatalf("lq after the rollback: %+v", lq)
		}
		checkWorkspaceAgrees(t, f)
		vs, err := f.eng.ConfigVersions(f.ctx, f.ws)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, v := range vs {
			got = append(got, fmt.Sprintf("v%d %s: %s", v.Version, v.By, v.Summary))
		}
		want := []string{"v3 ops: pools -1 ~1, rules -1", "v2 revops: pools +1 ~1, rules +1", "v1 ops: reps +3, pools +1, rules +1"}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("history %q, want %q", got, want)
		}
		old, err := f.eng.ConfigAt(f.ctx, f.ws, 2)
		if err != nil || old.Version != 2 || len(old.Config.Pools) != 2 || old.AppliedAt.IsZero() {
			t.Fatalf("version 2: %v %+v", err, old)
		}
		// The history is bounded.
		for i := 0; i < engine.ConfigHistoryKept; i++ {
			apply(onePool("a", "b", "c")+fmt.Sprintf("settings: {events_max_len: %d}\n", 1000+i), engine.ApplyOptions{})
		}
		if vs, _ = f.eng.ConfigVersions(f.ctx, f.ws); len(vs) != engine.ConfigHistoryKept || vs[len(vs)-1].Version != 4 {
			t.Fatalf("%d versions kept, oldest v%d", len(vs), vs[len(vs)-1].Version)
		}
		if n := len(f.keys(f.st.Prefix() + ":{" + f.ws + "}:config_at:*")); n != engine.ConfigHistoryKept {
			t.Fatalf("%d bodies kept", n)
		}
		_, err = f.eng.RollbackConfig(f.ctx, f.ws, 2, engine.ApplyOptions{})
		if !errors.Is(err, engine.ErrNotFound) || !strings.Contains(err.Error(), "versions 4 to 53 are") {
			t.Fatalf("rollback to a version no longer kept: %v", err)
		}
	})
}
