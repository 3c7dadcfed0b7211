package engine_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/leadrouter/leadrouter/engine"
	"github.com/leadrouter/leadrouter/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// absentPoolConfig is one pool of size members of the given strategy in
// which every member but the last is absent, and a rule that sends every
// lead there. Leads are assigned, not offered. An absent member is AWAY
// or, offShift, AVAILABLE outside its working hours (absentAt is a Monday
// noon; they work Monday 00:00-01:00 only).
func absentPoolConfig(size int, strategy engine.Strategy, offShift bool) string {
	var b strings.Builder
	b.WriteString("reps:\n")
	for i := 0; i < size; i++ {
		fmt.Fprintf(&b, "  - id: r%04d\n", i)
		switch {
		case i == size-1:
		case offShift:
			b.WriteString("    working_hours: {monday: [\"00:00-01:00\"]}\n")
		default:
			b.WriteString("    initial_status: AWAY\n")
		}
	}
	fmt.Fprintf(&b, "pools:\n  - id: p\n    strategy: %s\n    accept_within: 0s\n    members:\n", strategy)
	for i := 0; i < size; i++ {
		fmt.Fprintf(&b, "      - rep_id: r%04d\n", i)
	}
	b.WriteString("rules:\n  - id: all\n    targets: [{pool_id: p}]\n")
	return b.String()
}

// absentAt is the benchmark's instant: Monday 2026-03-02 12:00 UTC.
var absentAt = time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)

// BenchmarkAbsentMembers is the decision in a pool where all members but one
// are absent, on a real Redis: 10 members (9 absent) against 2,000 (1,999
// absent), for each strategy, with the absent members AWAY (absent=away) or
// AVAILABLE outside their working hours (absent=off-shift: a follow-the-sun
// team at night). Besides ns/op it reports the time Redis spent in EVALSHA
// per decision (redis-us/op, from INFO commandstats, which counts inside
// Redis only) and the stored record's size (record-B, MEMORY USAGE of the
// last lead's hash). The goal (issue 19): the 2,000-member pool's
// redis-us/op within 3x the 10-member pool's, and its record under 8 KB.
func BenchmarkAbsentMembers(b *testing.B) {
	for _, absent := range []string{"away", "off-shift"} {
		for _, strategy := range []engine.Strategy{engine.StrategyRoundRobin, engine.StrategyWeightedRoundRobin, engine.StrategyLeastLoaded} {
			for _, size := range []int{10, 2000} {
				b.Run(fmt.Sprintf("absent=%s/%s/members=%d", absent, strategy, size), func(b *testing.B) {
					benchAbsent(b, absentPoolConfig(size, strategy, absent == "off-shift"))
				})
			}
		}
	}
}

func benchAbsent(b *testing.B, config string) {
	st := redistest.RealStore(b)
	ctx := context.Background()
	ws := redistest.Workspace(b)
	eng := engine.New(st, engine.WithLogger(quiet), engine.WithClock(engine.NewManualClock(absentAt)))
	cfg, err := engine.ParseConfigYAML(strings.NewReader(config))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := eng.ApplyConfig(ctx, ws, cfg, nil); err != nil {
		b.Fatal(err)
	}
	assign := func(id string) {
		a, _, err := eng.AssignLead(ctx, ws, engine.Lead{ID: id, Email: id + "@acme.com", Country: "DE"})
		if err != nil {
			b.Fatal(err)
		}
		if a.State != engine.StateAssigned {
			b.Fatalf("lead %s: %s (%s)", id, a.State, a.Reason)
		}
	}
	assign("warmup") // loads the script and the config
	before := evalshaUsec(ctx, b, st.Client())
	b.ReportAllocs()
	b.ResetTimer()
	last := ""
	for i := 0; i < b.N; i++ {
		last = fmt.Sprint("absent-", i)
		assign(last)
	}
	b.StopTimer()
	after := evalshaUsec(ctx, b, st.Client())
	b.ReportMetric((after.usec-before.usec)/float64(after.calls-before.calls), "redis-us/op")
	key := st.Prefix() + ":{" + ws + "}:lead:" + last
	n, err := st.Client().MemoryUsage(ctx, key, 0).Result()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(n), "record-B")
}

type cmdstat struct {
	calls int64
	usec  float64
}

// evalshaUsec reads EVALSHA's call count and total microseconds inside
// Redis from INFO commandstats.
func evalshaUsec(ctx context.Context, tb testing.TB, c redis.UniversalClient) cmdstat {
	var s cmdstat
	for _, kv := range strings.Split(infoValue(ctx, tb, c, "commandstats", "cmdstat_evalsha"), ",") {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "calls":
			s.calls, _ = strconv.ParseInt(v, 10, 64)
		case "usec":
			s.usec, _ = strconv.ParseFloat(v, 64)
		}
	}
	return s
}

// infoValue is the value of field in an INFO section ("" when absent).
func infoValue(ctx context.Context, tb testing.TB, c redis.UniversalClient, section, field string) string {
	tb.Helper()
	info, err := c.Info(ctx, section).Result()
	if err != nil {
		tb.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			return v
		}
	}
	return ""
}
