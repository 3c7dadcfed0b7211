package server_test

import (
	"context"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/leadrouter/leadrouter/engine"
	pb "github.com/leadrouter/leadrouter/gen/leadrouter/v1"
	"github.com/leadrouter/leadrouter/internal/redistest"
	"github.com/leadrouter/leadrouter/server"
)

func TestMain(m *testing.M) { os.Exit(redistest.Main(m)) }

var quiet = slog.New(slog.DiscardHandler)

// instance is one leadrouterd as tests see it: a real gRPC server on a
// loopback port and a client connection to it.
type instance struct {
	conn    *grpc.ClientConn
	routing pb.RoutingServiceClient
	admin   pb.AdminServiceClient
	rep     pb.RepServiceClient
	srv     *server.Server
	eng     *engine.Engine
}

// start serves an engine on st over loopback until the test ends.
func start(t testing.TB, st engine.Store, opts ...engine.Option) *instance {
	t.Helper()
	return startWith(t, st, server.Options{}, opts...)
}

// startWith is start with server options (reflection and health interval
// are set here; the logger, unless given, discards).
func startWith(t testing.TB, st engine.Store, o server.Options, opts ...engine.Option) *instance {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if o.Logger == nil {
		o.Logger = quiet
	}
	o.Reflection, o.HealthInterval = true, 50*time.Millisecond
	eng := engine.New(st, append([]engine.Option{engine.WithLogger(o.Logger)}, opts...)...)
	srv := server.New(eng, o)
	ctx, cancel := context.WithCancel(context.Background())
	go srv.WatchHealth(ctx)
	go srv.Serve(lis)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		cancel()
		srv.Stop()
	})
	return &instance{conn: conn, srv: srv, eng: eng, routing: pb.NewRoutingServiceClient(conn),
		admin: pb.NewAdminServiceClient(conn), rep: pb.NewRepServiceClient(conn)}
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// applyYAML applies a YAML routing config through the AdminService.
func (in *instance) applyYAML(t testing.TB, ws, yaml string) int64 {
	t.Helper()
	return in.applyYAMLAs(t, ctxT(t), ws, yaml)
}

// applyYAMLAs is applyYAML with the call's context (a token, say).
func (in *instance) applyYAMLAs(t testing.TB, ctx context.Context, ws, yaml string) int64 {
	t.Helper()
	cfg, err := engine.ParseConfigYAML(strings.NewReader(yaml))
	if err != nil {
		t.Fatal(err)
	}
	// Pools that leave accept_within unset assign without an offer here;
	// the lifecycle tests set it.
	for i := range cfg.Pools {
		if cfg.Pools[i].AcceptWithin == nil {
			var zero engine.Duration
			cfg.Pools[i].AcceptWithin = &zero
		}
	}
	resp, err := in.admin.ApplyRoutingConfig(ctx, &pb.ApplyRoutingConfigRequest{Workspace: ws, Config: server.ConfigToProto(cfg)})
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	return resp.GetVersion()
}

// wantCode fails unless err is a gRPC status with the code.
func wantCode(t testing.TB, err error, code codes.Code) *status.Status {
	t.Helper()
	st, ok := status.FromError(err)
	if !ok || st.Code() != code {
		t.Fatalf("got %v, want code %s", err, code)
	}
	return st
}

// violations returns the BadRequest field violations of a status, by field.
func violations(st *status.Status) map[string]string {
	out := map[string]string{}
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				out[v.GetField()] = v.GetDescription()
			}
		}
	}
	return out
}
