package server_test

import (
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	pb "github.com/leadrouter/leadrouter/gen/leadrouter/v1"
	"github.com/leadrouter/leadrouter/internal/redistest"
)

// TestLifecycleOverGRPC: the rep calls through a real client, with the
// codes and messages a desktop client relies on.
func TestLifecycleOverGRPC(t *testing.T) {
	in := start(t, redistest.RealStore(t))
	ws := redistest.Workspace(t)
	in.applyYAML(t, ws, `
reps: [{id: a}, {id: b}]
pools: [{id: p, accept_within: 2m, first_contact_within: 5m, members: [{rep_id: a}, {rep_id: b}]}]
rules: [{id: all, targets: [{pool_id: p}]}]
`)
	ctx := ctxT(t)
	resp, err := in.routing.AssignLead(ctx, &pb.AssignLeadRequest{Workspace: ws, Lead: &pb.Lead{Id: "x"}})
	a := resp.GetAssignment()
	if err != nil || a.GetState() != pb.AssignmentState_ASSIGNMENT_STATE_OFFERED || a.GetRepId() != "a" ||
		a.GetOfferExpiresAt() == nil || a.GetFirstContactDueAt() == nil {
		t.Fatalf("assign: %v %v", a, err)
	}
	_, err = in.rep.AcceptOffer(ctx, &pb.AcceptOfferRequest{Workspace: ws, LeadId: "x", RepId: "b"})
	if st := wantCode(t, err, codes.FailedPrecondition); !strings.Contains(st.Message(), "offered to rep a") {
		t.Fatalf("message %q", st.Message())
	}
	_, err = in.rep.RecordContact(ctx, &pb.RecordContactRequest{Workspace: ws, LeadId: "x", RepId: "a", Channel: "call"})
	wantCode(t, err, codes.FailedPrecondition) // accept first
	for i := 0; i < 2; i++ {
		acc, err := in.rep.AcceptOffer(ctx, &pb.AcceptOfferRequest{Workspace: ws, LeadId: "x", RepId: "a"})
		if err != nil || acc.GetAssignment().GetState() != pb.AssignmentState_ASSIGNMENT_STATE_ASSIGNED {
			t.Fatalf("accept %d: %v %v", i, acc, err)
		}
	}
	_, err = in.rep.RecordContact(ctx, &pb.RecordContactRequest{Workspace: ws, LeadId: "x", RepId: "a", Channel: "pigeon"})
	if v := violations(wantCode(t, err, codes.InvalidArgument)); v["channel"] == "" {
		t.Fatalf("violations %v", v)
	}
	c, err := in.rep.RecordContact(ctx, &pb.RecordContactRequest{Workspace: ws, LeadId: "x", RepId: "a", Channel: "email"})
	if err != nil || c.GetAssignment().GetSpeedToLead() == nil || c.GetAssignment().GetFirstContactChannel() != "email" {
		t.Fatalf("contact: %v %v", c, err)
	}
	_, err = in.rep.SetDisposition(ctx, &pb.SetDispositionRequest{Workspace: ws, LeadId: "x", RepId: "a",
		Disposition: pb.Disposition_DISPOSITION_REJECTED})
	if v := violations(wantCode(t, err, codes.InvalidArgument)); v["reason_code"] == "" {
		t.Fatalf("violations %v", v)
	}
	for i := 0; i < 2; i++ {
		d, err := in.rep.SetDisposition(ctx, &pb.SetDispositionRequest{Workspace: ws, LeadId: "x", RepId: "a",
			Disposition: pb.Disposition_DISPOSITION_REJECTED, ReasonCode: "no_budget"})
		if err != nil || d.GetAssignment().GetState() != pb.AssignmentState_ASSIGNMENT_STATE_CLOSED ||
			d.GetAssignment().GetDisposition() != pb.Disposition_DISPOSITION_REJECTED {
			t.Fatalf("disposition %d: %v %v", i, d, err)
		}
	}
	_, err = in.rep.SetDisposition(ctx, &pb.SetDispositionRequest{Workspace: ws, LeadId: "x", RepId: "a",
		Disposition: pb.Disposition_DISPOSITION_QUALIFIED})
	wantCode(t, err, codes.FailedPrecondition)
	got, err := in.routing.GetAssignment(ctx, &pb.GetAssignmentRequest{Workspace: ws, LeadId: "x"})
	var kinds []string
	for _, h := range got.GetAssignment().GetHistory() {
		kinds = append(kinds, h.GetKind())
	}
	if err != nil || strings.Join(kinds, ",") != "received,offered,accepted,contacted,dispositioned" {
		t.Fatalf("history %v %v", kinds, err)
	}
}
