package server_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/protobuf/proto"

	pb "github.com/leadrouter/leadrouter/gen/leadrouter/v1"
	"github.com/leadrouter/leadrouter/internal/redistest"
)

const threeReps = `
reps: [{id: a}, {id: b}, {id: c}]
pools: [{id: p, members: [{rep_id: a}, {rep_id: b}, {rep_id: c}]}]
rules:
  - {id: de, match: {countries: [DE]}, targets: [{pool_id: p}]}
`

func TestBadLeadInput(t *testing.T) {
	in := start(t, redistest.RealStore(t))
	ws := redistest.Workspace(t)
	in.applyYAML(t, ws, threeReps)
	attrs := map[string]string{}
	for i := 0; i < 65; i++ {
		attrs[fmt.Sprint("k", i)] = "v"
	}
	cases := []struct {
		name  string
		ws    string
		lead  *pb.Lead
		field string
	}{
		{"missing lead", ws, nil, "lead.id"},
		{"missing lead id", ws, &pb.Lead{Email: "jane@acme.com"}, "lead.id"},
		{"id over 128 bytes", ws, &pb.Lead{Id: strings.Repeat("x", 129)}, "lead.id"},
		{"malformed email", ws, &pb.Lead{Id: "1", Email: "jane.acme.com"}, "lead.email"},
		{"unknown country", ws, &pb.Lead{Id: "1", Country: "XX"}, "lead.country"},
		{"score above 100", ws, &pb.Lead{Id: "1", Score: proto.Int32(101)}, "lead.score"},
		{"score below 0", ws, &pb.Lead{Id: "1", Score: proto.Int32(-1)}, "lead.score"},
		{"65 attributes", ws, &pb.Lead{Id: "1", Attributes: attrs}, "lead.attributes"},
		{"attribute over 1 KiB", ws, &pb.Lead{Id: "1", Attributes: map[string]string{"k": strings.Repeat("v", 1025)}}, `lead.attributes["k"]`},
		{"bad language", ws, &pb.Lead{Id: "1", Language: "not a tag"}, "lead.language"},
		{"bad workspace", "a{b}", &pb.Lead{Id: "1"}, "workspace"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for name, call := range map[string]func() error{
				"AssignLead": func() error {
					_, err := in.routing.AssignLead(ctxT(t), &pb.AssignLeadRequest{Workspace: c.ws, Lead: c.lead})
					return err
				},
				"PreviewAssignment": func() error {
					_, err := in.routing.PreviewAssignment(ctxT(t), &pb.PreviewAssignmentRequest{Workspace: c.ws, Lead: c.lead})
					return err
				},
			} {
				st := wantCode(t, call(), codes.InvalidArgument)
				if v := violations(st); v[c.field] == "" {
					t.Errorf("%s: no violation for %s in %v", name, c.field, v)
				}
			}
		})
	}
	// Nothing was written by any of them.
	if _, err := in.routing.GetAssignment(ctxT(t), &pb.GetAssignmentRequest{Workspace: ws, LeadId: "1"}); err == nil {
		t.Fatal("an invalid lead was stored")
	}
	// Email is optional.
	resp, err := in.routing.AssignLead(ctxT(t), &pb.AssignLeadRequest{Workspace: ws, Lead: &pb.Lead{Id: "ok", Country: "de"}})
	if err != nil || resp.GetAssignment().GetState() != pb.AssignmentState_ASSIGNMENT_STATE_ASSIGNED {
		t.Fatalf("valid lead without email: %v %v", resp, err)
	}
}

func TestErrorCodes(t *testing.T) {
	in := start(t, redistest.RealStore(t))
	ws := redistest.Workspace(t)
	ctx := ctxT(t)

	_, err := in.routing.AssignLead(ctx, &pb.AssignLeadRequest{Workspace: ws, Lead: &pb.Lead{Id: "1"}})
	wantCode(t, err, codes.FailedPrecondition)
	_, err = in.admin.GetRoutingConfig(ctx, &pb.GetRoutingConfigRequest{Workspace: ws})
	wantCode(t, err, codes.FailedPrecondition)

	// A bad config: every problem listed, nothing written.
	_, err = in.admin.ApplyRoutingConfig(ctx, &pb.ApplyRoutingConfigRequest{Workspace: ws, Config: &pb.RoutingConfig{
		Reps:  []*pb.Rep{{Id: "a", Timezone: "Mars/Olympus"}},
		Pools: []*pb.Pool{{Id: "p", Members: []*pb.PoolMember{{RepId: "ghost"}}}},
		Rules: []*pb.Rule{
			{Id: "r0", Match: &pb.Match{Countries: []string{"DE"}}, Targets: []*pb.Target{{PoolId: "p"}}},
			{Id: "r1", Match: &pb.Match{Countries: []string{"FR"}}, Targets: []*pb.Target{{PoolId: "p"}}},
			{Id: "r2", Match: &pb.Match{Countries: []string{"ZZ"}}, Targets: []*pb.Target{{PoolId: "p"}}},
			{Id: "r3", Targets: []*pb.Target{{PoolId: "emea-smb"}}},
		},
	}})
	v := violations(wantCode(t, err, codes.InvalidArgument))
	for field, desc := range map[string]string{
		"config.reps[0].timezone":            "Mars/Olympus",
		"config.pools[0].members[0].rep_id":  "ghost",
		"config.rules[2].match.countries[0]": "ZZ",
		"config.rules[3].targets[0].pool_id": `unknown pool "emea-smb"`,
	} {
		if !strings.Contains(v[field], desc) {
			t.Errorf("violation %s = %q, want it to mention %s (all: %v)", field, v[field], desc, v)
		}
	}
	_, err = in.admin.GetRoutingConfig(ctx, &pb.GetRoutingConfigRequest{Workspace: ws})
	wantCode(t, err, codes.FailedPrecondition)
	_, err = in.admin.ApplyRoutingConfig(ctx, &pb.ApplyRoutingConfigRequest{Workspace: ws})
	wantCode(t, err, codes.InvalidArgument)

	in.applyYAML(t, ws, threeReps)
	_, err = in.admin.ApplyRoutingConfig(ctx, &pb.ApplyRoutingConfigRequest{Workspace: ws,
		Config: mustGetConfig(t, in, ws), ExpectedVersion: proto.Int64(0)})
	wantCode(t, err, codes.Aborted)

	_, err = in.routing.GetAssignment(ctx, &pb.GetAssignmentRequest{Workspace: ws, LeadId: "never"})
	wantCode(t, err, codes.NotFound)
	_, err = in.routing.GetAssignment(ctx, &pb.GetAssignmentRequest{Workspace: ws})
	if v := violations(wantCode(t, err, codes.InvalidArgument)); v["lead_id"] == "" {
		t.Errorf("no lead_id violation: %v", v)
	}
	_, err = in.rep.SetRepStatus(ctx, &pb.SetRepStatusRequest{Workspace: ws, RepId: "a"})
	if v := violations(wantCode(t, err, codes.InvalidArgument)); v["status"] == "" {
		t.Errorf("no status violation: %v", v)
	}
	_, err = in.rep.SetRepStatus(ctx, &pb.SetRepStatusRequest{Workspace: ws, RepId: "ghost", Status: pb.RepStatus_REP_STATUS_AWAY})
	wantCode(t, err, codes.FailedPrecondition) // a rep call for a rep the config lacks
	_, err = in.admin.GetRep(ctx, &pb.GetRepRequest{Workspace: ws, RepId: "ghost"})
	wantCode(t, err, codes.NotFound)
}

func mustGetConfig(t *testing.T, in *instance, ws string) *pb.RoutingConfig {
	resp, err := in.admin.GetRoutingConfig(ctxT(t), &pb.GetRoutingConfigRequest{Workspace: ws})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetConfig()
}

// TestTour walks the README's five-minute tour through a real client.
func TestTour(t *testing.T) {
	in := start(t, redistest.RealStore(t))
	ctx := ctxT(t)
	ws := "" // the default workspace, on this test binary's own Redis
	v := in.applyYAML(t, ws, threeReps)
	got := mustGetConfig(t, in, ws)
	if len(got.GetReps()) != 3 || got.GetPools()[0].GetStrategy() != pb.Strategy_STRATEGY_ROUND_ROBIN {
		t.Fatalf("config read back: %v", got)
	}
	var reps []string
	for i := 0; i < 4; i++ {
		resp, err := in.routing.AssignLead(ctx, &pb.AssignLeadRequest{Lead: &pb.Lead{
			Id: fmt.Sprint("tour-", i), Email: fmt.Sprintf("Jane%d@Acme.com", i), Country: "DE"}})
		if err != nil {
			t.Fatal(err)
		}
		a := resp.GetAssignment()
		if a.GetConfigVersion() != v || a.GetLead().GetCompanyDomain() != "acme.com" || a.GetRuleId() != "de" {
			t.Fatalf("assignment %v", a)
		}
		reps = append(reps, a.GetRepId())
	}
	if fmt.Sprint(reps) != "[a b c a]" {
		t.Fatalf("rotation %v", reps)
	}
	if _, err := in.rep.SetRepStatus(ctx, &pb.SetRepStatusRequest{RepId: "b", Status: pb.RepStatus_REP_STATUS_AWAY}); err != nil {
		t.Fatal(err)
	}
	prev, err := in.routing.PreviewAssignment(ctx, &pb.PreviewAssignmentRequest{Lead: &pb.Lead{Id: "p", Country: "DE"}})
	if err != nil {
		t.Fatal(err)
	}
	tr := prev.GetAssignment().GetTrace()
	cands := tr.GetTargets()[0].GetCandidates()
	if prev.GetAssignment().GetRepId() != "c" || len(cands) != 2 || cands[0].GetSkipReason() != "away" ||
		!strings.Contains(tr.GetSummary(), "skipped b (away)") {
		t.Fatalf("preview trace %v", tr)
	}
	get, err := in.routing.GetAssignment(ctx, &pb.GetAssignmentRequest{LeadId: "tour-1"})
	if err != nil || get.GetAssignment().GetRepId() != "b" || get.GetAssignment().GetTrace().GetSummary() == "" {
		t.Fatalf("get: %v %v", get, err)
	}
	list, err := in.admin.ListReps(ctx, &pb.ListRepsRequest{})
	if err != nil || len(list.GetReps()) != 3 || list.GetReps()[0].GetAssignedTotal() != 2 ||
		list.GetReps()[1].GetStatus() != pb.RepStatus_REP_STATUS_AWAY {
		t.Fatalf("reps: %v %v", list, err)
	}
	unroutable, err := in.routing.AssignLead(ctx, &pb.AssignLeadRequest{Lead: &pb.Lead{Id: "us", Country: "US"}})
	if err != nil || unroutable.GetAssignment().GetState() != pb.AssignmentState_ASSIGNMENT_STATE_UNROUTABLE {
		t.Fatalf("unroutable: %v %v", unroutable, err)
	}
}

func TestHealthAndReflection(t *testing.T) {
	in := start(t, redistest.RealStore(t))
	ctx := ctxT(t)
	hc := healthpb.NewHealthClient(in.conn)
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: "leadrouter.v1.RoutingService"})
		if err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not SERVING: %v %v", resp, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	stream, err := reflectpb.NewServerReflectionClient(in.conn).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&reflectpb.ServerReflectionRequest{MessageRequest: &reflectpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, s := range resp.GetListServicesResponse().GetService() {
		names[s.GetName()] = true
	}
	for _, want := range []string{"leadrouter.v1.RoutingService", "leadrouter.v1.AdminService", "leadrouter.v1.RepService", "leadrouter.v1.EventService", "grpc.health.v1.Health"} {
		if !names[want] {
			t.Errorf("reflection does not list %s: %v", want, names)
		}
	}
}
