// Package server exposes the engine over gRPC: the four services of
// proto/leadrouter/v1, the standard health service (serving while the store
// answers) and server reflection.
package server

import (
	"context"
	"errors"
	"fmt"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"
	"log/slog"
	"math"
	"net"
	"runtime/debug"
	"sync"
	"time"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	"github.com/leadrouter/leadrouter/engine"
	pb "github.com/leadrouter/leadrouter/gen/leadrouter/v1"
	"github.com/leadrouter/leadrouter/metrics"
)

// DefaultHealthInterval is how often the store is pinged to set the health
// status: NOT_SERVING follows a Redis outage within about two intervals.
const DefaultHealthInterval = 2 * time.Second

// Options configure New.
type Options struct {
	Logger *slog.Logger
	// Reflection registers server reflection (grpcurl works without protos).
	Reflection bool
	// HealthInterval is how often the store is pinged to set the health
	// status (default DefaultHealthInterval).
	HealthInterval time.Duration
	// ServerOptions are passed to grpc.NewServer after leadrouter's own.
	ServerOptions []grpc.ServerOption
	// Auth, when set, requires a bearer token on every leadrouter call and
	// checks what its role may do; nil serves everyone (insecure mode).
	Auth *Auth
	// DefaultDeadline is a unary call's deadline when the client sets none
	// (default DefaultDeadline).
	DefaultDeadline time.Duration
	// MaxRecvBytes bounds a request message (default DefaultMaxRecvBytes).
	MaxRecvBytes int
	// MaxStreamsPerRep bounds each rep's WatchAssignments streams on this
	// replica (default DefaultMaxStreamsPerRep).
	MaxStreamsPerRep int
	// MaxConcurrentStreams bounds the calls and streams open at once on
	// one client connection (default DefaultMaxConcurrentStreams); more
	// wait for one to end.
	MaxConcurrentStreams int
	// MaxConnectionAge is how long a client connection lives (default
	// DefaultMaxConnectionAge).
	MaxConnectionAge time.Duration
	// Metrics, when set, gets the gRPC server metrics (interceptors), the
	// stream gauges and panic counts. The engine and store report to it
	// on their own (engine.WithObserver, store.Observe).
	Metrics *metrics.Metrics
	// WatchBuffer is each stream subscriber's buffer in events (default
	// engine.DefaultWatchBuffer); a client that falls further behind gets
	// RESOURCE_EXHAUSTED.
	WatchBuffer int
}

// Server is a gRPC server with leadrouter's services registered.
type Server struct {
	*grpc.Server
	health   *health.Server
	engine   *engine.Engine
	watcher  *engine.Watcher
	log      *slog.Logger
	metrics  *metrics.Metrics
	interval time.Duration
	// inproc serves the in-process connection of the HTTP edge
	// (InProcess): the same handlers and interceptors as Server, without
	// its transport credentials.
	handlers   *handlers
	inproc     *grpc.Server
	inprocOnce sync.Once
	inprocLis  *bufconn.Listener
	maxRecv    int
	deadline   time.Duration                 // DefaultDeadline
	unary      []grpc.UnaryServerInterceptor // the chain, outermost first (Direct)
}

// New builds the gRPC server for an engine. Interceptors, outermost first:
// logging, gRPC metrics (with Options.Metrics), panic recovery (a panic
// becomes INTERNAL for that call, logged with its stack and counted),
// undecodable requests (INVALID_ARGUMENT), authentication and authorization
// (with Options.Auth), and the default deadline of unary calls.
func New(e *engine.Engine, o Options) *Server {
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	recoverer := recovery.WithRecoveryHandlerContext(func(ctx context.Context, p any) error {
		log.ErrorContext(ctx, "panic in handler", "panic", p, "stack", string(debug.Stack()))
		o.Metrics.HandlerPanicked()
		return status.Error(codes.Internal, "internal error")
	})
	codec := newCheckedCodec()
	own := []grpc.ServerOption{
		// Streams live for hours: ping idle connections so a desktop that
		// vanished (sleep, roaming, a pulled cable) is detected and its
		// stream closed, and let clients ping without open calls.
		// A connection lives at most MaxConnectionAge (then GOAWAY: new
		// calls go to a new connection, which spreads clients over replicas
		// that started later), and its streams get the grace to end; a
		// stream cut at the end of it resumes on a new connection.
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 10 * time.Second,
			MaxConnectionAge: orDefault(o.MaxConnectionAge, DefaultMaxConnectionAge), MaxConnectionAgeGrace: connectionAgeGrace}),
		grpc.MaxConcurrentStreams(uint32(orDefault(o.MaxConcurrentStreams, DefaultMaxConcurrentStreams))),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		grpc.MaxRecvMsgSize(orDefault(o.MaxRecvBytes, DefaultMaxRecvBytes)),
		grpc.ForceServerCodecV2(codec),
		// Calls run on long-lived worker goroutines (a call finding them all
		// busy gets a goroutine of its own): a fresh goroutine per call grows
		// its stack on every call, a few percent of AssignLead's CPU.
		grpc.NumStreamWorkers(streamWorkers),
	}
	calls := callLog{log: log}
	unary := []grpc.UnaryServerInterceptor{calls.unary}
	stream := []grpc.StreamServerInterceptor{calls.stream}
	if g := o.Metrics.GRPC(); g != nil {
		unary = append(unary, g.UnaryServerInterceptor())
		stream = append(stream, g.StreamServerInterceptor())
	}
	unary = append(unary, recovery.UnaryServerInterceptor(recoverer), codec.unary())
	stream = append(stream, recovery.StreamServerInterceptor(recoverer), codec.stream())
	if o.Auth != nil {
		unary = append(unary, o.Auth.UnaryInterceptor())
		stream = append(stream, o.Auth.StreamInterceptor())
	}
	unary = append(unary, deadlineInterceptor(orDefault(o.DefaultDeadline, DefaultDeadline)))
	own = append(own, grpc.ChainUnaryInterceptor(unary...), grpc.ChainStreamInterceptor(stream...))
	s := &Server{
		Server: grpc.NewServer(append(own, o.ServerOptions...)...),
		// The in-process listener carries every HTTP client's streams on
		// one connection: no stream bound (the HTTP edge has its own) and
		// no connection age.
		inproc:   grpc.NewServer(append(own, grpc.MaxConcurrentStreams(math.MaxUint32), grpc.KeepaliveParams(keepalive.ServerParameters{}))...),
		maxRecv:  orDefault(o.MaxRecvBytes, DefaultMaxRecvBytes),
		unary:    unary,
		health:   health.NewServer(),
		engine:   e,
		log:      log,
		metrics:  o.Metrics,
		interval: o.HealthInterval,
	}
	if s.interval <= 0 {
		s.interval = DefaultHealthInterval
	}
	// NOT_SERVING until WatchHealth's first ping of the store answers: a
	// replica started while Redis is unreachable is never drained into.
	for _, name := range services {
		s.health.SetServingStatus(name, healthpb.HealthCheckResponse_NOT_SERVING)
	}
	s.watcher = engine.NewWatcher(e.Store(), log, o.WatchBuffer)
	s.watcher.Observe(e.Observer())
	h := &handlers{engine: e, watcher: s.watcher, log: log, metrics: o.Metrics,
		repStreams: &repStreams{limit: orDefault(o.MaxStreamsPerRep, DefaultMaxStreamsPerRep), open: map[string]int{}}}
	s.handlers = h
	s.deadline = orDefault(o.DefaultDeadline, DefaultDeadline)
	for _, g := range []*grpc.Server{s.Server, s.inproc} {
		pb.RegisterRoutingServiceServer(g, h)
		pb.RegisterAdminServiceServer(g, h)
		pb.RegisterRepServiceServer(g, h)
		pb.RegisterEventServiceServer(g, h)
		healthpb.RegisterHealthServer(g, s.health)
	}
	if o.Reflection {
		reflection.Register(s.Server)
	}
	if g := o.Metrics.GRPC(); g != nil {
		g.InitializeMetrics(s.Server)
	}
	return s
}

// InProcess returns a client connection to this server's handlers over an
// in-memory pipe, for the HTTP edge (httpapi): every call goes through the
// same interceptors (auth, limits, metrics, deadlines) as a network
// call, without the network's transport credentials (the edge has its
// own TLS). Each call returns a new connection to the one in-memory
// listener; Shutdown closes them.
func (s *Server) InProcess() (*grpc.ClientConn, error) {
	s.inprocOnce.Do(func() {
		s.inprocLis = bufconn.Listen(1 << 20)
		go s.inproc.Serve(s.inprocLis) //nolint:errcheck // ends with Stop
	})
	lis := s.inprocLis
	return grpc.NewClient("passthrough:///leadrouter-inprocess",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(s.maxRecv), grpc.MaxCallRecvMsgSize(inprocMaxAnswer)))
}

// inprocMaxAnswer bounds an answer over the in-process connection: the
// largest is a config of the largest size ApplyRoutingConfig accepts.
const inprocMaxAnswer = 256 << 20

// Shutdown ends every open stream with UNAVAILABLE (clients resume on
// another replica), then stops gracefully, forcing the stop when ctx ends.
func (s *Server) Shutdown(ctx context.Context) {
	s.watcher.Close()
	done := make(chan struct{})
	go func() { s.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		s.log.Warn("graceful stop timed out; closing connections")
		s.Stop()
		<-done
	}
}

// Stop stops the server and its in-process listener at once.
func (s *Server) Stop() {
	s.Server.Stop()
	s.inproc.Stop()
}

// GracefulStop stops the server and its in-process listener once their
// calls end.
func (s *Server) GracefulStop() {
	s.Server.GracefulStop()
	s.inproc.GracefulStop()
}

// Watcher returns the server's event fan-out.
func (s *Server) Watcher() *engine.Watcher { return s.watcher }

// streamWorkers is how many goroutines wait for calls: enough for the
// calls one replica has in flight at once under load. A worker keeps its
// call until the call ends, so an open WatchAssignments or WatchEvents
// stream holds one for hours: with this many streams open, unary calls
// get a goroutine each again (as without workers: slower by a few percent
// of AssignLead's CPU, never refused).
const streamWorkers = 128

// services are the names whose health follows the store.
var services = []string{
	"", pb.RoutingService_ServiceDesc.ServiceName, pb.AdminService_ServiceDesc.ServiceName,
	pb.RepService_ServiceDesc.ServiceName, pb.EventService_ServiceDesc.ServiceName,
}

// WatchHealth pings the store every interval and sets every service SERVING
// or NOT_SERVING accordingly, until ctx ends; then it sets NOT_SERVING for
// good (the server is shutting down). On a cluster the replica serves
// while any master answers: a master that is down fails only its own
// workspaces' calls (UNAVAILABLE), and draining every replica for it would
// fail everyone's; leadrouter_redis_unreachable_masters says how many.
func (s *Server) WatchHealth(ctx context.Context) {
	clockOff, lastDown := false, 0
	ping := func(ctx context.Context) error {
		ss, ok := s.engine.Store().(engine.ShardedStore)
		if !ok {
			return s.engine.Store().Ping(ctx)
		}
		down, total := ss.PingShards(ctx)
		s.metrics.UnreachableMasters(down)
		if down != lastDown && total > 1 {
			s.log.Warn("redis masters unreachable: their workspaces' calls are UNAVAILABLE, the others' are served", "down", down, "masters", total)
			lastDown = down
		}
		if down == total {
			return fmt.Errorf("%w: no Redis server answers (%d of %d down)", engine.ErrUnavailable, down, total)
		}
		return nil
	}
	check := func() {
		pctx, cancel := context.WithTimeout(ctx, s.interval)
		defer cancel()
		err := ping(pctx)
		st := healthpb.HealthCheckResponse_SERVING
		if err != nil {
			st = healthpb.HealthCheckResponse_NOT_SERVING
			if ctx.Err() == nil {
				s.log.Warn("store unreachable", "err", err)
			}
		} else {
			// A deadline of its own: the ping may have used up pctx.
			cctx, ccancel := context.WithTimeout(ctx, s.interval)
			offset, err := s.engine.CheckClock(cctx)
			ccancel()
			if err == nil || errors.Is(err, engine.ErrClockOffset) {
				s.metrics.ClockOffset(offset)
			}
			// The engine's verdict, whatever this measurement's fate: a
			// failed TIME leaves it as it was.
			err = s.engine.ClockOK()
			if off := err != nil; off != clockOff {
				clockOff = off
				if off {
					s.log.Error("clock offset from Redis beyond the maximum: NOT_SERVING, refusing calls and sweeps", "offset", offset, "err", err)
				} else {
					s.log.Info("clock offset from Redis back within the maximum: serving", "offset", offset)
				}
			}
			if clockOff {
				st = healthpb.HealthCheckResponse_NOT_SERVING
			}
		}
		for _, name := range services {
			s.health.SetServingStatus(name, st)
		}
	}
	check()
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			s.health.Shutdown()
			return
		case <-t.C:
			check()
		}
	}
}

func orDefault[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}
