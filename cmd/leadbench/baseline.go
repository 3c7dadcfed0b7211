package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"hash/fnv"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/leadrouter/leadrouter/gen/leadrouter/v1"
)

// baselineScript is the baseline's whole server-side work: one counter
// increment in Redis.
const baselineScript = `return redis.call('HINCRBY', KEYS[1], 'n', 1)`

// baselineKeys is how many counters the leads are spread over.
const baselineKeys = 1024

// baselineServer implements leadrouter.v1.RoutingService.AssignLead with the
// least work any design that keeps its state in Redis must do per lead: one
// EVALSHA of a tiny script on a key derived from the lead id, and a small
// response. It serves the same requests as leadrouterd over the same gRPC
// stack, so the difference between the two is what leadrouter's decision
// costs on top of the floor.
type baselineServer struct {
	pb.UnimplementedRoutingServiceServer
	rdb *redis.Client
	sha string
}

// AssignLead increments the counter of the lead's key and answers ASSIGNED.
func (s *baselineServer) AssignLead(ctx context.Context, req *pb.AssignLeadRequest) (*pb.AssignLeadResponse, error) {
	id := req.GetLead().GetId()
	h := fnv.New32a()
	h.Write([]byte(id))
	key := "leadbench:baseline:" + strconv.FormatUint(uint64(h.Sum32()%baselineKeys), 10)
	n, err := s.rdb.EvalSha(ctx, s.sha, []string{key}).Int64()
	if err != nil {
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	return &pb.AssignLeadResponse{Assignment: &pb.Assignment{
		LeadId: id, State: pb.AssignmentState_ASSIGNMENT_STATE_ASSIGNED, RepId: "rep-" + strconv.FormatInt(n%64, 10),
	}}, nil
}

// runBaselineServer is the baseline-server subcommand: it serves the
// baseline on --listen until SIGINT or SIGTERM.
func runBaselineServer(args []string) error {
	fs := flag.NewFlagSet("leadbench baseline-server", flag.ContinueOnError)
	redisURL := fs.String("redis-url", "", "Redis URL (required)")
	listen := fs.String("listen", "127.0.0.1:7071", "gRPC listen address")
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
	sha, err := rdb.ScriptLoad(ctx, baselineScript).Result()
	if err != nil {
		return fmt.Errorf("load the baseline script: %w", err)
	}
	lis, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	srv := grpc.NewServer()
	pb.RegisterRoutingServiceServer(srv, &baselineServer{rdb: rdb, sha: sha})
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
