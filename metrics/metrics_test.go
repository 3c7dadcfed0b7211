package metrics_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/redis/go-redis/v9"

	"github.com/leadrouter/leadrouter/engine"
	"github.com/leadrouter/leadrouter/internal/redistest"
	"github.com/leadrouter/leadrouter/metrics"
	"github.com/leadrouter/leadrouter/store"
)

func TestMain(m *testing.M) { os.Exit(redistest.Main(m)) }

var quiet = slog.New(slog.DiscardHandler)

// replica is one engine with its own registry, as one leadrouterd is.
type replica struct {
	eng *engine.Engine
	reg *prometheus.Registry
	m   *metrics.Metrics
}

func newReplica(t *testing.T, st *store.Redis, clock engine.Clock, o metrics.Options) *replica {
	t.Helper()
	r := &replica{reg: prometheus.NewRegistry()}
	r.m = metrics.New(r.reg, o)
	r.eng = engine.New(st, engine.WithClock(clock), engine.WithLogger(quiet), engine.WithObserver(r.m))
	r.reg.MustRegister(metrics.NewStateCollector(r.eng, o, quiet))
	return r
}

// value returns the value of the series of family name whose labels are
// exactly labels ("k=v,k=v"; "" for none): a counter's or gauge's value, a
// histogram's sample count, or -1 when there is no such series.
func (r *replica) value(t *testing.T, name, labels string) float64 {
	t.Helper()
	v, _ := r.series(t, name, labels)
	return v
}

// sum returns a histogram's sample sum (-1: no such series).
func (r *replica) sum(t *testing.T, name, labels string) float64 {
	t.Helper()
	_, s := r.series(t, name, labels)
	return s
}

func (r *replica) series(t *testing.T, name, labels string) (float64, float64) {
	t.Helper()
	fams, err := r.reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if labelString(m) != labels {
				continue
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue(), 0
			case m.Gauge != nil:
				return m.Gauge.GetValue(), 0
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount()), m.Histogram.GetSampleSum()
			}
		}
	}
	return -1, -1
}

func labelString(m *dto.Metric) string {
	var parts []string
	for _, l := range m.GetLabel() {
		parts = append(parts, l.GetName()+"="+l.GetValue())
	}
	return strings.Join(parts, ",")
}

// lifecycleConfig: pool p offers (60 s to accept, one miss pauses a rep),
// pool q assigns at once to c (one open lead at a time, first contact
// within 5 minutes). US goes to p, DE to q, anything else is unroutable.
const lifecycleConfig = `
reps:
  - {id: a}
  - {id: b}
  - {id: c, max_open: 1}
pools:
  - {id: p, accept_within: 60s, max_missed_offers: 1, members: [{rep_id: a}, {rep_id: b}]}
  - {id: q, accept_within: 0s, first_contact_within: 5m, members: [{rep_id: c}]}
rules:
  - {id: us, match: {countries: [US]}, targets: [{pool_id: p}]}
  - {id: de, match: {countries: [DE]}, targets: [{pool_id: q}]}
`

// TestLifecycleMetrics drives every routing and lifecycle path on an
// injected clock and checks each metric's exact value.
func TestLifecycleMetrics(t *testing.T) {
	for _, b := range redistest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			st := b.Open(t)
			t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
			clock := engine.NewManualClock(t0)
			r := newReplica(t, st, clock, metrics.Options{})
			st.Observe(r.m)
			ws := redistest.Workspace(t)
			cfg, err := engine.ParseConfigYAML(strings.NewReader(lifecycleConfig))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := r.eng.ApplyConfig(ctx, ws, cfg, nil); err != nil {
				t.Fatal(err)
			}
			assign := func(id, country string) *engine.Assignment {
				t.Helper()
				a, _, err := r.eng.AssignLead(ctx, ws, engine.Lead{ID: id, Country: country, SubmittedAt: t0})
				if err != nil {
					t.Fatalf("assign %s: %v", id, err)
				}
				return a
			}
			at := func(d time.Duration) { clock.Advance(t0.Add(d).Sub(clock.Now())) }
			must := func(_ *engine.Assignment, err error) {
				t.Helper()
				if err != nil {
					t.Fatal(err)
				}
			}
			sweep := func() {
				t.Helper()
				if err := r.eng.Sweep(ctx, true); err != nil {
					t.Fatal(err)
				}
			}

			l1 := assign("l1", "US")
			assign("l1", "US") // duplicate
			assign("l2", "FR") // unroutable
			assign("l3", "DE") // c
			if a := assign("l4", "DE"); a.State != engine.StateQueued {
				t.Fatalf("l4: %s, want QUEUED (c is at max_open)", a.State)
			}
			at(30 * time.Second)
			must(r.eng.AcceptOffer(ctx, ws, "l1", l1.RepID))
			at(45 * time.Second)
			must(r.eng.RecordContact(ctx, ws, "l1", l1.RepID, "call", clock.Now()))
			must(r.eng.RecordContact(ctx, ws, "l3", "c", "call", clock.Now()))
			at(time.Minute)
			must(r.eng.ReleaseAssignment(ctx, ws, "l3", "done")) // l4 leaves the queue for c
			if a, _ := r.eng.GetAssignment(ctx, ws, "l4"); a.State != engine.StateAssigned {
				t.Fatalf("l4: %s after the release, want ASSIGNED", a.State)
			}
			at(5*time.Minute + time.Second)
			sweep() // l4's first-contact SLA (due t0+5m) is breached
			l5 := assign("l5", "US")
			at(5*time.Minute + 62*time.Second)
			sweep() // l5's offer times out; its rep misses once and is paused
			l5, _ = r.eng.GetAssignment(ctx, ws, "l5")
			if l5.State != engine.StateOffered {
				t.Fatalf("l5: %s after the timeout, want OFFERED to the other rep", l5.State)
			}
			must(r.eng.RejectOffer(ctx, ws, "l5", l5.RepID, "busy"))

			for _, c := range []struct {
				name, labels string
				want         float64
			}{
				{"leadrouter_assign_duration_seconds", "", 6},
				{"leadrouter_assignments_total", "outcome=assigned,pool=p", 2},
				{"leadrouter_assignments_total", "outcome=duplicate,pool=p", 1},
				{"leadrouter_assignments_total", "outcome=unroutable,pool=none", 1},
				{"leadrouter_assignments_total", "outcome=assigned,pool=q", 1},
				{"leadrouter_assignments_total", "outcome=queued,pool=q", 1},
				{"leadrouter_offers_total", "pool=p,result=accepted", 1},
				{"leadrouter_offers_total", "pool=p,result=timed_out", 1},
				{"leadrouter_offers_total", "pool=p,result=rejected", 1},
				{"leadrouter_offer_accept_seconds", "", 1},
				{"leadrouter_speed_to_lead_seconds", "", 2},
				{"leadrouter_queue_wait_seconds", "", 1},
				{"leadrouter_sla_breaches_total", "kind=first_contact,pool=q", 1},
				{"leadrouter_sla_breaches_total", "kind=accept,pool=p", 1},
				{"leadrouter_rep_auto_paused_total", "pool=p", 1},
				{"leadrouter_reps", "status=AWAY", 1},
				{"leadrouter_reps", "status=AVAILABLE", 2},
				{"leadrouter_reps", "status=OFFLINE", 0},
				{"leadrouter_redis_errors_total", "op=ping", 0},
			} {
				if got := r.value(t, c.name, c.labels); got != c.want {
					t.Errorf("%s{%s} = %v, want %v", c.name, c.labels, got, c.want)
				}
			}
			// Stored records by state: the scripts' counts agree with the
			// records.
			byState := map[engine.State]float64{}
			for _, id := range []string{"l1", "l2", "l3", "l4", "l5"} {
				a, err := r.eng.GetAssignment(ctx, ws, id)
				if err != nil {
					t.Fatal(err)
				}
				byState[a.State]++
			}
			if byState[engine.StateClosed] != 1 || byState[engine.StateUnroutable] != 1 {
				t.Fatalf("records by state %v, want l3 CLOSED and l2 UNROUTABLE", byState)
			}
			for _, st := range engine.States {
				if got := r.value(t, "leadrouter_stored_leads", "state="+string(st)); got != byState[st] {
					t.Errorf("leadrouter_stored_leads{state=%s} = %v, records %v", st, got, byState[st])
				}
			}
			for _, c := range []struct {
				name string
				want float64
			}{
				{"leadrouter_offer_accept_seconds", 30},  // offered at t0, accepted at t0+30s
				{"leadrouter_speed_to_lead_seconds", 90}, // l1 and l3: submitted at t0, contacted at t0+45s
				{"leadrouter_queue_wait_seconds", 60},    // l4: queued at t0, placed at t0+1m
			} {
				if got := r.sum(t, c.name, ""); got != c.want {
					t.Errorf("%s sum = %v s, want %v s", c.name, got, c.want)
				}
			}
			if problems, err := testutil.GatherAndLint(r.reg); err != nil || len(problems) > 0 {
				t.Errorf("lint: %v %+v", err, problems)
			}
		})
	}
}

// TestQueueGauges: queued leads and the oldest one's age are read from
// Redis at scrape time, the same on every replica.
func TestQueueGauges(t *testing.T) {
	for _, b := range redistest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			st := b.Open(t)
			t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
			clock := engine.NewManualClock(t0)
			one := newReplica(t, st, clock, metrics.Options{})
			two := newReplica(t, st, clock, metrics.Options{WorkspaceLabel: true})
			ws := redistest.Workspace(t)
			cfg, _ := engine.ParseConfigYAML(strings.NewReader(lifecycleConfig))
			if _, err := one.eng.ApplyConfig(ctx, ws, cfg, nil); err != nil {
				t.Fatal(err)
			}
			for i, d := range []time.Duration{0, 40 * time.Second, 70 * time.Second} {
				clock.Advance(d - clock.Now().Sub(t0))
				// The first takes c; the others queue. A higher score jumps
				// the queue but not the oldest-arrival age.
				score := int32(10 * i)
				if _, _, err := one.eng.AssignLead(ctx, ws, engine.Lead{ID: fmt.Sprint("l", i), Country: "DE", Score: &score}); err != nil {
					t.Fatal(err)
				}
			}
			clock.Advance(100*time.Second - clock.Now().Sub(t0))
			if got := one.value(t, "leadrouter_queued_leads", "pool=q"); got != 2 {
				t.Errorf("queued_leads{q} = %v, want 2", got)
			}
			if got := one.value(t, "leadrouter_queued_oldest_seconds", "pool=q"); got != 60 {
				t.Errorf("queued_oldest_seconds{q} = %v, want 60 (queued at t0+40s, now t0+100s)", got)
			}
			if got := one.value(t, "leadrouter_queued_leads", "pool=p"); got != 0 {
				t.Errorf("queued_leads{p} = %v, want 0", got)
			}
			// The other replica (which did none of this) reports the same,
			// here with the workspace label.
			if got := two.value(t, "leadrouter_queued_leads", "pool=q,workspace="+ws); got != 2 {
				t.Errorf("replica two: queued_leads{q} = %v, want 2", got)
			}
			if got := two.value(t, "leadrouter_assignments_total", "outcome=queued,pool=q,workspace="+ws); got != -1 {
				t.Errorf("replica two counted an assignment it did not make: %v", got)
			}
		})
	}
}

// TestFactsCountedOnce: two replicas (each its own store connection and
// registry) sweep the same Redis at once; every timed-out offer is counted
// by exactly one of them, so sums over replicas are true.
func TestFactsCountedOnce(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	clock := engine.NewManualClock(t0)
	var reps []*replica
	for i := 0; i < 2; i++ {
		st := redistest.RealStore(t) // same test: same key prefix, same data
		r := newReplica(t, st, clock, metrics.Options{})
		st.Observe(r.m)
		reps = append(reps, r)
	}
	ws := redistest.Workspace(t)
	cfg, _ := engine.ParseConfigYAML(strings.NewReader(`
reps: [{id: a}, {id: b}, {id: c}]
pools: [{id: p, accept_within: 10s, max_missed_offers: 0, max_offers: 1, members: [{rep_id: a}, {rep_id: b}, {rep_id: c}]}]
rules: [{id: all, targets: [{pool_id: p}]}]
`))
	if _, err := reps[0].eng.ApplyConfig(ctx, ws, cfg, nil); err != nil {
		t.Fatal(err)
	}
	const leads = 300
	for i := 0; i < leads; i++ {
		if _, _, err := reps[i%2].eng.AssignLead(ctx, ws, engine.Lead{ID: fmt.Sprint("l", i)}); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(11 * time.Second)
	var wg sync.WaitGroup
	for _, r := range reps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; k < 3; k++ {
				if err := r.eng.Sweep(ctx, false); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	var timedOut, assigned float64
	for i, r := range reps {
		n := r.value(t, "leadrouter_offers_total", "pool=p,result=timed_out")
		t.Logf("replica %d counted %v timed-out offers", i, n)
		timedOut += max(n, 0)
		assigned += r.value(t, "leadrouter_assignments_total", "outcome=assigned,pool=p")
	}
	if timedOut != leads || assigned != leads {
		t.Fatalf("over both replicas: %v timed-out offers, %v assignments; want %d each", timedOut, assigned, leads)
	}
}

// TestRedisErrorsCounted: a store call that fails is counted by operation.
func TestRedisErrorsCounted(t *testing.T) {
	emb, err := store.StartEmbedded()
	if err != nil {
		t.Fatal(err)
	}
	r := newReplica(t, emb.Redis, engine.SystemClock{}, metrics.Options{})
	emb.Observe(r.m)
	emb.Close() // Redis is gone
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, _, err := r.eng.AssignLead(ctx, "default", engine.Lead{ID: "x"}); err == nil {
		t.Fatal("AssignLead succeeded without Redis")
	}
	if err := emb.Ping(ctx); err == nil {
		t.Fatal("Ping succeeded without Redis")
	}
	if got := r.value(t, "leadrouter_redis_errors_total", "op=ping"); got != 1 {
		t.Errorf("redis_errors_total{op=ping} = %v, want 1", got)
	}
	if got := r.value(t, "leadrouter_redis_errors_total", "op=load_config"); got != 1 {
		t.Errorf("redis_errors_total{op=load_config} = %v, want 1", got)
	}
	if got := r.value(t, "leadrouter_state_scrape_errors", ""); got != 1 {
		t.Errorf("state_scrape_errors = %v, want 1 with Redis gone", got)
	}
}

// TestDeadlinesAreTimeouts: a call whose deadline runs out on a healthy
// Redis (a client allowing too little time) is a timeout, not a Redis
// error, so LeadrouterRedisErrors stays quiet; a health ping that runs
// out is a timeout of op ping (LeadrouterRedisNotAnswering).
func TestDeadlinesAreTimeouts(t *testing.T) {
	emb, err := store.StartEmbedded()
	if err != nil {
		t.Fatal(err)
	}
	defer emb.Close()
	r := newReplica(t, emb.Redis, engine.SystemClock{}, metrics.Options{})
	emb.Observe(r.m)
	expired, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	if _, err := emb.LoadConfig(expired, "default"); !errors.Is(err, engine.ErrUnavailable) {
		t.Fatalf("LoadConfig past its deadline: %v, want ErrUnavailable", err)
	}
	if err := emb.Ping(expired); err == nil {
		t.Fatal("Ping past its deadline succeeded")
	}
	if got := r.value(t, "leadrouter_redis_timeouts_total", "op=load_config"); got != 1 {
		t.Errorf("redis_timeouts_total{op=load_config} = %v, want 1", got)
	}
	if got := r.value(t, "leadrouter_redis_errors_total", "op=load_config"); got != -1 {
		t.Errorf("redis_errors_total{op=load_config} = %v, want no such series (Redis is healthy)", got)
	}
	if got := r.value(t, "leadrouter_redis_timeouts_total", "op=ping"); got != 1 {
		t.Errorf("redis_timeouts_total{op=ping} = %v, want 1", got)
	}
	if got := r.value(t, "leadrouter_redis_errors_total", "op=ping"); got != 0 {
		t.Errorf("redis_errors_total{op=ping} = %v, want 0", got)
	}

	// A Redis that stops answering mid-call: the connection's read
	// deadline (the call's) passes, which is a timeout too.
	rs := redistest.StartServer(t)
	real, err := store.Open(context.Background(), rs.URL, store.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer real.Close()
	real.Observe(r.m)
	rs.Pause(t)
	defer rs.Resume(t)
	ctx, cancel2 := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel2()
	if _, err := real.LoadConfig(ctx, "default"); !errors.Is(err, engine.ErrUnavailable) {
		t.Fatalf("LoadConfig on a paused Redis: %v, want ErrUnavailable", err)
	}
	// A call without a deadline runs into the client's read timeout: a
	// connection error (i/o timeout), which is a timeout too.
	bare := store.New(redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", rs.Port),
		ReadTimeout: 200 * time.Millisecond, MaxRetries: -1}), "")
	defer bare.Close()
	bare.Observe(r.m)
	if _, err := bare.LoadConfig(context.Background(), "default"); !errors.Is(err, engine.ErrUnavailable) {
		t.Fatalf("LoadConfig past the read timeout: %v, want ErrUnavailable", err)
	}
	if got := r.value(t, "leadrouter_redis_timeouts_total", "op=load_config"); got != 3 {
		t.Errorf("redis_timeouts_total{op=load_config} = %v, want 3", got)
	}
	if got := r.value(t, "leadrouter_redis_errors_total", "op=load_config"); got != -1 {
		t.Errorf("redis_errors_total{op=load_config} = %v, want no such series", got)
	}
}
