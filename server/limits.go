package server

import (
	"context"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
)

// Defaults of the limits Options leaves unset.
const (
	// DefaultDeadline is a unary call's deadline when the client sets
	// none: a form backend that forgot its deadline still gets an answer
	// (UNAVAILABLE when Redis is away) instead of a hang.
	DefaultDeadline = time.Second
	// applyDeadline replaces DefaultDeadline for config applies, which
	// write a whole config and drain queues.
	applyDeadline = 30 * time.Second
	// DefaultMaxRecvBytes bounds a request message.
	DefaultMaxRecvBytes = 4 << 20
	// DefaultMaxStreamsPerRep bounds one rep's WatchAssignments streams
	// on one replica.
	DefaultMaxStreamsPerRep = 4
	// DefaultMaxConcurrentStreams bounds the calls and streams open at
	// once on one client connection (HTTP/2 MAX_CONCURRENT_STREAMS).
	DefaultMaxConcurrentStreams = 2048
	// DefaultMaxConnectionAge is how long a client connection lives
	// before the server asks the client to open a new one.
	DefaultMaxConnectionAge = time.Hour
	// connectionAgeGrace is what a connection's calls and streams get to
	// end after its age; streams cut then resume on a new connection.
	connectionAgeGrace = 5 * time.Minute
	// replyMargin is kept of a call's deadline to send the answer: the
	// work gets the rest, so a Redis that does not answer yields
	// UNAVAILABLE before the client gives up.
	replyMargin = 50 * time.Millisecond
)

// deadlineInterceptor gives unary calls without a deadline the default
// one, and keeps a margin of every deadline for the reply.
func deadlineInterceptor(def time.Duration) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		deadline, ok := ctx.Deadline()
		if !ok {
			d := def
			if strings.HasSuffix(info.FullMethod, "/ApplyRoutingConfig") {
				d = max(def, applyDeadline)
			}
			deadline = time.Now().Add(d)
		}
		margin := min(replyMargin, time.Until(deadline)/10)
		ctx, cancel := context.WithDeadline(ctx, deadline.Add(-margin))
		defer cancel()
		return handler(ctx, req)
	}
}

// A request that does not decode (invalid UTF-8 in a string, a malformed
// or too deeply nested message) is the client's mistake, but gRPC reports
// every decoding failure as INTERNAL. checkedCodec decodes with the
// standard proto codec and, on failure, records the error for the message
// instead of failing; the decode interceptors (first after recovery) turn
// it into INVALID_ARGUMENT before anything reads the message.
type checkedCodec struct {
	encoding.CodecV2
	bad sync.Map // message pointer -> decode error
}

func newCheckedCodec() *checkedCodec {
	return &checkedCodec{CodecV2: encoding.GetCodecV2("proto")}
}

func (c *checkedCodec) Unmarshal(data mem.BufferSlice, v any) error {
	if err := c.CodecV2.Unmarshal(data, v); err != nil {
		c.bad.Store(v, err)
	}
	return nil
}

// decodeError returns (and forgets) the decode error of a message.
func (c *checkedCodec) decodeError(m any) error {
	err, ok := c.bad.LoadAndDelete(m)
	if !ok {
		return nil
	}
	return status.Errorf(codes.InvalidArgument, "request does not decode: %v", err)
}

func (c *checkedCodec) unary() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if err := c.decodeError(req); err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

func (c *checkedCodec) stream() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		return handler(srv, &checkedStream{ServerStream: ss, codec: c})
	}
}

type checkedStream struct {
	grpc.ServerStream
	codec *checkedCodec
}

func (s *checkedStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	return s.codec.decodeError(m)
}

// repStreams counts the WatchAssignments streams of each rep on this
// replica.
type repStreams struct {
	mu    sync.Mutex
	limit int
	open  map[string]int // "workspace/rep" -> open streams
}

// acquire takes a stream slot for the rep; release gives it back.
func (r *repStreams) acquire(ws, rep string) (release func(), err error) {
	key := ws + "/" + rep
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.open[key] >= r.limit {
		return nil, status.Errorf(codes.ResourceExhausted,
			"rep %q has %d assignment streams open on this replica already (--max-streams-per-rep: %d): close one first", rep, r.open[key], r.limit)
	}
	r.open[key]++
	return func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.open[key]--; r.open[key] == 0 {
			delete(r.open, key)
		}
	}, nil
}
