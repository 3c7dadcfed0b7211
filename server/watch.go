package server

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/leadrouter/leadrouter/engine"
	pb "github.com/leadrouter/leadrouter/gen/leadrouter/v1"
	"github.com/leadrouter/leadrouter/metrics"
)

// eventKinds maps the store's event kinds to the wire.
var eventKinds = map[engine.EventKind]pb.EventKind{
	engine.EventOffered: pb.EventKind_EVENT_KIND_OFFERED, engine.EventOfferWithdrawn: pb.EventKind_EVENT_KIND_OFFER_WITHDRAWN,
	engine.EventOfferRejected: pb.EventKind_EVENT_KIND_OFFER_REJECTED, engine.EventAccepted: pb.EventKind_EVENT_KIND_ACCEPTED,
	engine.EventAssigned: pb.EventKind_EVENT_KIND_ASSIGNED, engine.EventQueued: pb.EventKind_EVENT_KIND_QUEUED,
	engine.EventUnroutable: pb.EventKind_EVENT_KIND_UNROUTABLE, engine.EventEscalated: pb.EventKind_EVENT_KIND_ESCALATED,
	engine.EventReassigned: pb.EventKind_EVENT_KIND_REASSIGNED, engine.EventSLAWarning: pb.EventKind_EVENT_KIND_SLA_WARNING,
	engine.EventSLABreached: pb.EventKind_EVENT_KIND_SLA_BREACHED, engine.EventFirstContact: pb.EventKind_EVENT_KIND_FIRST_CONTACT,
	engine.EventDispositioned: pb.EventKind_EVENT_KIND_DISPOSITIONED, engine.EventReleased: pb.EventKind_EVENT_KIND_RELEASED,
	engine.EventAutoPaused: pb.EventKind_EVENT_KIND_AUTO_PAUSED, engine.EventRepStatusChanged: pb.EventKind_EVENT_KIND_REP_STATUS_CHANGED,
	engine.EventErased: pb.EventKind_EVENT_KIND_ERASED,
}

// knownKinds are the kinds a WatchEvents filter may name.
var knownKinds = func() map[pb.EventKind]bool {
	m := map[pb.EventKind]bool{}
	for _, k := range eventKinds {
		m[k] = true
	}
	return m
}()

// repKinds are the events a rep's desktop is sent: its offers and
// assignments, withdrawn offers, SLA warnings and breaches, auto-away, and
// its leads erased.
var repKinds = map[pb.EventKind]bool{
	pb.EventKind_EVENT_KIND_OFFERED: true, pb.EventKind_EVENT_KIND_OFFER_WITHDRAWN: true,
	pb.EventKind_EVENT_KIND_ACCEPTED: true, pb.EventKind_EVENT_KIND_ASSIGNED: true,
	pb.EventKind_EVENT_KIND_REASSIGNED: true, pb.EventKind_EVENT_KIND_SLA_WARNING: true,
	pb.EventKind_EVENT_KIND_SLA_BREACHED: true, pb.EventKind_EVENT_KIND_AUTO_PAUSED: true,
	pb.EventKind_EVENT_KIND_RELEASED: true, pb.EventKind_EVENT_KIND_DISPOSITIONED: true,
	pb.EventKind_EVENT_KIND_ERASED: true,
}

func eventToProto(epoch string, e *engine.Event) *pb.Event {
	return &pb.Event{Position: &pb.Position{Epoch: epoch, Offset: e.ID}, ProducedAt: ts(e.At), Kind: eventKinds[e.Kind],
		LeadId: e.LeadID, RepId: e.RepID, PoolId: e.PoolID, Detail: e.Detail}
}

func positionFromProto(p *pb.Position) (*engine.Position, error) {
	if p == nil {
		return nil, nil
	}
	if !engine.ValidEventID(p.GetOffset()) {
		return nil, invalid("resume_from.offset", "want an event position such as 1763901234567-0")
	}
	return &engine.Position{Epoch: p.GetEpoch(), Offset: p.GetOffset()}, nil
}

// stream sends a watch: response headers once the subscription is live (a
// client that waits for them knows nothing produced afterwards is missed),
// RESET when the history is gone, the backlog, then live events until the
// client leaves, reads too slowly (RESOURCE_EXHAUSTED) or the server stops
// (UNAVAILABLE).
// kind names the stream in metrics (metrics.StreamAssignments or
// StreamEvents).
func (h *handlers) stream(ctx context.Context, kind, ws string, resume *pb.Position, filter engine.WatchFilter, srv grpc.ServerStream, send func(*pb.Event) error) error {
	from, err := positionFromProto(resume)
	if err != nil {
		return h.fail(ctx, err)
	}
	w, err := h.watcher.Watch(ctx, ws, from, filter)
	if err != nil {
		if errors.Is(err, engine.ErrShutdown) {
			return status.Error(codes.Unavailable, err.Error())
		}
		return h.fail(ctx, err)
	}
	defer w.Close()
	defer h.metrics.StreamOpened(kind)()
	if err := srv.SendHeader(metadata.Pairs("leadrouter-epoch", w.Epoch, "leadrouter-head", w.Head)); err != nil {
		return err
	}
	reset := func() error {
		return send(&pb.Event{Kind: pb.EventKind_EVENT_KIND_RESET, Position: &pb.Position{Epoch: w.Epoch, Offset: w.Head},
			ProducedAt: timestamppb.Now(), Detail: "history since resume_from is gone: resync, then live events follow"})
	}
	if w.Reset {
		if err := reset(); err != nil {
			return err
		}
	}
	var sendErr error
	err = w.SendBacklog(ctx, func(e *engine.Event) error {
		sendErr = send(eventToProto(w.Epoch, e))
		return sendErr
	})
	switch {
	case sendErr != nil:
		return sendErr // the client's side
	case errors.Is(err, engine.ErrBacklogGone):
		// Retention overtook a slow resume: what was left of the backlog
		// is gone, and live events follow the RESET, as at a resume from
		// a position already removed.
		if err := reset(); err != nil {
			return err
		}
	case err != nil:
		return h.fail(ctx, err) // reading the backlog
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case e := <-w.Events():
			if err := send(eventToProto(w.Epoch, &e)); err != nil {
				return err
			}
			h.metrics.Delivered(ws, e.At)
		case <-w.Done():
			switch w.Err() {
			case engine.ErrSlowConsumer:
				return status.Error(codes.ResourceExhausted, "events arrived faster than this client read them: resume from the last position received")
			case engine.ErrHistoryLost:
				return status.Error(codes.Unavailable, "the event history lost events (Redis came back from an older copy, or a failover lost writes): resume from the last position received; a lost one is answered RESET")
			default:
				return status.Error(codes.Unavailable, "server shutting down: resume on another replica from the last position received")
			}
		}
	}
}

func (h *handlers) WatchAssignments(req *pb.WatchAssignmentsRequest, srv pb.RepService_WatchAssignmentsServer) error {
	ctx := srv.Context()
	ws, err := engine.NormalizeWorkspace(req.GetWorkspace())
	if err != nil {
		return h.fail(ctx, err)
	}
	if req.GetRepId() == "" {
		return h.fail(ctx, invalid("rep_id", "required"))
	}
	if err := h.engine.HasRep(ctx, ws, req.GetRepId()); err != nil {
		return h.fail(ctx, err)
	}
	freeSlot, err := h.repStreams.acquire(ws, req.GetRepId())
	if err != nil {
		return err
	}
	defer freeSlot()
	release, err := h.engine.RepConnected(ctx, ws, req.GetRepId())
	if err != nil {
		return h.fail(ctx, err)
	}
	defer release()
	rep := req.GetRepId()
	filter := func(e *engine.Event) bool { return e.RepID == rep && repKinds[eventKinds[e.Kind]] }
	return h.stream(ctx, metrics.StreamAssignments, ws, req.GetResumeFrom(), engine.WatchFilter{RepID: rep, Match: filter}, srv, func(e *pb.Event) error {
		return srv.Send(&pb.WatchAssignmentsResponse{Event: e})
	})
}

func (h *handlers) WatchEvents(req *pb.WatchEventsRequest, srv pb.EventService_WatchEventsServer) error {
	ctx := srv.Context()
	ws, err := engine.NormalizeWorkspace(req.GetWorkspace())
	if err != nil {
		return h.fail(ctx, err)
	}
	kinds := map[pb.EventKind]bool{}
	for i, k := range req.GetKinds() {
		if !knownKinds[k] {
			return h.fail(ctx, invalid(fmt.Sprintf("kinds[%d]", i), fmt.Sprintf("%s is not an event kind a stream delivers", k)))
		}
		kinds[k] = true
	}
	filter := func(e *engine.Event) bool { return len(kinds) == 0 || kinds[eventKinds[e.Kind]] }
	return h.stream(ctx, metrics.StreamEvents, ws, req.GetResumeFrom(), engine.WatchFilter{Match: filter}, srv, func(e *pb.Event) error {
		return srv.Send(&pb.WatchEventsResponse{Event: e})
	})
}
