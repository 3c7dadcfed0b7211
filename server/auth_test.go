package server_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/leadrouter/leadrouter/auth"
	"github.com/leadrouter/leadrouter/engine"
	pb "github.com/leadrouter/leadrouter/gen/leadrouter/v1"
	"github.com/leadrouter/leadrouter/internal/redistest"
	"github.com/leadrouter/leadrouter/server"
)

// tokenSet makes one token per entry and the parsed file holding them.
func tokenSet(t *testing.T, entries ...auth.Entry) (map[string]string, *auth.Tokens) {
	t.Helper()
	tokens := map[string]string{}
	made := make([]auth.Entry, len(entries))
	for i, e := range entries {
		tok, e, err := auth.NewToken(e)
		if err != nil {
			t.Fatal(err)
		}
		tokens[e.Name] = tok
		made[i] = e
	}
	return tokens, tokenFile(t, made...)
}

// tokenFile parses a token file of entries that carry their SHA256.
func tokenFile(t *testing.T, entries ...auth.Entry) *auth.Tokens {
	t.Helper()
	var b strings.Builder
	b.WriteString("tokens:\n")
	for _, e := range entries {
		fmt.Fprintf(&b, "  - {sha256: %s, name: %s, workspace: %q, role: %s, rep_id: %q, assign_rate: %g, assign_burst: %d}\n",
			e.SHA256, e.Name, e.Workspace, e.Role, e.RepID, e.AssignRate, e.AssignBurst)
	}
	set, err := auth.ParseFile(strings.NewReader(b.String()))
	if err != nil {
		t.Fatalf("%v\n%s", err, b.String())
	}
	return set
}

func as(t *testing.T, token string) context.Context {
	return metadata.AppendToOutgoingContext(ctxT(t), "authorization", "Bearer "+token)
}

// TestRolesAndWorkspaces: every RPC against every role. A call the role may
// make gets past authorization (it may still fail on its own terms, say
// NOT_FOUND); any other is PERMISSION_DENIED. A token of another workspace
// is PERMISSION_DENIED everywhere; no or an unknown token is
// UNAUTHENTICATED; health needs no token.
func TestRolesAndWorkspaces(t *testing.T) {
	ws := redistest.Workspace(t)
	tokens, set := tokenSet(t,
		auth.Entry{Name: "intake", Workspace: ws, Role: auth.RoleIntake},
		auth.Entry{Name: "rep-a", Workspace: ws, Role: auth.RoleRep, RepID: "a"},
		auth.Entry{Name: "manager", Workspace: ws, Role: auth.RoleManager},
		auth.Entry{Name: "admin", Workspace: ws, Role: auth.RoleAdmin},
		auth.Entry{Name: "admin-elsewhere", Workspace: "elsewhere", Role: auth.RoleAdmin},
	)
	in := startWith(t, redistest.RealStore(t), server.Options{Auth: server.NewAuth(set, server.AuthOptions{})})
	in.applyYAMLAs(t, as(t, tokens["admin"]), ws, watchConfig)
	cfg, _ := engine.ParseConfigYAML(strings.NewReader(watchConfig))
	events := pb.NewEventServiceClient(in.conn)
	stream := func(open func(ctx context.Context) (interface{ Recv() error }, error)) func(ctx context.Context) error {
		return func(ctx context.Context) error {
			ctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
			defer cancel()
			s, err := open(ctx)
			if err != nil {
				return err
			}
			if err := s.Recv(); status.Code(err) == codes.DeadlineExceeded {
				return nil // authorized: it waited for events
			} else {
				return err
			}
		}
	}
	watchRep := func(rep string) func(context.Context) error {
		return stream(func(ctx context.Context) (interface{ Recv() error }, error) {
			s, err := in.rep.WatchAssignments(ctx, &pb.WatchAssignmentsRequest{Workspace: ws, RepId: rep})
			return recvOnly{func() error { _, err := s.Recv(); return err }}, err
		})
	}
	watchEvents := stream(func(ctx context.Context) (interface{ Recv() error }, error) {
		s, err := events.WatchEvents(ctx, &pb.WatchEventsRequest{Workspace: ws})
		return recvOnly{func() error { _, err := s.Recv(); return err }}, err
	})
	n := 0
	lead := func() *pb.Lead { n++; return &pb.Lead{Id: fmt.Sprint("lead-", n)} }
	calls := map[string]func(ctx context.Context) error{
		"AssignLead": func(ctx context.Context) error {
			_, err := in.routing.AssignLead(ctx, &pb.AssignLeadRequest{Workspace: ws, Lead: lead()})
			return err
		},
		"PreviewAssignment": func(ctx context.Context) error {
			_, err := in.routing.PreviewAssignment(ctx, &pb.PreviewAssignmentRequest{Workspace: ws, Lead: lead()})
			return err
		},
		"GetAssignment": func(ctx context.Context) error {
			_, err := in.routing.GetAssignment(ctx, &pb.GetAssignmentRequest{Workspace: ws, LeadId: "nope"})
			return err
		},
		"ApplyRoutingConfig": func(ctx context.Context) error {
			_, err := in.admin.ApplyRoutingConfig(ctx, &pb.ApplyRoutingConfigRequest{Workspace: ws, Config: server.ConfigToProto(cfg)})
			return err
		},
		"GetRoutingConfig": func(ctx context.Context) error {
			_, err := in.admin.GetRoutingConfig(ctx, &pb.GetRoutingConfigRequest{Workspace: ws})
			return err
		},
		"ListReps": func(ctx context.Context) error {
			_, err := in.admin.ListReps(ctx, &pb.ListRepsRequest{Workspace: ws})
			return err
		},
		"GetRep": func(ctx context.Context) error {
			_, err := in.admin.GetRep(ctx, &pb.GetRepRequest{Workspace: ws, RepId: "a"})
			return err
		},
		"ReleaseAssignment": func(ctx context.Context) error {
			_, err := in.admin.ReleaseAssignment(ctx, &pb.ReleaseAssignmentRequest{Workspace: ws, LeadId: "nope"})
			return err
		},
		"ListConfigVersions": func(ctx context.Context) error {
			_, err := in.admin.ListConfigVersions(ctx, &pb.ListConfigVersionsRequest{Workspace: ws})
			return err
		},
		"RollbackConfig": func(ctx context.Context) error {
			_, err := in.admin.RollbackConfig(ctx, &pb.RollbackConfigRequest{Workspace: ws, Version: 99})
			return err
		},
		"RequeueLead": func(ctx context.Context) error {
			_, err := in.admin.RequeueLead(ctx, &pb.RequeueLeadRequest{Workspace: ws, LeadId: "nope"})
			return err
		},
		"ReassignLead": func(ctx context.Context) error {
			_, err := in.admin.ReassignLead(ctx, &pb.ReassignLeadRequest{Workspace: ws, LeadId: "nope", RepId: "a"})
			return err
		},
		"EraseLead": func(ctx context.Context) error {
			_, err := in.admin.EraseLead(ctx, &pb.EraseLeadRequest{Workspace: ws, LeadId: "nope"})
			return err
		},
		"EraseContact": func(ctx context.Context) error {
			_, err := in.admin.EraseContact(ctx, &pb.EraseContactRequest{Workspace: ws, Email: "nobody@example.org"})
			return err
		},
		"SetRepStatus(a)": func(ctx context.Context) error {
			_, err := in.rep.SetRepStatus(ctx, &pb.SetRepStatusRequest{Workspace: ws, RepId: "a", Status: pb.RepStatus_REP_STATUS_AVAILABLE})
			return err
		},
		"SetRepStatus(b)": func(ctx context.Context) error {
			_, err := in.rep.SetRepStatus(ctx, &pb.SetRepStatusRequest{Workspace: ws, RepId: "b", Status: pb.RepStatus_REP_STATUS_AVAILABLE})
			return err
		},
		"AcceptOffer(a)": func(ctx context.Context) error {
			_, err := in.rep.AcceptOffer(ctx, &pb.AcceptOfferRequest{Workspace: ws, RepId: "a", LeadId: "nope"})
			return err
		},
		"AcceptOffer(b)": func(ctx context.Context) error {
			_, err := in.rep.AcceptOffer(ctx, &pb.AcceptOfferRequest{Workspace: ws, RepId: "b", LeadId: "nope"})
			return err
		},
		"RejectOffer(b)": func(ctx context.Context) error {
			_, err := in.rep.RejectOffer(ctx, &pb.RejectOfferRequest{Workspace: ws, RepId: "b", LeadId: "nope"})
			return err
		},
		"RecordContact(b)": func(ctx context.Context) error {
			_, err := in.rep.RecordContact(ctx, &pb.RecordContactRequest{Workspace: ws, RepId: "b", LeadId: "nope"})
			return err
		},
		"SetDisposition(b)": func(ctx context.Context) error {
			_, err := in.rep.SetDisposition(ctx, &pb.SetDispositionRequest{Workspace: ws, RepId: "b", LeadId: "nope"})
			return err
		},
		"WatchAssignments(a)": watchRep("a"),
		"WatchAssignments(b)": watchRep("b"),
		"WatchEvents":         watchEvents,
	}
	allowed := map[string][]string{
		"intake":  {"AssignLead", "PreviewAssignment"},
		"rep-a":   {"SetRepStatus(a)", "AcceptOffer(a)", "WatchAssignments(a)"},
		"manager": {"GetAssignment", "ListReps", "GetRep", "WatchEvents"},
		"admin":   nil, // everything
	}
	for who, ok := range allowed {
		for name, call := range calls {
			want := who == "admin"
			for _, o := range ok {
				want = want || o == name
			}
			err := call(as(t, tokens[who]))
			code := status.Code(err)
			switch {
			case want && (code == codes.PermissionDenied || code == codes.Unauthenticated):
				t.Errorf("%s %s: %v, want it authorized", who, name, err)
			case !want && code != codes.PermissionDenied:
				t.Errorf("%s %s: %v, want PERMISSION_DENIED", who, name, err)
			}
		}
	}
	for name, call := range calls {
		if err := call(as(t, tokens["admin-elsewhere"])); status.Code(err) != codes.PermissionDenied {
			t.Errorf("admin of another workspace, %s: %v, want PERMISSION_DENIED", name, err)
		}
		if err := call(ctxT(t)); status.Code(err) != codes.Unauthenticated {
			t.Errorf("no token, %s: %v, want UNAUTHENTICATED", name, err)
		}
		if err := call(as(t, "lr_not-a-token")); status.Code(err) != codes.Unauthenticated {
			t.Errorf("unknown token, %s: %v, want UNAUTHENTICATED", name, err)
		}
	}
	if _, err := healthpb.NewHealthClient(in.conn).Check(ctxT(t), &healthpb.HealthCheckRequest{}); err != nil {
		t.Errorf("health without a token: %v", err)
	}
}

type recvOnly struct{ recv func() error }

func (r recvOnly) Recv() error { return r.recv() }

// TestAssignRateLimit: a token's AssignLead bucket refuses the call past
// its burst with RESOURCE_EXHAUSTED and when to retry; other tokens are not
// affected.
func TestAssignRateLimit(t *testing.T) {
	ws := redistest.Workspace(t)
	tokens, set := tokenSet(t,
		auth.Entry{Name: "slow", Workspace: ws, Role: auth.RoleIntake, AssignRate: 0.5, AssignBurst: 3},
		auth.Entry{Name: "fast", Workspace: ws, Role: auth.RoleIntake},
		auth.Entry{Name: "admin", Workspace: ws, Role: auth.RoleAdmin},
	)
	in := startWith(t, redistest.RealStore(t), server.Options{Auth: server.NewAuth(set, server.AuthOptions{AssignRate: 1000})})
	in.applyYAMLAs(t, as(t, tokens["admin"]), ws, watchConfig)
	assign := func(who string, i int) error {
		_, err := in.routing.AssignLead(as(t, tokens[who]), &pb.AssignLeadRequest{Workspace: ws, Lead: &pb.Lead{Id: fmt.Sprint(who, i)}})
		return err
	}
	for i := 0; i < 3; i++ {
		if err := assign("slow", i); err != nil {
			t.Fatalf("call %d within the burst: %v", i, err)
		}
	}
	err := assign("slow", 3)
	st := wantCode(t, err, codes.ResourceExhausted)
	var retry *errdetails.RetryInfo
	for _, d := range st.Details() {
		if r, ok := d.(*errdetails.RetryInfo); ok {
			retry = r
		}
	}
	if retry == nil || retry.GetRetryDelay().AsDuration() <= 0 || retry.GetRetryDelay().AsDuration() > 2*time.Second {
		t.Fatalf("RetryInfo %v: want a delay within one token's refill (2s)", retry)
	}
	if _, err := in.routing.GetAssignment(as(t, tokens["admin"]), &pb.GetAssignmentRequest{Workspace: ws, LeadId: "slow3"}); status.Code(err) != codes.NotFound {
		t.Fatalf("the refused lead was recorded: %v", err)
	}
	for i := 0; i < 50; i++ {
		if err := assign("fast", i); err != nil {
			t.Fatalf("another token is limited too: %v", err)
		}
	}
}

// TestTokenReload: replacing the tokens (SIGHUP in leadrouterd) revokes the
// old ones at once, on open connections and on open streams, which end
// UNAUTHENTICATED, as does a stream whose token is now bound to another
// workspace; it admits the new tokens, and the streams of tokens the new
// file still lets open them keep running.
func TestTokenReload(t *testing.T) {
	ws := redistest.Workspace(t)
	old, oldSet := tokenSet(t,
		auth.Entry{Name: "admin", Workspace: ws, Role: auth.RoleAdmin},
		auth.Entry{Name: "dashboard", Workspace: ws, Role: auth.RoleManager},
		auth.Entry{Name: "ops", Workspace: ws, Role: auth.RoleManager})
	a := server.NewAuth(oldSet, server.AuthOptions{})
	in := startWith(t, redistest.RealStore(t), server.Options{Auth: a})
	in.applyYAMLAs(t, as(t, old["admin"]), ws, watchConfig)
	watch := func(token string) pb.EventService_WatchEventsClient { return watchEventsAs(t, in, ws, token) }
	revoked, kept, rebound := watch(old["admin"]), watch(old["dashboard"]), watch(old["ops"])

	// The new file: a new admin token, the dashboard's unchanged, ops's
	// moved to another workspace.
	fresh, freshEntry, err := auth.NewToken(auth.Entry{Name: "admin", Workspace: ws, Role: auth.RoleAdmin})
	if err != nil {
		t.Fatal(err)
	}
	a.SetTokens(tokenFile(t, freshEntry,
		auth.Entry{SHA256: auth.Hash(old["dashboard"]), Name: "dashboard", Workspace: ws, Role: auth.RoleManager},
		auth.Entry{SHA256: auth.Hash(old["ops"]), Name: "ops", Workspace: "elsewhere", Role: auth.RoleManager}))
	for name, s := range map[string]pb.EventService_WatchEventsClient{"revoked": revoked, "rebound": rebound} {
		if _, err := s.Recv(); status.Code(err) != codes.Unauthenticated || !strings.Contains(err.Error(), "no longer opens this stream") {
			t.Errorf("the %s token's stream after the reload: %v, want UNAUTHENTICATED saying why", name, err)
		}
	}
	if _, err := in.routing.AssignLead(as(t, old["admin"]), &pb.AssignLeadRequest{Workspace: ws, Lead: &pb.Lead{Id: "x"}}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("revoked token: %v, want UNAUTHENTICATED", err)
	}
	if _, err := in.routing.AssignLead(as(t, fresh), &pb.AssignLeadRequest{Workspace: ws, Lead: &pb.Lead{Id: "y"}}); err != nil {
		t.Fatalf("new token: %v", err)
	}
	// The kept token's stream, opened before the reload, gets the new
	// lead's event.
	e, err := kept.Recv()
	if err != nil || e.GetEvent().GetLeadId() != "y" {
		t.Fatalf("stream after reload: %v %v", e, err)
	}
}

// watchEventsAs opens a WatchEvents stream of ws with token and waits
// until the server has subscribed it.
func watchEventsAs(t *testing.T, in *instance, ws, token string) pb.EventService_WatchEventsClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(as(t, token), 20*time.Second)
	t.Cleanup(cancel)
	return openWatch(ctx, t, in, ws, nil)
}

// TestStreamsPerRep: a rep may hold MaxStreamsPerRep assignment streams on
// one replica; one more is RESOURCE_EXHAUSTED, and closing one frees a slot.
func TestStreamsPerRep(t *testing.T) {
	in := startWith(t, redistest.RealStore(t), server.Options{MaxStreamsPerRep: 2})
	ws := redistest.Workspace(t)
	in.applyYAML(t, ws, watchConfig)
	open := func() (context.CancelFunc, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		s, err := in.rep.WatchAssignments(ctx, &pb.WatchAssignmentsRequest{Workspace: ws, RepId: "a"})
		if err = subscribed(s, &pb.WatchAssignmentsResponse{}, err); err != nil {
			cancel()
			return nil, err
		}
		return cancel, nil
	}
	checkSlots(t, open, 2, "--max-streams-per-rep")
}

// subscribed returns a stream's error: the server sends headers once
// subscribed, and a refused stream ends without them (its first message
// is the error).
func subscribed(s grpc.ClientStream, m any, err error) error {
	if err != nil {
		return err
	}
	if md, _ := s.Header(); len(md.Get("leadrouter-epoch")) == 0 {
		return s.RecvMsg(m)
	}
	return nil
}

// checkSlots checks a limit of n open streams: n open, the next is
// RESOURCE_EXHAUSTED naming the limit, and closing one frees a slot.
func checkSlots(t *testing.T, open func() (context.CancelFunc, error), n int, limit string) {
	t.Helper()
	var closers []context.CancelFunc
	for i := 0; i < n; i++ {
		c, err := open()
		if err != nil {
			t.Fatalf("stream %d of %d: %v", i+1, n, err)
		}
		closers = append(closers, c)
	}
	defer func() {
		for _, c := range closers {
			c()
		}
	}()
	_, err := open()
	if st := wantCode(t, err, codes.ResourceExhausted); !strings.Contains(st.Message(), limit) {
		t.Fatalf("refusal %q does not name %s", st.Message(), limit)
	}
	closers[0]()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		c, err := open()
		if err == nil {
			closers = append(closers, c)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("a closed stream's slot was not freed: %v", err)
		}
	}
}

// TestRateLimitsByCostClass: every RPC that does Redis work is limited per
// token by its cost class. A PreviewAssignment costs a decision and draws
// on the AssignLead bucket; reads have their own bucket; each refusal is
// RESOURCE_EXHAUSTED naming the class and its setting.
func TestRateLimitsByCostClass(t *testing.T) {
	ws := redistest.Workspace(t)
	tokens, set := tokenSet(t,
		auth.Entry{Name: "forms", Workspace: ws, Role: auth.RoleIntake},
		auth.Entry{Name: "dash", Workspace: ws, Role: auth.RoleManager},
		auth.Entry{Name: "admin", Workspace: ws, Role: auth.RoleAdmin},
	)
	in := startWith(t, redistest.RealStore(t), server.Options{Auth: server.NewAuth(set,
		server.AuthOptions{AssignRate: 0.01, AssignBurst: 2, ReadRate: 0.01, ReadBurst: 3, WriteRate: -1})})
	in.applyYAMLAs(t, as(t, tokens["admin"]), ws, watchConfig)
	forms, dash := as(t, tokens["forms"]), as(t, tokens["dash"])
	for i := 0; i < 2; i++ {
		if _, err := in.routing.AssignLead(forms, &pb.AssignLeadRequest{Workspace: ws, Lead: &pb.Lead{Id: fmt.Sprint("l", i)}}); err != nil {
			t.Fatal(err)
		}
	}
	_, err := in.routing.PreviewAssignment(forms, &pb.PreviewAssignmentRequest{Workspace: ws, Lead: &pb.Lead{Id: "p"}})
	st := wantCode(t, err, codes.ResourceExhausted)
	if !strings.Contains(st.Message(), "PreviewAssignment") || !strings.Contains(st.Message(), "decide") || !strings.Contains(st.Message(), "--assign-rate") {
		t.Fatalf("refusal %q does not name the call, its class and the limit", st.Message())
	}
	for i := 0; i < 3; i++ {
		if _, err := in.routing.GetAssignment(dash, &pb.GetAssignmentRequest{Workspace: ws, LeadId: "l0"}); err != nil {
			t.Fatalf("read %d within the burst: %v", i, err)
		}
	}
	_, err = in.admin.ListReps(dash, &pb.ListRepsRequest{Workspace: ws})
	st = wantCode(t, err, codes.ResourceExhausted)
	if !strings.Contains(st.Message(), "read") || !strings.Contains(st.Message(), "--read-rate") {
		t.Fatalf("refusal %q does not name the read limit", st.Message())
	}
	// The admin's buckets are its own; writes are unlimited here.
	for i := 0; i < 5; i++ {
		if _, err := in.rep.SetRepStatus(as(t, tokens["admin"]), &pb.SetRepStatusRequest{Workspace: ws, RepId: "a", Status: pb.RepStatus_REP_STATUS_AVAILABLE}); err != nil {
			t.Fatalf("unlimited write %d: %v", i, err)
		}
	}
}

// TestEventStreamsPerToken: a token holds at most MaxEventStreams
// WatchEvents streams on a replica; the next is RESOURCE_EXHAUSTED naming
// the limit, and closing one frees its slot.
func TestEventStreamsPerToken(t *testing.T) {
	ws := redistest.Workspace(t)
	tokens, set := tokenSet(t,
		auth.Entry{Name: "dash", Workspace: ws, Role: auth.RoleManager},
		auth.Entry{Name: "admin", Workspace: ws, Role: auth.RoleAdmin},
	)
	in := startWith(t, redistest.RealStore(t), server.Options{Auth: server.NewAuth(set, server.AuthOptions{MaxEventStreams: 2})})
	in.applyYAMLAs(t, as(t, tokens["admin"]), ws, watchConfig)
	open := func() (context.CancelFunc, error) {
		ctx, cancel := context.WithCancel(as(t, tokens["dash"]))
		s, err := pb.NewEventServiceClient(in.conn).WatchEvents(ctx, &pb.WatchEventsRequest{Workspace: ws})
		if err = subscribed(s, &pb.WatchEventsResponse{}, err); err != nil {
			cancel()
			return nil, err
		}
		return cancel, nil
	}
	checkSlots(t, open, 2, "--max-event-streams-per-token")
}

// TestRolesSeeOnlyWhatTheyNeed: an intake token's decision replies carry
// the decision only, whatever view it asks for, and a repeated lead id
// tells it nothing of the original submission; a rep's refusal for a lead
// that is not theirs does not say whose it is.
func TestRolesSeeOnlyWhatTheyNeed(t *testing.T) {
	ws := redistest.Workspace(t)
	tokens, set := tokenSet(t,
		auth.Entry{Name: "forms", Workspace: ws, Role: auth.RoleIntake},
		auth.Entry{Name: "admin", Workspace: ws, Role: auth.RoleAdmin},
		auth.Entry{Name: "b", Workspace: ws, Role: auth.RoleRep, RepID: "b"},
	)
	in := startWith(t, redistest.RealStore(t), server.Options{Auth: server.NewAuth(set, server.AuthOptions{})})
	in.applyYAMLAs(t, as(t, tokens["admin"]), ws, `
reps: [{id: a}, {id: b}]
pools: [{id: p, accept_within: 60s, members: [{rep_id: a}, {rep_id: b}]}]
rules: [{id: all, targets: [{pool_id: p}]}]
`)
	forms := as(t, tokens["forms"])
	lead := &pb.Lead{Id: "l1", Email: "jane@acme.example", FirstName: "Jane", Attributes: map[string]string{"note": "secret"}}
	first, err := in.routing.AssignLead(forms, &pb.AssignLeadRequest{Workspace: ws, Lead: lead, View: pb.AssignmentView_ASSIGNMENT_VIEW_FULL})
	if err != nil {
		t.Fatal(err)
	}
	a := first.GetAssignment()
	if a.GetState() != pb.AssignmentState_ASSIGNMENT_STATE_OFFERED || a.GetRepId() == "" {
		t.Fatalf("the decision is missing: %v", a)
	}
	if a.GetLead() != nil || a.GetTrace() != nil || len(a.GetHistory()) > 0 {
		t.Fatalf("an intake token read the stored lead, trace or history: %v", a)
	}
	// Another submission re-sending the id.
	again, err := in.routing.PreviewAssignment(forms, &pb.PreviewAssignmentRequest{Workspace: ws, Lead: &pb.Lead{Id: "l1"}, View: pb.AssignmentView_ASSIGNMENT_VIEW_FULL})
	if err != nil || !again.GetDuplicate() {
		t.Fatalf("repeat: %v %v", again, err)
	}
	if b := again.GetAssignment(); b.GetLead() != nil || b.GetTrace() != nil || len(b.GetHistory()) > 0 || b.GetReason() != "" {
		t.Fatalf("a repeated id read the original submission: %v", b)
	}
	// The admin still sees everything.
	full, err := in.routing.GetAssignment(as(t, tokens["admin"]), &pb.GetAssignmentRequest{Workspace: ws, LeadId: "l1"})
	if err != nil || full.GetAssignment().GetLead().GetEmail() != "jane@acme.example" {
		t.Fatalf("admin view: %v %v", full, err)
	}
	holder := a.GetRepId()
	if holder == "b" {
		t.Fatal("the test needs the lead offered to a")
	}
	_, err = in.rep.AcceptOffer(as(t, tokens["b"]), &pb.AcceptOfferRequest{Workspace: ws, LeadId: "l1", RepId: "b"})
	st := wantCode(t, err, codes.FailedPrecondition)
	if strings.Contains(st.Message(), "rep "+holder) || !strings.Contains(st.Message(), "another rep") {
		t.Fatalf("a rep's refusal names the holder: %q", st.Message())
	}
}
