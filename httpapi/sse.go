package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/leadrouter/leadrouter/gen/leadrouter/v1"
)

// DefaultHeartbeat is how often an SSE stream with nothing to send gets a
// comment line, so proxies and load balancers keep the connection open.
const DefaultHeartbeat = 15 * time.Second

// sseRetry is the reconnection delay an SSE stream asks browsers for.
const sseRetry = time.Second

// sseWriteTimeout bounds one write to an SSE client.
const sseWriteTimeout = 30 * time.Second

// retryable reports a stream refused for a reason that passes: the
// server draining or its store away (UNAVAILABLE), a rate or stream
// limit (RESOURCE_EXHAUSTED).
func retryable(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.ResourceExhausted:
		return true
	}
	return false
}

// The two streams as Server-Sent Events: a GET of a watch route whose
// Accept asks for text/event-stream. Each event is one SSE message whose
// id is its stream position, "<epoch>/<offset>", and whose data is the
// event as JSON. A browser's EventSource sends the last id it saw as
// Last-Event-ID when it reconnects, which resumes the stream exactly
// there, with the RESET semantics of gRPC (a position whose history is
// gone, or of another epoch, starts with a RESET event).

// wantsSSE reports a request for an event stream.
func wantsSSE(r *http.Request) bool {
	return r.Method == http.MethodGet && strings.Contains(r.Header.Get("Accept"), "text/event-stream")
}

// watchRoute parses the path of a watch route: the workspace and, for a
// rep's assignments, the rep ("" with ok for the workspace's events).
func watchRoute(path string) (ws, rep string, ok bool) {
	rest, found := strings.CutPrefix(path, "/v1/workspaces/")
	if !found {
		return "", "", false
	}
	ws, rest, found = strings.Cut(rest, "/")
	if !found || ws == "" {
		return "", "", false
	}
	if rest == "events:watch" {
		return ws, "", true
	}
	rest, found = strings.CutPrefix(rest, "reps/")
	if !found {
		return "", "", false
	}
	rep, found = strings.CutSuffix(rest, "/assignments:watch")
	if !found || rep == "" || strings.Contains(rep, "/") {
		return "", "", false
	}
	return ws, rep, true
}

// ssePosition is where an SSE stream resumes: Last-Event-ID, else the
// resume_from.epoch and resume_from.offset query parameters (as the JSON
// stream takes them); nil for live events only.
func ssePosition(r *http.Request) (*pb.Position, error) {
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		epoch, offset, ok := strings.Cut(id, "/")
		if !ok || epoch == "" || offset == "" {
			return nil, status.Errorf(codes.InvalidArgument, "Last-Event-ID %q: want <epoch>/<offset>, an id this stream sent", id)
		}
		return &pb.Position{Epoch: epoch, Offset: offset}, nil
	}
	q := r.URL.Query()
	if q.Has("resume_from.epoch") || q.Has("resume_from.offset") {
		return &pb.Position{Epoch: q.Get("resume_from.epoch"), Offset: q.Get("resume_from.offset")}, nil
	}
	return nil, nil
}

// eventStream is either watch stream.
type eventStream interface {
	grpc.ClientStream
	recv() (*pb.Event, error)
}

type eventsStream struct {
	pb.EventService_WatchEventsClient
}

func (s eventsStream) recv() (*pb.Event, error) {
	m, err := s.Recv()
	return m.GetEvent(), err
}

type assignmentsStream struct {
	pb.RepService_WatchAssignmentsClient
}

func (s assignmentsStream) recv() (*pb.Event, error) {
	m, err := s.Recv()
	return m.GetEvent(), err
}

// serveSSE serves a watch route as SSE; false when the path is not one.
func (e *edge) serveSSE(w http.ResponseWriter, r *http.Request) bool {
	ws, rep, ok := watchRoute(r.URL.Path)
	if !ok {
		return false
	}
	method := "/leadrouter.v1.EventService/WatchEvents"
	route := "GET /v1/workspaces/{workspace}/events:watch (sse)"
	if rep != "" {
		method = "/leadrouter.v1.RepService/WatchAssignments"
		route = "GET /v1/workspaces/{workspace}/reps/{rep_id}/assignments:watch (sse)"
	}
	if rw, ok := w.(*recorder); ok {
		rw.route = route
	}
	from, err := ssePosition(r)
	if err != nil {
		writeStatus(w, r, err)
		return true
	}
	// The gateway's own annotation: the Authorization header and the
	// forwarding headers become the call's metadata.
	ctx, err := runtime.AnnotateContext(r.Context(), e.gw, r, method)
	if err != nil {
		writeStatus(w, r, err)
		return true
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var stream eventStream
	if rep == "" {
		req := &pb.WatchEventsRequest{Workspace: ws, ResumeFrom: from}
		for i, k := range r.URL.Query()["kinds"] {
			v, ok := pb.EventKind_value[k]
			if !ok {
				v, ok = pb.EventKind_value["EVENT_KIND_"+strings.ToUpper(k)]
			}
			if !ok {
				writeStatus(w, r, status.Errorf(codes.InvalidArgument, "kinds[%d]: %q is not an event kind", i, k))
				return true
			}
			req.Kinds = append(req.Kinds, pb.EventKind(v))
		}
		s, err := e.events.WatchEvents(ctx, req)
		if err != nil {
			writeStatus(w, r, err)
			return true
		}
		stream = eventsStream{s}
	} else {
		s, err := e.reps.WatchAssignments(ctx, &pb.WatchAssignmentsRequest{Workspace: ws, RepId: rep, ResumeFrom: from})
		if err != nil {
			writeStatus(w, r, err)
			return true
		}
		stream = assignmentsStream{s}
	}
	// The server sends its headers once the subscription is live; a call
	// refused (auth, bad input, unknown rep) ends without them, and is
	// answered with its HTTP status.
	md, err := stream.Header()
	if err == nil && len(md.Get("leadrouter-epoch")) == 0 {
		_, err = stream.recv() // no headers: the call's status
		if err == nil {
			err = status.Error(codes.Internal, "the stream started without its headers")
		}
	}
	if err != nil && !retryable(err) {
		writeStatus(w, r, err)
		return true
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	// write sends one SSE block within sseWriteTimeout: a client that
	// stops reading is cut off, not held forever.
	write := func(format string, args ...any) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(sseWriteTimeout))
		if _, err := fmt.Fprintf(w, format, args...); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !write("retry: %d\n\n", sseRetry.Milliseconds()) {
		return true
	}
	if err != nil {
		// A failure worth retrying (the server draining, Redis away, a
		// rate limit) is a stream that ends at once: a browser's
		// EventSource gives up for good on an HTTP error, but reconnects
		// after a stream ends.
		body, _ := jsonCodec.Marshal(status.Convert(err).Proto())
		write("event: error\ndata: %s\n\n", body)
		return true
	}

	type next struct {
		ev  *pb.Event
		err error
	}
	events := make(chan next)
	go func() {
		for {
			ev, err := stream.recv()
			select {
			case events <- next{ev, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	beat := time.NewTicker(e.o.Heartbeat)
	defer beat.Stop()
	for {
		select {
		case <-r.Context().Done():
			return true
		case <-beat.C:
			if !write(": heartbeat\n\n") {
				return true
			}
		case n := <-events:
			if n.err != nil {
				// The stream ended (server shutdown, a slow reader, an
				// expired token): say why, and the browser reconnects from
				// the last id it saw.
				body, _ := jsonCodec.Marshal(status.Convert(n.err).Proto())
				write("event: error\ndata: %s\n\n", body)
				return true
			}
			body, err := jsonCodec.Marshal(n.ev)
			if err != nil {
				return true
			}
			p := n.ev.GetPosition()
			if !write("id: %s/%s\ndata: %s\n\n", p.GetEpoch(), p.GetOffset(), body) {
				return true
			}
		}
	}
}

// writeStatus answers a gRPC error with its HTTP status and body.
func writeStatus(w http.ResponseWriter, r *http.Request, err error) {
	if err == nil {
		err = status.Error(codes.Unavailable, "the stream ended before it started")
	}
	st := status.Convert(err)
	writeError(w, r, runtime.HTTPStatusFromCode(st.Code()), st)
}
