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

			// An apply removing rep b, who is offered l2.
			if _, err := in.rep.SetRepStatus(ctxT(t), &pb.SetRepStatusRequest{Workspace: ws, RepId: "b", Status: pb.RepStatus_REP_STATUS_AVAILABLE}); err != nil {
				t.Fatal(err)
			}
			if l2, err := in.routing.AssignLead(ctxT(t), &pb.AssignLeadRequest{Workspace: ws, Lead: &pb.Lead{Id: "l2"}}); err != nil || l2.GetAssignment().GetRepId() != "b" {
				t.Fatalf("l2: %v %v", l2, err)
			}
			cfg := mustGetConfig(t, in, ws)
			cfg.Reps = cfg.Reps[:1]
			cfg.Pools[0].Members = cfg.Pools[0].Members[:1]
			dry, err := in.admin.ApplyRoutingConfig(ctxT(t), &pb.ApplyRoutingConfigRequest{Workspace: ws, Config: cfg, DryRun: true})
			if err != nil || !dry.GetDryRun() || dry.GetImpact().GetHeldTotal() != 1 || dry.GetImpact().GetHeld()[0].GetLeadId() != "l2" ||
				dry.GetDiff().GetSummary() != "reps -1, pools ~1" {
				t.Fatalf("dry run: %v %v", dry, err)
			}
			_, err = in.admin.ApplyRoutingConfig(ctxT(t), &pb.ApplyRoutingConfigRequest{Workspace: ws, Config: cfg})
			if st := wantCode(t, err, codes.FailedPrecondition); !strings.Contains(st.Message(), "l2 (OFFERED to b)") {
				t.Fatalf("orphaning apply: %v", st.Message())
			}
			done, err := in.admin.ApplyRoutingConfig(ctxT(t), &pb.ApplyRoutingConfigRequest{Workspace: ws, Config: cfg,
				Orphaned: pb.OrphanedLeads_ORPHANED_LEADS_REASSIGN_TO, ReassignTo: "a"})
			if err != nil || len(done.GetMovedLeadIds()) != 1 {
				t.Fatalf("apply reassigning orphans: %v %v", done, err)
			}
			got, err := in.routing.GetAssignment(ctxT(t), &pb.GetAssignmentRequest{Workspace: ws, LeadId: "l2"})
			if err != nil || got.GetAssignment().GetRepId() != "a" {
				t.Fatalf("l2 after: %v %v", got, err)
			}

			// The history: both applies, the old one readable, a rollback.
			vs, err := in.admin.ListConfigVersions(ctxT(t), &pb.ListConfigVersionsRequest{Workspace: ws})
			if err != nil || len(vs.GetVersions()) != 2 || vs.GetVersions()[0].GetVersion() != 2 || vs.GetVersions()[0].GetSummary() != "reps -1, pools ~1" {
				t.Fatalf("ListConfigVersions: %v %v", vs, err)
			}
			old, err := in.admin.GetRoutingConfig(ctxT(t), &pb.GetRoutingConfigRequest{Workspace: ws, Version: 1})
			if err != nil || old.GetVersion() != 1 || len(old.GetConfig().GetReps()) != 2 {
				t.Fatalf("GetRoutingConfig(1): %v %v", old, err)
			}
			_, err = in.admin.GetRoutingConfig(ctxT(t), &pb.GetRoutingConfigRequest{Workspace: ws, Version: 7})
			wantCode(t, err, codes.NotFound)
			back, err := in.admin.RollbackConfig(ctxT(t), &pb.RollbackConfigRequest{Workspace: ws, Version: 1})
			if err != nil || back.GetApplied().GetVersion() != 3 || back.GetApplied().GetDiff().GetSummary() != "reps +1, pools ~1" {
				t.Fatalf("RollbackConfig: %v %v", back, err)
			}
			_, err = in.admin.RollbackConfig(ctxT(t), &pb.RollbackConfigRequest{Workspace: ws, Version: 9})
			if st := wantCode(t, err, codes.NotFound); !strings.Contains(st.Message(), "versions 1 to 3 are") {
				t.Fatalf("rollback to a version not kept: %s", st.Message())
			}
		})
	}
}
