package server_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/leadrouter/leadrouter/engine"
	pb "github.com/leadrouter/leadrouter/gen/leadrouter/v1"
	"github.com/leadrouter/leadrouter/internal/redistest"
	"github.com/leadrouter/leadrouter/server"
	"github.com/leadrouter/leadrouter/store"
)

const watchConfig = `
reps: [{id: a}, {id: b}]
pools: [{id: p, members: [{rep_id: a}, {rep_id: b}]}]
rules: [{id: all, targets: [{pool_id: p}]}]
`

// produce makes n events: rep status changes, alternating away and back.
func produce(t *testing.T, in *instance, ws string, n int, from int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		st := pb.RepStatus_REP_STATUS_AWAY
		if i%2 == 1 {
			st = pb.RepStatus_REP_STATUS_AVAILABLE
		}
		if _, err := in.rep.SetRepStatus(ctxT(t), &pb.SetRepStatusRequest{Workspace: ws, RepId: "a", Status: st}); err != nil {
			t.Fatal(err)
		}
	}
}

// watch opens WatchEvents and returns a function reading the next event.
func watch(t *testing.T, in *instance, ws string, from *pb.Position) (func() (*pb.Event, error), context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	s := openWatch(ctx, t, in, ws, from)
	return func() (*pb.Event, error) {
		r, err := s.Recv()
		return r.GetEvent(), err
	}, cancel
}

// openWatch opens a WatchEvents stream of ws from position from (nil:
// live) and waits until the server has subscribed it.
func openWatch(ctx context.Context, t testing.TB, in *instance, ws string, from *pb.Position) pb.EventService_WatchEventsClient {
	t.Helper()
	s, err := pb.NewEventServiceClient(in.conn).WatchEvents(ctx, &pb.WatchEventsRequest{Workspace: ws, ResumeFrom: from})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Header(); err != nil { // subscribed: live from here on
		t.Fatal(err)
	}
	return s
}

func TestResumeDeliversExactlyTheMissedEvents(t *testing.T) {
	st := redistest.RealStore(t)
	a, b := start(t, st), start(t, redistest.RealStore(t)) // two replicas, one Redis
	ws := redistest.Workspace(t)
	a.applyYAML(t, ws, watchConfig)
	next, cancel := watch(t, a, ws, &pb.Position{Epoch: "", Offset: "0-0"})
	// The first event is RESET (no epoch given); then history and live.
	first, err := next()
	if err != nil || first.GetKind() != pb.EventKind_EVENT_KIND_RESET {
		t.Fatalf("first event %v %v", first, err)
	}
	epoch := first.GetPosition().GetEpoch()
	cancel()
	next, cancel = watch(t, a, ws, &pb.Position{Epoch: epoch, Offset: "0-0"})
	produce(t, a, ws, 100, 0)
	var last *pb.Position
	for i := 0; i < 100; i++ {
		e, err := next()
		if err != nil || e.GetKind() != pb.EventKind_EVENT_KIND_REP_STATUS_CHANGED {
			t.Fatalf("event %d: %v %v", i, e, err)
		}
		last = e.GetPosition()
	}
	cancel()
	produce(t, a, ws, 500, 100)
	// Resume on the other replica.
	next, cancel = watch(t, b, ws, last)
	defer cancel()
	prev := last.GetOffset()
	for i := 0; i < 500; i++ {
		e, err := next()
		if err != nil {
			t.Fatalf("resumed event %d: %v", i, err)
		}
		if !engine.EventIDLess(prev, e.GetPosition().GetOffset()) {
			t.Fatalf("event %d out of order or repeated: %s after %s", i, e.GetPosition().GetOffset(), prev)
		}
		prev = e.GetPosition().GetOffset()
	}
	// Nothing more: the next event is a new one.
	produce(t, a, ws, 1, 600)
	e, err := next()
	if err != nil || !engine.EventIDLess(prev, e.GetPosition().GetOffset()) {
		t.Fatalf("live after resume: %v %v", e, err)
	}
}

// TestResumeSeam: events produced while clients resume are neither lost nor
// repeated, over many resumptions with concurrent producers.
func TestResumeSeam(t *testing.T) {
	in := start(t, redistest.RealStore(t))
	ws := redistest.Workspace(t)
	in.applyYAML(t, ws, watchConfig)
	next, cancel := watch(t, in, ws, nil)
	produce(t, in, ws, 1, 0)
	e, err := next()
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	pos := e.GetPosition()
	const total = 400
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the producer never pauses
		defer wg.Done()
		produce(t, in, ws, total, 1)
	}()
	seen := 0
	for seen < total {
		// Read a few, drop the connection, resume: many seams.
		next, cancel := watch(t, in, ws, pos)
		for k := 0; k < 7 && seen < total; k++ {
			e, err := next()
			if err != nil {
				t.Fatalf("after %d: %v", seen, err)
			}
			if e.GetKind() == pb.EventKind_EVENT_KIND_RESET || !engine.EventIDLess(pos.GetOffset(), e.GetPosition().GetOffset()) {
				t.Fatalf("after %d: %v follows %s", seen, e, pos.GetOffset())
			}
			pos = e.GetPosition()
			seen++
		}
		cancel()
	}
	wg.Wait()
	// Every produced event was seen exactly once: the count matched and
	// positions only grew.
}

func TestResetWhenHistoryIsGone(t *testing.T) {
	st := redistest.RealStore(t)
	in := start(t, st)
	ws := redistest.Workspace(t)
	in.applyYAML(t, ws, watchConfig)
	produce(t, in, ws, 20, 0)
	epoch, _ := st.EventsEpoch(context.Background(), ws)
	ids, _ := st.EventsAfter(context.Background(), ws, "0-0", 100)
	// Retention keeps the newest 5.
	if _, err := st.TrimEvents(context.Background(), ws, 5, 24*time.Hour, time.Now()); err != nil {
		t.Fatal(err)
	}
	next, cancel := watch(t, in, ws, &pb.Position{Epoch: epoch, Offset: ids[2].ID})
	e, err := next()
	cancel()
	if err != nil || e.GetKind() != pb.EventKind_EVENT_KIND_RESET {
		t.Fatalf("trimmed history: %v %v", e, err)
	}
	// From the newest removed position, nothing was missed: no RESET.
	next, cancel = watch(t, in, ws, &pb.Position{Epoch: epoch, Offset: ids[14].ID})
	e, err = next()
	cancel()
	if err != nil || e.GetKind() == pb.EventKind_EVENT_KIND_RESET || e.GetPosition().GetOffset() != ids[15].ID {
		t.Fatalf("from the last removed event: %v %v", e, err)
	}
	// Another epoch: RESET.
	next, cancel = watch(t, in, ws, &pb.Position{Epoch: "other", Offset: ids[19].ID})
	defer cancel()
	if e, err := next(); err != nil || e.GetKind() != pb.EventKind_EVENT_KIND_RESET {
		t.Fatalf("other epoch: %v %v", e, err)
	}
}

func TestSlowConsumerEndsAlone(t *testing.T) {
	st := redistest.RealStore(t)
	in := startWith(t, st, server.Options{WatchBuffer: 256})
	ws := redistest.Workspace(t)
	in.applyYAML(t, ws, watchConfig)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// The slow client is another desktop: its own connection, never reading.
	conn, err := grpc.NewClient(in.conn.Target(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	slow, err := pb.NewEventServiceClient(conn).WatchEvents(ctx, &pb.WatchEventsRequest{Workspace: ws})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := slow.Header(); err != nil {
		t.Fatal(err)
	}
	next, stop := watch(t, in, ws, nil)
	defer stop()
	// gRPC's own flow-control windows absorb over a thousand small messages
	// before the server's buffer fills: produce well past that, while the
	// fast client reads.
	const n = 4000
	read := make(chan error, 1)
	go func() {
		for i := 0; i < n; i++ {
			if _, err := next(); err != nil {
				read <- fmt.Errorf("the fast client lost its stream after %d events: %w", i, err)
				return
			}
		}
		read <- nil
	}()
	produce(t, in, ws, n, 0)
	if err := <-read; err != nil {
		t.Fatal(err)
	}
	var last error
	for {
		if _, err := slow.Recv(); err != nil {
			last = err
			break
		}
	}
	if status.Code(last) != codes.ResourceExhausted {
		t.Fatalf("slow client ended with %v, want RESOURCE_EXHAUSTED", last)
	}
}

func TestShutdownEndsStreamsUnavailable(t *testing.T) {
	st := redistest.RealStore(t)
	in := start(t, st)
	ws := redistest.Workspace(t)
	in.applyYAML(t, ws, watchConfig)
	next, cancel := watch(t, in, ws, nil)
	defer cancel()
	produce(t, in, ws, 1, 0)
	if _, err := next(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		ctx, c := context.WithTimeout(context.Background(), 5*time.Second)
		defer c()
		in.srv.Shutdown(ctx)
		close(done)
	}()
	if _, err := next(); status.Code(err) != codes.Unavailable {
		t.Fatalf("stream ended with %v, want UNAVAILABLE", err)
	}
	<-done
}

// TestWatchAssignmentsSeesOnlyTheRepsEvents: a rep's desktop gets its own
// offers, accepts and withdrawals, nobody else's and no workspace chatter.
func TestWatchAssignmentsSeesOnlyTheRepsEvents(t *testing.T) {
	in := start(t, redistest.RealStore(t))
	ws := redistest.Workspace(t)
	in.applyYAML(t, ws, `
reps: [{id: a}, {id: b}]
pools: [{id: p, accept_within: 1m, members: [{rep_id: a}, {rep_id: b}]}]
rules: [{id: all, targets: [{pool_id: p}]}]
`)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := in.rep.WatchAssignments(ctx, &pb.WatchAssignmentsRequest{Workspace: ws, RepId: "a"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Header(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 4; i++ { // a, b, a, b
		if _, err := in.routing.AssignLead(ctx, &pb.AssignLeadRequest{Workspace: ws, Lead: &pb.Lead{Id: fmt.Sprint("l", i)}}); err != nil {
			t.Fatal(err)
		}
	}
	produce(t, in, ws, 2, 0) // a's status changes: not sent to the rep stream
	if _, err := in.rep.AcceptOffer(ctx, &pb.AcceptOfferRequest{Workspace: ws, LeadId: "l0", RepId: "a"}); err != nil {
		t.Fatal(err)
	}
	var got []string
	for len(got) < 3 {
		r, err := s.Recv()
		if err != nil {
			t.Fatal(err)
		}
		e := r.GetEvent()
		if e.GetRepId() != "a" {
			t.Fatalf("rep a got %v", e)
		}
		got = append(got, e.GetKind().String()+":"+e.GetLeadId())
	}
	if fmt.Sprint(got) != "[EVENT_KIND_OFFERED:l0 EVENT_KIND_OFFERED:l2 EVENT_KIND_ACCEPTED:l0]" {
		t.Fatalf("rep a's stream: %v", got)
	}
	ghost, err := in.rep.WatchAssignments(ctx, &pb.WatchAssignmentsRequest{Workspace: ws, RepId: "ghost"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = ghost.Recv()
	wantCode(t, err, codes.FailedPrecondition)
}

// TestShutdownThenResumeElsewhere: a replica shutting down ends its streams
// with UNAVAILABLE; the client resumes on another replica from the last
// position it received and gets every later event, once, in order.
func TestShutdownThenResumeElsewhere(t *testing.T) {
	a, b := start(t, redistest.RealStore(t)), start(t, redistest.RealStore(t))
	ws := redistest.Workspace(t)
	a.applyYAML(t, ws, watchConfig)
	next, cancel := watch(t, a, ws, nil)
	defer cancel()
	produce(t, b, ws, 10, 0)
	var last *pb.Position
	for i := 0; i < 10; i++ {
		e, err := next()
		if err != nil {
			t.Fatal(err)
		}
		last = e.GetPosition()
	}
	stopped := make(chan struct{})
	go func() {
		ctx, c := context.WithTimeout(context.Background(), 5*time.Second)
		defer c()
		a.srv.Shutdown(ctx)
		close(stopped)
	}()
	if _, err := next(); status.Code(err) != codes.Unavailable {
		t.Fatalf("stream on the stopping replica ended with %v", err)
	}
	<-stopped
	produce(t, b, ws, 25, 10) // while the client reconnects
	next, cancel2 := watch(t, b, ws, last)
	defer cancel2()
	prev := last.GetOffset()
	for i := 0; i < 25; i++ {
		e, err := next()
		if err != nil || e.GetKind() == pb.EventKind_EVENT_KIND_RESET || !engine.EventIDLess(prev, e.GetPosition().GetOffset()) {
			t.Fatalf("resumed event %d: %v %v (after %s)", i, e, err, prev)
		}
		prev = e.GetPosition().GetOffset()
	}
}

// TestWatchedWorkspacesLeaveRequestsTheirConnections: 200 watched
// workspaces on a replica whose request pool has 4 connections. The
// streams' blocking reads use the store's reader connections (one read for
// all of them on one server), so every AssignLead is answered, and every
// stream still sees its own workspace's events.
func TestWatchedWorkspacesLeaveRequestsTheirConnections(t *testing.T) {
	client, err := store.NewClient(redistest.URL(t), store.OpenOptions{PoolSize: 4})
	if err != nil {
		t.Fatal(err)
	}
	st := store.New(client, redistest.Prefix(t))
	t.Cleanup(func() { st.Close() })
	in := start(t, st)
	const n = 200
	wss := make([]string, n)
	recv := make([]func() (*pb.Event, error), n)
	for i := range wss {
		wss[i] = redistest.Workspace(t)
		in.applyYAML(t, wss[i], watchConfig)
		next, cancel := watch(t, in, wss[i], nil)
		t.Cleanup(cancel)
		recv[i] = next
	}
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, err := in.routing.AssignLead(ctx, &pb.AssignLeadRequest{Workspace: wss[i*5], Lead: &pb.Lead{Id: fmt.Sprint("lead-", i)}})
			if err != nil {
				errs <- fmt.Errorf("AssignLead %d in %s: %w", i, wss[i*5], err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for i, ws := range wss {
		if _, err := in.rep.SetRepStatus(ctxT(t), &pb.SetRepStatusRequest{Workspace: ws, RepId: "b", Status: pb.RepStatus_REP_STATUS_AWAY}); err != nil {
			t.Fatal(err)
		}
		for {
			e, err := recv[i]()
			if err != nil {
				t.Fatalf("stream of %s: %v", ws, err)
			}
			if e.GetKind() == pb.EventKind_EVENT_KIND_REP_STATUS_CHANGED && e.GetRepId() == "b" {
				break
			}
		}
	}
}

// TestResetWhenStoreLostWrites: Redis came back with less than it had (the
// newest events gone, the epoch kept, nothing trimmed: an older AOF, or a
// failover that lost writes). A client resuming from an event it saw that
// the history no longer has gets RESET; one resuming from the history's
// end does not.
func TestResetWhenStoreLostWrites(t *testing.T) {
	st := redistest.RealStore(t)
	in := start(t, st)
	ws := redistest.Workspace(t)
	in.applyYAML(t, ws, watchConfig)
	produce(t, in, ws, 20, 0)
	ctx := context.Background()
	epoch, _ := st.EventsEpoch(ctx, ws)
	ids, _ := st.EventsAfter(ctx, ws, "0-0", 100)
	if len(ids) < 20 {
		t.Fatalf("%d events", len(ids))
	}
	last := ids[len(ids)-1].ID
	for _, e := range ids[len(ids)-5:] {
		if err := st.Client().XDel(ctx, st.Prefix()+":{"+ws+"}:events", e.ID).Err(); err != nil {
			t.Fatal(err)
		}
	}
	next, cancel := watch(t, in, ws, &pb.Position{Epoch: epoch, Offset: last})
	e, err := next()
	cancel()
	if err != nil || e.GetKind() != pb.EventKind_EVENT_KIND_RESET {
		t.Fatalf("resumed past the history's end: %v %v, want RESET", e, err)
	}
	// From the end of what is left: nothing missed, no RESET; the next event
	// produced arrives.
	next, cancel = watch(t, in, ws, &pb.Position{Epoch: epoch, Offset: ids[len(ids)-6].ID})
	defer cancel()
	produce(t, in, ws, 1, 100)
	if e, err := next(); err != nil || e.GetKind() == pb.EventKind_EVENT_KIND_RESET {
		t.Fatalf("resumed from the history's end: %v %v", e, err)
	}
}

// TestResetWhenLostWritesAreOvertaken: the history goes back to an older
// copy of itself (RESTORE of an earlier DUMP, as a restart from an older RDB
// does to it) and goes on: events appended since have ids past the lost
// ones (Redis numbers them by its clock), so the history's end no longer
// tells. A client resuming from a lost event still gets RESET, and a live
// stream that had sent it ends (UNAVAILABLE) at the watcher's next check of
// the history's count of appends (every 5 s, engine/watch.go verifyEvery).
func TestResetWhenLostWritesAreOvertaken(t *testing.T) {
	st := redistest.RealStore(t)
	in := start(t, st)
	ws := redistest.Workspace(t)
	in.applyYAML(t, ws, watchConfig)
	produce(t, in, ws, 4, 0)
	ctx := context.Background()
	events := st.Prefix() + ":{" + ws + "}:events"

	live, cancel := watch(t, in, ws, nil)
	defer cancel()
	older, err := st.Client().Dump(ctx, events).Result()
	if err != nil {
		t.Fatal(err)
	}
	produce(t, in, ws, 2, 4)
	var seen *pb.Event
	for range 2 {
		e, err := live()
		if err != nil {
			t.Fatal(err)
		}
		seen = e
	}
	// The events sent since the copy are lost; others follow them.
	if err := st.Client().RestoreReplace(ctx, events, 0, older).Err(); err != nil {
		t.Fatal(err)
	}
	produce(t, in, ws, 1, 6)
	next, stop := watch(t, in, ws, seen.GetPosition())
	e, err := next()
	stop()
	if err != nil || e.GetKind() != pb.EventKind_EVENT_KIND_RESET {
		t.Fatalf("resumed from a lost event the history went past: %v %v, want RESET", e, err)
	}
	// The live stream delivers what follows, then ends once its check
	// finds the event it sent gone.
	deadline := time.Now().Add(20 * time.Second)
	for {
		e, err := live()
		if err != nil {
			wantCode(t, err, codes.Unavailable)
			if !strings.Contains(err.Error(), "lost events") {
				t.Fatalf("live stream ended with %v", err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the live stream still runs: %v", e)
		}
	}
}
