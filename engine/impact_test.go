package engine_test

import (
	"errors"
	"fmt"
	"slices"
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
		// Requeue, but pool o still has lq queued: refused too.
		_, err = f.eng.ApplyConfigWith(f.ctx, f.ws, v2, engine.ApplyOptions{Orphans: engine.OrphansRequeue})
		wantErr(t, err, engine.ErrPoolHasQueue)
		if cur, _ := f.eng.Config(f.ctx, f.ws); cur.Version != v1 {
			t.Fatalf("a refused apply applied: v%d", cur.Version)
		}
		// Keep pool o: the apply requeues l1 to b.
		v3 := parseCfg(t, `
reps: [{id: b}, {id: c}]
pools: [{id: p, members: [{rep_id: b}]}, {id: o, members: [{rep_id: c}]}]
rules: [{id: fr, match: {countries: [FR]}, targets: [{pool_id: o}]}, {id: all, targets: [{pool_id: p}]}]
`)
		_, err = f.eng.ApplyConfigWith(f.ctx, f.ws, v3, engine.ApplyOptions{Orphans: engine.OrphansReassign, ReassignTo: "a"})
		var v *engine.ValidationError
		if !errors.As(err, &v) || v.Violations[0].Field != "reassign_to" {
			t.Fatalf("reassign to a removed rep: %v", err)
		}
		res, err = f.eng.ApplyConfigWith(f.ctx, f.ws, v3, engine.ApplyOptions{Orphans: engine.OrphansRequeue})
		if err != nil || res.Version != v1+1 || !slices.Equal(res.Moved, []string{"l1"}) {
			t.Fatalf("apply with requeue: %v %+v", err, res)
		}
		if l1 := f.get("l1"); l1.RepID != "b" || l1.ConfigVersion != v1+1 {
			t.Fatalf("l1 after the apply: %+v", l1)
		}
		checkWorkspaceAgrees(t, f)
	})
}
