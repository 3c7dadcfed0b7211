package server_test

import (
	"testing"

	pb "github.com/leadrouter/leadrouter/gen/leadrouter/v1"
	"github.com/leadrouter/leadrouter/internal/redistest"
	"google.golang.org/grpc/codes"
)

// TestAssignmentViews: unset and FULL answer with the trace, history and
// lead; BASIC with the decision only, for AssignLead, PreviewAssignment and
// a repeat; GetAssignment always answers FULL; an unknown view is
// INVALID_ARGUMENT naming the field.
func TestAssignmentViews(t *testing.T) {
	in := start(t, redistest.RealStore(t))
	ctx := ctxT(t)
	ws := redistest.Workspace(t)
	in.applyYAML(t, ws, threeReps)
	if _, err := in.rep.SetRepStatus(ctx, &pb.SetRepStatusRequest{Workspace: ws, RepId: "a", Status: pb.RepStatus_REP_STATUS_AWAY}); err != nil {
		t.Fatal(err)
	}
	full := func(what string, a *pb.Assignment) {
		t.Helper()
		if a.GetTrace().GetSummary() == "" || len(a.GetTrace().GetTargets()) == 0 || len(a.GetHistory()) == 0 || a.GetLead().GetId() == "" {
			t.Fatalf("%s: not the FULL view: %v", what, a)
		}
	}
	basic := func(what string, a *pb.Assignment) {
		t.Helper()
		if a.GetTrace() != nil || a.GetHistory() != nil || a.GetLead() != nil || a.GetReceivedAt() != nil {
			t.Fatalf("%s: BASIC carries more than the decision: %v", what, a)
		}
		if a.GetState() != pb.AssignmentState_ASSIGNMENT_STATE_ASSIGNED || a.GetRepId() != "b" || a.GetPoolId() == "" ||
			a.GetRuleId() != "de" || a.GetRoute() != "rule" || a.GetDecidedAt() == nil || a.GetConfigVersion() == 0 || a.GetLeadId() == "" {
			t.Fatalf("%s: BASIC lacks the decision: %v", what, a)
		}
	}
	lead := &pb.Lead{Id: "v1", Country: "DE"}
	p, err := in.routing.PreviewAssignment(ctx, &pb.PreviewAssignmentRequest{Workspace: ws, Lead: lead, View: pb.AssignmentView_ASSIGNMENT_VIEW_BASIC})
	if err != nil {
		t.Fatal(err)
	}
	basic("preview", p.GetAssignment())
	p, err = in.routing.PreviewAssignment(ctx, &pb.PreviewAssignmentRequest{Workspace: ws, Lead: lead})
	if err != nil {
		t.Fatal(err)
	}
	full("preview, view unset", p.GetAssignment())
	r, err := in.routing.AssignLead(ctx, &pb.AssignLeadRequest{Workspace: ws, Lead: lead, View: pb.AssignmentView_ASSIGNMENT_VIEW_BASIC})
	if err != nil {
		t.Fatal(err)
	}
	basic("assign", r.GetAssignment())
	r, err = in.routing.AssignLead(ctx, &pb.AssignLeadRequest{Workspace: ws, Lead: lead, View: pb.AssignmentView_ASSIGNMENT_VIEW_BASIC})
	if err != nil || !r.GetDuplicate() {
		t.Fatalf("repeat: %v %v", r, err)
	}
	basic("repeat", r.GetAssignment())
	r, err = in.routing.AssignLead(ctx, &pb.AssignLeadRequest{Workspace: ws, Lead: lead, View: pb.AssignmentView_ASSIGNMENT_VIEW_FULL})
	if err != nil || !r.GetDuplicate() {
		t.Fatalf("repeat: %v %v", r, err)
	}
	full("repeat, FULL", r.GetAssignment())
	g, err := in.routing.GetAssignment(ctx, &pb.GetAssignmentRequest{Workspace: ws, LeadId: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	full("get", g.GetAssignment())
	_, err = in.routing.AssignLead(ctx, &pb.AssignLeadRequest{Workspace: ws, Lead: &pb.Lead{Id: "v2", Country: "DE"}, View: pb.AssignmentView(7)})
	if v := violations(wantCode(t, err, codes.InvalidArgument)); v["view"] == "" {
		t.Fatalf("no view violation: %v", v)
	}
}
