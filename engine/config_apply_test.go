package engine_test

import (
	"strings"
	"testing"

	"github.com/leadrouter/leadrouter/engine"
)

func TestApplyConfigVersions(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		if v := f.apply(onePool("a")); v != 1 {
			t.Fatalf("first version %d", v)
		}
		if v := f.apply(onePool("a", "b")); v != 2 {
			t.Fatalf("second version %d", v)
		}
		stale := int64(1)
		cfg, _ := engine.ParseConfigYAML(strings.NewReader(onePool("a")))
		_, err := f.eng.ApplyConfig(f.ctx, f.ws, cfg, &stale)
		wantErr(t, err, engine.ErrVersionConflict)
		current := int64(2)
		if v, err := f.eng.ApplyConfig(f.ctx, f.ws, cfg, &current); err != nil || v != 3 {
			t.Fatalf("apply at current version: %d %v", v, err)
		}
		sc, err := f.eng.Config(f.ctx, f.ws)
		if err != nil || sc.Version != 3 || len(sc.Config.Reps) != 1 || sc.AppliedAt.IsZero() {
			t.Fatalf("stored config %+v %v", sc, err)
		}
	})
}

func TestInvalidConfigChangesNothing(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		f.apply(onePool("a"))
		cfg, _ := engine.ParseConfigYAML(strings.NewReader(`
reps: [{id: a}, {id: a}]
pools: [{id: p, members: [{rep_id: ghost}]}]
rules:
  - {id: r0, targets: [{pool_id: p}]}
  - {id: r1, targets: [{pool_id: emea-smb}]}
`))
		_, err := f.eng.ApplyConfig(f.ctx, f.ws, cfg, nil)
		got := violationFields(t, err)
		for _, want := range []string{"config.reps[1].id", "config.pools[0].members[0].rep_id", "config.rules[1]", "config.rules[1].targets[0].pool_id"} {
			if !got[want] {
				t.Errorf("missing violation %s in %v", want, err)
			}
		}
		sc, _ := f.eng.Config(f.ctx, f.ws)
		if sc.Version != 1 {
			t.Fatalf("version moved to %d", sc.Version)
		}
	})
}

// TestApplyKeepsRotationAndPresence: a pool whose membership did not change
// keeps its position; a changed pool continues after the rep picked last;
// presence survives; a new rep starts with its initial status.
func TestApplyKeepsRotationAndPresence(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		f.apply(onePool("a", "b", "c"))
		f.assign(lead("1"))
		f.assign(lead("2")) // b picked last
		f.status("c", engine.StatusAway)
		f.apply(`
reps: [{id: a}, {id: b}, {id: c}]
pools: [{id: p, members: [{rep_id: a}, {rep_id: b}, {rep_id: c}]}]
rules:
  - {id: de, match: {countries: [DE]}, targets: [{pool_id: p}]}
  - {id: all, targets: [{pool_id: p}]}
`)
		if r, _ := f.eng.Rep(f.ctx, f.ws, "c"); r.Status != engine.StatusAway {
			t.Fatalf("apply changed c's presence to %s", r.Status)
		}
		f.status("c", engine.StatusAvailable)
		if got := f.assign(lead("3")).RepID; got != "c" {
			t.Fatalf("unchanged pool lost its place: got %s, want c", got)
		}
		// Membership changes: d joins before a; c was picked last.
		f.apply(`
reps: [{id: a}, {id: b}, {id: c}, {id: d, initial_status: away}]
pools: [{id: p, members: [{rep_id: d}, {rep_id: a}, {rep_id: c}, {rep_id: b}]}]
rules: [{id: all, targets: [{pool_id: p}]}]
`)
		if r, _ := f.eng.Rep(f.ctx, f.ws, "d"); r.Status != engine.StatusAway {
			t.Fatalf("new rep d status %s, want initial AWAY", r.Status)
		}
		if got := f.assign(lead("4")).RepID; got != "b" {
			t.Fatalf("changed pool: got %s, want b (after c)", got)
		}
	})
}

// TestConfigPropagatesToReplicas: a config applied through one engine takes
// effect for the next lead on another, without a restart.
func TestConfigPropagatesToReplicas(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		f.apply(`
reps: [{id: a}, {id: z}]
pools: [{id: one, members: [{rep_id: a}]}, {id: two, members: [{rep_id: z}]}]
rules: [{id: all, targets: [{pool_id: one}]}]
`)
		replica := f.another()
		if a, _, err := replica.AssignLead(f.ctx, f.ws, lead("1")); err != nil || a.RepID != "a" {
			t.Fatalf("replica before: %+v %v", a, err)
		}
		f.apply(`
reps: [{id: a}, {id: z}]
pools: [{id: one, members: [{rep_id: a}]}, {id: two, members: [{rep_id: z}]}]
rules: [{id: all, targets: [{pool_id: two}]}]
`)
		a, _, err := replica.AssignLead(f.ctx, f.ws, lead("2"))
		if err != nil || a.RepID != "z" || a.ConfigVersion != 2 {
			t.Fatalf("replica after: %+v %v", a, err)
		}
		// A rep added on one replica can be set available on the other.
		f.apply(onePool("a", "z", "new"))
		if _, err := replica.SetRepStatus(f.ctx, f.ws, "new", engine.StatusAway); err != nil {
			t.Fatalf("replica does not know the new rep: %v", err)
		}
	})
}

func TestRemovedRepLosesPresence(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		f.apply(onePool("a", "b"))
		f.status("b", engine.StatusAway)
		f.apply(onePool("a"))
		f.apply(onePool("a", "b"))
		if r, _ := f.eng.Rep(f.ctx, f.ws, "b"); r.Status != engine.StatusAvailable {
			t.Fatalf("re-added rep has status %s, want its initial AVAILABLE", r.Status)
		}
		_, err := f.eng.Rep(f.ctx, f.ws, "ghost")
		wantErr(t, err, engine.ErrNotFound)
	})
}
