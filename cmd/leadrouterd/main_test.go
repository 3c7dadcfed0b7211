package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/leadrouter/leadrouter/engine"
	pb "github.com/leadrouter/leadrouter/gen/leadrouter/v1"
	"github.com/leadrouter/leadrouter/internal/logbuf"
	"github.com/leadrouter/leadrouter/internal/redisproc"
	"github.com/leadrouter/leadrouter/internal/redistest"
	"github.com/leadrouter/leadrouter/store"
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "leadrouterd-test-")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "leadrouterd")
	code := redistest.Main(m)
	os.RemoveAll(dir)
	os.Exit(code)
}

// daemon is a leadrouterd process started by a test.
type daemon struct {
	cmd     *exec.Cmd
	log     *logbuf.Buffer
	conn    *grpc.ClientConn
	addr    string // gRPC
	metrics string
}

// httpAddr is the HTTP edge's address, from the serving log line.
func (d *daemon) httpAddr(t *testing.T) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, line := range strings.Split(d.log.String(), "\n") {
			if !strings.Contains(line, "leadrouterd serving") {
				continue
			}
			if _, rest, ok := strings.Cut(line, " http="); ok {
				addr, _, _ := strings.Cut(rest, " ")
				return strings.Trim(addr, `"`)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no HTTP address in the log:\n%s", d.log)
	return ""
}

var (
	binary    string
	buildOnce sync.Once
	buildErr  error
)

// build compiles leadrouterd once per test binary.
func build(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("%v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatalf("build: %v", buildErr)
	}
	return binary
}

// startDaemon runs leadrouterd (plaintext, --insecure) with the flags and
// environment given and waits until its health service says SERVING.
func startDaemon(t *testing.T, env []string, args ...string) *daemon {
	t.Helper()
	return launch(t, env, grpc.WithTransportCredentials(insecure.NewCredentials()), append([]string{"--insecure"}, args...)...)
}

// launch runs leadrouterd, connects with the credentials given and waits
// until its health service says SERVING.
func launch(t *testing.T, env []string, creds grpc.DialOption, args ...string) *daemon {
	t.Helper()
	d := spawn(t, env, creds, args...)
	d.waitHealth(t, healthpb.HealthCheckResponse_SERVING, 20*time.Second)
	return d
}

// spawn runs leadrouterd and connects with the credentials given.
func spawn(t *testing.T, env []string, creds grpc.DialOption, args ...string) *daemon {
	t.Helper()
	grpcPort, _ := redisproc.FreePort()
	metricsPort, _ := redisproc.FreePort()
	d := &daemon{log: &logbuf.Buffer{}, metrics: fmt.Sprintf("127.0.0.1:%d", metricsPort)}
	// The HTTP edge on a port of the kernel's choosing, which the serving
	// log line names (httpAddr): one fewer port to race other tests for.
	d.cmd = exec.Command(build(t), append([]string{"--metrics-listen", d.metrics, "--http-listen", "127.0.0.1:0"}, args...)...)
	d.cmd.Env = append(append(os.Environ(), fmt.Sprintf("LEADROUTER_LISTEN=127.0.0.1:%d", grpcPort)), env...)
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if d.cmd.ProcessState == nil {
			d.cmd.Process.Kill()
			d.cmd.Wait()
		}
	})
	d.addr = fmt.Sprintf("127.0.0.1:%d", grpcPort)
	conn, err := grpc.NewClient(d.addr, creds)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	d.conn = conn
	return d
}

// waitHealth waits until the health service answers want.
func (d *daemon) waitHealth(t *testing.T, want healthpb.HealthCheckResponse_ServingStatus, within time.Duration) {
	t.Helper()
	hc := healthpb.NewHealthClient(d.conn)
	deadline := time.Now().Add(within)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		resp, err := hc.Check(ctx, &healthpb.HealthCheckRequest{})
		cancel()
		if err == nil && resp.GetStatus() == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("leadrouterd health not %s within %s: %v %v\n%s", want, within, resp.GetStatus(), err, d.log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (d *daemon) assign(t *testing.T, ws, id string) *pb.Assignment {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := pb.NewRoutingServiceClient(d.conn).AssignLead(ctx, &pb.AssignLeadRequest{Workspace: ws,
		Lead: &pb.Lead{Id: id, Country: "DE", Language: "de"}})
	if err != nil {
		t.Fatalf("assign %s: %v\n%s", id, err, d.log)
	}
	return resp.GetAssignment()
}

// get fetches a path from the metrics listener, expecting the status code.
func (d *daemon) get(t *testing.T, path string, code int) string {
	t.Helper()
	resp, err := http.Get("http://" + d.metrics + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != code {
		t.Fatalf("GET %s: %s, want %d", path, resp.Status, code)
	}
	return string(body)
}

// TestPprofOptIn: --pprof serves the profiles on the metrics listener.
func TestPprofOptIn(t *testing.T) {
	d := startDaemon(t, nil, "--pprof")
	if body := d.get(t, "/debug/pprof/", http.StatusOK); !strings.Contains(body, "goroutine") {
		t.Fatalf("pprof index lacks profiles:\n%s", body)
	}
	d.get(t, "/debug/pprof/heap", http.StatusOK)
	d.stop(t)
}

// stop sends SIGTERM and waits for a clean exit.
func (d *daemon) stop(t *testing.T) {
	t.Helper()
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- d.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, d.log)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("no exit within 20s of SIGTERM\n%s", d.log)
	}
}

// TestEmbeddedWithSampleConfig is `make run`: the embedded store, the sample
// config, metrics, and a clean stop on SIGTERM.
func TestEmbeddedWithSampleConfig(t *testing.T) {
	d := startDaemon(t, []string{"LEADROUTER_CONFIG=../../examples/routing.yaml"})
	var reps []string
	for i := 0; i < 3; i++ {
		reps = append(reps, d.assign(t, "", fmt.Sprint("e2e-", i)).GetRepId())
	}
	if fmt.Sprint(reps) != "[felix greta felix]" {
		t.Fatalf("dach rotation %v", reps)
	}
	body := d.get(t, "/metrics", http.StatusOK)
	for _, want := range []string{
		`leadrouter_assignments_total{outcome="assigned",pool="emea-dach"} 3`,
		"leadrouter_assign_duration_seconds_count 3",
		`leadrouter_reps{status="AWAY"} 1`,
		`grpc_server_handled_total{grpc_code="OK",grpc_method="AssignLead",grpc_service="leadrouter.v1.RoutingService",grpc_type="unary"} 3`,
		"go_goroutines", "process_resident_memory_bytes",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	d.get(t, "/debug/pprof/", http.StatusNotFound) // pprof is opt-in
	d.stop(t)
	for _, want := range []string{"embedded in-memory store", "data is lost on exit", "routing config loaded", "shutting down"} {
		if !strings.Contains(d.log.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, d.log)
		}
	}
}

// TestReplicasShareRedis: two leadrouterd processes on one real Redis share
// the rotation; one of them applied the config.
func TestReplicasShareRedis(t *testing.T) {
	url := redistest.URL(t)
	ws := redistest.Workspace(t)
	a := startDaemon(t, nil, "--redis-url", url, "--config", "../../examples/routing.yaml", "--workspace", ws)
	b := startDaemon(t, []string{"LEADROUTER_REDIS_URL=" + url})
	var reps []string
	for i, d := range []*daemon{a, b, a, b} {
		reps = append(reps, d.assign(t, ws, fmt.Sprint("shared-", i)).GetRepId())
	}
	if fmt.Sprint(reps) != "[felix greta felix greta]" {
		t.Fatalf("rotation across replicas %v", reps)
	}
	if again := b.assign(t, ws, "shared-0"); again.GetRepId() != "felix" {
		t.Fatalf("duplicate on the other replica got %s", again.GetRepId())
	}
	a.stop(t)
	b.stop(t)
}

// TestStartsBeforeRedis: leadrouterd started while its Redis is down runs
// (no exit, no restart), says NOT_SERVING and answers UNAVAILABLE; once
// Redis answers it serves, with its --config applied.
func TestStartsBeforeRedis(t *testing.T) {
	port, err := redisproc.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	url := redisproc.URL(port)
	d := spawn(t, []string{"LEADROUTER_CONFIG=../../examples/routing.yaml"}, grpc.WithTransportCredentials(insecure.NewCredentials()),
		"--insecure", "--redis-url", url, "--health-interval", "200ms")
	d.waitHealth(t, healthpb.HealthCheckResponse_NOT_SERVING, 20*time.Second)
	// A while later, without Redis: still running (it answers), still NOT_SERVING.
	time.Sleep(time.Second)
	d.waitHealth(t, healthpb.HealthCheckResponse_NOT_SERVING, time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	_, err = pb.NewRoutingServiceClient(d.conn).AssignLead(ctx, &pb.AssignLeadRequest{Lead: &pb.Lead{Id: "early", Country: "DE"}})
	cancel()
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("AssignLead without Redis: %v, want UNAVAILABLE", err)
	}

	srv := exec.Command("redis-server", redisproc.Args(port, t.TempDir())...)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
	if err := redisproc.WaitReady(url, 10*time.Second, nil); err != nil {
		t.Fatal(err)
	}
	d.waitHealth(t, healthpb.HealthCheckResponse_SERVING, 20*time.Second)
	// The --config was applied once Redis answered: the sample config's
	// rotation routes a German lead.
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		resp, err := pb.NewRoutingServiceClient(d.conn).AssignLead(ctx, &pb.AssignLeadRequest{
			Lead: &pb.Lead{Id: "late", Country: "DE", Language: "de"}})
		cancel()
		if err == nil {
			if resp.GetAssignment().GetRepId() != "felix" {
				t.Fatalf("first lead after Redis came: %v", resp.GetAssignment())
			}
			break
		}
		if status.Code(err) != codes.FailedPrecondition || time.Now().After(deadline) {
			t.Fatalf("AssignLead once Redis answers: %v\n%s", err, d.log)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The reachability watch logs on its own schedule (every second), and
	// the file's apply logs once it has also recorded the file's hash,
	// which can be just after the first lead was routed.
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if l := d.log.String(); strings.Contains(l, "redis reachable") && strings.Contains(l, "routing config loaded") {
			break
		}
	}
	d.stop(t)
	for _, want := range []string{"redis unreachable at start", "redis reachable", "routing config loaded"} {
		if !strings.Contains(d.log.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, d.log)
		}
	}
}

// TestMetricsToken: with --metrics-token-file the metrics listener answers
// 401 without that bearer token and serves with it.
func TestMetricsToken(t *testing.T) {
	file := filepath.Join(t.TempDir(), "metrics-token")
	if err := os.WriteFile(file, []byte("scrape-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, nil, "--metrics-token-file", file)
	defer d.stop(t)
	get := func(auth string) int {
		req, _ := http.NewRequest(http.MethodGet, "http://"+d.metrics+"/metrics", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get(""); code != http.StatusUnauthorized {
		t.Fatalf("no token: %d, want 401", code)
	}
	if code := get("Bearer wrong"); code != http.StatusUnauthorized {
		t.Fatalf("wrong token: %d, want 401", code)
	}
	if code := get("Bearer scrape-secret"); code != http.StatusOK {
		t.Fatalf("the token: %d, want 200", code)
	}
}

// TestConfigFileDoesNotRevertAPI: a replica restarted with a changed
// --config after a config was applied through the API exits non-zero and
// says why; with --config-overwrite it applies the file.
func TestConfigFileDoesNotRevertAPI(t *testing.T) {
	url := redistest.URL(t)
	ws := redistest.Workspace(t)
	a := startDaemon(t, nil, "--redis-url", url, "--config", "../../examples/routing.yaml", "--workspace", ws)
	a.stop(t)
	// An operator applies another config through the API.
	st, err := store.Open(context.Background(), url, store.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	eng := engine.New(st)
	cfg, err := engine.ParseConfigYAML(strings.NewReader("reps: [{id: a}]\npools: [{id: p, members: [{rep_id: a}]}]\nrules: [{id: all, targets: [{pool_id: p}]}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eng.ApplyConfig(context.Background(), ws, cfg, nil); err != nil {
		t.Fatal(err)
	}
	// The file changes.
	body, _ := os.ReadFile("../../examples/routing.yaml")
	changed := filepath.Join(t.TempDir(), "routing.yaml")
	os.WriteFile(changed, append(body, []byte("# edited\n")...), 0o644)
	out, err := exec.Command(build(t), "--insecure", "--redis-url", url, "--config", changed, "--workspace", ws,
		"--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--http-listen", "").CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() == 0 || !strings.Contains(string(out), "applied through the API") {
		t.Fatalf("changed --config after an API apply: %v\n%s", err, out)
	}
	if cur, _ := eng.Config(context.Background(), ws); cur.Version != 2 {
		t.Fatalf("the refused file changed the config: v%d", cur.Version)
	}
	b := startDaemon(t, nil, "--redis-url", url, "--config", changed, "--workspace", ws, "--config-overwrite")
	b.stop(t)
	if cur, _ := eng.Config(context.Background(), ws); cur.Version != 3 || len(cur.Config.Reps) == 1 {
		t.Fatalf("--config-overwrite: v%d", cur.Version)
	}
}
