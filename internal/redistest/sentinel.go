package redistest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Sentinel is a Redis master with one replica watched by sentinels, all on
// loopback ports of the test's own.
type Sentinel struct {
	URL       string // redis+sentinel://127.0.0.1:s1,.../MasterName
	Master    *Server
	Replica   *Server
	Sentinels []*Server
}

// MasterName is the name the sentinels know the master by.
const MasterName = "leadrouter"

// StartSentinel starts a master, a replica in sync with it, and n
// sentinels (1 to 3) that agree the master is up; all are killed when the
// test ends.
func StartSentinel(tb testing.TB, n int) *Sentinel {
	tb.Helper()
	st := &Sentinel{Master: StartServer(tb)}
	st.Replica = StartServer(tb, "--replicaof", "127.0.0.1", strconv.Itoa(st.Master.Port))
	var addrs []string
	for i := 0; i < n; i++ {
		s, err := newServer(tb.TempDir())
		if err != nil {
			tb.Fatal(err)
		}
		conf := filepath.Join(s.Dir, "sentinel.conf") // sentinels rewrite their config
		err = os.WriteFile(conf, []byte(fmt.Sprintf(
			"sentinel monitor %s 127.0.0.1 %d %d\nsentinel down-after-milliseconds %[1]s 1000\nsentinel failover-timeout %[1]s 5000\n",
			MasterName, st.Master.Port, n/2+1)), 0o600)
		if err != nil {
			tb.Fatal(err)
		}
		// redis-server's sentinel mode takes no --save or --appendonly.
		s.args = []string{"--port", strconv.Itoa(s.Port), "--bind", "127.0.0.1", "--dir", s.Dir, "--loglevel", "warning"}
		tb.Cleanup(s.stop)
		if err := s.startBinary("redis-server", conf, "--sentinel"); err != nil {
			tb.Fatal(err)
		}
		st.Sentinels = append(st.Sentinels, s)
		addrs = append(addrs, s.Addr())
	}
	st.URL = "redis+sentinel://" + strings.Join(addrs, ",") + "/" + MasterName
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := st.waitMaster(ctx, st.Master, true); err != nil {
		tb.Fatal(err)
	}
	return st
}

// Failover asks a sentinel to promote the replica (SENTINEL FAILOVER) and
// waits until every sentinel names it as the master, it accepts writes,
// and the old master has become its replica. Until then the old master
// still takes writes, and loses them when it turns replica: Redis
// replication is asynchronous.
func (st *Sentinel) Failover(tb testing.TB) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err := st.Sentinels[0].with(ctx, func(c *redis.Client) error {
		return redis.NewSentinelClient(c.Options()).Failover(ctx, MasterName).Err()
	})
	if err != nil {
		tb.Fatalf("SENTINEL FAILOVER: %v", err)
	}
	if err := st.waitMaster(ctx, st.Replica, false); err != nil {
		tb.Fatal(err)
	}
	st.Master, st.Replica = st.Replica, st.Master
	for {
		var role []any
		err := st.Replica.with(ctx, func(c *redis.Client) (err error) {
			role, err = c.Do(ctx, "ROLE").Slice()
			return err
		})
		if err == nil && len(role) > 0 && role[0] == "slave" {
			return
		}
		select {
		case <-ctx.Done():
			tb.Fatalf("the old master did not become a replica: %v %v", role, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// waitMaster waits until every sentinel names m as the master (and, with
// replica, sees its replica) and m says it is a master.
func (st *Sentinel) waitMaster(ctx context.Context, m *Server, replica bool) error {
	for {
		err := st.check(ctx, m, replica)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("sentinel: %v (%w)", err, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (st *Sentinel) check(ctx context.Context, m *Server, replica bool) error {
	for _, s := range st.Sentinels {
		sc := redis.NewSentinelClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1})
		addr, err := sc.GetMasterAddrByName(ctx, MasterName).Result()
		var replicas []map[string]string
		if err == nil && replica {
			replicas, err = sc.Replicas(ctx, MasterName).Result()
		}
		sc.Close()
		if err != nil {
			return err
		}
		if len(addr) != 2 || addr[1] != strconv.Itoa(m.Port) {
			return fmt.Errorf("sentinel %s names %v as master", s.Addr(), addr)
		}
		if replica && (len(replicas) == 0 || strings.Contains(replicas[0]["flags"], "down")) {
			return fmt.Errorf("sentinel %s sees no replica up", s.Addr())
		}
	}
	if replica {
		err := st.Replica.with(ctx, func(c *redis.Client) error {
			info, err := c.Info(ctx, "replication").Result()
			if err == nil && !strings.Contains(info, "master_link_status:up") {
				err = fmt.Errorf("replica %s not in sync", st.Replica.Addr())
			}
			return err
		})
		if err != nil {
			return err
		}
	}
	return m.with(ctx, func(c *redis.Client) error {
		role, err := c.Do(ctx, "ROLE").Slice()
		if err != nil {
			return err
		}
		if len(role) == 0 || role[0] != "master" {
			return fmt.Errorf("%s is %v", m.Addr(), role)
		}
		return nil
	})
}
