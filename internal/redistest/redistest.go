// Package redistest gives tests the Redis servers they run against: a real
// redis-server (REDIS_URL when set, else one started from PATH on a free
// loopback port for the test binary), with LEADROUTER_TEST_CLUSTER=1 a
// local Redis Cluster instead (cluster.go), and the embedded miniredis.
// Tests that kill or pause Redis start servers, clusters and Sentinel
// setups of their own (server.go, cluster.go, sentinel.go). A missing
// redis-server fails the test binary; it never skips.
package redistest

import (
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"

	"github.com/leadrouter/leadrouter/store"
)

var (
	once     sync.Once
	url      string
	shared   *Server  // the redis-server this package started, if any
	cluster  *Cluster // the cluster this package started (LEADROUTER_TEST_CLUSTER=1)
	dir      string
	startErr error
)

// ClusterMode reports whether the tests run against a Redis Cluster: set
// LEADROUTER_TEST_CLUSTER=1 and URL, RealStore and Backends use a local
// 6-node cluster (3 masters, 3 replicas) that this package starts, so the
// whole conformance and concurrency suites run on it.
func ClusterMode() bool { return os.Getenv("LEADROUTER_TEST_CLUSTER") == "1" }

// Main runs a package's tests and stops the redis-server or cluster it
// started, if any. Use it from TestMain: os.Exit(redistest.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	if ClusterMode() && cluster != nil {
		// Every suite must have spread its workspaces over all masters.
		per := WorkspacesPerMaster()
		fmt.Fprintf(os.Stderr, "redistest: workspaces per cluster master (slot range): %v\n", per)
		total := 0
		for _, n := range per {
			total += n
		}
		if code == 0 && total >= len(per) && slices.Contains(per, 0) {
			fmt.Fprintln(os.Stderr, "redistest: FAIL: some cluster master got no workspace")
			code = 1
		}
	}
	Stop()
	return code
}

// URL returns the URL of the real Redis for this test binary, starting
// redis-server (or, in ClusterMode, the cluster) on first use.
func URL(tb testing.TB) string {
	tb.Helper()
	once.Do(func() { url, startErr = start() })
	if startErr != nil {
		tb.Fatalf("real Redis for tests: %v", startErr)
	}
	return url
}

// SharedCluster returns the cluster of this test binary in ClusterMode
// (starting it on first use), else nil.
func SharedCluster(tb testing.TB) *Cluster {
	tb.Helper()
	URL(tb)
	return cluster
}

// Stop stops the redis-server or cluster this package started.
func Stop() {
	if shared != nil {
		shared.stop()
		shared = nil
	}
	if cluster != nil {
		cluster.Stop()
		cluster = nil
	}
	if dir != "" {
		os.RemoveAll(dir)
	}
}

func start() (string, error) {
	var err error
	if ClusterMode() {
		if dir, err = os.MkdirTemp("", "leadrouter-cluster-"); err != nil {
			return "", err
		}
		if cluster, err = startCluster(dir); err != nil {
			return "", err
		}
		return cluster.URL, nil
	}
	if u := os.Getenv("REDIS_URL"); u != "" {
		return u, nil
	}
	if dir, err = os.MkdirTemp("", "leadrouter-redis-"); err != nil {
		return "", err
	}
	for attempt := 0; attempt < 5; attempt++ { // a free port can be taken before the server binds it
		s, err := newServer(dir, "--maxclients", "10000")
		if err != nil {
			return "", err
		}
		if err = s.start(); err == nil {
			shared = s
			return s.URL, nil
		}
		startErr = err
	}
	return "", fmt.Errorf("redis-server did not start: %w", startErr)
}

// Backend is one store implementation the conformance suites run against.
type Backend struct {
	Name string
	// Open returns a fresh store; it is closed when the test ends.
	Open func(tb testing.TB) *store.Redis
}

// Backends are the embedded default and a real Redis server (in
// ClusterMode, the cluster).
func Backends() []Backend {
	real := "redis"
	if ClusterMode() {
		real = "cluster"
	}
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
		{Name: real, Open: RealStore},
	}
}

// RealStore returns a store on the real Redis (in ClusterMode, the
// cluster), closed when the test ends. All stores of one test share a key
// prefix of their own (Prefix), so a test's sweeper never fires another
// parallel test's timers.
func RealStore(tb testing.TB) *store.Redis {
	tb.Helper()
	return OpenStore(tb, URL(tb))
}

// OpenStore returns a store with the test's prefix on the Redis at url (any
// form store.NewClient reads), closed when the test ends.
func OpenStore(tb testing.TB, url string) *store.Redis {
	tb.Helper()
	client, err := store.NewClient(url, store.OpenOptions{PoolSize: 64})
	if err != nil {
		tb.Fatal(err)
	}
	s := store.New(client, Prefix(tb))
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
// Redis without FLUSHALL and can run in parallel. In ClusterMode the names
// go round the cluster's masters in turn (by the slot of their hash tag),
// so every suite spreads its workspaces over all of them.
func Workspace(tb testing.TB) string {
	tb.Helper()
	if !ClusterMode() {
		mu.Lock()
		defer mu.Unlock()
		seq++
		return fmt.Sprintf("t%d-%d", os.Getpid(), seq)
	}
	c := SharedCluster(tb)
	mu.Lock()
	shard := nextShard % c.Shards()
	nextShard++
	perShard[shard]++
	mu.Unlock()
	return c.WorkspaceOn(tb, shard)
}

// WorkspaceOn returns a workspace name unique to this test whose keys
// live on shard i of the cluster (the master of its i-th slot range).
func (c *Cluster) WorkspaceOn(tb testing.TB, i int) string {
	tb.Helper()
	for tries := 0; tries < 1000; tries++ {
		mu.Lock()
		seq++
		ws := fmt.Sprintf("t%d-%d", os.Getpid(), seq)
		mu.Unlock()
		if c.shardOf(ws) == i {
			return ws
		}
	}
	tb.Fatalf("no workspace name lands on shard %d", i)
	return ""
}

// WorkspacesPerMaster counts the workspaces Workspace handed out per
// cluster master (by slot range, in ClusterMode).
func WorkspacesPerMaster() []int {
	mu.Lock()
	defer mu.Unlock()
	if cluster == nil {
		return nil
	}
	out := make([]int, cluster.Shards())
	for i := range out {
		out[i] = perShard[i]
	}
	return out
}

var (
	mu       sync.Mutex
	seq      int
	prefixes = map[string]string{}
	// nextShard is the cluster shard (index of a master's slot range) the
	// next Workspace lands on; perShard counts what each one got.
	nextShard int
	perShard  = map[int]int{}
)
