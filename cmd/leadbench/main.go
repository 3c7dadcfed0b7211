// Command leadbench answers "how fast, compared to what?" for leadrouter.
//
// It starts its own redis-server, a leadrouterd and two reference gRPC
// servers (this binary's baseline-server subcommand, baseline.go): the
// baseline, AssignLead doing exactly one Redis EVALSHA and nothing else, the
// practical floor for any design that keeps its state in Redis; and the
// store floor, one EVALSHA that only stores the lead as any design must. It
// applies a realistic routing config and loads the servers with the same
// realistic leads through real gRPC clients:
//
//   - closed loop, per concurrency (default 8, 32, 128 workers over a few
//     shared connections): requests/s, p50 and p99 of AssignLead and of the
//     references, and their ratios. They alternate in short segments
//     (AssignLead, baseline, store floor, store floor, baseline,
//     AssignLead, ...) so that machine noise hits them alike;
//   - the HTTP edge: AssignLead over HTTP/JSON against gRPC on the same
//     leadrouterd at the target concurrency (target: 0.7x gRPC's req/s);
//   - open loop at fixed rates (default 1,000 and 5,000 leads/s), against
//     AssignLead and the store floor in turn: the achieved rate,
//     client-side latency, and the server-side time from each one's
//     leadrouter_assign_duration_seconds histogram (leadrouterd's decision
//     time), differenced over the step.
//
// Run it from the module root (make bench does). Any failed call fails the
// run; missed targets are marked FAIL (and fail the run with --strict).
//
// Usage:
//
//	leadbench [flags]                                   run the benchmark
//	leadbench baseline-server --redis-url U --listen A  serve the baseline
//	  [--store-floor]                                   (or the store floor)
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode"

	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/leadrouter/leadrouter/engine"
	pb "github.com/leadrouter/leadrouter/gen/leadrouter/v1"
	"github.com/leadrouter/leadrouter/server"
)

// The targets of the benchmark issue.
const (
	minThroughputRatio = 0.75             // AssignLead req/s over the baseline's, at the target concurrency
	maxP99Ratio        = 1.5              // AssignLead p99 over the baseline's p99, at the target concurrency
	maxDecisionP99     = time.Millisecond // server-side decision time p99 at the fixed rate
)

type options struct {
	view              pb.AssignmentView
	leadrouterd       string
	concurrency       []int
	targetConcurrency int
	duration, warmup  time.Duration
	segments, conns   int
	rates             []float64
	targetRate        float64
	rateDuration      time.Duration
	rateWorkers       int
	workspace         string
	profileDir        string
	profileDuration   time.Duration
	strict            bool
	keepTemp          bool
	configOnly        bool
	storeFloor        bool
	edge              bool
}

func main() {
	var err error
	if len(os.Args) > 1 && os.Args[1] == "baseline-server" {
		err = runBaselineServer(os.Args[2:])
	} else {
		err = run(os.Args[1:], os.Stdout)
	}
	switch {
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case err != nil:
		fmt.Fprintln(os.Stderr, "leadbench:", err)
		os.Exit(1)
	}
}

// request is the AssignLead request every load step sends, but its lead.
func (o *options) request() *pb.AssignLeadRequest {
	return &pb.AssignLeadRequest{Workspace: o.workspace, View: o.view}
}

func parseFlags(args []string) (*options, error) {
	var o options
	fs := flag.NewFlagSet("leadbench", flag.ContinueOnError)
	fs.StringVar(&o.leadrouterd, "leadrouterd", "", "leadrouterd binary (empty: go build ./cmd/leadrouterd into a temporary directory)")
	conc := fs.String("concurrency", "8,32,128", "closed-loop concurrencies (workers), comma-separated")
	fs.IntVar(&o.targetConcurrency, "target-concurrency", 32, "concurrency at which the throughput and p99 targets are judged")
	fs.DurationVar(&o.duration, "duration", 5*time.Second, "measured time per server per concurrency")
	fs.IntVar(&o.segments, "segments", 2, "segments each server's measured time is split into, the servers in turn, the order reversed every other segment (ABBA...)")
	fs.DurationVar(&o.warmup, "warmup", time.Second, "unmeasured load per server before each concurrency")
	fs.IntVar(&o.conns, "conns", 4, "gRPC connections per server, shared by the workers (worker i uses connection i mod conns)")
	rates := fs.String("rates", "1000,5000", "fixed-rate steps: calls per second to AssignLead (and the store floor), comma-separated (empty: none)")
	fs.Float64Var(&o.targetRate, "target-rate", 5000, "rate at which the decision-time target is judged")
	fs.DurationVar(&o.rateDuration, "rate-duration", 10*time.Second, "length of each fixed-rate step")
	fs.IntVar(&o.rateWorkers, "rate-workers", 256, "fixed-rate steps: workers taking the scheduled calls")
	fs.StringVar(&o.workspace, "workspace", "bench", "workspace the config is applied to and the leads are sent to")
	fs.StringVar(&o.profileDir, "profile", "", "directory for CPU profiles of leadrouterd (needs its --pprof) and of leadbench, under AssignLead load at the target concurrency")
	fs.DurationVar(&o.profileDuration, "profile-duration", 10*time.Second, "length of the --profile run")
	fs.BoolVar(&o.strict, "strict", false, "exit 1 when a target is missed (failed calls always do)")
	fs.BoolVar(&o.keepTemp, "keep", false, "keep the temporary directory (the Redis log; the leadrouterd binary when leadbench built it)")
	fs.BoolVar(&o.configOnly, "print-config", false, "print the routing config as YAML and exit")
	view := fs.String("view", "full", "the AssignmentView AssignLead answers with: full (trace, history, lead) or basic (the decision)")
	fs.BoolVar(&o.edge, "http", true, "also compare AssignLead over the HTTP edge (HTTP/JSON) with gRPC, at the target concurrency")
	fs.BoolVar(&o.storeFloor, "store-floor", true, "also measure the store floor, a reference server that only stores each lead (closed loop and fixed rates)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	switch *view {
	case "full":
		o.view = pb.AssignmentView_ASSIGNMENT_VIEW_FULL
	case "basic":
		o.view = pb.AssignmentView_ASSIGNMENT_VIEW_BASIC
	default:
		return nil, fmt.Errorf("--view: %q is not full or basic", *view)
	}
	for _, f := range strings.Split(*conc, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("--concurrency: %q is not a positive integer", f)
		}
		o.concurrency = append(o.concurrency, n)
	}
	for _, f := range strings.Split(*rates, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		r, err := strconv.ParseFloat(f, 64)
		if err != nil || r <= 0 {
			return nil, fmt.Errorf("--rates: %q is not a positive number", f)
		}
		o.rates = append(o.rates, r)
	}
	switch {
	case o.segments < 1:
		return nil, errors.New("--segments must be at least 1")
	case o.conns < 1:
		return nil, errors.New("--conns must be at least 1")
	case o.duration <= 0:
		return nil, errors.New("--duration must be positive")
	case len(o.rates) > 0 && (o.rateDuration <= 0 || o.rateWorkers < 1):
		return nil, errors.New("--rate-duration and --rate-workers must be positive")
	}
	return &o, nil
}

// The servers' names, in the report and as keys of a row's CPU and Redis
// readings.
const (
	assignName   = "AssignLead"
	baselineName = "baseline"
	floorName    = "store floor"
)

// target is one server under load.
type target struct {
	name    string
	letter  byte // in lead ids, so each server's leads are distinct
	conns   []*grpc.ClientConn
	clients []pb.RoutingServiceClient // one per connection
	pid     int
	metrics string // URL of its leadrouter_assign_duration_seconds; "" for none
}

func (t *target) close() {
	for _, c := range t.conns {
		c.Close()
	}
}

// bench holds what one run set up.
type bench struct {
	o        *options
	out      io.Writer
	runID    string
	assign   *target
	baseline *target
	floor    *target // the store floor; nil when not measured
	daemon   *daemon
	redis    *proc
	rdb      *redis.Client // for INFO commandstats
}

func run(args []string, out io.Writer) error {
	o, err := parseFlags(args)
	if err != nil {
		return err
	}
	cfg := benchConfig()
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("the benchmark's routing config: %w", err)
	}
	if o.configOnly {
		y, err := cfg.YAML()
		if err != nil {
			return err
		}
		_, err = out.Write(y)
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	tmp, err := os.MkdirTemp("", "leadbench-")
	if err != nil {
		return err
	}
	if o.keepTemp {
		fmt.Fprintln(os.Stderr, "leadbench: temporary files in", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}
	if o.leadrouterd == "" {
		if o.leadrouterd, err = buildDaemon(tmp); err != nil {
			return err
		}
	}
	b := &bench{o: o, out: out, runID: randomID()}
	printEnvironment(out, o)

	redisLog, err := os.Create(filepath.Join(tmp, "redis.log"))
	if err != nil {
		return err
	}
	defer redisLog.Close()
	rp, redisURL, err := startRedis(tmp, redisLog)
	if err != nil {
		return err
	}
	defer rp.stop()
	b.redis = rp
	ropts, err := redis.ParseURL(redisURL)
	if err != nil {
		return err
	}
	b.rdb = redis.NewClient(ropts)
	defer b.rdb.Close()
	if b.daemon, err = startDaemon(o.leadrouterd, redisURL, os.Stderr); err != nil {
		return err
	}
	defer b.daemon.stop()
	bp, baselineAddr, _, err := startRef(redisURL, false, os.Stderr)
	if err != nil {
		return err
	}
	defer bp.stop()

	if b.assign, err = dialTarget(assignName, 'a', b.daemon.addr, o.conns, b.daemon.pid()); err != nil {
		return err
	}
	defer b.assign.close()
	b.assign.metrics = "http://" + b.daemon.metricsAddr + "/metrics"
	if b.baseline, err = dialTarget(baselineName, 'b', baselineAddr, o.conns, bp.pid()); err != nil {
		return err
	}
	defer b.baseline.close()
	if o.storeFloor {
		fp, floorAddr, floorMetrics, err := startRef(redisURL, true, os.Stderr)
		if err != nil {
			return err
		}
		defer fp.stop()
		if b.floor, err = dialTarget(floorName, 'f', floorAddr, o.conns, fp.pid()); err != nil {
			return err
		}
		b.floor.metrics = floorMetrics
		defer b.floor.close()
	}
	if err := applyConfig(ctx, b.daemon.addr, o.workspace, cfg); err != nil {
		return err
	}
	fmt.Fprintf(out, "routing config: %d reps, %d pools, %d rules, %d accounts; every pool assigns at once (accept_within 0), no caps or hours (leadbench --print-config shows it)\n",
		len(cfg.Reps), len(cfg.Pools), len(cfg.Rules), len(cfg.Accounts))
	fmt.Fprintf(out, "load: each worker sends one AssignLead (view %s) after another; %d gRPC connections per server, worker i on connection i mod %d\n\n",
		strings.TrimPrefix(o.view.String(), "ASSIGNMENT_VIEW_"), o.conns, o.conns)

	v := &verdict{}
	var rows []row
	for _, c := range o.concurrency {
		r, err := b.step(ctx, c)
		if err != nil {
			return err
		}
		r.print(out, c == o.targetConcurrency)
		rows = append(rows, r)
		for _, sd := range r.sides() {
			v.errors += sd.s.errs
		}
		if c == o.targetConcurrency {
			v.throughput, v.p99, v.judged = r.rpsRatio(), r.p99Ratio(), true
		}
	}
	printSummary(out, rows, o.targetConcurrency)
	if o.edge {
		if err := b.edgeStep(ctx, o.targetConcurrency); err != nil {
			return err
		}
	}

	for i, rate := range o.rates {
		// AssignLead and the store floor in turn, the first alternating
		// from rate to rate.
		order := []*target{b.assign}
		if b.floor != nil {
			order = append(order, b.floor)
			if i%2 == 1 {
				slices.Reverse(order)
			}
		}
		var rs *openSample
		var dec *histogram
		for _, t := range order {
			s, h, st, err := b.rateStep(ctx, t, i, rate)
			if err != nil {
				return err
			}
			printRate(out, o, t.name, rate, s, h, st)
			v.errors += s.errs
			if t == b.assign {
				rs, dec = s, h
			}
		}
		if rate == o.targetRate {
			v.achieved, v.rateJudged = float64(rs.n())/rs.duration.Seconds(), true
			if dec != nil && dec.count > 0 {
				v.decisionP99, v.decisionJudged = seconds(dec.quantile(0.99)), true
			}
		}
	}
	if o.profileDir != "" {
		if err := b.profile(ctx); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "load average at the end: %s\n", loadAverage())
	return v.print(out, o)
}

// dialTarget opens conns connections to a server.
func dialTarget(name string, letter byte, addr string, conns, pid int) (*target, error) {
	t := &target{name: name, letter: letter, pid: pid}
	for range conns {
		cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return nil, err
		}
		cc.Connect()
		t.conns = append(t.conns, cc)
		t.clients = append(t.clients, pb.NewRoutingServiceClient(cc))
	}
	return t, nil
}

// applyConfig applies the routing config through AdminService, as an
// operator's tooling would.
func applyConfig(ctx context.Context, addr, ws string, cfg *engine.Config) error {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	actx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_, err = pb.NewAdminServiceClient(conn).ApplyRoutingConfig(actx, &pb.ApplyRoutingConfigRequest{
		Workspace: ws, Config: server.ConfigToProto(cfg),
	})
	if err != nil {
		return fmt.Errorf("apply the routing config: %w", err)
	}
	return nil
}

// row is one concurrency's result: AssignLead (a), the baseline (b) and
// the store floor (f, nil when not measured).
type row struct {
	conc, conns     int
	segment, warmup time.Duration
	segments        int
	a, b, f         *sample
	decision        *histogram // leadrouterd's decision times during a's segments
	cpu             map[string]cpuUse
	redis           map[string]map[string]cmdStat // Redis commands run while each server was under load
}

// cpuUse is CPU time used by the server under load, Redis and leadbench;
// ok is false where /proc cannot tell.
type cpuUse struct {
	server, redis, client time.Duration
	ok                    bool
}

func (c cpuUse) sub(o cpuUse) cpuUse {
	return cpuUse{server: c.server - o.server, redis: c.redis - o.redis, client: c.client - o.client, ok: c.ok && o.ok}
}

// add accumulates; the zero cpuUse is the start of a sum.
func (c cpuUse) add(o cpuUse) cpuUse {
	return cpuUse{server: c.server + o.server, redis: c.redis + o.redis, client: c.client + o.client,
		ok: o.ok && (c.ok || c == cpuUse{})}
}

// rpsRatio and p99Ratio compare AssignLead with the baseline: the targets.
func (r row) rpsRatio() float64 { rps, _ := ratios(r.a, r.b); return rps }
func (r row) p99Ratio() float64 { _, p99 := ratios(r.a, r.b); return p99 }

// ratios compares two servers' req/s and p99.
func ratios(x, y *sample) (rps, p99 float64) {
	return x.rps() / y.rps(), float64(x.pct(99)) / float64(y.pct(99))
}

// targets are the servers a closed-loop step loads, in the first
// segment's order.
func (b *bench) targets() []*target {
	ts := []*target{b.assign, b.baseline}
	if b.floor != nil {
		ts = append(ts, b.floor)
	}
	return ts
}

// step measures one concurrency: a warm-up of each server, then segments
// taking the servers in turn, the order reversed every other segment
// (A B F F B A ...), each worker sending the same sequence of leads to
// every server.
func (b *bench) step(ctx context.Context, conc int) (row, error) {
	o := b.o
	seg := o.duration / time.Duration(o.segments)
	r := row{conc: conc, conns: o.conns, segment: seg, warmup: o.warmup, segments: o.segments,
		a: newSample(), b: newSample(), cpu: map[string]cpuUse{}, redis: map[string]map[string]cmdStat{}}
	samples := map[*target]*sample{b.assign: r.a, b.baseline: r.b}
	if b.floor != nil {
		r.f = newSample()
		samples[b.floor] = r.f
	}
	if o.warmup > 0 {
		for _, t := range b.targets() {
			w := closedLoop(ctx, t.clients, o.request(), o.warmup, b.gens(conc, 0, t.letter))
			if w.errs > 0 {
				return r, fmt.Errorf("%s warm-up at concurrency %d: %d failed calls, first: %v", t.name, conc, w.errs, w.firstErr)
			}
		}
	}
	for i := range o.segments {
		order := b.targets()
		if i%2 == 1 {
			slices.Reverse(order)
		}
		for _, t := range order {
			if ctx.Err() != nil {
				return r, ctx.Err()
			}
			var before *histogram
			var err error
			if t == b.assign {
				if before, err = scrapeHistogram(ctx, t.metrics, assignDurationMetric); err != nil {
					return r, err
				}
			}
			stats0, err := redisCommandStats(ctx, b.rdb)
			if err != nil {
				return r, err
			}
			cpu0 := b.cpuNow(t)
			s := closedLoop(ctx, t.clients, o.request(), seg, b.gens(conc, i+1, t.letter))
			u := b.cpuNow(t).sub(cpu0)
			stats1, err := redisCommandStats(ctx, b.rdb)
			if err != nil {
				return r, err
			}
			r.redis[t.name] = subStats(r.redis[t.name], stats1, stats0)
			r.cpu[t.name] = r.cpu[t.name].add(u)
			samples[t].merge(s)
			if t == b.assign {
				after, err := scrapeHistogram(ctx, t.metrics, assignDurationMetric)
				if err != nil {
					return r, err
				}
				if after != nil { // nil: this leadrouterd does not export it
					r.decision = after.sub(before).add(r.decision)
				}
			}
		}
	}
	for _, s := range samples {
		s.finish()
	}
	return r, nil
}

// gens returns one lead generator per worker for a segment (0: the
// warm-up). Generators of the same concurrency, segment and worker produce
// the same leads for both servers; only the ids' server letter differs.
func (b *bench) gens(conc, segment int, letter byte) []*leadGen {
	gs := make([]*leadGen, conc)
	for w := range gs {
		seed := uint64(conc)<<32 | uint64(segment)<<16 | uint64(w)
		gs[w] = newLeadGen(seed, fmt.Sprintf("%s-%c%02d-c%03d-w%03d", b.runID, letter, segment, conc, w))
	}
	return gs
}

// cpuNow returns the CPU time used so far by the server under load, Redis
// and this process.
func (b *bench) cpuNow(t *target) cpuUse {
	s, ok1 := cpuTime(t.pid)
	r, ok2 := cpuTime(b.redis.pid())
	c, ok3 := cpuTime(os.Getpid())
	return cpuUse{server: s, redis: r, client: c, ok: ok1 && ok2 && ok3}
}

// rateStep runs fixed-rate step i at rate calls/s against t and returns
// its sample, its server-side call-time histogram over the step (nil when
// t exports none) and the Redis commands that stalled during it.
func (b *bench) rateStep(ctx context.Context, t *target, i int, rate float64) (*openSample, *histogram, *stalls, error) {
	o := b.o
	var before *histogram
	var err error
	if t.metrics != "" {
		if before, err = scrapeHistogram(ctx, t.metrics, assignDurationMetric); err != nil {
			return nil, nil, nil, err
		}
	}
	readStalls, err := watchStalls(ctx, b.rdb)
	if err != nil {
		return nil, nil, nil, err
	}
	gens := make([]*leadGen, o.rateWorkers)
	for w := range gens {
		// The server's letter in capitals: apart from the closed loop's ids.
		id := fmt.Sprintf("%s-%c%02d-c000-w%03d", b.runID, unicode.ToUpper(rune(t.letter)), i, w)
		gens[w] = newLeadGen(uint64(1+i)<<48|uint64(w), id)
	}
	s := openLoop(ctx, t.clients, o.request(), rate, o.rateDuration, gens)
	st, err := readStalls(ctx)
	if err != nil || t.metrics == "" {
		return s, nil, st, err
	}
	after, err := scrapeHistogram(ctx, t.metrics, assignDurationMetric)
	if err != nil || after == nil {
		return s, nil, st, err
	}
	return s, after.sub(before), st, nil
}

// profile records CPU profiles of leadrouterd and of leadbench itself (the
// client side) while AssignLead runs at the target concurrency.
func (b *bench) profile(ctx context.Context) error {
	if !b.daemon.pprof {
		fmt.Fprintln(b.out, "profile: skipped, this leadrouterd has no --pprof flag")
		return nil
	}
	if err := os.MkdirAll(b.o.profileDir, 0o755); err != nil {
		return err
	}
	server := filepath.Join(b.o.profileDir, "leadrouterd.cpu.pprof")
	client := filepath.Join(b.o.profileDir, "leadbench.cpu.pprof")
	secs := int(b.o.profileDuration.Seconds())
	errc := make(chan error, 1)
	go func() {
		url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", b.daemon.metricsAddr, secs)
		errc <- download(ctx, url, server)
	}()
	cf, err := os.Create(client)
	if err != nil {
		return err
	}
	defer cf.Close()
	if err := pprof.StartCPUProfile(cf); err != nil {
		return err
	}
	s := closedLoop(ctx, b.assign.clients, b.o.request(), b.o.profileDuration,
		b.gens(b.o.targetConcurrency, 99, b.assign.letter))
	pprof.StopCPUProfile()
	if err := <-errc; err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	self, _ := os.Executable()
	fmt.Fprintf(b.out, "profiles of AssignLead at concurrency %d (%.0f req/s, %d failed):\n  go tool pprof -top %s %s\n  go tool pprof -top %s %s\n\n",
		b.o.targetConcurrency, s.rps(), s.errs, b.o.leadrouterd, server, self, client)
	return nil
}

// download saves what a GET of url returns to path.
func download(ctx context.Context, url, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, resp.Body)
	return errors.Join(err, f.Close())
}

// verdict collects the targets' outcomes.
type verdict struct {
	throughput, p99 float64
	judged          bool
	decisionP99     time.Duration
	decisionJudged  bool
	achieved        float64 // answered calls per second at the target rate
	rateJudged      bool
	errors          int
}

// sustained is the share of the fixed rate that must be answered for the
// rate to count as held.
const sustained = 0.98

func passFail(ok bool) string {
	if ok {
		return "PASS"
	}
	return "FAIL"
}

func (v *verdict) print(out io.Writer, o *options) error {
	fmt.Fprintln(out, "\ntargets:")
	missed := false
	if v.judged {
		ok1, ok2 := v.throughput >= minThroughputRatio, v.p99 <= maxP99Ratio
		missed = !ok1 || !ok2
		fmt.Fprintf(out, "  AssignLead req/s >= %.2fx baseline at concurrency %d:  %.2fx  %s\n", minThroughputRatio, o.targetConcurrency, v.throughput, passFail(ok1))
		fmt.Fprintf(out, "  AssignLead p99 <= %.1fx baseline p99 at concurrency %d:  %.2fx  %s\n", maxP99Ratio, o.targetConcurrency, v.p99, passFail(ok2))
	} else {
		fmt.Fprintf(out, "  throughput and p99 ratios: not judged (concurrency %d was not run)\n", o.targetConcurrency)
	}
	rate := comma(int(o.targetRate))
	if v.rateJudged {
		ok := v.achieved >= sustained*o.targetRate
		missed = missed || !ok
		fmt.Fprintf(out, "  %s leads/s held (at least %.0f%% answered over the step):  %s/s  %s\n",
			rate, sustained*100, comma(int(math.Round(v.achieved))), passFail(ok))
	}
	switch {
	case v.decisionJudged:
		ok := v.decisionP99 < maxDecisionP99
		missed = missed || !ok
		fmt.Fprintf(out, "  decision time p99 < %v at %s leads/s:  %s  %s\n", maxDecisionP99, rate, fmtDur(v.decisionP99), passFail(ok))
	case v.rateJudged:
		fmt.Fprintf(out, "  decision time p99 < %v at %s leads/s:  not judged (%s not exported)\n", maxDecisionP99, rate, assignDurationMetric)
	default:
		fmt.Fprintf(out, "  decision time p99 < %v at %s leads/s:  not judged (that rate was not run)\n", maxDecisionP99, rate)
	}
	fmt.Fprintf(out, "  failed calls: %d  %s\n", v.errors, passFail(v.errors == 0))
	switch {
	case v.errors > 0:
		return fmt.Errorf("%d calls failed", v.errors)
	case missed && o.strict:
		return errors.New("targets missed (--strict)")
	}
	return nil
}

// printEnvironment prints what a reader needs to compare runs: the machine,
// the versions and how busy the machine was.
func printEnvironment(out io.Writer, o *options) {
	fmt.Fprintf(out, "leadbench %s\n", time.Now().UTC().Format(time.RFC3339))
	fmt.Fprintf(out, "machine: %d CPUs (%s), %s, kernel %s\n", runtime.NumCPU(), cpuModel(), runtime.GOARCH, firstLine("/proc/sys/kernel/osrelease"))
	fmt.Fprintf(out, "versions: %s, %s, leadrouter %s\n", runtime.Version(), command("redis-server", "--version"), gitRevision())
	fmt.Fprintf(out, "leadrouterd: %s\n", o.leadrouterd)
	fmt.Fprintf(out, "load average at the start: %s\n", loadAverage())
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

func firstLine(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "unknown"
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return strings.TrimSpace(line)
}

func loadAverage() string {
	f := strings.Fields(firstLine("/proc/loadavg"))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ") + " (1, 5, 15 min)"
}

func command(name string, args ...string) string {
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		return name + " (version unknown)"
	}
	return strings.TrimSpace(string(out))
}

// gitRevision names the checked-out commit, marked when the tree has
// uncommitted changes.
func gitRevision() string {
	rev, err := exec.Command("git", "rev-parse", "--short=12", "HEAD").Output()
	if err != nil {
		return "(not a git checkout)"
	}
	s := strings.TrimSpace(string(rev))
	if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(st) > 0 {
		s += " with uncommitted changes"
	}
	return s
}

func randomID() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
