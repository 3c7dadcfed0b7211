package server_test

import (
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	pb "github.com/leadrouter/leadrouter/gen/leadrouter/v1"
	"github.com/leadrouter/leadrouter/internal/redistest"
)

// TestOperatorMovesOverGRPC: RequeueLead and ReassignLead move a lead and
// answer it; a release cancels a queued lead; each bad call has its code.
func TestOperatorMovesOverGRPC(t *testing.T) {
	for _, b := range redistest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			in := start(t, b.Open(t))
			ws := redistest.Workspace(t)
			in.applyYAML(t, ws, `
reps: [{id: a}, {id: b}]
pools: [{id: p, accept_within: 30s, members: [{rep_id: a}, {rep_id: b}]}]
rules: [{id: all, targets: [{pool_id: p}]}]
`)
			if _, err := in.routing.AssignLead(ctxT(t), &pb.AssignLeadRequest{Workspace: ws, Lead: &pb.Lead{Id: "l1"}}); err != nil {
				t.Fatal(err)
			}
			rq, err := in.admin.RequeueLead(ctxT(t), &pb.RequeueLeadRequest{Workspace: ws, LeadId: "l1", Reason: "wrong region"})
			if err != nil || rq.GetAssignment().GetRepId() != "b" || rq.GetAssignment().GetState() != pb.AssignmentState_ASSIGNMENT_STATE_OFFERED {
				t.Fatalf("RequeueLead: %v %v", rq, err)
			}
			ra, err := in.admin.ReassignLead(ctxT(t), &pb.ReassignLeadRequest{Workspace: ws, LeadId: "l1", RepId: "a", Reason: "vip"})
			if err != nil || ra.GetAssignment().GetRepId() != "a" || ra.GetAssignment().GetState() != pb.AssignmentState_ASSIGNMENT_STATE_ASSIGNED ||
				!strings.Contains(ra.GetAssignment().GetTrace().GetSummary(), "vip") {
				t.Fatalf("ReassignLead: %v %v", ra, err)
			}
			_, err = in.admin.ReassignLead(ctxT(t), &pb.ReassignLeadRequest{Workspace: ws, LeadId: "l1", RepId: "zed"})
			if v := violations(wantCode(t, err, codes.InvalidArgument)); v["rep_id"] == "" {
				t.Fatalf("unknown rep: violations %v", v)
			}
			_, err = in.admin.RequeueLead(ctxT(t), &pb.RequeueLeadRequest{Workspace: ws, LeadId: "nope"})
			wantCode(t, err, codes.NotFound)
			_, err = in.admin.ReassignLead(ctxT(t), &pb.ReassignLeadRequest{Workspace: ws, LeadId: "nope", RepId: "a"})
			wantCode(t, err, codes.NotFound)
			_, err = in.admin.RequeueLead(ctxT(t), &pb.RequeueLeadRequest{Workspace: ws, Reason: strings.Repeat("x", 257)})
			if v := violations(wantCode(t, err, codes.InvalidArgument)); v["lead_id"] == "" || v["reason"] == "" {
				t.Fatalf("bad input: violations %v", v)
			}
			if _, err := in.admin.ReleaseAssignment(ctxT(t), &pb.ReleaseAssignmentRequest{Workspace: ws, LeadId: "l1"}); err != nil {
				t.Fatal(err)
			}
			_, err = in.admin.RequeueLead(ctxT(t), &pb.RequeueLeadRequest{Workspace: ws, LeadId: "l1"})
			wantCode(t, err, codes.FailedPrecondition)

			// A queued lead: released means cancelled.
			for _, r := range []string{"a", "b"} {
				if _, err := in.rep.SetRepStatus(ctxT(t), &pb.SetRepStatusRequest{Workspace: ws, RepId: r, Status: pb.RepStatus_REP_STATUS_AWAY}); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := in.routing.AssignLead(ctxT(t), &pb.AssignLeadRequest{Workspace: ws, Lead: &pb.Lead{Id: "q"}}); err != nil {
				t.Fatal(err)
			}
			rel, err := in.admin.ReleaseAssignment(ctxT(t), &pb.ReleaseAssignmentRequest{Workspace: ws, LeadId: "q", Reason: "spam"})
			if err != nil || rel.GetAssignment().GetState() != pb.AssignmentState_ASSIGNMENT_STATE_CLOSED {
				t.Fatalf("release a queued lead: %v %v", rel, err)
			}
		})
	}
}
