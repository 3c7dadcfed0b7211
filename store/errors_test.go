package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/leadrouter/leadrouter/engine"
	"github.com/leadrouter/leadrouter/internal/redistest"
	"github.com/leadrouter/leadrouter/store"
)

// replyErr is an error reply as go-redis returns one.
type replyErr string

func (e replyErr) Error() string { return string(e) }
func (replyErr) RedisError()     {}

// TestErrorClasses: every reply that says Redis cannot do the work now is
// UNAVAILABLE (safe to retry), naming the reply and what to do; any other
// reply is a bug, not UNAVAILABLE.
func TestErrorClasses(t *testing.T) {
	for _, c := range []struct {
		reply, says string
	}{
		{"LOADING Redis is loading the dataset in memory", "loading its dataset"},
		{"READONLY You can't write against a read only replica.", "is a replica"},
		{"MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.", "lost its master"},
		{"CLUSTERDOWN The cluster is down", "cluster recovers"},
		{"TRYAGAIN Multiple keys request during rehashing of slot", "being migrated"},
		{"MOVED 3999 127.0.0.1:6381", "slot moved"},
		{"ASK 3999 127.0.0.1:6381", "being migrated"},
		{"BUSY Redis is busy running a script.", "long-running script"},
		{"NOREPLICAS Not enough good replicas to write.", "min-replicas-to-write"},
		{"MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk.", "stop-writes-on-bgsave-error"},
		{"OOM command not allowed when used memory > 'maxmemory'.", "maxmemory"},
	} {
		err := store.Fail("lead_decide", replyErr(c.reply))
		word, _, _ := strings.Cut(c.reply, " ")
		if !errors.Is(err, engine.ErrUnavailable) || !strings.Contains(err.Error(), "redis answered "+word) ||
			!strings.Contains(err.Error(), c.says) {
			t.Errorf("%s: %v", word, err)
		}
	}
	for _, reply := range []string{"ERR user_script:1: Script attempted to access nonexistent global variable 'x'",
		"WRONGTYPE Operation against a key holding the wrong kind of value", "NOSCRIPT No matching script"} {
		if err := store.Fail("lead_decide", replyErr(reply)); errors.Is(err, engine.ErrUnavailable) {
			t.Errorf("%q is UNAVAILABLE: %v", reply, err)
		}
	}
}

// TestErrorClassesFromRedis: the replies of the settings docs/deployment.md
// recommends, from a real redis-server, come back UNAVAILABLE from a
// decision: min-replicas-to-write with no replica (NOREPLICAS), maxmemory
// reached under noeviction (OOM), and a replica's refusal (READONLY).
func TestErrorClassesFromRedis(t *testing.T) {
	srv := redistest.StartServer(t)
	st := redistest.OpenStore(t, "redis://"+srv.Addr()+"/0")
	ctx := context.Background()
	ws := redistest.Workspace(t)
	eng := engine.New(st)
	cfg, _ := engine.ParseConfigYAML(strings.NewReader(`
reps: [{id: a}]
pools: [{id: p, members: [{rep_id: a}]}]
rules: [{id: all, targets: [{pool_id: p}]}]
`))
	if _, err := eng.ApplyConfig(ctx, ws, cfg, nil); err != nil {
		t.Fatal(err)
	}
	c := st.Client()
	n := 0
	assign := func() error {
		n++
		_, _, err := eng.AssignLead(ctx, ws, engine.Lead{ID: "l" + strings.Repeat("x", n)})
		return err
	}
	for _, step := range []struct {
		word     string
		set, off []string
	}{
		{"NOREPLICAS", []string{"min-replicas-to-write", "1"}, []string{"min-replicas-to-write", "0"}},
		{"OOM", []string{"maxmemory", "1"}, []string{"maxmemory", "0"}},
	} {
		if err := c.ConfigSet(ctx, step.set[0], step.set[1]).Err(); err != nil {
			t.Fatal(err)
		}
		err := assign()
		if !errors.Is(err, engine.ErrUnavailable) || !strings.Contains(err.Error(), "redis answered "+step.word) {
			t.Errorf("%s: %v", step.word, err)
		}
		if err := c.ConfigSet(ctx, step.off[0], step.off[1]).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := assign(); err != nil {
		t.Fatalf("after the settings are back: %v", err)
	}
	// A replica of an unreachable master answers READONLY to a write.
	if err := c.Do(ctx, "REPLICAOF", "127.0.0.1", "1").Err(); err != nil {
		t.Fatal(err)
	}
	if err := assign(); !errors.Is(err, engine.ErrUnavailable) || !strings.Contains(err.Error(), "redis answered READONLY") {
		t.Errorf("READONLY: %v", err)
	}
}
