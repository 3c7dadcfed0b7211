package server_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/leadrouter/leadrouter/engine"
	pb "github.com/leadrouter/leadrouter/gen/leadrouter/v1"
	"github.com/leadrouter/leadrouter/internal/redistest"
	"github.com/leadrouter/leadrouter/server"
)

// scaleConfig builds a routing config of US postal territories: rules
// territories with 4-digit prefixes over instantTeams, and a default rule.
func scaleConfig(rules, reps, poolSize int) *engine.Config {
	cfg := instantTeams(reps, poolSize, "America/New_York")
	pools := len(cfg.Pools)
	for i := 0; i < rules-1; i++ {
		prefix := fmt.Sprintf("%04d", i*10000/(rules-1))
		cfg.Rules = append(cfg.Rules, engine.Rule{ID: fmt.Sprint("t", i),
			Match:   engine.Match{Countries: []string{"US"}, PostalPrefixes: []string{prefix}},
			Targets: []engine.Target{{PoolID: fmt.Sprint("p", i%pools)}}})
	}
	cfg.Rules = append(cfg.Rules, engine.Rule{ID: "default", Targets: []engine.Target{{PoolID: "p0"}}})
	return cfg
}

// BenchmarkAssignLeadConfigScale measures AssignLead end to end (gRPC over
// loopback, real Redis) with a small config (10 rules, 10 reps) and a large
// one (10,000 rules, 5,000 reps in 500 pools), interleaved call by call in
// one run so that machine noise hits both alike. It reports the mean and
// p99 of each and the ratio of the means (target: at most 1.3).
func BenchmarkAssignLeadConfigScale(b *testing.B) {
	in := start(b, redistest.RealStore(b))
	ctx := context.Background()
	small, large := redistest.Workspace(b), redistest.Workspace(b)
	for ws, cfg := range map[string]*engine.Config{small: scaleConfig(10, 10, 5), large: scaleConfig(10_000, 5_000, 10)} {
		actx, cancel := context.WithTimeout(ctx, time.Minute)
		if _, err := in.admin.ApplyRoutingConfig(actx, &pb.ApplyRoutingConfigRequest{Workspace: ws, Config: server.ConfigToProto(cfg)}); err != nil {
			b.Fatal(err)
		}
		cancel()
	}
	assign := func(ws string, i int) time.Duration {
		lead := &pb.Lead{Id: fmt.Sprint("b-", i), Email: fmt.Sprintf("p%d@example.com", i), Country: "US",
			PostalCode: fmt.Sprintf("%05d", (i*7919)%100000), Source: "demo_request"}
		t0 := time.Now()
		resp, err := in.routing.AssignLead(ctx, &pb.AssignLeadRequest{Workspace: ws, Lead: lead})
		d := time.Since(t0)
		if err != nil || resp.GetAssignment().GetState() != pb.AssignmentState_ASSIGNMENT_STATE_ASSIGNED {
			b.Fatalf("%s lead %d: %v %v", ws, i, err, resp.GetAssignment().GetState())
		}
		return d
	}
	for i := 0; i < 200; i++ { // warm up both
		assign(small, -i-1)
		assign(large, -i-1)
	}
	ds, dl := make([]time.Duration, 0, b.N), make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%2 == 0 {
			ds = append(ds, assign(small, i))
			dl = append(dl, assign(large, i))
		} else {
			dl = append(dl, assign(large, i))
			ds = append(ds, assign(small, i))
		}
	}
	b.StopTimer()
	mean := func(d []time.Duration) float64 {
		var sum time.Duration
		for _, x := range d {
			sum += x
		}
		return float64(sum.Microseconds()) / float64(len(d))
	}
	p99 := func(d []time.Duration) float64 {
		slices.Sort(d)
		return float64(d[len(d)*99/100].Microseconds())
	}
	b.ReportMetric(mean(ds), "small-µs/assign")
	b.ReportMetric(mean(dl), "large-µs/assign")
	b.ReportMetric(p99(ds), "small-p99-µs")
	b.ReportMetric(p99(dl), "large-p99-µs")
	b.ReportMetric(mean(dl)/mean(ds), "large/small")
}

// BenchmarkApplyLargeConfig applies a config of 10,000 reps (in 1,000 pools
// of 10) and 10,000 rules through gRPC, twice (a first apply, then the
// same again over its state), and reports the longest single Redis command
// of each from the slow log (longest-ms, reapply-longest-ms): a large
// apply runs as many short script calls, so no workspace waits long for
// another's apply (store/apply.go). Target: under 10 ms.
func BenchmarkApplyLargeConfig(b *testing.B) {
	st := redistest.RealStore(b)
	in := start(b, st)
	ctx := context.Background()
	c := st.Client()
	if err := c.ConfigSet(ctx, "slowlog-log-slower-than", "0").Err(); err != nil {
		b.Fatal(err)
	}
	if err := c.ConfigSet(ctx, "slowlog-max-len", "100000").Err(); err != nil {
		b.Fatal(err)
	}
	defer c.ConfigSet(ctx, "slowlog-log-slower-than", "10000")
	cfg := server.ConfigToProto(scaleConfig(10_000, 10_000, 10))
	longest := func() time.Duration {
		logs, err := c.SlowLogGet(ctx, 100000).Result()
		if err != nil {
			b.Fatal(err)
		}
		var max time.Duration
		for _, l := range logs {
			if len(l.Args) > 0 && strings.EqualFold(l.Args[0], "slowlog") {
				continue
			}
			max = maxDuration(max, l.Duration)
		}
		return max
	}
	var first, again time.Duration
	for i := 0; i < b.N; i++ {
		ws := redistest.Workspace(b)
		for round := 0; round < 2; round++ {
			if err := c.SlowLogReset(ctx).Err(); err != nil {
				b.Fatal(err)
			}
			actx, cancel := context.WithTimeout(ctx, time.Minute)
			_, err := in.admin.ApplyRoutingConfig(actx, &pb.ApplyRoutingConfigRequest{Workspace: ws, Config: cfg})
			cancel()
			if err != nil {
				b.Fatal(err)
			}
			if round == 0 {
				first = maxDuration(first, longest())
			} else {
				again = maxDuration(again, longest())
			}
		}
	}
	b.ReportMetric(float64(first.Microseconds())/1000, "longest-ms")
	b.ReportMetric(float64(again.Microseconds())/1000, "reapply-longest-ms")
}

func maxDuration(a, b time.Duration) time.Duration {
	if a > b {
		return a
	}
	return b
}
