package store_test

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/leadrouter/leadrouter/engine"
	"github.com/leadrouter/leadrouter/internal/redistest"
)

// BenchmarkSizing measures the Redis memory of what a workspace holds, on
// a redis-server of its own (INFO memory used_memory deltas over
// thousands of items; the events stream by MEMORY USAGE ... SAMPLES 0):
// bytes per rep (config, presence, profile, pool membership), per open
// assignment (lead record, counters, sticky key; its events apart), per
// queued lead, and per retained event. Run it once:
//
//	go test -run '^$' -bench Sizing -benchtime 1x ./store
func BenchmarkSizing(b *testing.B) {
	const (
		reps  = 2000
		leads = 5000
	)
	srv := redistest.StartServer(b)
	st := redistest.OpenStore(b, srv.URL)
	ctx := context.Background()
	eng := engine.New(st, engine.WithLogger(slog.New(slog.DiscardHandler)))
	used := func() float64 {
		info, err := st.Client().Info(ctx, "memory").Result()
		if err != nil {
			b.Fatal(err)
		}
		for _, line := range strings.Split(info, "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
				n, _ := strconv.ParseFloat(v, 64)
				return n
			}
		}
		b.Fatal("no used_memory in INFO memory")
		return 0
	}
	events := func(ws string) (bytes, n float64) {
		key := st.Prefix() + ":{" + ws + "}:events"
		m, err := st.Client().MemoryUsage(ctx, key, 0).Result()
		if err != nil && err != redis.Nil {
			b.Fatal(err)
		}
		l, err := st.Client().XLen(ctx, key).Result()
		if err != nil {
			b.Fatal(err)
		}
		return float64(m), float64(l)
	}
	config := func(status engine.RepStatus) *engine.Config {
		cfg := &engine.Config{}
		for p := 0; p < reps/10; p++ {
			pool := engine.Pool{ID: fmt.Sprint("pool-", p), AcceptWithin: new(engine.Duration)}
			for j := 0; j < 10; j++ {
				id := fmt.Sprintf("rep-%04d", p*10+j)
				cfg.Reps = append(cfg.Reps, engine.Rep{ID: id, Timezone: "America/New_York", InitialStatus: status})
				pool.Members = append(pool.Members, engine.Member{RepID: id})
			}
			cfg.Pools = append(cfg.Pools, pool)
		}
		cfg.Rules = []engine.Rule{{ID: "all", Targets: []engine.Target{{PoolID: "pool-0"}}}}
		return cfg
	}
	lead := func(i int) engine.Lead {
		return engine.Lead{ID: fmt.Sprintf("lead-%06d", i), Email: fmt.Sprintf("person%06d@example.com", i),
			FirstName: "Ada", LastName: "Lovelace", Company: "Example Inc", CompanyDomain: "example.com",
			Country: "US", Region: "CA", PostalCode: "94107", Industry: "software", EmployeeCount: 250,
			Source: "demo_request", Product: "platform", Language: "en", SubmittedAt: time.Now()}
	}
	fill := func(ws string, status engine.RepStatus, wantState engine.State) (perRep, perLead, perEvent float64) {
		m0 := used()
		if _, err := eng.ApplyConfig(ctx, ws, config(status), nil); err != nil {
			b.Fatal(err)
		}
		m1 := used()
		e1, _ := events(ws)
		for i := 0; i < leads; i++ {
			a, _, err := eng.AssignLead(ctx, ws, lead(i))
			if err != nil || a.State != wantState {
				b.Fatalf("lead %d: %v %v, want %s", i, err, a, wantState)
			}
		}
		m2 := used()
		e2, n2 := events(ws)
		return (m1 - m0 - e1) / reps, (m2 - m1 - (e2 - e1)) / leads, e2 / n2
	}
	for i := 0; i < b.N; i++ {
		perRep, perOpen, perEvent := fill(redistest.Workspace(b), engine.StatusAvailable, engine.StateAssigned)
		_, perQueued, _ := fill(redistest.Workspace(b), engine.StatusAway, engine.StateQueued)
		b.ReportMetric(perRep, "B/rep")
		b.ReportMetric(perOpen, "B/open-assignment")
		b.ReportMetric(perQueued, "B/queued-lead")
		b.ReportMetric(perEvent, "B/event")
	}
}
