package engine_test

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/leadrouter/leadrouter/engine"
	"github.com/leadrouter/leadrouter/internal/parallel"
	"github.com/leadrouter/leadrouter/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// retentionBenchConfig: one pool, leads assigned at once, retained for the
// shortest retain_closed.
const retentionBenchConfig = `
settings: {retain_closed: 1m, events_max_len: 20000}
reps: [{id: a}, {id: b}, {id: c}, {id: d}]
pools: [{id: p, accept_within: 0s, members: [{rep_id: a}, {rep_id: b}, {rep_id: c}, {rep_id: d}]}]
rules: [{id: all, targets: [{pool_id: p}]}]
`

func usedMemory(ctx context.Context, tb testing.TB, c redis.UniversalClient) int64 {
	n, err := strconv.ParseInt(infoValue(ctx, tb, c, "memory", "used_memory"), 10, 64)
	if err != nil {
		tb.Fatalf("used_memory: %v", err)
	}
	return n
}

func retentionEngine(b *testing.B) (*engine.Engine, *engine.ManualClock, string, redis.UniversalClient) {
	st := redistest.RealStore(b)
	ws := redistest.Workspace(b)
	clock := engine.NewManualClock(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	eng := engine.New(st, engine.WithLogger(quiet), engine.WithClock(clock))
	cfg, err := engine.ParseConfigYAML(strings.NewReader(retentionBenchConfig))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := eng.ApplyConfig(context.Background(), ws, cfg, nil); err != nil {
		b.Fatal(err)
	}
	return eng, clock, ws, st.Client()
}

// routeAndClose assigns and releases leads [from, to) from 16 goroutines.
func routeAndClose(b *testing.B, eng *engine.Engine, ws string, from, to int) {
	ctx := context.Background()
	errs := parallel.Each(16, to-from, func(i int) error {
		id := "r" + strconv.Itoa(from+i)
		if _, _, err := eng.AssignLead(ctx, ws, engine.Lead{ID: id, Email: id + "@acme.com"}); err != nil {
			return err
		}
		_, err := eng.ReleaseAssignment(ctx, ws, id, "done")
		return err
	})
	if len(errs) > 0 {
		b.Fatal(errs[0])
	}
}

// BenchmarkRetentionMemoryFlat routes, closes and retains 200,000 leads
// with retain_closed 1m on a manual clock that moves 10 s per 2,000 leads,
// sweeping after each step (with event retention, events_max_len 20,000),
// so about 12,000 records and 20,000 events are kept at any time.
// It reports Redis's used_memory once that steady state is reached
// (start-MB, after 20,000 leads) and at the end (end-MB), their ratio
// (end/start, the goal: close to 1), and the records removed. Run with
// -benchtime 1x.
func BenchmarkRetentionMemoryFlat(b *testing.B) {
	for i := 0; i < b.N; i++ {
		eng, clock, ws, c := retentionEngine(b)
		ctx := context.Background()
		const total, step, warm = 200_000, 2_000, 20_000
		var start int64
		for done := 0; done < total; done += step {
			routeAndClose(b, eng, ws, done, done+step)
			clock.Advance(10 * time.Second)
			for {
				if err := eng.Sweep(ctx, true); err != nil {
					b.Fatal(err)
				}
				due, _ := c.ZCount(ctx, redistest.Prefix(b)+":{"+ws+"}:timers", "-inf", strconv.FormatInt(clock.Now().UnixMilli(), 10)).Result()
				if due == 0 {
					break
				}
			}
			if done+step == warm {
				start = usedMemory(ctx, b, c)
			}
		}
		end := usedMemory(ctx, b, c)
		kept, _ := c.HGet(ctx, redistest.Prefix(b)+":{"+ws+"}:config", "stored").Int()
		b.ReportMetric(float64(start)/1e6, "start-MB")
		b.ReportMetric(float64(end)/1e6, "end-MB")
		b.ReportMetric(float64(end)/float64(start), "end/start")
		b.ReportMetric(float64(total-kept), "removed")
		b.ReportMetric(float64(kept), "kept")
	}
}

// BenchmarkAssignWhileRemoving: AssignLead's latency while the sweeper
// removes 100,000 records that all came due in the same second, against
// the same workspace's latency with nothing to remove, measured in the same
// run. Reports p50 and p99 of both (quiet-*, removing-*) and the records
// removed during the measurement. Run with -benchtime 1x.
func BenchmarkAssignWhileRemoving(b *testing.B) {
	for i := 0; i < b.N; i++ {
		eng, clock, ws, c := retentionEngine(b)
		ctx := context.Background()
		const seeded = 100_000
		routeAndClose(b, eng, ws, 0, seeded)
		measure := func(prefix string, n int) (p50, p99 time.Duration) {
			took := make([]time.Duration, n)
			for j := 0; j < n; j++ {
				id := fmt.Sprintf("%s%d", prefix, j)
				t0 := time.Now()
				if _, _, err := eng.AssignLead(ctx, ws, engine.Lead{ID: id}); err != nil {
					b.Fatal(err)
				}
				took[j] = time.Since(t0)
			}
			sort.Slice(took, func(x, y int) bool { return took[x] < took[y] })
			return took[n/2], took[n*99/100]
		}
		q50, q99 := measure("quiet", 2000)
		clock.Advance(time.Minute + time.Second) // all 100,000 due now
		sctx, stop := context.WithCancel(ctx)
		swept := make(chan struct{})
		go func() { defer close(swept); eng.RunSweeper(sctx, 100*time.Millisecond) }()
		before, _ := c.HGet(ctx, redistest.Prefix(b)+":{"+ws+"}:config", "stored").Int()
		r50, r99 := measure("busy", 2000)
		after, _ := c.HGet(ctx, redistest.Prefix(b)+":{"+ws+"}:config", "stored").Int()
		stop()
		<-swept
		b.ReportMetric(float64(q50.Microseconds()), "quiet-p50-us")
		b.ReportMetric(float64(q99.Microseconds()), "quiet-p99-us")
		b.ReportMetric(float64(r50.Microseconds()), "removing-p50-us")
		b.ReportMetric(float64(r99.Microseconds()), "removing-p99-us")
		b.ReportMetric(float64(before-after+2000), "removed")
	}
}
