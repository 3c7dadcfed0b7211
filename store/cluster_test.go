package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/leadrouter/leadrouter/engine"
	"github.com/leadrouter/leadrouter/internal/redistest"
	"github.com/leadrouter/leadrouter/store"
)

const twoReps = `
reps: [{id: a}, {id: b}]
pools: [{id: p, members: [{rep_id: a}, {rep_id: b}]}]
rules: [{id: all, targets: [{pool_id: p}]}]
`

// onCluster skips the test unless it runs on a Redis Cluster, and gives
// it the cluster, a store on it and an engine on the store.
func onCluster(t *testing.T) (*redistest.Cluster, *store.Redis, *engine.Engine) {
	t.Helper()
	if !redistest.ClusterMode() {
		t.Skip("runs on a Redis Cluster: LEADROUTER_TEST_CLUSTER=1 (make test-cluster)")
	}
	st := redistest.RealStore(t)
	return redistest.SharedCluster(t), st, engine.New(st)
}

func applyTwoReps(t *testing.T, eng *engine.Engine, ws string) {
	t.Helper()
	cfg, err := engine.ParseConfigYAML(strings.NewReader(twoReps))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := eng.ApplyConfig(ctx, ws, cfg, nil); err != nil {
		t.Fatal(err)
	}
}

// TestClusterWorkspacesSpreadOverMasters: consecutive test workspaces land
// on every master, and each master holds exactly the keys of its own
// workspaces: one workspace, one slot, one master.
func TestClusterWorkspacesSpreadOverMasters(t *testing.T) {
	c, st, eng := onCluster(t)
	ctx := context.Background()
	var wss []string
	for i := 0; i < 2*c.Shards(); i++ {
		ws := redistest.Workspace(t)
		applyTwoReps(t, eng, ws)
		if _, _, err := eng.AssignLead(ctx, ws, engine.Lead{ID: "l1"}); err != nil {
			t.Fatal(err)
		}
		wss = append(wss, ws)
	}
	masters := 0
	err := c.ForEachMaster(ctx, func(m *redistest.Server, n *redis.Client) error {
		masters++
		var here []string
		for _, ws := range wss {
			// A single node answers for its own slots only: EXISTS on a
			// key of another master's slot is a MOVED error.
			ok, err := n.Exists(ctx, st.Prefix()+":{"+ws+"}:lead:l1").Result()
			if err != nil && !strings.HasPrefix(err.Error(), "MOVED") {
				return err
			}
			if ok == 1 {
				here = append(here, ws)
			}
		}
		if len(here) != 2 {
			return fmt.Errorf("master %s holds the leads of %v, want 2 of %v", m.Addr(), here, wss)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if masters != c.Shards() {
		t.Fatalf("%d masters, want %d", masters, c.Shards())
	}
}

// TestClusterScriptsReloadOnEveryMaster: after SCRIPT FLUSH on every
// master (as after failovers everywhere) each workspace's master answers
// NOSCRIPT once and the store falls back to EVAL there.
func TestClusterScriptsReloadOnEveryMaster(t *testing.T) {
	c, _, eng := onCluster(t)
	ctx := context.Background()
	var wss []string
	for i := 0; i < c.Shards(); i++ {
		wss = append(wss, redistest.Workspace(t))
		applyTwoReps(t, eng, wss[i])
	}
	for round, want := range []string{"a", "b"} {
		flushed := 0
		if err := c.ForEachMaster(ctx, func(_ *redistest.Server, n *redis.Client) error {
			flushed++
			return n.ScriptFlush(ctx).Err()
		}); err != nil || flushed != c.Shards() {
			t.Fatalf("SCRIPT FLUSH on %d masters: %v", flushed, err)
		}
		for _, ws := range wss {
			a, _, err := eng.AssignLead(ctx, ws, engine.Lead{ID: fmt.Sprint("l", round)})
			if err != nil || a.RepID != want {
				t.Fatalf("%s after SCRIPT FLUSH: %v %+v", ws, err, a)
			}
		}
	}
}

// TestClusterPingAsksEveryMaster: Ping (and so health) fails while any
// master is down, and the store is unavailable, not broken.
func TestClusterPingAsksEveryMaster(t *testing.T) {
	if !redistest.ClusterMode() {
		t.Skip("runs on a Redis Cluster: LEADROUTER_TEST_CLUSTER=1 (make test-cluster)")
	}
	c := redistest.StartCluster(t)
	ctx := context.Background()
	st, err := store.Open(ctx, c.URL, store.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if d, err := st.Durability(ctx); err != nil || d.AppendOnly || d.Evicts() {
		t.Errorf("durability of the test cluster: %+v %v", d, err)
	}
	m, err := c.Master(ctx, c.ShardStart(c.Shards()-1))
	if err != nil {
		t.Fatal(err)
	}
	m.Pause(t)
	defer m.Resume(t)
	pctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if err := st.Ping(pctx); !errors.Is(err, engine.ErrUnavailable) {
		t.Fatalf("ping with a master paused: %v, want unavailable", err)
	}
}
