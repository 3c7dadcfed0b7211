package main

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"github.com/leadrouter/leadrouter/engine"
	pb "github.com/leadrouter/leadrouter/gen/leadrouter/v1"
	"github.com/leadrouter/leadrouter/internal/pbconv"
	"github.com/leadrouter/leadrouter/internal/redistest"
	"github.com/leadrouter/leadrouter/metrics"
	"github.com/leadrouter/leadrouter/store"
)

func TestMain(m *testing.M) { os.Exit(redistest.Main(m)) }

// TestBenchConfig: the config is valid and nothing in it can hold a lead
// back (offers, caps, capacity, working hours).
func TestBenchConfig(t *testing.T) {
	cfg := benchConfig()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, p := range cfg.Pools {
		if p.Accept() != 0 {
			t.Errorf("pool %s offers (accept_within %v): leads would not be assigned at once", p.ID, p.Accept())
		}
		for _, m := range p.Members {
			if m.DailyCap != 0 {
				t.Errorf("pool %s caps %s", p.ID, m.RepID)
			}
		}
	}
	for _, r := range cfg.Reps {
		if r.MaxOpen != 0 || r.DailyCap != 0 || r.WorkingHours != nil || len(r.OutOfOffice) > 0 || r.InitialStatus != engine.StatusAvailable {
			t.Errorf("rep %s can become ineligible", r.ID)
		}
	}
}

// TestLeadsAreAssignedAcrossRules routes generated leads through the engine
// (embedded store): every one is valid and ASSIGNED, ids are unique, and
// the leads exercise most rules, pools and routes.
func TestLeadsAreAssignedAcrossRules(t *testing.T) {
	emb, err := store.StartEmbedded()
	if err != nil {
		t.Fatal(err)
	}
	defer emb.Close()
	eng := engine.New(emb, engine.WithLogger(slog.New(slog.DiscardHandler)))
	ctx := context.Background()
	if _, err := eng.ApplyConfig(ctx, "bench", benchConfig(), nil); err != nil {
		t.Fatal(err)
	}
	g := newLeadGen(1, "abcdef-a01-c008-w000")
	ids := map[string]bool{}
	rules, pools, routes := map[string]int{}, map[string]int{}, map[string]int{}
	n := 600
	if testing.Short() {
		n = 150
	}
	for range n {
		l := g.next(time.Now())
		if ids[l.Id] {
			t.Fatalf("duplicate lead id %s", l.Id)
		}
		ids[l.Id] = true
		a, dup, err := eng.AssignLead(ctx, "bench", pbconv.LeadFromProto(l))
		if err != nil {
			t.Fatalf("lead %+v: %v", l, err)
		}
		if dup || a.State != engine.StateAssigned {
			t.Fatalf("lead %s: state %s, duplicate %v: %s", l.Id, a.State, dup, a.Reason)
		}
		rules[a.RuleID]++
		pools[a.PoolID]++
		routes[a.Route]++
	}
	t.Logf("rules %v\npools %v\nroutes %v", rules, pools, routes)
	if len(rules) < 10 || len(pools) < 8 {
		t.Errorf("leads matched %d rules and %d pools; want a varied mix", len(rules), len(pools))
	}
	if routes["account owner"] == 0 || routes["sticky owner"] == 0 {
		t.Errorf("routes %v: want account-owner and sticky leads too", routes)
	}
}

// TestSameSeedSameLeads: both servers receive the same leads, of the same
// size, but for the ids' server letter.
func TestSameSeedSameLeads(t *testing.T) {
	a, b := newLeadGen(42, "abcdef-a01-c032-w007"), newLeadGen(42, "abcdef-b01-c032-w007")
	now := time.Now()
	for range 200 {
		la, lb := a.next(now), b.next(now)
		if proto.Size(la) != proto.Size(lb) {
			t.Fatalf("sizes differ: %d, %d", proto.Size(la), proto.Size(lb))
		}
		la.Id, la.Email = lb.Id, lb.Email
		if !proto.Equal(la, lb) {
			t.Fatalf("leads differ:\n%v\n%v", la, lb)
		}
	}
}

func TestQuantile(t *testing.T) {
	inf := math.Inf(1)
	// 100 observations: 50 in (0, 1ms], 40 in (1ms, 2ms], 9 in (2ms, 4ms], 1 above.
	h := &histogram{bounds: []float64{0.001, 0.002, 0.004, inf}, counts: []float64{50, 90, 99, 100}, count: 100, sum: 0.15}
	for _, c := range []struct{ q, want float64 }{
		{0.5, 0.001},     // the top of the first bucket
		{0.25, 0.0005},   // half way through the first bucket
		{0.7, 0.0015},    // half way through the second
		{0.99, 0.004},    // the top of the third
		{0.995, 0.004},   // in +Inf: the largest finite bound
		{0.945, 0.003},   // half way through the third
		{0.90, 0.002},    // the top of the second
		{0.0001, 2e-7},   // near zero
		{0.9999, 0.004},  // +Inf again
		{0.6, 0.00125},   // a quarter into the second
		{0.1, 0.0002},    // a fifth into the first
		{0.95, 0.003111}, // 5/9 into the third
	} {
		if got := h.quantile(c.q); math.Abs(got-c.want) > 1e-6 {
			t.Errorf("quantile(%v) = %v, want %v", c.q, got, c.want)
		}
	}
	before := &histogram{bounds: h.bounds, counts: []float64{40, 40, 40, 40}, count: 40, sum: 0.01}
	d := h.sub(before)
	if d.count != 60 || d.counts[0] != 10 || d.counts[3] != 60 || math.Abs(d.sum-0.14) > 1e-9 {
		t.Errorf("sub: %+v", d)
	}
	if !math.IsNaN((&histogram{bounds: h.bounds, counts: make([]float64, 4)}).quantile(0.5)) {
		t.Error("an empty histogram has no quantile")
	}
}

func TestPercentile(t *testing.T) {
	s := newSample()
	for i := 100; i >= 1; i-- {
		s.lat = append(s.lat, time.Duration(i)*time.Millisecond)
	}
	s.finish()
	for p, want := range map[float64]time.Duration{50: 50 * time.Millisecond, 99: 99 * time.Millisecond, 100: 100 * time.Millisecond, 0.1: time.Millisecond} {
		if got := s.pct(p); got != want {
			t.Errorf("pct(%v) = %v, want %v", p, got, want)
		}
	}
}

func TestComma(t *testing.T) {
	for n, want := range map[int]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -12345: "-12,345"} {
		if got := comma(n); got != want {
			t.Errorf("comma(%d) = %q, want %q", n, got, want)
		}
	}
}

// startTestBaseline serves the baseline in-process on a real listener and
// returns a client of it and the Redis it uses.
func startTestBaseline(t *testing.T) (pb.RoutingServiceClient, *redis.Client) {
	t.Helper()
	return startTestRef(t, false, nil)
}

// startTestRef serves the baseline, or the store floor, in-process, timing
// its calls in obs (nil: not timed), on a redis-server of the test's own:
// the tests count the commands Redis ran and read its slow log, and a
// shared Redis (REDIS_URL) runs other tests' commands too.
func startTestRef(t *testing.T, floor bool, obs *metrics.Metrics) (pb.RoutingServiceClient, *redis.Client) {
	t.Helper()
	opts, err := redis.ParseURL(redistest.StartServer(t).URL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	t.Cleanup(func() { rdb.Close() })
	ref, err := newRefServer(context.Background(), rdb, floor)
	if err != nil {
		t.Fatal(err)
	}
	ref.obs = obs
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	pb.RegisterRoutingServiceServer(srv, ref)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return pb.NewRoutingServiceClient(conn), rdb
}

// TestBaselineOneEvalsha: the baseline's AssignLead is exactly one EVALSHA
// (and the one command the script runs) per call.
func TestBaselineOneEvalsha(t *testing.T) {
	c, rdb := startTestBaseline(t)
	ctx := context.Background()
	g := newLeadGen(3, "abcdef-b01-c001-w000")
	if err := rdb.ConfigResetStat(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	const n = 50
	for range n {
		resp, err := c.AssignLead(ctx, &pb.AssignLeadRequest{Workspace: "bench", Lead: g.next(time.Now())})
		if err != nil {
			t.Fatal(err)
		}
		if resp.GetAssignment().GetState() != pb.AssignmentState_ASSIGNMENT_STATE_ASSIGNED {
			t.Fatalf("state %v", resp.GetAssignment().GetState())
		}
	}
	stats, err := redisCommandStats(ctx, rdb)
	if err != nil {
		t.Fatal(err)
	}
	for name, st := range stats {
		switch name {
		case "evalsha", "hincrby":
			if st.calls != n {
				t.Errorf("%s: %d calls for %d requests", name, st.calls, n)
			}
		case "info", "config|resetstat":
		default:
			t.Errorf("unexpected command %s (%d calls)", name, st.calls)
		}
	}
}

// TestStoreFloor: the store floor keeps each new lead with its rep (the
// lead readable from its record), takes the reps in rotation, counts each
// rep's open leads and emits one event per new lead, all in one EVALSHA;
// a repeat of a lead id gets its first rep and changes nothing. Every call
// is timed in the histogram leadrouterd uses.
func TestStoreFloor(t *testing.T) {
	reg := prometheus.NewRegistry()
	c, rdb := startTestRef(t, true, metrics.New(reg, metrics.Options{}))
	const prefix = storeFloorPrefix
	ctx := context.Background()
	g := newLeadGen(5, "abcdef-f01-c001-w000")
	if err := rdb.ConfigResetStat(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	const n = 70 // past one turn of the rotation
	var first *pb.Lead
	var firstRep string
	for i := range n {
		lead := g.next(time.Now())
		resp, err := c.AssignLead(ctx, &pb.AssignLeadRequest{Workspace: "bench", Lead: lead})
		if err != nil {
			t.Fatal(err)
		}
		a := resp.GetAssignment()
		if want := fmt.Sprintf("rep-%d", (i+1)%storeFloorReps); a.GetState() != pb.AssignmentState_ASSIGNMENT_STATE_ASSIGNED || a.GetRepId() != want || a.GetLeadId() != lead.GetId() {
			t.Fatalf("lead %d: %v %q %q, want ASSIGNED to %s", i, a.GetState(), a.GetLeadId(), a.GetRepId(), want)
		}
		if i == 0 {
			first, firstRep = lead, a.GetRepId()
		}
	}
	again, err := c.AssignLead(ctx, &pb.AssignLeadRequest{Workspace: "bench", Lead: first})
	if err != nil || again.GetAssignment().GetRepId() != firstRep {
		t.Fatalf("repeat of the first lead: %v, %v; want %s", again, err, firstRep)
	}
	stats, err := redisCommandStats(ctx, rdb) // before this test's own reads
	if err != nil {
		t.Fatal(err)
	}
	rec, err := rdb.HGetAll(ctx, prefix+"lead:"+first.GetId()).Result()
	if err != nil {
		t.Fatal(err)
	}
	var stored pb.Lead
	if err := proto.Unmarshal([]byte(rec["lead"]), &stored); err != nil || !proto.Equal(&stored, first) || rec["rep"] != firstRep || rec["state"] != "ASSIGNED" {
		t.Fatalf("record %v (lead %v, %v), want the first lead assigned to %s", rec, &stored, err, firstRep)
	}
	if events, err := rdb.XLen(ctx, prefix+"events").Result(); err != nil || events != n {
		t.Errorf("%d events (%v), want %d", events, err, n)
	}
	// The last event is the last new lead's (lead n-1, on rep n % reps).
	last, err := rdb.XRevRangeN(ctx, prefix+"events", "+", "-", 1).Result()
	if want := fmt.Sprintf("rep-%d", n%storeFloorReps); err != nil || len(last) != 1 ||
		last[0].Values["kind"] != "assigned" || last[0].Values["rep"] != want || last[0].Values["lead"] == first.GetId() {
		t.Errorf("last event %v (%v), want an assigned event of the last lead to %s", last, err, want)
	}
	open, err := rdb.HGetAll(ctx, prefix+"open").Result()
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, v := range open {
		k, _ := strconv.Atoi(v)
		total += k
	}
	if len(open) != storeFloorReps || total != n {
		t.Errorf("open counts over %d reps sum to %d, want %d reps and %d", len(open), total, storeFloorReps, n)
	}
	// 70 leads over 60 reps: the first ten reps twice (the repeat adds
	// nothing), the others once.
	if open[firstRep] != "2" || open[fmt.Sprintf("rep-%d", n%storeFloorReps+1)] != "1" {
		t.Errorf("open counts %v: want 2 for %s and 1 from rep-%d on", open, firstRep, n%storeFloorReps+1)
	}
	want := map[string]int64{"evalsha": n + 1, "hget": n + 1, "hincrby": 2 * n, "hset": n, "xadd": n}
	for name, st := range stats {
		switch name {
		case "info", "config|resetstat":
		default:
			if st.calls != want[name] {
				t.Errorf("%s: %d calls, want %d", name, st.calls, want[name])
			}
			delete(want, name)
		}
	}
	for name := range want {
		t.Errorf("%s: not run", name)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var timed uint64
	for _, mf := range mfs {
		if mf.GetName() == assignDurationMetric && len(mf.GetMetric()) == 1 {
			timed = mf.GetMetric()[0].GetHistogram().GetSampleCount()
		}
	}
	if timed != n+1 {
		t.Errorf("%d calls timed in %s, want %d", timed, assignDurationMetric, n+1)
	}
}

// TestFloorBudget: the line that says what the throughput target leaves
// the decision on top of the store floor.
func TestFloorBudget(t *testing.T) {
	for _, c := range []struct {
		af, fb float64
		want   string
	}{
		// AssignLead at 0.40x the floor's req/s, the floor at 0.84x the
		// baseline's: 2.5x the floor's time; 0.75x allows 0.84/0.75.
		{0.40, 0.84, "2.50x the store floor's time (+150%); the 0.75x target allows at most 1.12x (+12%)"},
		{0.80, 0.75, "1.25x the store floor's time (+25%); the 0.75x target allows at most 1.00x (+0%)"},
		{0.40, 0.70, "2.50x the store floor's time (+150%); the 0.75x target allows nothing on top: the store floor alone is 0.70x the baseline"},
	} {
		if got := floorBudget(c.af, c.fb); got != c.want {
			t.Errorf("floorBudget(%v, %v) = %q, want %q", c.af, c.fb, got, c.want)
		}
	}
}

// TestLoops runs both load generators briefly against the baseline.
func TestLoops(t *testing.T) {
	c, _ := startTestBaseline(t)
	clients := []pb.RoutingServiceClient{c, c}
	ctx := context.Background()
	gens := func(n int, letter byte) []*leadGen {
		gs := make([]*leadGen, n)
		for w := range gs {
			gs[w] = newLeadGen(uint64(w), fmt.Sprintf("abcdef-%c01-c004-w%03d", letter, w))
		}
		return gs
	}
	s := closedLoop(ctx, clients, &pb.AssignLeadRequest{Workspace: "bench"}, 200*time.Millisecond, gens(4, 'b'))
	if s.errs > 0 || s.n() == 0 || s.elapsed < 200*time.Millisecond || s.pct(50) > s.pct(99) {
		t.Errorf("closed loop: %d calls, %d failed (%v), %v, p50 %v p99 %v", s.n(), s.errs, s.firstErr, s.elapsed, s.pct(50), s.pct(99))
	}
	if s.notAssigned() != 0 || s.respSize() == 0 {
		t.Errorf("closed loop: %d not assigned, response %d B", s.notAssigned(), s.respSize())
	}
	o := openLoop(ctx, clients, &pb.AssignLeadRequest{Workspace: "bench"}, 500, 300*time.Millisecond, gens(4, 'c'))
	if o.errs > 0 || o.sent != 150 || o.n() != 150 || o.service.n() != 150 {
		t.Errorf("open loop: %d sent, %d answered, %d failed (%v)", o.sent, o.n(), o.errs, o.firstErr)
	}
	if o.pct(99) < o.service.pct(0.1) {
		t.Errorf("open loop: latency from the schedule %v below the service time %v", o.pct(99), o.service.pct(0.1))
	}
}

// TestStalls: a command that runs past the threshold is reported with its
// name and duration, fast commands are not, and watching again starts
// from an empty log.
func TestStalls(t *testing.T) {
	_, rdb := startTestBaseline(t)
	ctx := context.Background()
	busy := func() {
		// A script that spins for 5 ms of Redis's time.
		const spin = `local t = redis.call('TIME')
local start = t[1] * 1000000 + t[2]
repeat t = redis.call('TIME') until t[1] * 1000000 + t[2] - start >= 5000
return 1`
		if err := rdb.Eval(ctx, spin, nil).Err(); err != nil {
			t.Fatal(err)
		}
	}
	busy() // before watching: must not be counted
	read, err := watchStalls(ctx, rdb)
	if err != nil {
		t.Fatal(err)
	}
	for range 100 {
		if err := rdb.Ping(ctx).Err(); err != nil {
			t.Fatal(err)
		}
	}
	busy()
	st, err := read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Exactly the one EVAL since the watch began. (A PING, or a TIME of
	// the spinning script, is counted only if this machine stalled Redis
	// during it, which it may.)
	if st.byCmd["EVAL"] != 1 || st.n != 1+st.byCmd["PING"]+st.byCmd["TIME"] || st.longest < 5*time.Millisecond {
		t.Fatalf("stalls = %+v, want the one EVAL of at least 5ms", st)
	}
	if got := st.String(); !strings.Contains(got, " longest ") || !strings.Contains(got, "EVAL 1") {
		t.Errorf("String() = %q", got)
	}
	if read, err = watchStalls(ctx, rdb); err != nil {
		t.Fatal(err)
	}
	if st, err = read(ctx); err != nil || st.n != 0 || st.String() != "none" {
		t.Errorf("after a new watch: %+v, %v; want none", st, err)
	}
}
