// Package redistest gives tests the Redis servers they run against: a real
// redis-server (REDIS_URL when set, else one started from PATH on a free
// loopback port for the test binary) and the embedded miniredis. A missing
// redis-server fails the test binary; it never skips.
package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/leadrouter/leadrouter/store"
)

var (
	once     sync.Once
	url      string
	started  *exec.Cmd
	dir      string
	startErr error
)

// Main runs a package's tests and stops the redis-server it started, if
// any. Use it from TestMain: os.Exit(redistest.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	Stop()
	return code
}

// URL returns the URL of the real Redis for this test binary, starting
// redis-server on first use.
func URL(tb testing.TB) string {
	tb.Helper()
	once.Do(func() { url, startErr = start() })
	if startErr != nil {
		tb.Fatalf("real Redis for tests: %v", startErr)
	}
	return url
}

// Stop stops the redis-server this package started.
func Stop() {
	if started != nil && started.Process != nil {
		_ = started.Process.Kill()
		_ = started.Wait()
		started = nil
	}
	if dir != "" {
		os.RemoveAll(dir)
	}
}

func start() (string, error) {
	if u := os.Getenv("REDIS_URL"); u != "" {
		return u, nil
	}
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return "", fmt.Errorf("redis-server is not on PATH (install it, e.g. apt-get install redis-server, or set REDIS_URL): %w", err)
	}
	dir, err = os.MkdirTemp("", "leadrouter-redis-")
	if err != nil {
		return "", err
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := FreePort()
		if err != nil {
			return "", err
		}
		cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
			"--save", "", "--appendonly", "no", "--dir", dir, "--daemonize", "no",
			"--loglevel", "warning", "--maxclients", "10000")
		if err := cmd.Start(); err != nil {
			return "", err
		}
		u := fmt.Sprintf("redis://127.0.0.1:%d/0", port)
		if lastErr = waitReady(u, 5*time.Second); lastErr == nil {
			started = cmd
			return u, nil
		}
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
	return "", fmt.Errorf("redis-server did not start: %w", lastErr)
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func waitReady(u string, within time.Duration) error {
	opts, err := redis.ParseURL(u)
	if err != nil {
		return err
	}
	c := redis.NewClient(opts)
	defer c.Close()
	deadline := time.Now().Add(within)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Backend is one store implementation the conformance suites run against.
type Backend struct {
	Name string
	// Open returns a fresh store; it is closed when the test ends.
	Open func(tb testing.TB) *store.Redis
}

// Backends are the embedded default and a real Redis server.
func Backends() []Backend {
	return []Backend{
		{Name: "embedded", Open: func(tb testing.TB) *store.Redis {
			tb.Helper()
			e, err := store.StartEmbedded()
			if err != nil {
				tb.Fatal(err)
			}
			tb.Cleanup(func() { e.Close() })
			return e.Redis
		}},
		{Name: "redis", Open: RealStore},
	}
}

// RealStore returns a store on the real Redis, closed when the test ends.
// All stores of one test share a key prefix of their own (Prefix), so a
// test's sweeper never fires another parallel test's timers.
func RealStore(tb testing.TB) *store.Redis {
	tb.Helper()
	opts, err := redis.ParseURL(URL(tb))
	if err != nil {
		tb.Fatal(err)
	}
	opts.PoolSize = 64
	opts.ContextTimeoutEnabled = true
	s := store.New(redis.NewClient(opts), Prefix(tb))
	tb.Cleanup(func() { s.Close() })
	return s
}

// Prefix returns the key prefix of a test: the same for every call in one
// test, different between tests.
func Prefix(tb testing.TB) string {
	mu.Lock()
	defer mu.Unlock()
	p, ok := prefixes[tb.Name()]
	if !ok {
		seq++
		p = fmt.Sprintf("lrt%d", seq)
		prefixes[tb.Name()] = p
	}
	return p
}

// Workspace returns a workspace name unique to this test, so tests share a
// Redis without FLUSHALL and can run in parallel.
func Workspace(tb testing.TB) string {
	tb.Helper()
	mu.Lock()
	defer mu.Unlock()
	seq++
	return fmt.Sprintf("t%d-%d", os.Getpid(), seq)
}

var (
	mu       sync.Mutex
	seq      int
	prefixes = map[string]string{}
)
