package sinks

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/leadrouter/leadrouter/engine"
	"github.com/leadrouter/leadrouter/internal/pgtest"
	"github.com/leadrouter/leadrouter/internal/redistest"
)

// benchEnv is a workspace on the real Redis with the three kinds of sink
// configured or none, and two replicas delivering.
func benchEnv(b *testing.B, sinks bool) *sinkEnv {
	be := redistest.Backends()[len(redistest.Backends())-1]
	e := &sinkEnv{t: b, ctx: context.Background(), st: be.Open(b), ws: redistest.Workspace(b)}
	if !sinks {
		e.apply("")
		return e
	}
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) })
	hook, slack := httptest.NewServer(ok), httptest.NewServer(ok)
	b.Cleanup(hook.Close)
	b.Cleanup(slack.Close)
	os.Setenv("LR_SINK_BENCH_SLACK", slack.URL+"/pool")
	os.Setenv("LR_SINK_BENCH_DSN", pgtest.DSN(b))
	e.apply(webhookSink("crm", hook.URL, ", concurrency: 16") + `  - id: team
    kind: SLACK
    concurrency: 16
    slack: {channels: [{pool: p, url_env: LR_SINK_BENCH_SLACK}]}
  - {id: archive, kind: POSTGRES, dsn_env: LR_SINK_BENCH_DSN, concurrency: 16}
`)
	e.replica("a", Options{})
	e.replica("b", Options{})
	return e
}

// assignFor routes leads from c goroutines for d and returns leads/s.
func assignFor(e *sinkEnv, c int, d time.Duration) float64 {
	var n atomic.Int64
	var wg sync.WaitGroup
	deadline := time.Now().Add(d)
	for g := 0; g < c; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(deadline); i++ {
				id := fmt.Sprintf("%s-%d-%d", e.ws, g, n.Add(1))
				if _, _, err := e.eng.AssignLead(e.ctx, e.ws, engine.Lead{ID: id, Company: "Acme", SubmittedAt: time.Now()}); err != nil {
					e.t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	return float64(n.Load()) / d.Seconds()
}

// BenchmarkSinksAssignThroughput: AssignLead throughput (the engine's
// decision path on a real Redis, 32 goroutines) with no sinks and with a
// webhook, a Slack and a PostgreSQL sink delivering from two replicas
// (local receivers and a local PostgreSQL), alternating 3 s rounds of
// each, so that both see the same machine. Target: with/without >= 0.9.
func BenchmarkSinksAssignThroughput(b *testing.B) {
	none, three := benchEnv(b, false), benchEnv(b, true)
	var r0, r3 []float64
	for round := 0; round < 3; round++ {
		r0 = append(r0, assignFor(none, 32, 3*time.Second))
		r3 = append(r3, assignFor(three, 32, 3*time.Second))
	}
	m0, m3 := median(r0), median(r3)
	b.ReportMetric(m0, "leads/s-0-sinks")
	b.ReportMetric(m3, "leads/s-3-sinks")
	b.ReportMetric(m3/m0, "ratio")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkSinksDeliveryLatency: a webhook sink delivering from two
// replicas while leads arrive at 1,000/s for 5 s; the receiver measures
// each event's first arrival against its production (its id's time).
func BenchmarkSinksDeliveryLatency(b *testing.B) {
	var mu sync.Mutex
	var lat []time.Duration
	seen := map[string]bool{}
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("webhook-id")
		mu.Lock()
		if !seen[id] {
			seen[id] = true
			lat = append(lat, time.Since(engine.EventTime(id[strings.LastIndex(id, ":")+1:])))
		}
		mu.Unlock()
		w.WriteHeader(200)
	}))
	b.Cleanup(hook.Close)
	be := redistest.Backends()[len(redistest.Backends())-1]
	e := &sinkEnv{ctx: context.Background(), st: be.Open(b), ws: redistest.Workspace(b), t: b}
	e.apply(webhookSink("crm", hook.URL, ", concurrency: 32"))
	e.replica("a", Options{})
	e.replica("b", Options{})
	time.Sleep(300 * time.Millisecond) // the groups exist
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for i := 0; i < 5000; i++ {
		<-tick.C
		go func() {
			_, _, _ = e.eng.AssignLead(e.ctx, e.ws, engine.Lead{ID: fmt.Sprint("l", i), SubmittedAt: time.Now()})
		}()
	}
	want := 5000
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := len(lat)
		mu.Unlock()
		if n >= want || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	if len(lat) < want {
		b.Fatalf("%d of %d events delivered", len(lat), want)
	}
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkSinksArchiveRows: 3,000 leads are routed with no replica
// delivering; then two replicas archive the backlog (16 deliveries at
// once each); rows (events) per second until the archive has them all.
func BenchmarkSinksArchiveRows(b *testing.B) {
	be := redistest.Backends()[len(redistest.Backends())-1]
	e := &sinkEnv{ctx: context.Background(), st: be.Open(b), ws: redistest.Workspace(b), t: b}
	os.Setenv("LR_SINK_BENCH_ARCHIVE", pgtest.DSN(b))
	e.apply("  - {id: archive, kind: POSTGRES, dsn_env: LR_SINK_BENCH_ARCHIVE, concurrency: 16}\n")
	// A replica creates the group (at the apply), then stops: the backlog
	// builds with no one delivering.
	stop := e.replica("warmup", Options{})
	for st, _ := e.st.SinkState(e.ctx, e.ws, "archive"); st == nil || !st.Started; st, _ = e.st.SinkState(e.ctx, e.ws, "archive") {
		time.Sleep(10 * time.Millisecond)
	}
	stop()
	const leads = 3000
	for i := 0; i < leads; i++ {
		if _, _, err := e.eng.AssignLead(e.ctx, e.ws, engine.Lead{ID: fmt.Sprint("l", i), Company: "Acme", SubmittedAt: time.Now()}); err != nil {
			b.Fatal(err)
		}
	}
	events := len(e.eventIDs())
	start := time.Now()
	e.replica("a", Options{})
	e.replica("b", Options{})
	for {
		st, err := e.st.SinkState(e.ctx, e.ws, "archive")
		if err != nil {
			b.Fatal(err)
		}
		if st.Pending == 0 {
			break
		}
		if time.Since(start) > 2*time.Minute {
			b.Fatalf("still %d pending", st.Pending)
		}
		time.Sleep(5 * time.Millisecond)
	}
	took := time.Since(start)
	b.ReportMetric(float64(events)/took.Seconds(), "rows/s")
	b.ReportMetric(0, "ns/op")
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}
