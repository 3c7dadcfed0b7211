// Package httpapi is leadrouter's HTTP edge: every RPC as HTTP/JSON
// (grpc-gateway, routes from proto/leadrouter/v1/leadrouter_http.yaml),
// the two streams as newline-delimited JSON or Server-Sent Events, the
// OpenAPI document, health, and signed webhook intake from form tools.
//
// Nothing here implements routing. The unary calls go to the server's
// services under its own interceptor chain (server.DirectRouting,
// DirectAdmin), the streams over its in-process gRPC connection
// (server.InProcess): either way a call passes the same handlers,
// authentication, limits, metrics and error model as a gRPC call. The
// webhook intake, whose credential is a signature, calls the AssignLead
// handler (server.AssignFromIntake) with an intake identity. Errors are the standard gRPC-to-HTTP status mapping
// with a google.rpc.Status JSON body that keeps the field violations.
package httpapi

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"golang.org/x/time/rate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	pb "github.com/leadrouter/leadrouter/gen/leadrouter/v1"
	"github.com/leadrouter/leadrouter/metrics"
)

// openAPI is the OpenAPI (Swagger 2.0) document protoc-gen-openapiv2
// generates from the contract (make proto), served at /openapi.json.
//
//go:embed openapi/leadrouter.swagger.json
var openAPI []byte

// OpenAPI returns the OpenAPI document.
func OpenAPI() []byte { return openAPI }

// Limits of a request to the edge.
const (
	// DefaultMaxBodyBytes bounds an API request's body when Options sets
	// none: the gRPC server's default message bound.
	DefaultMaxBodyBytes = 4 << 20
	// MaxURLBytes bounds a request's path and query.
	MaxURLBytes = 8 << 10
	// MaxHeaderBytes bounds a request's header block (http.Server).
	MaxHeaderBytes = 32 << 10
	// ReadHeaderTimeout and ReadBodyTimeout cut off a client that sends its
	// request too slowly (slowloris); IdleTimeout closes an idle
	// keep-alive connection.
	ReadHeaderTimeout = 5 * time.Second
	ReadBodyTimeout   = 30 * time.Second
	IdleTimeout       = 2 * time.Minute
)

// Options configures the edge.
type Options struct {
	// Conn is the in-process connection to the gRPC server
	// (server.Server.InProcess).
	Conn *grpc.ClientConn
	// MaxBodyBytes bounds an API request's body (default
	// DefaultMaxBodyBytes); the gRPC server's --max-msg-bytes.
	MaxBodyBytes int
	// Heartbeat is how often an idle event stream gets a heartbeat
	// (default DefaultHeartbeat).
	Heartbeat time.Duration
	// Routing and Admin, when set, serve those services' routes by calling
	// them directly (server.Server.DirectRouting, DirectAdmin) instead of
	// over Conn.
	Routing pb.RoutingServiceServer
	Admin   pb.AdminServiceServer
	// Intakes serves the webhook intake (nil: none).
	Intakes IntakeBackend
	Metrics *metrics.Metrics
	Logger  *slog.Logger
}

// New returns the edge's handler.
func New(ctx context.Context, o Options) (http.Handler, error) {
	if o.Conn == nil {
		return nil, errors.New("httpapi: no connection")
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = DefaultHeartbeat
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	gw := runtime.NewServeMux(
		runtime.WithMarshalerOption(runtime.MIMEWildcard, &runtime.HTTPBodyMarshaler{Marshaler: jsonCodec}),
		runtime.WithRoutingErrorHandler(routingError),
		runtime.WithDisableHTTPMethodOverride(),
		runtime.WithDisablePathLengthFallback(),
		// Only leadrouter's own response metadata becomes headers
		// (Leadrouter-Epoch and Leadrouter-Head of a stream).
		runtime.WithOutgoingHeaderMatcher(func(key string) (string, bool) {
			return key, strings.HasPrefix(key, "leadrouter-")
		}),
		runtime.WithMiddlewares(func(next runtime.HandlerFunc) runtime.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request, params map[string]string) {
				// The client's address, for the call log, as a network
				// call's peer.
				if addr, err := net.ResolveTCPAddr("tcp", r.RemoteAddr); err == nil {
					r = r.WithContext(peer.NewContext(r.Context(), &peer.Peer{Addr: addr}))
				}
				if p, ok := runtime.HTTPPattern(r.Context()); ok {
					if rw, ok := w.(*recorder); ok {
						rw.route = r.Method + " " + strings.ReplaceAll(p.String(), "=*}", "}")
					}
				}
				next(w, r, params)
			}
		}),
	)
	// The unary services straight to their implementations when given
	// (server.Direct*: the same interceptors, no second encoding), the
	// streams over the in-process connection.
	regs := []error{pb.RegisterRepServiceHandler(ctx, gw, o.Conn), pb.RegisterEventServiceHandler(ctx, gw, o.Conn)}
	if o.Routing != nil {
		regs = append(regs, pb.RegisterRoutingServiceHandlerServer(ctx, gw, o.Routing))
	} else {
		regs = append(regs, pb.RegisterRoutingServiceHandler(ctx, gw, o.Conn))
	}
	if o.Admin != nil {
		regs = append(regs, pb.RegisterAdminServiceHandlerServer(ctx, gw, o.Admin))
	} else {
		regs = append(regs, pb.RegisterAdminServiceHandler(ctx, gw, o.Conn))
	}
	if err := errors.Join(regs...); err != nil {
		return nil, fmt.Errorf("httpapi: %w", err)
	}
	e := &edge{o: o, gw: gw, health: healthpb.NewHealthClient(o.Conn),
		events: pb.NewEventServiceClient(o.Conn), reps: pb.NewRepServiceClient(o.Conn),
		limits: &limiters{m: map[string]*rate.Limiter{}}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", e.healthz)
	mux.HandleFunc("GET /readyz", e.readyz)
	mux.HandleFunc("GET /openapi.json", e.openapi)
	mux.HandleFunc("/v1/intake/{workspace}/{intake_id}", e.intake)
	mux.HandleFunc("/", e.api)
	return e.instrument(mux), nil
}

type edge struct {
	o      Options
	gw     *runtime.ServeMux
	health healthpb.HealthClient
	events pb.EventServiceClient
	reps   pb.RepServiceClient
	limits *limiters // per intake
}

// jsonCodec reads and writes the API's JSON: proto field names (as the
// config YAML and the docs spell them), and an unknown field in a request
// is an error, not silently dropped.
var jsonCodec = &apiJSON{runtime.JSONPb{
	MarshalOptions:   protojson.MarshalOptions{UseProtoNames: true},
	UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: false},
}}

// apiJSON is the gateway's JSON marshaler whose decoder says where a body
// stops being JSON (line, column and byte offset), which protojson does
// not for a body cut short.
type apiJSON struct{ runtime.JSONPb }

func (j *apiJSON) NewDecoder(r io.Reader) runtime.Decoder {
	return runtime.DecoderFunc(func(v any) error {
		body, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		if len(bytes.TrimSpace(body)) == 0 {
			return io.EOF // no body: an empty request, as the gateway expects
		}
		m, ok := v.(proto.Message)
		if !ok {
			if err := syntaxError(body); err != nil {
				return err
			}
			return j.JSONPb.Unmarshal(body, v)
		}
		// One pass in the common case; the syntax check only says where a
		// body that failed stops being JSON.
		if err := j.UnmarshalOptions.Unmarshal(body, m); err != nil {
			if serr := syntaxError(body); serr != nil {
				return serr
			}
			return err
		}
		return nil
	})
}

// syntaxError describes where body is not JSON; nil when it is.
func syntaxError(body []byte) error {
	if json.Valid(body) {
		return nil
	}
	var any json.RawMessage
	err := json.Unmarshal(body, &any)
	var se *json.SyntaxError
	if !errors.As(err, &se) {
		return fmt.Errorf("invalid JSON: %v", err)
	}
	// Offset counts the bytes read, the offending one included; a body cut
	// short is wrong at its end.
	at := int(se.Offset) - 1
	if at < 0 || int(se.Offset) >= len(body) && strings.Contains(se.Error(), "end of JSON input") {
		at = int(se.Offset)
	}
	line := 1 + bytes.Count(body[:at], []byte("\n"))
	col := at - bytes.LastIndexByte(body[:at], '\n')
	return fmt.Errorf("invalid JSON at line %d, column %d (byte %d): %v", line, col, at, se)
}

// api serves the gateway's routes, the streams as SSE when asked, with the
// request's size bounds.
func (e *edge) api(w http.ResponseWriter, r *http.Request) {
	if len(r.URL.RequestURI()) > MaxURLBytes {
		writeError(w, r, http.StatusRequestURITooLong, status.New(codes.InvalidArgument,
			fmt.Sprintf("the URL is over %d bytes", MaxURLBytes)))
		return
	}
	if crossSiteWrite(r) {
		writeError(w, r, http.StatusForbidden, status.New(codes.PermissionDenied,
			"a cross-site "+r.Method+" from a browser is refused (Origin "+r.Header.Get("Origin")+"): this API serves no CORS"))
		return
	}
	if wantsSSE(r) {
		if e.serveSSE(w, r) {
			return
		}
	}
	if r.Body != nil && r.Body != http.NoBody {
		body, err := readBody(w, r, e.o.MaxBodyBytes)
		if err != nil {
			writeBodyError(w, r, err, e.o.MaxBodyBytes)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	e.gw.ServeHTTP(w, r)
}

// crossSiteWrite reports a state-changing request a browser sent from
// another site: the API answers no CORS, so such a request can only be a
// "simple" one (a form or text/plain POST) forged by a page the user
// visits, which a server without tokens would otherwise act on. Clients
// that are not browsers send neither header.
func crossSiteWrite(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	switch r.Header.Get("Sec-Fetch-Site") {
	case "cross-site", "same-site":
		return true
	case "same-origin", "none":
		return false
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return false
	}
	u, err := url.Parse(origin)
	return err != nil || u.Host != r.Host
}

func (e *edge) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n"))
}

// readyz answers 200 while the server's health service says SERVING (the
// store answers and the clock is in range), 503 otherwise: the same
// verdict as grpc.health.v1 over gRPC.
func (e *edge) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	resp, err := e.health.Check(ctx, &healthpb.HealthCheckRequest{})
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("not serving\n"))
		return
	}
	_, _ = w.Write([]byte("serving\n"))
}

func (e *edge) openapi(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(openAPI)
}

// routingError answers a path no route has (404) or a route called with
// another method (405, with Allow unknown to the gateway: the status body
// says so).
func routingError(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, code int) {
	switch code {
	case http.StatusMethodNotAllowed:
		writeError(w, r, code, status.New(codes.Unimplemented, fmt.Sprintf("method %s is not allowed on %s", r.Method, r.URL.Path)))
	case http.StatusNotFound:
		writeError(w, r, code, status.New(codes.NotFound, fmt.Sprintf("no route %s %s", r.Method, r.URL.Path)))
	default:
		runtime.DefaultRoutingErrorHandler(ctx, mux, m, w, r, code)
	}
}

// writeError answers an HTTP status with a google.rpc.Status body, as the
// gateway answers a gRPC error.
func writeError(w http.ResponseWriter, _ *http.Request, httpStatus int, st *status.Status) {
	body, err := jsonCodec.Marshal(st.Proto())
	if err != nil {
		body = []byte(`{"code":13,"message":"internal error"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(httpStatus)
	_, _ = w.Write(body)
}

// Server returns an http.Server for the edge with its limits: header
// size, and the read-header and idle timeouts that cut off slow clients
// (the body's read deadline is set per request, since streams stay open).
func Server(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		MaxHeaderBytes:    MaxHeaderBytes,
		ReadHeaderTimeout: ReadHeaderTimeout,
		IdleTimeout:       IdleTimeout,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}
