package server

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// callLog logs every finished call at callLevel, with the field names of
// go-grpc-middleware's logging interceptor. It builds the line only when
// its level is on: at the default info level a successful call costs one
// level check (the middleware's interceptor built its fields for every
// call, about 40 allocations and 8% of leadrouterd's CPU under AssignLead
// load).
type callLog struct{ log *slog.Logger }

func (l callLog) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	start := time.Now()
	resp, err := handler(ctx, req)
	l.finished(ctx, info.FullMethod, "unary", start, err)
	return resp, err
}

func (l callLog) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	start := time.Now()
	err := handler(srv, ss)
	kind := "server_stream"
	switch {
	case info.IsClientStream && info.IsServerStream:
		kind = "bidi_stream"
	case info.IsClientStream:
		kind = "client_stream"
	}
	l.finished(ss.Context(), info.FullMethod, kind, start, err)
	return err
}

func (l callLog) finished(ctx context.Context, method, kind string, start time.Time, err error) {
	code := status.Code(err)
	level := callLevel(code)
	if !l.log.Enabled(ctx, level) {
		return
	}
	service, name := "", strings.TrimPrefix(method, "/")
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		service, name = name[:i], name[i+1:]
	}
	attrs := []slog.Attr{
		slog.String("protocol", "grpc"), slog.String("grpc.component", "server"),
		slog.String("grpc.service", service), slog.String("grpc.method", name), slog.String("grpc.method_type", kind),
		slog.String("grpc.start_time", start.Format(time.RFC3339)),
		slog.String("grpc.code", code.String()),
		slog.Float64("grpc.time_ms", float64(time.Since(start))/float64(time.Millisecond)),
	}
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		attrs = append(attrs, slog.String("peer.address", p.Addr.String()))
	}
	if err != nil {
		attrs = append(attrs, slog.String("grpc.error", err.Error()))
	}
	l.log.LogAttrs(ctx, level, "finished call", attrs...)
}

// callLevel logs finished calls at debug level, client mistakes at info and
// server failures at warn, so info logs carry no lead data per request.
func callLevel(c codes.Code) slog.Level {
	switch c {
	case codes.OK, codes.Canceled, codes.NotFound:
		return slog.LevelDebug
	case codes.InvalidArgument, codes.FailedPrecondition, codes.Aborted, codes.AlreadyExists, codes.PermissionDenied, codes.Unauthenticated:
		return slog.LevelInfo
	default:
		return slog.LevelWarn
	}
}
