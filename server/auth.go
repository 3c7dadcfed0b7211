package server

import (
	"context"
	"errors"
	"fmt"
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
)

// apiPrefix starts the full method name of every leadrouter RPC. Calls to
// other services (health, reflection) need no token.
const apiPrefix = "/leadrouter.v1."

// methodRoles says which roles may call each RPC; admin may call all of
// them. An RPC missing here is refused to every role but admin (fail
// closed).
var methodRoles = map[string][]auth.Role{
	"/leadrouter.v1.RoutingService/AssignLead":        {auth.RoleIntake},
	"/leadrouter.v1.RoutingService/PreviewAssignment": {auth.RoleIntake},
	"/leadrouter.v1.RoutingService/GetAssignment":     {auth.RoleManager},
	"/leadrouter.v1.AdminService/GetRep":              {auth.RoleManager},
	"/leadrouter.v1.AdminService/ListReps":            {auth.RoleManager},
	"/leadrouter.v1.EventService/WatchEvents":         {auth.RoleManager},
	"/leadrouter.v1.RepService/SetRepStatus":          {auth.RoleRep},
	"/leadrouter.v1.RepService/AcceptOffer":           {auth.RoleRep},
	"/leadrouter.v1.RepService/RejectOffer":           {auth.RoleRep},
	"/leadrouter.v1.RepService/RecordContact":         {auth.RoleRep},
	"/leadrouter.v1.RepService/SetDisposition":        {auth.RoleRep},
	"/leadrouter.v1.RepService/WatchAssignments":      {auth.RoleRep},
}

const assignLeadMethod = "/leadrouter.v1.RoutingService/AssignLead"

// Auth checks bearer tokens and what their role may do, and rate-limits
// AssignLead per token. Tokens can be replaced at any time (SIGHUP) without
// touching open connections.
type Auth struct {
	tokens atomic.Pointer[auth.Tokens]
	rate   rate.Limit // default AssignLead rate per token (0: unlimited)
	burst  int

	mu       sync.Mutex
	limiters map[string]*rate.Limiter // by Identity.Key
}

// maxLimiters bounds the limiters kept: JWT subjects are not listed
// anywhere, so a flood of distinct valid JWTs must not grow memory without
// end. Past it the buckets start over (full), which errs towards serving.
const maxLimiters = 100_000

// AuthOptions configure NewAuth.
type AuthOptions struct {
	// AssignRate is each token's AssignLead rate per second when its entry
	// sets none (0: unlimited); AssignBurst its burst (default: one
	// second's worth, at least 1).
	AssignRate  float64
	AssignBurst int
}

// NewAuth returns an Auth accepting the given tokens.
func NewAuth(t *auth.Tokens, o AuthOptions) *Auth {
	a := &Auth{rate: rate.Limit(o.AssignRate), burst: o.AssignBurst, limiters: map[string]*rate.Limiter{}}
	a.SetTokens(t)
	return a
}

// SetTokens replaces the accepted tokens; calls in flight keep the identity
// they started with.
func (a *Auth) SetTokens(t *auth.Tokens) {
	a.tokens.Store(t)
	a.mu.Lock()
	a.limiters = map[string]*rate.Limiter{} // limits may have changed with the file
	a.mu.Unlock()
}

// authenticate reads the bearer token of the call.
func (a *Auth) authenticate(ctx context.Context) (*auth.Identity, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get("authorization")
	if len(vals) == 0 {
		return nil, status.Error(codes.Unauthenticated, "missing bearer token: send metadata authorization: Bearer <token>")
	}
	scheme, token, ok := strings.Cut(vals[0], " ")
	if !ok || !strings.EqualFold(scheme, "bearer") || token == "" {
		return nil, status.Error(codes.Unauthenticated, "malformed authorization metadata: want Bearer <token>")
	}
	id, err := a.tokens.Load().Lookup(strings.TrimSpace(token))
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
	if id.Role != auth.RoleAdmin {
		allowed := false
		for _, r := range methodRoles[method] {
			allowed = allowed || r == id.Role
		}
		if !allowed {
			return status.Errorf(codes.PermissionDenied, "role %s may not call %s", id.Role, strings.TrimPrefix(method, apiPrefix))
		}
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

// allow applies the AssignLead token bucket of id.
func (a *Auth) allow(id *auth.Identity) error {
	limit, burst := a.rate, a.burst
	if id.AssignRate > 0 {
		limit, burst = rate.Limit(id.AssignRate), id.AssignBurst
	}
	if limit <= 0 {
		return nil
	}
	if burst <= 0 {
		burst = max(1, int(limit))
	}
	a.mu.Lock()
	l, ok := a.limiters[id.Key]
	if !ok {
		if len(a.limiters) >= maxLimiters {
			clear(a.limiters)
		}
		l = rate.NewLimiter(limit, burst)
		a.limiters[id.Key] = l
	}
	a.mu.Unlock()
	r := l.Reserve()
	delay := r.Delay()
	if delay == 0 {
		return nil
	}
	r.Cancel() // not taken: the call is refused
	st := status.New(codes.ResourceExhausted,
		fmt.Sprintf("AssignLead rate limit of this token (%.4g/s, burst %d): retry in %s", float64(limit), burst, delay.Round(time.Millisecond)))
	if d, err := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(delay)}); err == nil {
		st = d
	}
	return st.Err()
}

// check runs authentication, authorization and the rate limit for a call.
func (a *Auth) check(ctx context.Context, method string, req any) error {
	id, err := a.authenticate(ctx)
	if err != nil {
		return err
	}
	if err := authorize(id, method, req); err != nil {
		return err
	}
	if method == assignLeadMethod {
		return a.allow(id)
	}
	return nil
}

// UnaryInterceptor authenticates and authorizes unary calls.
func (a *Auth) UnaryInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if !strings.HasPrefix(info.FullMethod, apiPrefix) {
			return handler(ctx, req)
		}
		if err := a.check(ctx, info.FullMethod, req); err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

// StreamInterceptor authenticates a stream when it opens and authorizes it
// with its request message (every leadrouter stream is server-streaming:
// one request, then events).
func (a *Auth) StreamInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if !strings.HasPrefix(info.FullMethod, apiPrefix) {
			return handler(srv, ss)
		}
		id, err := a.authenticate(ss.Context())
		if err != nil {
			return err
		}
		return handler(srv, &authorizedStream{ServerStream: ss, id: id, method: info.FullMethod})
	}
}

type authorizedStream struct {
	grpc.ServerStream
	id      *auth.Identity
	method  string
	checked bool
}

func (s *authorizedStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	if !s.checked {
		if err := authorize(s.id, s.method, m); err != nil {
			return err
		}
		s.checked = true
	}
	return nil
}
