package engine_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/leadrouter/leadrouter/engine"
	"github.com/leadrouter/leadrouter/internal/parallel"
	"github.com/leadrouter/leadrouter/internal/redistest"
	"github.com/leadrouter/leadrouter/store"
)

// lateness records how late timers fired, by workspace.
type lateness struct {
	engine.Nop
	mu   sync.Mutex
	late map[string][]float64 // ms
}

func (l *lateness) TimerFired(ws string, _ engine.TimerKind, late time.Duration) {
	l.mu.Lock()
	l.late[ws] = append(l.late[ws], float64(late.Microseconds())/1000)
	l.mu.Unlock()
}

// BenchmarkTimerFairness: replicas sweeping every 100 ms (the default) on
// one real Redis, 100 workspaces; one bursts 2,000 offers due at once, each
// of the other 99 has one offer due at the same moment. Each offer is
// withdrawn once and its lead assigned without an offer. Reports the
// lateness (fire time minus due time) of the burst's timers and of the
// others' (p50, p99, ms; the goal: the others within 250 ms), and
// what every replica together sent per fired timer: scripts (claims,
// firing, and the sweepers' maintenance meanwhile) and lead record reads
// (the goal: close to 1 whatever the replica count), and the due-timer head
// checks per workspace over the run (every replica asks every workspace at
// every round), with 1 and 3 replicas. It runs the scenario once per
// replica count whatever b.N is.
func BenchmarkTimerFairness(b *testing.B) {
	const (
		workspaces = 100
		burst      = 2000
		accept     = 4 * time.Second
	)
	cfg := strings.Replace(timerConfig, "accept_within: 30s", "accept_within: 4s", 1)
	for _, replicas := range []int{1, 3} {
		b.Run(fmt.Sprint(replicas, "-replicas"), func(b *testing.B) {
			for range b.N {
				ctx := context.Background()
				setup := engine.New(redistest.RealStore(b), engine.WithLogger(quiet))
				wss := make([]string, workspaces)
				for i := range wss {
					wss[i] = redistest.Workspace(b)
					c, err := engine.ParseConfigYAML(strings.NewReader(cfg))
					if err != nil {
						b.Fatal(err)
					}
					if _, err := setup.ApplyConfig(ctx, wss[i], c, nil); err != nil {
						b.Fatal(err)
					}
				}
				obs := &lateness{late: map[string][]float64{}}
				counts := make([]*commandCount, replicas)
				sctx, stop := context.WithCancel(ctx)
				var sweepers sync.WaitGroup
				for i := range counts {
					var st *store.Redis
					st, counts[i] = countedStore(b)
					e := engine.New(st, engine.WithLogger(quiet), engine.WithObserver(obs))
					sweepers.Add(1)
					go func() { defer sweepers.Done(); e.RunSweeper(sctx, 100*time.Millisecond) }()
				}
				// Past the sweepers' start-up repairs, which are not the timers'.
				time.Sleep(time.Second)
				for _, c := range counts {
					c.reset()
				}
				// The burst, then one offer in each other workspace, all made
				// within a second; their deadlines are accept later.
				errs := parallel.Each(16, burst+workspaces-1, func(i int) error {
					ws, id := wss[0], fmt.Sprint("burst-", i)
					if i >= burst {
						ws, id = wss[i-burst+1], "single"
					}
					_, _, err := setup.AssignLead(ctx, ws, engine.Lead{ID: id})
					return err
				})
				for _, err := range errs {
					b.Fatal(err)
				}
				for n, deadline := 0, time.Now().Add(time.Minute); n < burst+workspaces-1; {
					if time.Now().After(deadline) {
						b.Fatalf("%d of %d timers fired", n, burst+workspaces-1)
					}
					time.Sleep(50 * time.Millisecond)
					obs.mu.Lock()
					n = 0
					for _, l := range obs.late {
						n += len(l)
					}
					obs.mu.Unlock()
				}
				stop()
				sweepers.Wait()
				var others []float64
				for _, ws := range wss[1:] {
					others = append(others, obs.late[ws]...)
				}
				fired := float64(burst + workspaces - 1)
				var scripts, reads, heads int64
				for _, c := range counts {
					scripts += c.evalsha.Load()
					reads += c.byName["hgetall"]
					heads += c.byName["zrangebyscore"]
				}
				b.ReportMetric(pctl(obs.late[wss[0]], 0.50), "burst-p50-late-ms")
				b.ReportMetric(pctl(obs.late[wss[0]], 0.99), "burst-p99-late-ms")
				b.ReportMetric(pctl(others, 0.50), "others-p50-late-ms")
				b.ReportMetric(pctl(others, 0.99), "others-p99-late-ms")
				b.ReportMetric(float64(scripts)/fired, "scripts/timer")
				b.ReportMetric(float64(reads)/fired, "record-reads/timer")
				b.ReportMetric(float64(heads)/float64(workspaces), "head-checks/workspace")
			}
			b.ReportMetric(0, "ns/op")
		})
	}
}

func pctl(v []float64, p float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(v))
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

// BenchmarkIdleSweep: one sweep (no drain) of 500 registered workspaces
// with nothing due, on the real Redis: what every replica pays every
// 100 ms when nothing is happening. Reports its time and its commands.
func BenchmarkIdleSweep(b *testing.B) {
	st, counts := countedStore(b)
	ctx := context.Background()
	wss := make([]any, 500)
	for i := range wss {
		wss[i] = redistest.Workspace(b)
	}
	list := st.Prefix() + ":workspaces"
	if err := st.Client().Del(ctx, list).Err(); err != nil { // a benchmark function runs more than once
		b.Fatal(err)
	}
	if err := st.Client().SAdd(ctx, list, wss...).Err(); err != nil {
		b.Fatal(err)
	}
	eng := engine.New(st, engine.WithLogger(quiet))
	if err := eng.Sweep(ctx, false); err != nil { // warm: connections open
		b.Fatal(err)
	}
	counts.reset()
	b.ResetTimer()
	for range b.N {
		if err := eng.Sweep(ctx, false); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/sweep")
	b.ReportMetric(float64(counts.other.Load()+counts.evalsha.Load())/float64(b.N), "cmds/sweep")
	b.ReportMetric(float64(counts.trips.Load())/float64(b.N), "round-trips/sweep")
}
