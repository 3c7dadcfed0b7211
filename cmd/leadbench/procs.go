package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/leadrouter/leadrouter/internal/redisproc"
)

// proc is a child process the benchmark started: redis-server, leadrouterd
// or a reference server.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // its exit status, once done is closed
}

// startProc starts bin with args; its stdout and stderr go to out. The
// child is killed if the benchmark dies without stopping it (on Linux).
func startProc(name string, out io.Writer, bin string, args ...string) (*proc, error) {
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	return p, nil
}

// pid is the child's process id.
func (p *proc) pid() int { return p.cmd.Process.Pid }

// exited reports whether the process has ended, and how.
func (p *proc) exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// stop asks the process to end (SIGTERM) and kills it after 5 seconds.
func (p *proc) stop() {
	if ok, _ := p.exited(); ok {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// freeAddr returns 127.0.0.1:<free port>.
func freeAddr() (string, error) {
	p, err := redisproc.FreePort()
	if err != nil {
		return "", err
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(p)), nil
}

// waitFor calls check every 20 ms until it succeeds, the process exits or
// within passes.
func waitFor(p *proc, within time.Duration, check func(context.Context) error) error {
	deadline := time.Now().Add(within)
	for {
		if ok, err := p.exited(); ok {
			return fmt.Errorf("%s exited during start-up: %v", p.name, err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		err := check(ctx)
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %v: %w", p.name, within, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startRedis starts redis-server on a free loopback port with persistence
// off, its files in dir, and returns it with its URL.
func startRedis(dir string, log io.Writer) (*proc, string, error) {
	var lastErr error
	for range 5 { // another process may take the port between look-up and bind
		port, err := redisproc.FreePort()
		if err != nil {
			return nil, "", err
		}
		p, err := startProc("redis-server", log, "redis-server", redisproc.Args(port, dir, "--maxclients", "10000")...)
		if err != nil {
			return nil, "", err
		}
		url := redisproc.URL(port)
		lastErr = redisproc.WaitReady(url, 5*time.Second, func() error {
			if ok, err := p.exited(); ok {
				return fmt.Errorf("redis-server exited during start-up: %v", err)
			}
			return nil
		})
		if lastErr == nil {
			return p, url, nil
		}
		p.stop()
	}
	return nil, "", lastErr
}

// daemonFlags lists the flags a leadrouterd binary accepts, from its -h
// output, so that flags added by later versions (--insecure, --pprof) are
// passed only when they exist.
func daemonFlags(bin string) (map[string]bool, error) {
	out, _ := exec.Command(bin, "-h").CombinedOutput() // -h exits 2 after printing
	flags := map[string]bool{}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && strings.HasPrefix(f[0], "-") {
			flags[strings.TrimLeft(f[0], "-")] = true
		}
	}
	if !flags["redis-url"] {
		return nil, fmt.Errorf("%s -h lists no --redis-url flag: is it leadrouterd? output:\n%s", bin, out)
	}
	return flags, nil
}

// daemon is a running leadrouterd.
type daemon struct {
	*proc
	addr, metricsAddr string
	httpAddr          string // the HTTP edge ("" for a leadrouterd without one)
	pprof             bool   // /debug/pprof/ is served on metricsAddr
}

// startDaemon starts leadrouterd on free ports against redisURL and waits
// until its health service reports SERVING.
func startDaemon(bin, redisURL string, log io.Writer) (*daemon, error) {
	flags, err := daemonFlags(bin)
	if err != nil {
		return nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	maddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	args := []string{"--redis-url", redisURL, "--listen", addr, "--metrics-listen", maddr, "--log-level", "warn"}
	if flags["insecure"] {
		args = append(args, "--insecure")
	}
	var haddr string
	if flags["http-listen"] {
		if haddr, err = freeAddr(); err != nil {
			return nil, err
		}
		args = append(args, "--http-listen", haddr)
	}
	d := &daemon{addr: addr, metricsAddr: maddr, httpAddr: haddr}
	if flags["pprof"] {
		args = append(args, "--pprof")
		d.pprof = true
	}
	if d.proc, err = startProc("leadrouterd", log, bin, args...); err != nil {
		return nil, err
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		d.stop()
		return nil, err
	}
	defer conn.Close()
	hc := healthpb.NewHealthClient(conn)
	err = waitFor(d.proc, 15*time.Second, func(ctx context.Context) error {
		r, err := hc.Check(ctx, &healthpb.HealthCheckRequest{})
		if err == nil && r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			err = fmt.Errorf("health: %v", r.GetStatus())
		}
		return err
	})
	if err != nil {
		d.stop()
		return nil, err
	}
	return d, nil
}

// startRef starts this program's baseline-server subcommand on a free
// port, serving the baseline or the store floor, and waits until it
// accepts connections. The store floor also times its calls, served at
// metricsURL.
func startRef(redisURL string, floor bool, log io.Writer) (p *proc, addr, metricsURL string, err error) {
	self, err := os.Executable()
	if err != nil {
		return nil, "", "", err
	}
	if addr, err = freeAddr(); err != nil {
		return nil, "", "", err
	}
	name, args := "baseline-server", []string{"baseline-server", "--redis-url", redisURL, "--listen", addr}
	if floor {
		maddr, err := freeAddr()
		for err == nil && maddr == addr { // each free port is only free for now
			maddr, err = freeAddr()
		}
		if err != nil {
			return nil, "", "", err
		}
		name, args = "store-floor-server", append(args, "--store-floor", "--metrics-listen", maddr)
		metricsURL = "http://" + maddr + "/metrics"
	}
	if p, err = startProc(name, log, self, args...); err != nil {
		return nil, "", "", err
	}
	err = waitFor(p, 10*time.Second, func(ctx context.Context) error {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			c.Close()
		}
		return err
	})
	if err != nil {
		p.stop()
		return nil, "", "", err
	}
	return p, addr, metricsURL, nil
}

// buildDaemon builds ./cmd/leadrouterd into dir; the benchmark must run
// from the module root.
func buildDaemon(dir string) (string, error) {
	bin := filepath.Join(dir, "leadrouterd")
	var stderr bytes.Buffer
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/leadrouterd")
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build ./cmd/leadrouterd (run from the module root or pass --leadrouterd): %w\n%s", err, stderr.String())
	}
	return bin, nil
}

// cpuTime returns the user+system CPU time a process has used so far, from
// /proc (Linux); ok is false elsewhere or when the process is gone.
func cpuTime(pid int) (d time.Duration, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	// The command name (field 2) may contain spaces; fields after its
	// closing parenthesis are fixed: utime and stime are the 12th and
	// 13th of them.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, false
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, false
	}
	return time.Duration(u+s) * time.Second / time.Duration(clockTicks), true
}

// clockTicks is the kernel's USER_HZ, the unit of /proc CPU times. It is
// 100 on every mainstream Linux architecture; getconf confirms it when
// available.
var clockTicks = func() int64 {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err == nil {
		if n, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64); err == nil && n > 0 {
			return n
		}
	}
	return 100
}()
