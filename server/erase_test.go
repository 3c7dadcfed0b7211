package server_test

import (
	"testing"

	"google.golang.org/grpc/codes"

	pb "github.com/leadrouter/leadrouter/gen/leadrouter/v1"
	"github.com/leadrouter/leadrouter/internal/redistest"
)

// TestEraseOverGRPC: EraseContact answers the leads erased, 0 for an
// unknown address, INVALID_ARGUMENT naming email for a malformed one;
// EraseLead answers the state the lead was in and NOT_FOUND after.
func TestEraseOverGRPC(t *testing.T) {
	for _, b := range redistest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			in := start(t, b.Open(t))
			ws := redistest.Workspace(t)
			in.applyYAML(t, ws, `
reps: [{id: a}]
pools: [{id: p, accept_within: 0s, members: [{rep_id: a}]}]
rules: [{id: all, targets: [{pool_id: p}]}]
`)
			for _, id := range []string{"e1", "e2"} {
				if _, err := in.routing.AssignLead(ctxT(t), &pb.AssignLeadRequest{Workspace: ws,
					Lead: &pb.Lead{Id: id, Email: "erase.me@example.org"}}); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := in.routing.AssignLead(ctxT(t), &pb.AssignLeadRequest{Workspace: ws, Lead: &pb.Lead{Id: "e3"}}); err != nil {
				t.Fatal(err)
			}
			resp, err := in.admin.EraseContact(ctxT(t), &pb.EraseContactRequest{Workspace: ws, Email: "Erase.Me@example.org"})
			if err != nil || resp.GetErased() != 2 || len(resp.GetLeadIds()) != 2 {
				t.Fatalf("EraseContact: %v %v", resp, err)
			}
			_, err = in.routing.GetAssignment(ctxT(t), &pb.GetAssignmentRequest{Workspace: ws, LeadId: "e1"})
			wantCode(t, err, codes.NotFound)
			resp, err = in.admin.EraseContact(ctxT(t), &pb.EraseContactRequest{Workspace: ws, Email: "nobody@example.org"})
			if err != nil || resp.GetErased() != 0 {
				t.Fatalf("an unknown address: %v %v", resp, err)
			}
			_, err = in.admin.EraseContact(ctxT(t), &pb.EraseContactRequest{Workspace: ws, Email: "no-at-sign"})
			if v := violations(wantCode(t, err, codes.InvalidArgument)); v["email"] == "" {
				t.Fatalf("malformed: violations %v", v)
			}
			lead, err := in.admin.EraseLead(ctxT(t), &pb.EraseLeadRequest{Workspace: ws, LeadId: "e3"})
			if err != nil || lead.GetState() != pb.AssignmentState_ASSIGNMENT_STATE_ASSIGNED {
				t.Fatalf("EraseLead: %v %v", lead, err)
			}
			_, err = in.admin.EraseLead(ctxT(t), &pb.EraseLeadRequest{Workspace: ws, LeadId: "e3"})
			wantCode(t, err, codes.NotFound)
			_, err = in.admin.EraseLead(ctxT(t), &pb.EraseLeadRequest{Workspace: ws})
			if v := violations(wantCode(t, err, codes.InvalidArgument)); v["lead_id"] == "" {
				t.Fatalf("no lead id: violations %v", v)
			}
		})
	}
}
