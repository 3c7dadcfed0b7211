package redistest

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/leadrouter/leadrouter/internal/redisproc"
)

// Cluster is a local Redis Cluster of redis-server processes on loopback
// ports: 3 masters, each with one replica, no persistence. Failover is
// fast: a master that does not answer for NodeTimeout is replaced by its
// replica.
type Cluster struct {
	URL   string // redis+cluster://127.0.0.1:p1,...,127.0.0.1:p6
	Nodes []*Server
	// shards are the slot ranges of the masters at creation, in slot
	// order; a range keeps its index when a replica takes it over.
	shards []redis.ClusterSlot
	client *redis.ClusterClient
}

// NodeTimeout is the cluster-node-timeout of test clusters: how long a
// master may not answer before its replica is promoted.
const NodeTimeout = 2 * time.Second

// StartCluster starts a cluster of the test's own, stopped when the test
// ends. extra arguments go to every redis-server.
func StartCluster(tb testing.TB, extra ...string) *Cluster {
	tb.Helper()
	c, err := startCluster(tb.TempDir(), extra...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.Stop)
	return c
}

func startCluster(dir string, extra ...string) (*Cluster, error) {
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		return nil, fmt.Errorf("redis-cli is not on PATH (apt-get install redis-tools): %w", err)
	}
	const masters = 3
	c := &Cluster{}
	ok := false
	defer func() {
		if !ok {
			c.Stop()
		}
	}()
	var addrs []string
	for i := 0; i < 2*masters; i++ {
		bus, err := redisproc.FreePort() // port+10000 may be past 65535: name the bus port
		if err != nil {
			return nil, err
		}
		var s *Server
		for attempt := 0; ; attempt++ {
			if s, err = newServer(dir, slices.Concat([]string{
				"--cluster-enabled", "yes", "--cluster-port", strconv.Itoa(bus),
				"--cluster-node-timeout", strconv.Itoa(int(NodeTimeout.Milliseconds())),
				"--maxclients", "10000"}, extra)...); err != nil {
				return nil, err
			}
			s.args = append(s.args, "--cluster-config-file", filepath.Join(dir, fmt.Sprintf("nodes-%d.conf", s.Port)))
			if err = s.start(); err == nil || attempt == 4 {
				break
			}
		}
		if err != nil {
			return nil, err
		}
		c.Nodes = append(c.Nodes, s)
		addrs = append(addrs, s.Addr())
	}
	create := exec.Command(cli, slices.Concat([]string{"--cluster", "create"}, addrs,
		[]string{"--cluster-replicas", "1", "--cluster-yes"})...)
	if out, err := create.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("redis-cli --cluster create: %v\n%s", err, out)
	}
	c.URL = "redis+cluster://" + strings.Join(addrs, ",")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := c.WaitHealthy(ctx); err != nil {
		return nil, err
	}
	c.client = redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	shards, err := c.client.ClusterSlots(ctx).Result()
	if err != nil {
		return nil, err
	}
	slices.SortFunc(shards, func(a, b redis.ClusterSlot) int { return a.Start - b.Start })
	c.shards = shards
	ok = true
	return c, nil
}

// Stop kills every node.
func (c *Cluster) Stop() {
	if c.client != nil {
		c.client.Close()
	}
	for _, s := range c.Nodes {
		s.stop()
	}
}

// WaitHealthy waits until every running node says cluster_state:ok with
// all 16384 slots served, and every running replica's link to its master
// is up.
func (c *Cluster) WaitHealthy(ctx context.Context) error {
	var last error
	for {
		if last = c.healthy(ctx); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster not healthy: %w (%v)", last, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (c *Cluster) healthy(ctx context.Context) error {
	for _, s := range c.Nodes {
		if !s.Running() {
			continue
		}
		err := s.with(ctx, func(n *redis.Client) error {
			info, err := n.ClusterInfo(ctx).Result()
			if err != nil {
				return err
			}
			if !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, "cluster_slots_ok:16384") {
				return errors.New("cluster_state not ok")
			}
			repl, err := n.Info(ctx, "replication").Result()
			if err != nil {
				return err
			}
			if strings.Contains(repl, "role:slave") && !strings.Contains(repl, "master_link_status:up") {
				return errors.New("replica not in sync")
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("node %s: %w", s.Addr(), err)
		}
	}
	return nil
}

// with calls f with a client of the node alone.
func (s *Server) with(ctx context.Context, f func(*redis.Client) error) error {
	n := redis.NewClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1, DialTimeout: time.Second})
	defer n.Close()
	return f(n)
}

// Master returns the node that serves slot now (after a failover, the
// promoted replica).
func (c *Cluster) Master(ctx context.Context, slot int) (*Server, error) {
	for _, s := range c.Nodes {
		if !s.Running() {
			continue
		}
		var owner *Server
		err := s.with(ctx, func(n *redis.Client) error {
			slots, err := n.ClusterSlots(ctx).Result()
			if err != nil {
				return err
			}
			for _, r := range slots {
				if r.Start <= slot && slot <= r.End && len(r.Nodes) > 0 {
					owner = c.node(r.Nodes[0].Addr)
				}
			}
			return nil
		})
		if err == nil && owner != nil {
			return owner, nil
		}
	}
	return nil, fmt.Errorf("no node serves slot %d", slot)
}

// Slot returns the cluster slot of the keys of workspace ws.
func (c *Cluster) Slot(ctx context.Context, ws string) (int, error) {
	n, err := c.client.ClusterKeySlot(ctx, "{"+ws+"}").Result()
	return int(n), err
}

// shardOf is the index of the slot range (one master's, at creation) that
// holds workspace ws, or -1 when the cluster cannot say.
func (c *Cluster) shardOf(ws string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	slot, err := c.Slot(ctx, ws)
	if err != nil {
		return -1
	}
	for i, r := range c.shards {
		if r.Start <= slot && slot <= r.End {
			return i
		}
	}
	return -1
}

func (c *Cluster) node(addr string) *Server {
	for _, s := range c.Nodes {
		if s.Addr() == addr {
			return s
		}
	}
	return nil
}

// ForEachMaster calls f with a client of each master serving slots now.
func (c *Cluster) ForEachMaster(ctx context.Context, f func(*Server, *redis.Client) error) error {
	seen := map[*Server]bool{}
	for _, r := range c.shards {
		m, err := c.Master(ctx, r.Start)
		if err != nil {
			return err
		}
		if seen[m] {
			continue
		}
		seen[m] = true
		if err := m.with(ctx, func(n *redis.Client) error { return f(m, n) }); err != nil {
			return err
		}
	}
	return nil
}

// Shards is the number of slot ranges (masters at creation).
func (c *Cluster) Shards() int { return len(c.shards) }

// ShardStart is the first slot of shard i.
func (c *Cluster) ShardStart(i int) int { return c.shards[i].Start }
