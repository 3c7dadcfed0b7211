package server_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/leadrouter/leadrouter/engine"
	pb "github.com/leadrouter/leadrouter/gen/leadrouter/v1"
	"github.com/leadrouter/leadrouter/internal/parallel"
	"github.com/leadrouter/leadrouter/internal/redistest"
	"github.com/leadrouter/leadrouter/metrics"
	"github.com/leadrouter/leadrouter/server"
	"github.com/leadrouter/leadrouter/store"
)

// rawCodec sends pre-encoded request bytes, as a broken or hostile client
// would: the Go client refuses to encode invalid UTF-8 itself.
type rawCodec struct{}

type rawMsg struct{ b []byte }

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(v.(*rawMsg).b)}, nil
}
func (rawCodec) Unmarshal(mem.BufferSlice, any) error { return nil }
func (rawCodec) Name() string                         { return "proto" }

// TestUndecodableRequests: bytes that are not a valid message are the
// client's mistake (INVALID_ARGUMENT), on unary calls and streams alike,
// and the server keeps serving.
func TestUndecodableRequests(t *testing.T) {
	in := start(t, redistest.RealStore(t))
	ws := redistest.Workspace(t)
	in.applyYAML(t, ws, watchConfig)
	badUTF8 := protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), "ws-\xff")
	// lead (field 2) whose id (field 1) is invalid UTF-8.
	lead := protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), "\xc3\x28")
	badLead := protowire.AppendBytes(protowire.AppendTag(nil, 2, protowire.BytesType), lead)
	truncated := protowire.AppendTag(nil, 2, protowire.BytesType) // a length that never comes
	// An unknown field nested 20,000 groups deep.
	var deep []byte
	for i := 0; i < 20000; i++ {
		deep = protowire.AppendTag(deep, 99, protowire.StartGroupType)
	}
	for i := 0; i < 20000; i++ {
		deep = protowire.AppendTag(deep, 99, protowire.EndGroupType)
	}
	for name, c := range map[string]struct {
		method string
		body   []byte
	}{
		"invalid UTF-8 workspace": {"/leadrouter.v1.RoutingService/AssignLead", badUTF8},
		"invalid UTF-8 lead id":   {"/leadrouter.v1.RoutingService/AssignLead", badLead},
		"truncated message":       {"/leadrouter.v1.RoutingService/AssignLead", truncated},
		"invalid UTF-8 rep call":  {"/leadrouter.v1.RepService/AcceptOffer", badUTF8},
		"deeply nested":           {"/leadrouter.v1.RoutingService/AssignLead", deep},
	} {
		err := in.conn.Invoke(ctxT(t), c.method, &rawMsg{c.body}, &rawMsg{}, grpc.ForceCodecV2(rawCodec{}))
		if st := wantCode(t, err, codes.InvalidArgument); !strings.Contains(st.Message(), "does not decode") {
			t.Errorf("%s: %q", name, st.Message())
		}
	}
	desc := &grpc.StreamDesc{ServerStreams: true}
	s, err := in.conn.NewStream(ctxT(t), desc, "/leadrouter.v1.EventService/WatchEvents", grpc.ForceCodecV2(rawCodec{}))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SendMsg(&rawMsg{badUTF8}); err != nil {
		t.Fatal(err)
	}
	s.CloseSend()
	wantCode(t, s.RecvMsg(&rawMsg{}), codes.InvalidArgument)
	// Still serving.
	if _, err := in.routing.AssignLead(ctxT(t), &pb.AssignLeadRequest{Workspace: ws, Lead: &pb.Lead{Id: "ok"}}); err != nil {
		t.Fatal(err)
	}
}

// TestOddValues: unknown enum numbers and timestamps far from now are
// INVALID_ARGUMENT naming the field; a message over the size limit is
// RESOURCE_EXHAUSTED (gRPC's own check, before any decoding).
func TestOddValues(t *testing.T) {
	in := startWith(t, redistest.RealStore(t), server.Options{MaxRecvBytes: 64 << 10})
	ws := redistest.Workspace(t)
	in.applyYAML(t, ws, watchConfig)
	_, err := in.rep.SetRepStatus(ctxT(t), &pb.SetRepStatusRequest{Workspace: ws, RepId: "a", Status: pb.RepStatus(99)})
	if v := violations(wantCode(t, err, codes.InvalidArgument)); v["status"] == "" {
		t.Errorf("unknown status: violations %v, want one on status", v)
	}
	for _, at := range []time.Time{time.Date(1890, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2990, 1, 1, 0, 0, 0, 0, time.UTC)} {
		_, err := in.routing.AssignLead(ctxT(t), &pb.AssignLeadRequest{Workspace: ws,
			Lead: &pb.Lead{Id: "t", SubmittedAt: timestamppb.New(at)}})
		if v := violations(wantCode(t, err, codes.InvalidArgument)); v["lead.submitted_at"] == "" {
			t.Errorf("submitted_at %v: violations %v", at, v)
		}
	}
	_, err = in.rep.RecordContact(ctxT(t), &pb.RecordContactRequest{Workspace: ws, RepId: "a", LeadId: "t",
		ContactedAt: &timestamppb.Timestamp{Seconds: 1 << 50}})
	wantCode(t, err, codes.InvalidArgument)
	_, err = in.routing.AssignLead(ctxT(t), &pb.AssignLeadRequest{Workspace: ws,
		Lead: &pb.Lead{Id: "big", Company: strings.Repeat("x", 100<<10)}})
	wantCode(t, err, codes.ResourceExhausted)
	if _, err := in.routing.GetAssignment(ctxT(t), &pb.GetAssignmentRequest{Workspace: ws, LeadId: "big"}); err == nil {
		t.Error("the oversized lead was recorded")
	}
}

// panicky panics when it is told of lead "boom"'s decision.
type panicky struct{ engine.Nop }

func (panicky) LeadDecided(_ string, _ engine.DecideOutcome, pool string, _ time.Duration) {
	panic("observer exploded")
}

// TestHandlerPanic: a panic in a call becomes INTERNAL for that call only,
// is counted, and the server keeps serving.
func TestHandlerPanic(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, metrics.Options{})
	in := startWith(t, redistest.RealStore(t), server.Options{Metrics: m}, engine.WithObserver(panicky{}))
	ws := redistest.Workspace(t)
	in.applyYAML(t, ws, watchConfig)
	_, err := in.routing.AssignLead(ctxT(t), &pb.AssignLeadRequest{Workspace: ws, Lead: &pb.Lead{Id: "boom"}})
	wantCode(t, err, codes.Internal)
	if got := seriesValue(t, reg, "leadrouter_handler_panics_total", nil); got != 1 {
		t.Errorf("handler_panics_total = %v, want 1", got)
	}
	if _, err := in.admin.ListReps(ctxT(t), &pb.ListRepsRequest{Workspace: ws}); err != nil {
		t.Fatalf("after the panic: %v", err)
	}
}

// TestDeadlines: while Redis hangs (paused: connections open, nothing
// answered), AssignLead answers UNAVAILABLE rather than hanging: within
// the default deadline when the client sets none, within the client's
// deadline (not DEADLINE_EXCEEDED) when it does.
func TestDeadlines(t *testing.T) {
	srv := redistest.StartServer(t)
	opts, _ := redis.ParseURL(srv.URL)
	opts.ContextTimeoutEnabled = true
	in := startWith(t, store.New(redis.NewClient(opts), ""), server.Options{DefaultDeadline: 300 * time.Millisecond})
	in.applyYAML(t, "", watchConfig)
	if _, err := in.routing.AssignLead(ctxT(t), &pb.AssignLeadRequest{Lead: &pb.Lead{Id: "warm"}}); err != nil {
		t.Fatal(err)
	}
	srv.Pause(t)
	defer srv.Resume(t)
	// No client deadline: the server's default bounds the call.
	done := make(chan error, 1)
	t0 := time.Now()
	go func() {
		_, err := in.routing.AssignLead(context.Background(), &pb.AssignLeadRequest{Lead: &pb.Lead{Id: "x"}})
		done <- err
	}()
	var err error
	select {
	case err = <-done:
		t.Logf("paused Redis, no client deadline: %v after %v", err, time.Since(t0))
	case <-time.After(10 * time.Second):
		t.Fatal("AssignLead without a deadline hung past 10s")
	}
	wantCode(t, err, codes.Unavailable)
	ctx, cancel2 := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel2()
	t0 = time.Now()
	_, err = in.routing.AssignLead(ctx, &pb.AssignLeadRequest{Lead: &pb.Lead{Id: "y"}})
	t.Logf("paused Redis, 500ms client deadline: %v after %v", err, time.Since(t0))
	wantCode(t, err, codes.Unavailable)
	srv.Resume(t)
	// Redis is back: the same connection pool serves again, no restart.
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := in.routing.AssignLead(ctxT(t), &pb.AssignLeadRequest{Lead: &pb.Lead{Id: "x"}})
		if err == nil {
			t.Logf("recovered %v after Redis resumed", time.Since(deadline.Add(-10*time.Second)))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no recovery after Redis resumed: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestCancelledCalls: clients that cancel AssignLead at every point of the
// call leave either a whole assignment or nothing: every lead found is
// assigned once, and the reps' counters in Redis equal the leads found.
func TestCancelledCalls(t *testing.T) {
	in := start(t, redistest.RealStore(t))
	ws := redistest.Workspace(t)
	in.applyYAML(t, ws, watchConfig)
	const n = 600
	parallel.Each(8, n, func(i int) error {
		// Cancel after 0 to ~4 ms: before, during and after the script
		// runs.
		d := time.Duration(i%40) * 100 * time.Microsecond
		if i%40 == 39 {
			d = 10 * time.Second // some calls complete, however slow the machine
		}
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		in.routing.AssignLead(ctx, &pb.AssignLeadRequest{Workspace: ws, Lead: &pb.Lead{Id: fmt.Sprint("c", i)}})
		return nil // any outcome is allowed; the store is checked below
	})
	found := 0
	for i := 0; i < n; i++ {
		a, err := in.routing.GetAssignment(ctxT(t), &pb.GetAssignmentRequest{Workspace: ws, LeadId: fmt.Sprint("c", i)})
		switch {
		case status.Code(err) == codes.NotFound:
		case err != nil:
			t.Fatal(err)
		case a.GetAssignment().GetState() != pb.AssignmentState_ASSIGNMENT_STATE_ASSIGNED || a.GetAssignment().GetRepId() == "":
			t.Fatalf("lead c%d half-written: %v", i, a.GetAssignment())
		default:
			found++
		}
	}
	list, err := in.admin.ListReps(ctxT(t), &pb.ListRepsRequest{Workspace: ws})
	if err != nil {
		t.Fatal(err)
	}
	counted := 0
	for _, r := range list.GetReps() {
		counted += int(r.GetAssignedTotal())
	}
	t.Logf("%d of %d cancelled-at-random calls were recorded", found, n)
	if counted != found || found == 0 || found == n {
		t.Fatalf("reps' counters say %d assignments, %d leads are recorded (want equal, and some but not all of %d)", counted, found, n)
	}
}

// TestMaxConcurrentStreams: one client connection holds at most
// MaxConcurrentStreams calls and streams at once; the next waits for one
// to end (HTTP/2 flow control, not an error), and then goes through.
func TestMaxConcurrentStreams(t *testing.T) {
	in := startWith(t, redistest.RealStore(t), server.Options{MaxConcurrentStreams: 2})
	ws := redistest.Workspace(t)
	in.applyYAML(t, ws, watchConfig)
	first, cancelFirst := context.WithCancel(context.Background())
	defer cancelFirst()
	openWatch(first, t, in, ws, nil)
	second, cancelSecond := context.WithCancel(context.Background())
	defer cancelSecond()
	openWatch(second, t, in, ws, nil)
	third := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := in.routing.GetAssignment(ctx, &pb.GetAssignmentRequest{Workspace: ws, LeadId: "none"})
		third <- err
	}()
	select {
	case err := <-third:
		t.Fatalf("a third call on a connection limited to 2 streams ran at once: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	cancelFirst()
	if err := <-third; status.Code(err) != codes.NotFound {
		t.Fatalf("the waiting call, once a stream ended: %v, want NOT_FOUND", err)
	}
}
