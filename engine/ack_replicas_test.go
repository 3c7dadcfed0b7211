package engine_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/leadrouter/leadrouter/engine"
	"github.com/leadrouter/leadrouter/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// TestAckReplicas: with SetAckReplicas(1) (--ack-replicas 1), a call
// answers once a replica has its writes: the replica holds the record when
// AssignLead returns. With the replica gone, the call answers UNAVAILABLE
// within its deadline, saying the write may or may not persist; once a
// replica is back, retrying with the same lead id answers the lead as the
// master recorded it, assigned once.
func TestAckReplicas(t *testing.T) {
	master := redistest.StartServer(t)
	replica := redistest.StartServer(t, "--replicaof", "127.0.0.1", strconv.Itoa(master.Port))
	mc := redis.NewClient(&redis.Options{Addr: master.Addr()})
	rc := redis.NewClient(&redis.Options{Addr: replica.Addr()})
	t.Cleanup(func() { mc.Close(); rc.Close() })
	ctx := context.Background()
	replicas := func(want int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			info, err := mc.Info(ctx, "replication").Result()
			linked := err == nil && strings.Contains(info, "connected_slaves:"+strconv.Itoa(want)+"\r\n")
			if linked && want > 0 {
				r, err := rc.Info(ctx, "replication").Result()
				linked = err == nil && strings.Contains(r, "master_link_status:up")
			}
			if linked {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("master never had %d replica(s): %s", want, info)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	replicas(1)

	st := redistest.OpenStore(t, master.URL)
	st.SetAckReplicas(1)
	clock := engine.NewManualClock(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	eng := engine.New(st, engine.WithClock(clock), engine.WithLogger(quiet))
	ws := redistest.Workspace(t)
	cfg, err := engine.ParseConfigYAML(strings.NewReader(boundConfig))
	if err != nil {
		t.Fatal(err)
	}
	noOffers(cfg)
	if _, err := eng.ApplyConfig(ctx, ws, cfg, nil); err != nil {
		t.Fatal(err)
	}
	leadKey := func(id string) string { return redistest.Prefix(t) + ":{" + ws + "}:lead:" + id }

	a, _, err := eng.AssignLead(ctx, ws, engine.Lead{ID: "l1"})
	if err != nil || a.State != engine.StateAssigned {
		t.Fatalf("l1: %v %v", a, err)
	}
	// No waiting: the call answered once the replica had it.
	if n, err := rc.Exists(ctx, leadKey("l1")).Result(); err != nil || n != 1 {
		t.Fatalf("the replica lacks l1's record when AssignLead returns: %d %v", n, err)
	}

	replica.Kill(t)
	replicas(0)
	cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	start := time.Now()
	_, _, err = eng.AssignLead(cctx, ws, engine.Lead{ID: "l2"})
	cancel()
	if !errors.Is(err, engine.ErrUnavailable) || !strings.Contains(err.Error(), "may or may not persist") {
		t.Fatalf("without a replica: %v, want ErrUnavailable saying the write may or may not persist", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("the unconfirmed call took %s, past its 300ms deadline", took)
	}

	replica.Start(t)
	replicas(1)
	again, dup, err := eng.AssignLead(ctx, ws, engine.Lead{ID: "l2"})
	if err != nil || again.State != engine.StateAssigned || !dup {
		t.Fatalf("retry of l2: %v (duplicate %v) %v, want the master's record of the first try", again, dup, err)
	}
	if open, err := mc.HGet(ctx, redistest.Prefix(t)+":{"+ws+"}:open", "a").Int(); err != nil || open != 2 {
		t.Fatalf("rep a holds %d leads (%v), want 2: l2 assigned once", open, err)
	}
}
