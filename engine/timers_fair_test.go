package engine_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/leadrouter/leadrouter/engine"
	"github.com/leadrouter/leadrouter/internal/redistest"
	"github.com/leadrouter/leadrouter/store"
)

// timerConfig: every lead is offered to a for 30 s; a withdrawn offer
// moves on to "direct", which assigns to b without an offer, so each lead
// has exactly one offer deadline.
const timerConfig = `
reps: [{id: a}, {id: b}]
pools:
  - {id: p, accept_within: 30s, max_missed_offers: 0, members: [{rep_id: a}]}
  - {id: direct, accept_within: 0s, members: [{rep_id: b}]}
rules: [{id: all, targets: [{pool_id: p}, {pool_id: direct}]}]
`

// TestPoisonTimersBackOffAndPark: 256 timers whose firing always fails
// (their lead records are corrupt) at the head of the set. A real deadline
// behind them fires (in the same sweep, or the next); each poison timer tries again after
// a growing delay, not at every sweep, and after its tenth failure is
// parked: out of the due set, in the parked set, its failure count gone.
func TestPoisonTimersBackOffAndPark(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		f.apply(timerConfig)
		c := f.st.Client()
		base := f.st.Prefix() + ":{" + f.ws + "}:"
		due := f.clock.Now().Add(-time.Second).UnixMilli()
		var poison []redis.Z
		for i := 0; i < 256; i++ {
			id := fmt.Sprint("poison-", i)
			if err := c.HSet(f.ctx, base+"lead:"+id, "pb", "\xff\xff", "state", "OFFERED").Err(); err != nil {
				t.Fatal(err)
			}
			poison = append(poison, redis.Z{Score: float64(due), Member: "offer|" + id})
		}
		if err := c.ZAdd(f.ctx, base+"timers", poison...).Err(); err != nil {
			t.Fatal(err)
		}
		f.assign(lead("real")) // offered to a, due in 30s; then assigned to b
		f.clock.Advance(31 * time.Second)
		// A sweep stops starting rounds after a second (the race detector
		// can make 256 failures take that long); the poison timers, moved
		// back, are not in the next sweep's way.
		for n := 0; n < 3 && f.get("real").RepID != "b"; n++ {
			if err := f.eng.Sweep(f.ctx, false); err != nil {
				t.Fatal(err)
			}
		}
		if a := f.get("real"); a.RepID != "b" {
			t.Fatalf("the real deadline did not fire behind the poison timers: %+v", a)
		}
		attempts := func() map[string]int {
			out := map[string]int{}
			fails, _ := c.HGetAll(f.ctx, base+"timer_fails").Result()
			for _, v := range fails {
				n, _, _ := strings.Cut(v, "|")
				out[n]++
			}
			return out
		}
		if got := attempts(); got["1"] != 256 {
			t.Fatalf("failure counts after one sweep: %v, want 256 at 1", got)
		}
		// Swept again at once, nothing is tried: the first retry is a second
		// away.
		if err := f.eng.Sweep(f.ctx, false); err != nil {
			t.Fatal(err)
		}
		if got := attempts(); got["1"] != 256 {
			t.Fatalf("failure counts after an immediate second sweep: %v, want 256 still at 1", got)
		}
		for i := 2; i <= 10; i++ {
			f.clock.Advance(5 * time.Minute)
			if err := f.eng.Sweep(f.ctx, false); err != nil {
				t.Fatal(err)
			}
			if got := attempts(); i < 10 && got[fmt.Sprint(i)] != 256 {
				t.Fatalf("failure counts after attempt %d: %v", i, got)
			}
		}
		if n, _ := c.ZCard(f.ctx, base+"timers").Result(); n != 0 {
			t.Fatalf("%d timers left in the due set after ten failures each", n)
		}
		if n, _ := c.ZCard(f.ctx, base+"timers_parked").Result(); n != 256 {
			t.Fatalf("%d timers parked, want 256", n)
		}
		if n, _ := c.HLen(f.ctx, base+"timer_fails").Result(); n != 0 {
			t.Fatalf("%d failure counts kept for parked timers", n)
		}
	})
}

// firedOrder records the order in which timers fire.
type firedOrder struct {
	engine.Nop
	mu    sync.Mutex
	fired []string
}

func (o *firedOrder) TimerFired(ws string, kind engine.TimerKind, _ time.Duration) {
	o.mu.Lock()
	o.fired = append(o.fired, ws)
	o.mu.Unlock()
}

// TestTimerBurstDoesNotHoldUpOthers: 2,000 due offers in one workspace and
// one in another. The other workspace's offer fires within the first
// round of batches (one batch per worker), not behind the burst; and every
// one of them fires once.
func TestTimerBurstDoesNotHoldUpOthers(t *testing.T) {
	st := redistest.RealStore(t)
	clock := engine.NewManualClock(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	order := &firedOrder{}
	eng := engine.New(st, engine.WithClock(clock), engine.WithLogger(quiet), engine.WithObserver(order))
	ctx := context.Background()
	burst, single := redistest.Workspace(t), redistest.Workspace(t)
	for _, ws := range []string{burst, single} {
		cfg, err := engine.ParseConfigYAML(strings.NewReader(timerConfig))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := eng.ApplyConfig(ctx, ws, cfg, nil); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 2000; i++ {
		if _, _, err := eng.AssignLead(ctx, burst, engine.Lead{ID: fmt.Sprint("b", i)}); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(time.Second) // the single offer is the newest deadline of all
	if _, _, err := eng.AssignLead(ctx, single, engine.Lead{ID: "s"}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(31 * time.Second)
	if err := eng.Sweep(ctx, false); err != nil {
		t.Fatal(err)
	}
	i := slices.Index(order.fired, single)
	// A sweep stops claiming after a second; what is left is the next's.
	for n := 0; len(order.fired) < 2001 && n < 20; n++ {
		if err := eng.Sweep(ctx, false); err != nil {
			t.Fatal(err)
		}
	}
	if i < 0 {
		t.Fatal("the single workspace's offer did not fire")
	}
	// Workers take the two workspaces' first batches at once; the single
	// offer is fired at the latest after one batch of the burst.
	if i > 64 {
		t.Fatalf("the single offer fired after %d of the burst's", i)
	}
	if n := len(order.fired); n != 2001 {
		t.Fatalf("%d timers fired, want 2001", n)
	}
}

// countedStore is a store on the real Redis, with the test's prefix, whose
// client counts the commands it sends.
func countedStore(tb testing.TB) (*store.Redis, *commandCount) {
	tb.Helper()
	counts := &commandCount{}
	client, err := store.NewClient(redistest.URL(tb), store.OpenOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	client.AddHook(counts)
	st := store.New(client, redistest.Prefix(tb))
	tb.Cleanup(func() { st.Close() })
	return st, counts
}

// commandCount counts the commands a client sends, pipelined or not.
type commandCount struct {
	evalsha, other, trips atomic.Int64
	mu                    sync.Mutex
	byName                map[string]int64
}

func (c *commandCount) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c *commandCount) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if c.count(cmd) {
			c.trips.Add(1)
		}
		return next(ctx, cmd)
	}
}
func (c *commandCount) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		counted := false
		for _, cmd := range cmds {
			counted = c.count(cmd) || counted
		}
		if counted {
			c.trips.Add(1)
		}
		return next(ctx, cmds)
	}
}
func (c *commandCount) reset() {
	c.evalsha.Store(0)
	c.other.Store(0)
	c.trips.Store(0)
	c.mu.Lock()
	c.byName = nil
	c.mu.Unlock()
}

// count counts a command, but not a new connection's handshake.
func (c *commandCount) count(cmd redis.Cmder) bool {
	switch cmd.Name() {
	case "hello", "client", "auth", "select":
		return false
	case "evalsha", "eval":
		c.evalsha.Add(1)
	default:
		c.other.Add(1)
	}
	c.mu.Lock()
	if c.byName == nil {
		c.byName = map[string]int64{}
	}
	c.byName[cmd.Name()]++
	c.mu.Unlock()
	return true
}

// TestTimersFiredOnceWhateverTheReplicas: 300 due offers, swept by one
// replica and then (in another workspace) by three at once. With claims,
// each timer is read and fired by about one replica: three replicas send
// about what one does.
func TestTimersFiredOnceWhateverTheReplicas(t *testing.T) {
	const n = 300
	clock := engine.NewManualClock(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	run := func(replicas int) (scripts, others int64) {
		ctx := context.Background()
		ws := redistest.Workspace(t)
		setup := engine.New(redistest.RealStore(t), engine.WithClock(clock), engine.WithLogger(quiet))
		cfg, err := engine.ParseConfigYAML(strings.NewReader(timerConfig))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := setup.ApplyConfig(ctx, ws, cfg, nil); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < n; i++ {
			if _, _, err := setup.AssignLead(ctx, ws, engine.Lead{ID: fmt.Sprint("l", i)}); err != nil {
				t.Fatal(err)
			}
		}
		counts := make([]*commandCount, replicas)
		engines := make([]*engine.Engine, replicas)
		for i := range engines {
			var st *store.Redis
			st, counts[i] = countedStore(t)
			engines[i] = engine.New(st, engine.WithClock(clock), engine.WithLogger(quiet))
			if _, err := engines[i].Config(ctx, ws); err != nil { // warm: config cached, as on a running replica
				t.Fatal(err)
			}
			counts[i].reset()
		}
		clock.Advance(31 * time.Second)
		var wg sync.WaitGroup
		for _, e := range engines {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := e.Sweep(ctx, false); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		for i := 0; i < n; i++ {
			a, err := setup.GetAssignment(ctx, ws, fmt.Sprint("l", i))
			if err != nil || a.RepID != "b" {
				t.Fatalf("lead %d was not offered again once: %+v %v", i, a, err)
			}
		}
		for _, c := range counts {
			scripts += c.evalsha.Load()
			others += c.other.Load()
		}
		t.Logf("%d replica(s): %.2f scripts and %.2f other commands per fired timer", replicas, float64(scripts)/n, float64(others)/n)
		return scripts, others
	}
	s1, o1 := run(1)
	s3, o3 := run(3)
	if float64(s3) > 1.2*float64(s1) || float64(o3) > 1.2*float64(o1)+20 {
		t.Fatalf("three replicas sent %d scripts and %d other commands for what one replica does with %d and %d", s3, o3, s1, o1)
	}
}

// TestDeadReplicasClaimsMoveOn: a replica claims a batch of due timers and
// dies before firing them. Other replicas leave them alone while the claim
// lasts, and fire them once it has run out.
func TestDeadReplicasClaimsMoveOn(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		f.apply(timerConfig)
		for i := 0; i < 10; i++ {
			f.assign(lead(fmt.Sprint("l", i)))
		}
		f.clock.Advance(31 * time.Second)
		claimed, err := f.st.ClaimTimers(f.ctx, f.ws, f.clock.Now(), 64, 3*time.Second)
		if err != nil || len(claimed) != 10 {
			t.Fatalf("the dying replica claimed %d: %v", len(claimed), err)
		}
		other := f.another()
		if err := other.Sweep(f.ctx, false); err != nil {
			t.Fatal(err)
		}
		if a := f.get("l0"); a.RepID != "a" {
			t.Fatalf("a claimed timer fired while its claim lasted: %+v", a)
		}
		f.clock.Advance(3 * time.Second)
		if err := other.Sweep(f.ctx, false); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 10; i++ {
			if a := f.get(fmt.Sprint("l", i)); a.RepID != "b" {
				t.Fatalf("lead %d's timer did not fire once the claim ran out: %+v", i, a)
			}
		}
	})
}

// TestIdleSweepIsOneRoundTrip: a sweep of 500 workspaces with nothing due
// sends no script and makes two round trips (the workspace list, then one
// pipeline asking each for a due timer).
func TestIdleSweepIsOneRoundTrip(t *testing.T) {
	st, counts := countedStore(t)
	client := st.Client()
	ctx := context.Background()
	wss := make([]any, 500)
	for i := range wss {
		wss[i] = redistest.Workspace(t)
	}
	if err := client.SAdd(ctx, st.Prefix()+":workspaces", wss...).Err(); err != nil {
		t.Fatal(err)
	}
	eng := engine.New(st, engine.WithLogger(quiet))
	if err := client.Ping(ctx).Err(); err != nil { // a connection, as a running replica has
		t.Fatal(err)
	}
	counts.reset()
	if err := eng.Sweep(ctx, false); err != nil {
		t.Fatal(err)
	}
	if s, tr := counts.evalsha.Load(), counts.trips.Load(); s != 0 || tr != 2 {
		t.Fatalf("an idle sweep of 500 workspaces sent %d scripts in %d round trips (%d commands)", s, tr, counts.other.Load())
	}
}
