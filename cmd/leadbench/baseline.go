package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"hash/fnv"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/leadrouter/leadrouter/engine"
	pb "github.com/leadrouter/leadrouter/gen/leadrouter/v1"
	"github.com/leadrouter/leadrouter/metrics"
)

// leadbench measures AssignLead against two reference servers. Both serve
// leadrouter.v1.RoutingService.AssignLead over the same gRPC stack and the
// same go-redis client as leadrouterd, answer with a small ASSIGNED
// response, and do less work per lead than any real decision:
//
//   - the baseline runs one EVALSHA of a one-command script: the floor of
//     any design that keeps its state in Redis;
//   - the store floor runs one EVALSHA that stores what any design must
//     store for an assigned lead, and nothing more (storeFloorScript).
//
// AssignLead over the baseline is what leadrouter costs; the store floor
// over the baseline is how much of that any design pays just to keep the
// lead, and AssignLead over the store floor is what the routing decision
// itself (rules, eligibility, strategies, timers, trace, answer) adds.

// baselineScript is the baseline's whole server-side work: one counter
// increment in Redis.
const baselineScript = `return redis.call('HINCRBY', KEYS[1], 'n', 1)`

// baselineKeys is how many counters the leads are spread over.
const baselineKeys = 1024

// storeFloorScript keeps an assigned lead the least a routing service can:
// a repeat of a lead id gets the rep it got the first time (AssignLead is
// retried), a new lead takes the next rep of one rotation, its record
// holds the lead and the decision, the rep's open count grows (capacity
// and least-loaded routing read it) and an event tells the rep's stream.
// No rules, no eligibility, no timers, no trace.
//
// KEYS[1] the lead's record HASH, KEYS[2] the rotation HASH, KEYS[3] the
// reps' open counts HASH, KEYS[4] the event STREAM.
// ARGV[1] the lead (protobuf), ARGV[2] lead id, ARGV[3] now (unix ms),
// ARGV[4] number of reps.
// Returns the rep.
const storeFloorScript = `
local rep = redis.call('HGET', KEYS[1], 'rep')
if rep then return rep end
rep = 'rep-' .. (redis.call('HINCRBY', KEYS[2], 'next', 1) % tonumber(ARGV[4]))
redis.call('HSET', KEYS[1], 'lead', ARGV[1], 'state', 'ASSIGNED', 'rep', rep, 'decided_at', ARGV[3])
redis.call('HINCRBY', KEYS[3], rep, 1)
redis.call('XADD', KEYS[4], '*', 'kind', 'assigned', 'lead', ARGV[2], 'rep', rep)
return rep`

// storeFloorReps is the store floor's rotation length: the benchmark
// config's number of reps.
var storeFloorReps = len(benchConfig().Reps)

// storeFloorPrefix starts the store floor's keys, one hash tag for all.
const storeFloorPrefix = "{leadbench}:floor:"

// refServer is a reference server: the baseline, or the store floor when
// floor is set. With obs, it times each call in the same
// leadrouter_assign_duration_seconds histogram as leadrouterd, from the
// handler's start to the answer built: the Redis round trip, encoding the
// lead and building the answer included (leadrouterd's span is the
// engine's decision, from the lead converted to the decision made).
type refServer struct {
	pb.UnimplementedRoutingServiceServer
	rdb   *redis.Client
	sha   string
	floor bool
	obs   *metrics.Metrics // nil: not timed
}

// newRefServer loads the reference's script into Redis.
func newRefServer(ctx context.Context, rdb *redis.Client, floor bool) (*refServer, error) {
	script := baselineScript
	if floor {
		script = storeFloorScript
	}
	sha, err := rdb.ScriptLoad(ctx, script).Result()
	if err != nil {
		return nil, fmt.Errorf("load the reference script: %w", err)
	}
	return &refServer{rdb: rdb, sha: sha, floor: floor}, nil
}

// AssignLead runs the reference's one EVALSHA and answers ASSIGNED.
func (s *refServer) AssignLead(ctx context.Context, req *pb.AssignLeadRequest) (*pb.AssignLeadResponse, error) {
	start := time.Now()
	id := req.GetLead().GetId()
	var rep string
	var err error
	if s.floor {
		rep, err = s.store(ctx, req.GetLead())
	} else {
		rep, err = s.count(ctx, id)
	}
	if err != nil {
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	resp := &pb.AssignLeadResponse{Assignment: &pb.Assignment{
		LeadId: id, State: pb.AssignmentState_ASSIGNMENT_STATE_ASSIGNED, RepId: rep,
	}}
	s.obs.LeadDecided(req.GetWorkspace(), engine.OutcomeAssigned, "", time.Since(start))
	return resp, nil
}

// count is the baseline: one increment of a counter chosen by the lead id.
func (s *refServer) count(ctx context.Context, id string) (string, error) {
	h := fnv.New32a()
	h.Write([]byte(id))
	key := "leadbench:baseline:" + strconv.FormatUint(uint64(h.Sum32()%baselineKeys), 10)
	n, err := s.rdb.EvalSha(ctx, s.sha, []string{key}).Int64()
	return "rep-" + strconv.FormatInt(n%64, 10), err
}

// store is the store floor: the lead, in its cheapest encoding, kept by
// storeFloorScript.
func (s *refServer) store(ctx context.Context, lead *pb.Lead) (string, error) {
	b, err := proto.Marshal(lead)
	if err != nil {
		return "", err
	}
	const p = storeFloorPrefix
	keys := []string{p + "lead:" + lead.GetId(), p + "rotation", p + "open", p + "events"}
	return s.rdb.EvalSha(ctx, s.sha, keys, b, lead.GetId(), time.Now().UnixMilli(), storeFloorReps).Text()
}

// runBaselineServer is the baseline-server subcommand: it serves a
// reference on --listen until SIGINT or SIGTERM.
func runBaselineServer(args []string) error {
	fs := flag.NewFlagSet("leadbench baseline-server", flag.ContinueOnError)
	redisURL := fs.String("redis-url", "", "Redis URL (required)")
	listen := fs.String("listen", "127.0.0.1:7071", "gRPC listen address")
	floor := fs.Bool("store-floor", false, "serve the store floor instead of the baseline")
	metricsListen := fs.String("metrics-listen", "", "serve the call-time histogram (leadrouter_assign_duration_seconds) on this address at /metrics (empty: calls are not timed)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *redisURL == "" {
		return errors.New("baseline-server: --redis-url is required")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	// The same client and options as leadrouterd's store (store.Open), so
	// both sides have the same connection pool.
	opts, err := redis.ParseURL(*redisURL)
	if err != nil {
		return fmt.Errorf("redis url: %w", err)
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	ref, err := newRefServer(ctx, rdb, *floor)
	if err != nil {
		return err
	}
	if *metricsListen != "" {
		reg := prometheus.NewRegistry()
		ref.obs = metrics.New(reg, metrics.Options{})
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		mlis, err := net.Listen("tcp", *metricsListen)
		if err != nil {
			return err
		}
		msrv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go msrv.Serve(mlis)
		defer msrv.Close()
	}
	lis, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	srv := grpc.NewServer()
	pb.RegisterRoutingServiceServer(srv, ref)
	go func() {
		<-ctx.Done()
		srv.Stop()
	}()
	if err := srv.Serve(lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		fmt.Fprintln(os.Stderr, "baseline-server:", err)
		return err
	}
	return nil
}
