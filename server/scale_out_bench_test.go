package server_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	pb "github.com/leadrouter/leadrouter/gen/leadrouter/v1"
	"github.com/leadrouter/leadrouter/internal/parallel"
	"github.com/leadrouter/leadrouter/internal/redistest"
)

const scaleOutConfig = `
reps: [{id: r1}, {id: r2}, {id: r3}, {id: r4}, {id: r5}]
pools: [{id: team, members: [{rep_id: r1}, {rep_id: r2}, {rep_id: r3}, {rep_id: r4}, {rep_id: r5}]}]
rules: [{id: all, targets: [{pool_id: team}]}]
`

// BenchmarkScaleOut measures AssignLead throughput end to end (gRPC over
// loopback, 32 concurrent clients, leads spread over 30 workspaces) on one
// redis-server and on a 3-master Redis Cluster (3 replicas), both started
// in this run. Every process shares this machine's cores, so the cluster
// cannot show the speed-up it has on three hosts: read the ratio as what
// the cluster's routing costs, not as what it gains.
//
// On the cluster it then runs 1000 assignments in one workspace alone and
// reports, from INFO commandstats and INFO cpu on the master holding that
// workspace, the commands, EVALSHA calls and Redis CPU each assignment
// costs its shard.
func BenchmarkScaleOut(b *testing.B) {
	const (
		workspaces = 30
		clients    = 32
	)
	single := redistest.StartServer(b, "--maxclients", "10000")
	cluster := redistest.StartCluster(b)
	for _, be := range []struct{ name, url string }{{"redis", single.URL}, {"cluster-3-masters", cluster.URL}} {
		b.Run(be.name, func(b *testing.B) {
			st := redistest.OpenStore(b, be.url)
			sent := &commandCounter{}
			st.Client().AddHook(sent)
			in := start(b, st)
			wss := make([]string, workspaces)
			for i := range wss {
				wss[i] = redistest.Workspace(b)
				in.applyYAML(b, wss[i], scaleOutConfig)
			}
			ctx := context.Background()
			for i := 0; i < 2*workspaces; i++ { // warm the config cache and the scripts
				assignOK(b, in, wss[i%workspaces], fmt.Sprint("warm-", i))
			}
			b.ReportAllocs()
			b.ResetTimer()
			t0 := time.Now()
			parallel.Each(clients, b.N, func(i int) error {
				assignOK(b, in, wss[i%workspaces], fmt.Sprint("lead-", i))
				return nil
			})
			elapsed := time.Since(t0)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "assign/s")
			if be.name != "redis" {
				perShard(b, ctx, in, cluster, sent)
			}
		})
	}
}

func assignOK(tb testing.TB, in *instance, ws, id string) {
	resp, err := in.routing.AssignLead(context.Background(), &pb.AssignLeadRequest{Workspace: ws, Lead: &pb.Lead{Id: id}})
	if err != nil || resp.GetAssignment().GetState() != pb.AssignmentState_ASSIGNMENT_STATE_ASSIGNED {
		tb.Errorf("lead %s: %v %v", id, err, resp.GetAssignment().GetState())
	}
}

// perShard reports what one assignment costs the master of its workspace.
func perShard(b *testing.B, ctx context.Context, in *instance, c *redistest.Cluster, sent *commandCounter) {
	const n = 1000
	ws := c.WorkspaceOn(b, 1)
	in.applyYAML(b, ws, scaleOutConfig)
	assignOK(b, in, ws, "warm")
	slot, err := c.Slot(ctx, ws)
	if err != nil {
		b.Fatal(err)
	}
	m, err := c.Master(ctx, slot)
	if err != nil {
		b.Fatal(err)
	}
	mc := redis.NewClient(&redis.Options{Addr: m.Addr()})
	defer mc.Close()
	before, sent0 := shardStats(b, ctx, mc), sent.n.Load()
	for i := 0; i < n; i++ {
		assignOK(b, in, ws, fmt.Sprint("shard-", i))
	}
	after, sent1 := shardStats(b, ctx, mc), sent.n.Load()
	b.ReportMetric(float64(sent1-sent0)/n, "client-cmds/assign")
	calls := func(s map[string]float64, cmd string) float64 { return s["cmdstat_"+cmd] }
	total := func(s map[string]float64) float64 {
		sum := 0.0
		for k, v := range s {
			if strings.HasPrefix(k, "cmdstat_") && k != "cmdstat_info" {
				sum += v
			}
		}
		return sum
	}
	// commandstats counts the commands a script calls too.
	b.ReportMetric((total(after)-total(before))/n, "shard-cmds/assign")
	b.ReportMetric((calls(after, "evalsha")-calls(before, "evalsha"))/n, "shard-evalsha/assign")
	b.ReportMetric((after["cpu"]-before["cpu"])/n*1e6, "shard-cpu-µs/assign")
	var others []string
	for k, v := range after {
		if d := v - before[k]; strings.HasPrefix(k, "cmdstat_") && k != "cmdstat_info" && d > 0 {
			others = append(others, fmt.Sprintf("%s %.2f", strings.TrimPrefix(k, "cmdstat_"), d/n))
		}
	}
	slices.Sort(others)
	b.Logf("per assignment on the shard of one workspace (calls, scripts' included): %s", strings.Join(others, ", "))
}

// commandCounter counts the commands (a pipeline's each) a client sends.
type commandCounter struct{ n atomic.Int64 }

func (c *commandCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *commandCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.n.Add(1)
		return next(ctx, cmd)
	}
}

func (c *commandCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.n.Add(int64(len(cmds)))
		return next(ctx, cmds)
	}
}

// shardStats reads the calls of each command and the CPU seconds (user +
// sys) of one Redis node.
func shardStats(b *testing.B, ctx context.Context, c *redis.Client) map[string]float64 {
	info, err := c.Info(ctx, "commandstats", "cpu").Result()
	if err != nil {
		b.Fatal(err)
	}
	out := map[string]float64{}
	for _, line := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok {
			continue
		}
		switch {
		case strings.HasPrefix(k, "cmdstat_"):
			for _, f := range strings.Split(v, ",") {
				if n, ok := strings.CutPrefix(f, "calls="); ok {
					out[k], _ = strconv.ParseFloat(n, 64)
				}
			}
		case k == "used_cpu_user" || k == "used_cpu_sys":
			f, _ := strconv.ParseFloat(v, 64)
			out["cpu"] += f
		}
	}
	return out
}
