package store_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/leadrouter/leadrouter/engine"
	"github.com/leadrouter/leadrouter/internal/redistest"
	"github.com/leadrouter/leadrouter/store"
)

// TestSentinelFailover: a store opened on a redis+sentinel:// URL routes
// through the master the sentinels name, and after SENTINEL FAILOVER
// carries on with the promoted replica, which has every earlier lead.
func TestSentinelFailover(t *testing.T) {
	sn := redistest.StartSentinel(t, 1)
	ctx := context.Background()
	st, err := store.Open(ctx, sn.URL, store.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	eng := engine.New(st)
	ws := redistest.Workspace(t)
	applyTwoReps(t, eng, ws)
	reps := map[string]string{}
	assign := func(id string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			a, _, err := eng.AssignLead(ctx, ws, engine.Lead{ID: id})
			if err == nil {
				if prev, ok := reps[id]; ok && prev != a.RepID {
					t.Fatalf("lead %s: %s, before the failover %s", id, a.RepID, prev)
				}
				reps[id] = a.RepID
				return
			}
			if !errors.Is(err, engine.ErrUnavailable) || time.Now().After(deadline) {
				t.Fatalf("lead %s: %v", id, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	for i := 0; i < 10; i++ {
		assign(fmt.Sprint("before-", i))
	}
	// Replication is asynchronous: wait until the replica has it all.
	if n, err := st.Client().Do(ctx, "WAIT", 1, 30000).Int(); err != nil || n != 1 {
		t.Fatalf("WAIT for the replica: %d %v", n, err)
	}
	sn.Failover(t)
	for i := 0; i < 10; i++ {
		assign(fmt.Sprint("after-", i))
		assign(fmt.Sprint("before-", i)) // a retry: the same rep, from the new master
	}
	open := map[string]int{}
	for _, rep := range reps {
		open[rep]++
	}
	rt, err := st.RepRuntime(ctx, ws, []string{"a", "b"}, []int64{0, 0}) // open counts only
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rt {
		if r.Open != int64(open[r.RepID]) {
			t.Errorf("rep %s: %d open in Redis, %d assigned (%+v)", r.RepID, r.Open, open[r.RepID], r)
		}
	}
	if open["a"] != 10 || open["b"] != 10 {
		t.Errorf("round robin over 20 leads: %v", open)
	}
}
