package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/leadrouter/leadrouter/engine"
	"github.com/leadrouter/leadrouter/internal/redistest"
	"github.com/leadrouter/leadrouter/store"
)

// bigConfig has reps reps named <prefix>NNNN in pools of size members, and
// a rule sending every lead to the first pool.
func bigConfig(prefix string, reps, size int) *engine.Config {
	cfg := &engine.Config{}
	for i := 0; i < reps; i++ {
		cfg.Reps = append(cfg.Reps, engine.Rep{ID: fmt.Sprintf("%s%04d", prefix, i)})
	}
	for i := 0; i*size < reps; i++ {
		p := engine.Pool{ID: fmt.Sprint("p", i)}
		for j := i * size; j < min((i+1)*size, reps); j++ {
			p.Members = append(p.Members, engine.Member{RepID: cfg.Reps[j].ID})
		}
		cfg.Pools = append(cfg.Pools, p)
	}
	cfg.Rules = []engine.Rule{{ID: "all", Targets: []engine.Target{{PoolID: "p0"}}}}
	return cfg
}

// TestApplyPlanSteps: a large apply is planned as small steps: at most 500
// reps, and at most 250 pool members unless one pool alone has more.
func TestApplyPlanSteps(t *testing.T) {
	kinds, reps, members := store.PlanSteps(nil, bigConfig("r", 10_000, 100), time.Now())
	if len(kinds) < 60 {
		t.Fatalf("%d steps for 10,000 reps in 100 pools: %v", len(kinds), kinds)
	}
	for i := range kinds {
		if reps[i] > 500 || members[i] > 250 {
			t.Errorf("step %d (%s): %d reps, %d members", i, kinds[i], reps[i], members[i])
		}
	}
	if kinds[0] != "reps" || kinds[len(kinds)-1] != "pools" {
		t.Errorf("order %v: reps first (the pools file members by presence)", kinds)
	}
}

// TestChunkedApplyAllOrNothing: while 10,000 reps replace 100 in the same
// pools, a replica routing leads all the while routes each one on the old
// config or the new one, never on a mix.
func TestChunkedApplyAllOrNothing(t *testing.T) {
	st := redistest.RealStore(t)
	ctx := context.Background()
	ws := redistest.Workspace(t)
	applier := engine.New(st)
	router := engine.New(redistest.OpenStore(t, redistest.URL(t)))
	v1, err := applier.ApplyConfig(ctx, ws, bigConfig("old", 100, 1), nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	type routed struct {
		version int64
		rep     string
	}
	results := make(chan routed, 100_000)
	errs := make(chan error, 1)
	go func() {
		defer close(results)
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			default:
			}
			a, _, err := router.AssignLead(ctx, ws, engine.Lead{ID: fmt.Sprint("l", i)})
			if err != nil {
				errs <- err
				return
			}
			results <- routed{a.ConfigVersion, a.RepID}
		}
	}()
	time.Sleep(20 * time.Millisecond)
	// Every old rep goes: the leads they were offered are requeued.
	res, err := applier.ApplyConfigWith(ctx, ws, bigConfig("new", 10_000, 100), engine.ApplyOptions{Orphans: engine.OrphansRequeue})
	if err != nil {
		t.Fatal(err)
	}
	v2 := res.Version
	time.Sleep(20 * time.Millisecond)
	close(done)
	seen := map[int64]int{}
	for r := range results {
		seen[r.version]++
		old := strings.HasPrefix(r.rep, "old")
		switch {
		case r.version == v1 && !old, r.version == v2 && (old || !strings.HasPrefix(r.rep, "new")):
			t.Fatalf("lead routed to %q under version %d (old config %d, new %d)", r.rep, r.version, v1, v2)
		case r.version != v1 && r.version != v2:
			t.Fatalf("version %d", r.version)
		}
	}
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	if seen[v1] == 0 || seen[v2] == 0 {
		t.Fatalf("leads per version %v: want some under each", seen)
	}
	t.Logf("leads routed per config version: %v", seen)
}

// TestApplyCarriedOnAfterApplierStops: an applier that stops after three
// steps leaves the apply under way; routing waits; once its lease runs out
// another replica loading the config finishes the apply, and the new
// config is the one in effect, whole.
func TestApplyCarriedOnAfterApplierStops(t *testing.T) {
	st := redistest.RealStore(t)
	ctx := context.Background()
	ws := redistest.Workspace(t)
	applier := engine.New(st)
	if _, err := applier.ApplyConfig(ctx, ws, bigConfig("old", 10, 5), nil); err != nil {
		t.Fatal(err)
	}
	restore := store.StopApplyAfter(3, 300*time.Millisecond)
	_, err := applier.ApplyConfig(ctx, ws, bigConfig("new", 2_000, 100), nil)
	restore()
	if !errors.Is(err, store.ErrApplyStopped) {
		t.Fatalf("apply: %v, want it stopped", err)
	}
	other := redistest.OpenStore(t, redistest.URL(t))
	sc, err := other.LoadConfig(ctx, ws)
	if err != nil {
		t.Fatal(err)
	}
	if len(sc.Config.Reps) != 2_000 || sc.Version != 2 {
		t.Fatalf("after the stopped apply: version %d with %d reps", sc.Version, len(sc.Config.Reps))
	}
	router := engine.New(other)
	for i := 0; i < 5; i++ {
		a, _, err := router.AssignLead(ctx, ws, engine.Lead{ID: fmt.Sprint("after-", i)})
		if err != nil || a.RepID != fmt.Sprintf("new%04d", i) {
			t.Fatalf("lead %d: %v %v, want new%04d in rotation", i, a, err, i)
		}
	}
}

// TestConfigBodyInHashReadable: a config applied before config_body kept
// its body in the config hash; it still loads, and the next apply moves it.
func TestConfigBodyInHashReadable(t *testing.T) {
	st := redistest.RealStore(t)
	ctx := context.Background()
	ws := redistest.Workspace(t)
	eng := engine.New(st)
	if _, err := eng.ApplyConfig(ctx, ws, bigConfig("r", 3, 3), nil); err != nil {
		t.Fatal(err)
	}
	base := st.Prefix() + ":{" + ws + "}:"
	c := st.Client()
	body, err := c.Get(ctx, base+"config_body").Result()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.HSet(ctx, base+"config", "body", body).Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.Del(ctx, base+"config_body").Err(); err != nil {
		t.Fatal(err)
	}
	sc, err := st.LoadConfig(ctx, ws)
	if err != nil || len(sc.Config.Reps) != 3 {
		t.Fatalf("old layout: %v %v", sc, err)
	}
	if _, err := eng.ApplyConfig(ctx, ws, bigConfig("r", 4, 4), nil); err != nil {
		t.Fatal(err)
	}
	if n, _ := c.HExists(ctx, base+"config", "body").Result(); n {
		t.Fatal("the apply left the old body field")
	}
	if sc, err := st.LoadConfig(ctx, ws); err != nil || len(sc.Config.Reps) != 4 || sc.Version != 2 {
		t.Fatalf("after the apply: %v %v", sc, err)
	}
}
