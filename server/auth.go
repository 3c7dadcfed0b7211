package server

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/leadrouter/leadrouter/auth"
	"github.com/leadrouter/leadrouter/engine"
	pb "github.com/leadrouter/leadrouter/gen/leadrouter/v1"
)

// apiPrefix starts the full method name of every leadrouter RPC. Calls to
// other services (health, reflection) need no token.
const apiPrefix = "/leadrouter.v1."

// methodRoles says which roles may call each RPC; admin may call all of
// them. An RPC missing here is refused to every role but admin (fail
// closed).
var methodRoles = map[string][]auth.Role{
	pb.RoutingService_AssignLead_FullMethodName:        {auth.RoleIntake},
	pb.RoutingService_PreviewAssignment_FullMethodName: {auth.RoleIntake},
	pb.RoutingService_GetAssignment_FullMethodName:     {auth.RoleManager},
	pb.AdminService_GetRep_FullMethodName:              {auth.RoleManager},
	pb.AdminService_ListReps_FullMethodName:            {auth.RoleManager},
	pb.EventService_WatchEvents_FullMethodName:         {auth.RoleManager},
	pb.RepService_SetRepStatus_FullMethodName:          {auth.RoleRep},
	pb.RepService_AcceptOffer_FullMethodName:           {auth.RoleRep},
	pb.RepService_RejectOffer_FullMethodName:           {auth.RoleRep},
	pb.RepService_RecordContact_FullMethodName:         {auth.RoleRep},
	pb.RepService_SetDisposition_FullMethodName:        {auth.RoleRep},
	pb.RepService_WatchAssignments_FullMethodName:      {auth.RoleRep},
}

// CostClass groups the RPCs by what a call costs Redis; each class has a
// token bucket per token.
type CostClass string

// The cost classes.
const (
	// ClassDecide: a routing decision (AssignLead, PreviewAssignment), the
	// heaviest script.
	ClassDecide CostClass = "decide"
	// ClassWrite: a lead or rep update, or a config apply: one script.
	ClassWrite CostClass = "write"
	// ClassRead: a record or config read.
	ClassRead CostClass = "read"
	// ClassStream: opening a stream, which reads its backlog and keeps a
	// subscription.
	ClassStream CostClass = "stream"
)

// methodClasses gives every RPC its cost class (TestEveryMethodHasAClass).
var methodClasses = map[string]CostClass{
	pb.RoutingService_AssignLead_FullMethodName:        ClassDecide,
	pb.RoutingService_PreviewAssignment_FullMethodName: ClassDecide,
	pb.RoutingService_GetAssignment_FullMethodName:     ClassRead,
	pb.AdminService_ApplyRoutingConfig_FullMethodName:  ClassWrite,
	pb.AdminService_GetRoutingConfig_FullMethodName:    ClassRead,
	pb.AdminService_ListConfigVersions_FullMethodName:  ClassRead,
	pb.AdminService_RollbackConfig_FullMethodName:      ClassWrite,
	pb.AdminService_GetRep_FullMethodName:              ClassRead,
	pb.AdminService_ListReps_FullMethodName:            ClassRead,
	pb.AdminService_ReleaseAssignment_FullMethodName:   ClassWrite,
	pb.AdminService_RequeueLead_FullMethodName:         ClassWrite,
	pb.AdminService_ReassignLead_FullMethodName:        ClassWrite,
	pb.AdminService_EraseContact_FullMethodName:        ClassWrite,
	pb.AdminService_EraseLead_FullMethodName:           ClassWrite,
	pb.AdminService_GetSinkStatus_FullMethodName:       ClassRead,
	pb.AdminService_ReplayDeadLetters_FullMethodName:   ClassWrite,
	pb.EventService_WatchEvents_FullMethodName:         ClassStream,
	pb.RepService_SetRepStatus_FullMethodName:          ClassWrite,
	pb.RepService_AcceptOffer_FullMethodName:           ClassWrite,
	pb.RepService_RejectOffer_FullMethodName:           ClassWrite,
	pb.RepService_RecordContact_FullMethodName:         ClassWrite,
	pb.RepService_SetDisposition_FullMethodName:        ClassWrite,
	pb.RepService_WatchAssignments_FullMethodName:      ClassStream,

	// A simulation writes nothing but reads up to 10,000 records: it is
	// budgeted as a write.
	pb.AdminService_SimulateConfig_FullMethodName: ClassWrite,
}

// classFlags names each class's rate setting, for refusals.
var classFlags = map[CostClass]string{ClassDecide: "--assign-rate", ClassWrite: "--write-rate", ClassRead: "--read-rate", ClassStream: "--stream-rate"}

// Auth checks bearer tokens and what their role may do, rate-limits every
// call per token and cost class, and bounds each token's open event
// streams. Tokens can be replaced at any time (SIGHUP) without
// touching open connections. A stream lasts only as long as its
// credential: it ends UNAUTHENTICATED when its JWT expires, or when the
// replaced tokens no longer let it do what it does.
type Auth struct {
	tokens atomic.Pointer[auth.Tokens]
	rates  map[CostClass]classRate // per token (0: unlimited)
	// maxEventStreams bounds each token's open WatchEvents streams.
	maxEventStreams int

	mu       sync.Mutex
	limiters map[string]*rate.Limiter // by Identity.Key and class
	events   map[string]int           // open WatchEvents streams by Identity.Key

	streamsMu sync.Mutex
	streams   map[*authorizedStream]struct{} // open, for SetTokens to check again
}

// maxLimiters bounds the limiters kept: JWT subjects are not listed
// anywhere, so a flood of distinct valid JWTs must not grow memory without
// end. Past it the buckets start over (full), which errs towards serving.
const maxLimiters = 100_000

type classRate struct {
	limit rate.Limit
	burst int
}

// Defaults of the limits AuthOptions leaves unset.
const (
	DefaultWriteRate       = 200
	DefaultReadRate        = 200
	DefaultStreamRate      = 10
	DefaultMaxEventStreams = 16
)

// AuthOptions configure NewAuth. A rate is calls per second per token (0:
// the default; negative: unlimited), a burst its bucket (0: one second's
// worth, at least 1).
type AuthOptions struct {
	// AssignRate is each token's rate of decisions (AssignLead and
	// PreviewAssignment) when its entry sets none (0: unlimited).
	AssignRate  float64
	AssignBurst int
	// WriteRate: lead and rep updates, config applies (default
	// DefaultWriteRate).
	WriteRate  float64
	WriteBurst int
	// ReadRate: record, rep and config reads (default DefaultReadRate).
	ReadRate  float64
	ReadBurst int
	// StreamRate: stream opens (default DefaultStreamRate).
	StreamRate  float64
	StreamBurst int
	// MaxEventStreams bounds each token's open WatchEvents streams on this
	// replica (default DefaultMaxEventStreams; negative: unlimited).
	MaxEventStreams int
}

// NewAuth returns an Auth accepting the given tokens.
func NewAuth(t *auth.Tokens, o AuthOptions) *Auth {
	orDef := func(r, def float64) rate.Limit {
		switch {
		case r < 0:
			return 0
		case r == 0:
			return rate.Limit(def)
		}
		return rate.Limit(r)
	}
	assign := rate.Limit(max(o.AssignRate, 0))
	a := &Auth{rates: map[CostClass]classRate{
		ClassDecide: {assign, o.AssignBurst},
		ClassWrite:  {orDef(o.WriteRate, DefaultWriteRate), o.WriteBurst},
		ClassRead:   {orDef(o.ReadRate, DefaultReadRate), o.ReadBurst},
		ClassStream: {orDef(o.StreamRate, DefaultStreamRate), o.StreamBurst},
	}, maxEventStreams: o.MaxEventStreams, limiters: map[string]*rate.Limiter{}, events: map[string]int{},
		streams: map[*authorizedStream]struct{}{}}
	if a.maxEventStreams == 0 {
		a.maxEventStreams = DefaultMaxEventStreams
	}
	a.SetTokens(t)
	return a
}

// SetTokens replaces the accepted tokens. Unary calls in flight keep the
// identity they started with; every open stream is checked again, and one
// the new tokens would not let open ends UNAUTHENTICATED.
func (a *Auth) SetTokens(t *auth.Tokens) {
	// Under streamsMu from the store on: concurrent calls re-check the
	// streams in the order they stored their tokens.
	a.streamsMu.Lock()
	defer a.streamsMu.Unlock()
	a.tokens.Store(t)
	a.mu.Lock()
	a.limiters = map[string]*rate.Limiter{} // limits may have changed with the file
	a.mu.Unlock()
	for s := range a.streams {
		s.recheck(t)
	}
}

// errCredentialEnded causes a stream's end when its credential does.
var errCredentialEnded = errors.New("the stream's credential ended")

// authenticate reads the bearer token of the call and looks it up in
// tokens; it returns the token too.
func authenticate(ctx context.Context, tokens *auth.Tokens) (*auth.Identity, string, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get("authorization")
	if len(vals) == 0 {
		return nil, "", status.Error(codes.Unauthenticated, "missing bearer token: send metadata authorization: Bearer <token>")
	}
	scheme, token, ok := strings.Cut(vals[0], " ")
	if !ok || !strings.EqualFold(scheme, "bearer") || token == "" {
		return nil, "", status.Error(codes.Unauthenticated, "malformed authorization metadata: want Bearer <token>")
	}
	token = strings.TrimSpace(token)
	id, err := lookup(tokens, token)
	return id, token, err
}

// lookup finds token's identity, or says as a gRPC status why there is
// none.
func lookup(tokens *auth.Tokens, token string) (*auth.Identity, error) {
	id, err := tokens.Lookup(token)
	switch {
	case errors.Is(err, auth.ErrUnknownToken):
		return nil, status.Error(codes.Unauthenticated, "unknown or revoked token")
	case err != nil: // a JWT that does not verify says why (expired, wrong issuer, ...)
		return nil, status.Error(codes.Unauthenticated, err.Error())
	}
	return id, nil
}

// authorize checks that id may call method with req: its role, its
// workspace and, for a rep, its rep id.
func authorize(id *auth.Identity, method string, req any) error {
	if err := authorizeRole(id, method); err != nil {
		return err
	}
	if w, ok := req.(interface{ GetWorkspace() string }); ok {
		ws, err := engine.NormalizeWorkspace(w.GetWorkspace())
		if err != nil || ws != id.Workspace {
			return status.Errorf(codes.PermissionDenied, "this token is for workspace %q, not %q", id.Workspace, w.GetWorkspace())
		}
	}
	if id.Role == auth.RoleRep {
		r, ok := req.(interface{ GetRepId() string })
		if !ok || r.GetRepId() != id.RepID {
			return status.Errorf(codes.PermissionDenied, "this token is for rep %q only", id.RepID)
		}
	}
	return nil
}

// authorizeRole checks that id's role may call method.
func authorizeRole(id *auth.Identity, method string) error {
	if id.Role != auth.RoleAdmin && !slices.Contains(methodRoles[method], id.Role) {
		return status.Errorf(codes.PermissionDenied, "role %s may not call %s", id.Role, strings.TrimPrefix(method, apiPrefix))
	}
	return nil
}

// allow applies id's token bucket of the method's cost class. A method
// without a class (health, reflection) is not limited.
func (a *Auth) allow(id *auth.Identity, method string) error {
	class, ok := methodClasses[method]
	if !ok {
		return nil
	}
	r := a.rates[class]
	limit, burst, setting := r.limit, r.burst, classFlags[class]
	if class == ClassDecide && id.AssignRate > 0 {
		limit, burst, setting = rate.Limit(id.AssignRate), id.AssignBurst, "the token's assign_rate"
	}
	if limit <= 0 {
		return nil
	}
	if burst <= 0 {
		burst = max(1, int(limit))
	}
	key := id.Key + "\x00" + string(class)
	a.mu.Lock()
	l, ok := a.limiters[key]
	if !ok {
		if len(a.limiters) >= maxLimiters {
			clear(a.limiters)
		}
		l = rate.NewLimiter(limit, burst)
		a.limiters[key] = l
	}
	a.mu.Unlock()
	res := l.Reserve()
	delay := res.Delay()
	if delay == 0 {
		return nil
	}
	res.Cancel() // not taken: the call is refused
	st := status.New(codes.ResourceExhausted,
		fmt.Sprintf("%s rate limit of this token (%s calls, %s: %.4g/s, burst %d): retry in %s",
			strings.TrimPrefix(method, apiPrefix), class, setting, float64(limit), burst, delay.Round(time.Millisecond)))
	if d, err := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(delay)}); err == nil {
		st = d
	}
	return st.Err()
}

// check runs authentication, authorization and the rate limit for a call
// and returns the caller's identity.
func (a *Auth) check(ctx context.Context, method string, req any) (*auth.Identity, error) {
	id, _, err := authenticate(ctx, a.tokens.Load())
	if err != nil {
		return nil, err
	}
	if err := authorize(id, method, req); err != nil {
		return nil, err
	}
	return id, a.allow(id, method)
}

type identityKey struct{}

// callerRole is the role of the call's token; "" when auth is off.
// callerName is the caller's credential name ("" without auth).
func callerName(ctx context.Context) string {
	if id, ok := ctx.Value(identityKey{}).(*auth.Identity); ok {
		return id.Name
	}
	return ""
}

func callerRole(ctx context.Context) auth.Role {
	if id, ok := ctx.Value(identityKey{}).(*auth.Identity); ok {
		return id.Role
	}
	return ""
}

// UnaryInterceptor authenticates and authorizes unary calls.
func (a *Auth) UnaryInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if !strings.HasPrefix(info.FullMethod, apiPrefix) {
			return handler(ctx, req)
		}
		id, err := a.check(ctx, info.FullMethod, req)
		if err != nil {
			return nil, err
		}
		return handler(context.WithValue(ctx, identityKey{}, id), req)
	}
}

// StreamInterceptor authenticates a stream when it opens and authorizes it
// with its request message (every leadrouter stream is server-streaming:
// one request, then events). The stream ends UNAUTHENTICATED when its
// credential does: at a JWT's expiry, or at a SetTokens after which the
// token would no longer be allowed to open it.
func (a *Auth) StreamInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if !strings.HasPrefix(info.FullMethod, apiPrefix) {
			return handler(srv, ss)
		}
		tokens := a.tokens.Load()
		id, token, err := authenticate(ss.Context(), tokens)
		if err != nil {
			return err
		}
		if err := a.allow(id, info.FullMethod); err != nil {
			return err
		}
		if info.FullMethod == pb.EventService_WatchEvents_FullMethodName {
			release, err := a.openEventStream(id)
			if err != nil {
				return err
			}
			defer release()
		}
		ctx, cancel := context.WithCancelCause(context.WithValue(ss.Context(), identityKey{}, id))
		defer cancel(nil)
		s := &authorizedStream{ServerStream: ss, ctx: ctx, end: cancel, token: token, id: id, method: info.FullMethod, auth: a}
		stopExpiry := func() bool { return false }
		if !id.Expires.IsZero() {
			stopExpiry = time.AfterFunc(time.Until(id.Expires), func() {
				cancel(fmt.Errorf("%w: the token expired: it was accepted until %s (its exp plus the leeway)",
					errCredentialEnded, id.Expires.UTC().Format(time.RFC3339)))
			}).Stop
		}
		a.track(s, tokens)
		err = func() error {
			// Also when the handler panics. Nothing ends the stream for
			// its credential after this, so a handler's own error is not
			// mistaken for one below.
			defer stopExpiry()
			defer a.untrack(s)
			return handler(srv, s)
		}()
		if cause := context.Cause(ctx); errors.Is(cause, errCredentialEnded) {
			return status.Error(codes.Unauthenticated, cause.Error())
		}
		return err
	}
}

// openEventStream takes one of id's WatchEvents slots.
func (a *Auth) openEventStream(id *auth.Identity) (release func(), err error) {
	if a.maxEventStreams < 0 {
		return func() {}, nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if n := a.events[id.Key]; n >= a.maxEventStreams {
		return nil, status.Errorf(codes.ResourceExhausted,
			"this token has %d WatchEvents streams open on this replica already (--max-event-streams-per-token: %d): close one first", n, a.maxEventStreams)
	}
	a.events[id.Key]++
	return func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		if a.events[id.Key]--; a.events[id.Key] <= 0 {
			delete(a.events, id.Key)
		}
	}, nil
}

// track adds an opening stream to those SetTokens checks, checking it at
// once against tokens stored since it was authenticated with opened.
func (a *Auth) track(s *authorizedStream, opened *auth.Tokens) {
	a.streamsMu.Lock()
	defer a.streamsMu.Unlock()
	a.streams[s] = struct{}{}
	if cur := a.tokens.Load(); cur != opened {
		s.recheck(cur)
	}
}

// untrack removes a stream.
func (a *Auth) untrack(s *authorizedStream) {
	a.streamsMu.Lock()
	defer a.streamsMu.Unlock()
	delete(a.streams, s)
}

// authorizedStream is an open stream with the credential it was opened
// with. Its context ends when the credential does.
type authorizedStream struct {
	grpc.ServerStream
	ctx    context.Context
	end    context.CancelCauseFunc
	token  string
	method string
	auth   *Auth
	// id is the token's identity (as of the last SetTokens) and req the
	// request message once authorized (nil before), both under
	// auth.streamsMu.
	id  *auth.Identity
	req any
}

// Context is the stream's context, ended with the credential.
func (s *authorizedStream) Context() context.Context { return s.ctx }

// SendMsg sends nothing once the credential has ended: a handler replaying
// a backlog does not look at its context between messages.
func (s *authorizedStream) SendMsg(m any) error {
	if cause := context.Cause(s.ctx); errors.Is(cause, errCredentialEnded) {
		return status.Error(codes.Unauthenticated, cause.Error())
	}
	return s.ServerStream.SendMsg(m)
}

func (s *authorizedStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	s.auth.streamsMu.Lock()
	defer s.auth.streamsMu.Unlock()
	if s.req == nil {
		if err := authorize(s.id, s.method, m); err != nil {
			return err
		}
		s.req = m
	}
	return nil
}

// recheck ends the stream unless tokens still let its token open it, with
// the request it was opened with. Called under auth.streamsMu.
func (s *authorizedStream) recheck(tokens *auth.Tokens) {
	id, err := lookup(tokens, s.token)
	switch {
	case err != nil:
	case s.req != nil:
		err = authorize(id, s.method, s.req)
	default: // no request yet: RecvMsg authorizes it with this identity
		err = authorizeRole(id, s.method)
	}
	if err != nil {
		s.end(fmt.Errorf("%w: the tokens were replaced and this one no longer opens this stream: %s", errCredentialEnded, status.Convert(err).Message()))
		return
	}
	s.id = id
}
