package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/leadrouter/leadrouter/engine"
	pb "github.com/leadrouter/leadrouter/gen/leadrouter/v1"
	"github.com/leadrouter/leadrouter/internal/logbuf"
	"github.com/leadrouter/leadrouter/internal/redisproc"
	"github.com/leadrouter/leadrouter/internal/redistest"
	"github.com/leadrouter/leadrouter/server"
)

// ws is the workspace every test routes in; each test has Redis servers of
// its own, so they never share one.
const ws = "chaos"

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

var (
	buildOnce sync.Once
	buildDir  string
	binary    string
	buildErr  error
)

// leadrouterd builds cmd/leadrouterd once per test binary and returns the
// path of the executable. Built with the race detector when the tests are,
// so the daemons under fault are race-checked too.
func leadrouterd(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		goBin, err := exec.LookPath("go")
		if err != nil {
			buildErr = fmt.Errorf("the go command is needed to build leadrouterd: %w", err)
			return
		}
		if buildDir, err = os.MkdirTemp("", "leadrouter-chaos-"); err != nil {
			buildErr = err
			return
		}
		binary = filepath.Join(buildDir, "leadrouterd")
		args := []string{"build", "-o", binary}
		if raceEnabled {
			args = append(args, "-race")
		}
		args = append(args, "github.com/leadrouter/leadrouter/cmd/leadrouterd")
		if out, err := exec.Command(goBin, args...).CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	})
	if buildErr != nil {
		t.Fatalf("build leadrouterd: %v", buildErr)
	}
	return binary
}

// startRedis starts a redis-server of the test's own (redistest.StartServer)
// with the extra arguments given, its log in a file that is printed when
// the test fails.
func startRedis(t *testing.T, extra ...string) *redistest.Server {
	t.Helper()
	logFile := filepath.Join(t.TempDir(), "redis.log")
	rs := redistest.StartServer(t, slices.Concat(extra, []string{"--logfile", logFile})...)
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := os.ReadFile(logFile)
			t.Logf("--- redis-server on port %d: log ---\n%s", rs.Port, out)
		}
	})
	return rs
}

// daemon is one leadrouterd process a test started, and a gRPC connection
// to it. The connection outlives restarts: the process comes back on the
// same ports and the client reconnects, as a load balancer's would.
type daemon struct {
	t       *testing.T
	name    string
	args    []string
	addr    string // gRPC listener
	metrics string // Prometheus listener
	log     *logbuf.Buffer
	conn    *grpc.ClientConn
	routing pb.RoutingServiceClient
	admin   pb.AdminServiceClient
	reps    pb.RepServiceClient
	health  healthpb.HealthClient

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when the current process has exited
	starts int
}

// startDaemon runs leadrouterd (plaintext, on free loopback ports) against
// the Redis at redisURL with the extra flags given, and waits until its
// health service says SERVING. It is killed when the test ends; if the test
// failed, the tail of its log is printed, and a panic or data race in its
// log fails the test.
func startDaemon(t *testing.T, name, redisURL string, extra ...string) *daemon {
	t.Helper()
	grpcPort, err := redisproc.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	metricsPort, err := redisproc.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	d := &daemon{t: t, name: name, log: &logbuf.Buffer{},
		addr: fmt.Sprintf("127.0.0.1:%d", grpcPort), metrics: fmt.Sprintf("127.0.0.1:%d", metricsPort)}
	d.args = append([]string{"--insecure", "--redis-url", redisURL, "--listen", d.addr,
		"--metrics-listen", d.metrics, "--http-listen", "", "--log-level", "info", "--health-interval", "500ms"}, extra...)
	// Reconnect quickly: the first dials race the process's start, and a
	// restarted replica should get traffic back at once (gRPC's default
	// backoff starts at 1s and grows to 2 minutes).
	reconnect := grpc.ConnectParams{Backoff: backoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second}}
	d.conn, err = grpc.NewClient(d.addr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithConnectParams(reconnect))
	if err != nil {
		t.Fatal(err)
	}
	d.routing = pb.NewRoutingServiceClient(d.conn)
	d.admin = pb.NewAdminServiceClient(d.conn)
	d.reps = pb.NewRepServiceClient(d.conn)
	d.health = healthpb.NewHealthClient(d.conn)
	t.Cleanup(func() {
		d.kill()
		d.conn.Close()
		log := d.log.String()
		for _, bad := range []string{"WARNING: DATA RACE", "\npanic: ", "fatal error: "} {
			if strings.Contains(log, bad) {
				t.Errorf("%s logged %q:\n%s", d.name, strings.TrimSpace(bad), log)
			}
		}
		if t.Failed() {
			t.Logf("--- %s (%s): last 60 log lines ---\n%s", d.name, d.addr, d.log.Tail(60))
		}
	})
	d.start()
	return d
}

// start starts the process (again) and waits until it serves.
func (d *daemon) start() {
	d.t.Helper()
	d.mu.Lock()
	d.starts++
	fmt.Fprintf(d.log, "=== chaos: start #%d of %s: leadrouterd %s\n", d.starts, d.name, strings.Join(d.args, " "))
	cmd := exec.Command(leadrouterd(d.t), d.args...)
	// Only the flags configure it: LEADROUTER_* variables of the
	// environment running the tests are left out.
	cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "LEADROUTER_") })
	cmd.Stdout, cmd.Stderr = d.log, d.log
	if err := cmd.Start(); err != nil {
		d.mu.Unlock()
		d.t.Fatalf("start %s: %v", d.name, err)
	}
	exited := make(chan struct{})
	go func() {
		err := cmd.Wait()
		fmt.Fprintf(d.log, "=== chaos: %s exited: %v\n", d.name, err)
		close(exited)
	}()
	d.cmd, d.exited = cmd, exited
	d.mu.Unlock()
	d.waitHealth(healthpb.HealthCheckResponse_SERVING, 30*time.Second)
}

// kill stops the process at once (SIGKILL), as a crash would, and waits
// until it is gone.
func (d *daemon) kill() {
	d.mu.Lock()
	cmd, exited := d.cmd, d.exited
	d.cmd = nil
	d.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-exited
}

// running reports whether the process is up (started and not exited).
func (d *daemon) running() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cmd == nil {
		return false
	}
	select {
	case <-d.exited:
		return false
	default:
		return true
	}
}

// healthStatus asks the health service for the overall status.
func (d *daemon) healthStatus() (healthpb.HealthCheckResponse_ServingStatus, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	resp, err := d.health.Check(ctx, &healthpb.HealthCheckRequest{})
	return resp.GetStatus(), err
}

// waitHealth waits until the health service reports want and returns how
// long that took; it fails the test (with the log tail) after within, or at
// once if the process exits.
func (d *daemon) waitHealth(want healthpb.HealthCheckResponse_ServingStatus, within time.Duration) time.Duration {
	d.t.Helper()
	start := time.Now()
	for {
		st, err := d.healthStatus()
		if err == nil && st == want {
			return time.Since(start)
		}
		if !d.running() {
			d.t.Fatalf("%s is not running (waiting for health %s)\n%s", d.name, want, d.log.Tail(40))
		}
		if time.Since(start) > within {
			d.t.Fatalf("%s: health is %s (err %v), not %s, after %s\n%s", d.name, st, err, want, within, d.log.Tail(40))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// metric returns the sum of every series of a metric family on d's
// /metrics page.
func (d *daemon) metric(t *testing.T, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + d.metrics + "/metrics")
	if err != nil {
		t.Fatalf("%s /metrics: %v", d.name, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s /metrics: %v", d.name, err)
	}
	var sum float64
	for _, line := range strings.Split(string(body), "\n") {
		series, value, ok := strings.Cut(line, " ")
		if !ok || (series != name && !strings.HasPrefix(series, name+"{")) {
			continue
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			t.Fatalf("%s /metrics: %q: %v", d.name, line, err)
		}
		sum += v
	}
	return sum
}

// ctxT is a context for a call that should succeed: generous, so a busy
// machine does not fail the test, and bounded, so nothing hangs.
func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// parseConfig parses a YAML routing config as `leadctl apply` would.
func parseConfig(t *testing.T, yaml string) *pb.RoutingConfig {
	t.Helper()
	cfg, err := engine.ParseConfigYAML(strings.NewReader(yaml))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return server.ConfigToProto(cfg)
}

// apply applies a YAML routing config to the workspace through d.
func (d *daemon) apply(t *testing.T, yaml string) int64 {
	t.Helper()
	resp, err := d.admin.ApplyRoutingConfig(ctxT(t), &pb.ApplyRoutingConfigRequest{Workspace: ws, Config: parseConfig(t, yaml)})
	if err != nil {
		t.Fatalf("apply config through %s: %v", d.name, err)
	}
	return resp.GetVersion()
}

// assign assigns a lead through d and fails the test on an error.
func (d *daemon) assign(t *testing.T, lead *pb.Lead) *pb.AssignLeadResponse {
	t.Helper()
	resp, err := d.routing.AssignLead(ctxT(t), &pb.AssignLeadRequest{Workspace: ws, Lead: lead})
	if err != nil {
		t.Fatalf("assign %s through %s: %v", lead.GetId(), d.name, err)
	}
	return resp
}

// get returns a lead's assignment through d and fails the test on an error.
func (d *daemon) get(t *testing.T, leadID string) *pb.Assignment {
	t.Helper()
	resp, err := d.routing.GetAssignment(ctxT(t), &pb.GetAssignmentRequest{Workspace: ws, LeadId: leadID})
	if err != nil {
		t.Fatalf("get assignment %s through %s: %v", leadID, d.name, err)
	}
	return resp.GetAssignment()
}

// listReps returns every rep's state through d.
func (d *daemon) listReps(t *testing.T) []*pb.RepState {
	t.Helper()
	resp, err := d.admin.ListReps(ctxT(t), &pb.ListRepsRequest{Workspace: ws})
	if err != nil {
		t.Fatalf("list reps through %s: %v", d.name, err)
	}
	return resp.GetReps()
}

// assignedTotals returns each rep's assigned_total as the store counts it.
func (d *daemon) assignedTotals(t *testing.T) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, r := range d.listReps(t) {
		out[r.GetRep().GetId()] = int(r.GetAssignedTotal())
	}
	return out
}

// guarded runs call in a goroutine and returns its duration and error. The
// call must return within limit: a hang fails the test instead of blocking
// it. The limit is not a context deadline on purpose: a client deadline
// changes what the server does, and these calls measure what it does
// without one.
func guarded(t *testing.T, limit time.Duration, what string, call func() error) (time.Duration, error) {
	t.Helper()
	type result struct {
		err error
		d   time.Duration
	}
	done := make(chan result, 1)
	go func() {
		start := time.Now()
		err := call()
		done <- result{err, time.Since(start)}
	}()
	select {
	case r := <-done:
		return r.d, r.err
	case <-time.After(limit):
		t.Fatalf("%s: no answer within %s: the call hangs", what, limit)
		return 0, nil
	}
}

// eventually polls f until it reports true, failing the test with what and
// f's last explanation after within. It returns how long it took.
func eventually(t *testing.T, within time.Duration, what string, f func() (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		ok, why := f()
		if ok {
			return time.Since(start)
		}
		if time.Since(start) > within {
			t.Fatalf("%s: not within %s: %s", what, within, why)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// codeOf returns the gRPC code of an error (OK for nil, Unknown for a
// non-status error).
func codeOf(err error) codes.Code { return status.Code(err) }

// kinds lists the kinds of an assignment's history, oldest first, as
// "kind" or "kind:rep".
func kinds(a *pb.Assignment) []string {
	var out []string
	for _, h := range a.GetHistory() {
		k := h.GetKind()
		if h.GetRepId() != "" {
			k += ":" + h.GetRepId()
		}
		out = append(out, k)
	}
	return out
}

// countKind counts the history entries of one kind.
func countKind(a *pb.Assignment, kind string) int {
	n := 0
	for _, h := range a.GetHistory() {
		if h.GetKind() == kind {
			n++
		}
	}
	return n
}

// keyState is one Redis key as a reader sees it.
type keyState struct {
	content  string    // type and value, canonical
	expireAt time.Time // zero: persistent
}

// redisClient is a client of the Redis at url, closed when the test ends.
func redisClient(t *testing.T, url string) *redis.Client {
	t.Helper()
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opts)
	t.Cleanup(func() { c.Close() })
	return c
}

// redisSnapshot reads every key of a Redis server with its type, content
// and expiry. Two snapshots are equal exactly when the stored data is:
// encodings (listpack or hashtable) do not matter, only what a reader sees.
func redisSnapshot(t *testing.T, url string) map[string]keyState {
	t.Helper()
	c := redisClient(t, url)
	ctx := ctxT(t)
	keys, err := c.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatalf("snapshot %s: %v", url, err)
	}
	out := make(map[string]keyState, len(keys))
	for _, k := range keys {
		typ, err := c.Type(ctx, k).Result()
		if err != nil {
			t.Fatalf("snapshot %s: TYPE %s: %v", url, k, err)
		}
		var val any
		switch typ {
		case "string":
			val, err = c.Get(ctx, k).Result()
		case "hash":
			val, err = c.HGetAll(ctx, k).Result() // a map prints sorted
		case "set":
			var m []string
			m, err = c.SMembers(ctx, k).Result()
			sort.Strings(m)
			val = m
		case "zset":
			val, err = c.ZRangeWithScores(ctx, k, 0, -1).Result()
		case "list":
			val, err = c.LRange(ctx, k, 0, -1).Result()
		case "stream":
			val, err = c.XRange(ctx, k, "-", "+").Result()
		case "none":
			continue // expired or removed since KEYS
		default:
			t.Fatalf("snapshot %s: key %s has type %s", url, k, typ)
		}
		if err != nil && !errors.Is(err, redis.Nil) {
			t.Fatalf("snapshot %s: read %s: %v", url, k, err)
		}
		ks := keyState{content: fmt.Sprintf("%s %v", typ, val)}
		ttl, err := c.PTTL(ctx, k).Result()
		if err != nil {
			t.Fatalf("snapshot %s: PTTL %s: %v", url, k, err)
		}
		if ttl > 0 {
			ks.expireAt = time.Now().Add(ttl) // a deadline: a TTL shrinks while we look
		}
		out[k] = ks
	}
	return out
}

// diffSnapshots describes how two snapshots differ (empty: they do not).
// Expiry deadlines may differ by the time the reads took.
func diffSnapshots(before, after map[string]keyState) string {
	var diffs []string
	for k, v := range before {
		w, ok := after[k]
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("lost %s (%.200s)", k, v.content))
		case w.content != v.content:
			diffs = append(diffs, fmt.Sprintf("changed %s:\n    before %.300s\n    after  %.300s", k, v.content, w.content))
		case v.expireAt.IsZero() != w.expireAt.IsZero() || w.expireAt.Sub(v.expireAt).Abs() > 2*time.Second:
			diffs = append(diffs, fmt.Sprintf("expiry of %s changed: %v -> %v", k, v.expireAt, w.expireAt))
		}
	}
	for k, w := range after {
		if _, ok := before[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("new %s (%.200s)", k, w.content))
		}
	}
	sort.Strings(diffs)
	return strings.Join(diffs, "\n  ")
}

// zsetMembers returns the members of a sorted set, lowest score first.
func zsetMembers(t *testing.T, url, key string) []string {
	t.Helper()
	m, err := redisClient(t, url).ZRange(ctxT(t), key, 0, -1).Result()
	if err != nil {
		t.Fatalf("ZRANGE %s: %v", key, err)
	}
	return m
}
