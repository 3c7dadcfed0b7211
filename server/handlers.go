package server

import (
	"context"
	"log/slog"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/leadrouter/leadrouter/auth"
	"github.com/leadrouter/leadrouter/engine"
	pb "github.com/leadrouter/leadrouter/gen/leadrouter/v1"
	"github.com/leadrouter/leadrouter/internal/pbconv"
	"github.com/leadrouter/leadrouter/metrics"
)

// handlers decode requests, call the engine and map its errors. They hold no
// logic of their own: validation is the engine's, so every entry point to
// the engine is equally protected.
type handlers struct {
	pb.UnimplementedRoutingServiceServer
	pb.UnimplementedAdminServiceServer
	pb.UnimplementedRepServiceServer
	pb.UnimplementedEventServiceServer

	engine  *engine.Engine
	watcher *engine.Watcher
	log     *slog.Logger
	metrics *metrics.Metrics
	// repStreams bounds each rep's WatchAssignments streams.
	repStreams *repStreams
}

func (h *handlers) fail(ctx context.Context, err error) error { return toStatus(ctx, h.log, err) }

// RoutingService

func (h *handlers) AssignLead(ctx context.Context, req *pb.AssignLeadRequest) (*pb.AssignLeadResponse, error) {
	return h.assign(ctx, req, nil)
}

// assign is AssignLead; explain, when set, rewrites the engine's refusal
// before it becomes a status (the intake names where each field came
// from).
func (h *handlers) assign(ctx context.Context, req *pb.AssignLeadRequest, explain func(error) error) (*pb.AssignLeadResponse, error) {
	view, err := decisionView(ctx, req.GetView())
	if err != nil {
		return nil, h.fail(ctx, err)
	}
	a, dup, err := h.engine.AssignLeadView(ctx, req.GetWorkspace(), pbconv.LeadFromProto(req.GetLead()), view)
	if err != nil {
		if explain != nil {
			err = explain(err)
		}
		return nil, h.fail(ctx, err)
	}
	return &pb.AssignLeadResponse{Assignment: decisionToProto(ctx, a, view, dup), Duplicate: dup, ContentDiffers: a.ContentDiffers}, nil
}

func (h *handlers) PreviewAssignment(ctx context.Context, req *pb.PreviewAssignmentRequest) (*pb.PreviewAssignmentResponse, error) {
	view, err := decisionView(ctx, req.GetView())
	if err != nil {
		return nil, h.fail(ctx, err)
	}
	a, dup, err := h.engine.PreviewAssignmentView(ctx, req.GetWorkspace(), pbconv.LeadFromProto(req.GetLead()), view)
	if err != nil {
		return nil, h.fail(ctx, err)
	}
	return &pb.PreviewAssignmentResponse{Assignment: decisionToProto(ctx, a, view, dup), Duplicate: dup}, nil
}

// decisionView is the view a decision's caller gets: an intake token gets
// the decision only (ViewBasic) whatever it asks for. Form backends need
// no more, and re-sending a lead id must not read another submission's
// stored lead, trace or history.
func decisionView(ctx context.Context, v pb.AssignmentView) (engine.View, error) {
	view, err := viewFromProto(v)
	if callerRole(ctx) == auth.RoleIntake {
		view = engine.ViewBasic
	}
	return view, err
}

// decisionToProto is a decision's reply. An intake token's reply to a
// repeated lead id leaves out the original decision's reason, which can
// quote the original submission (a sticky owner's email).
func decisionToProto(ctx context.Context, a *engine.Assignment, view engine.View, dup bool) *pb.Assignment {
	out := assignmentViewToProto(a, view)
	if dup && callerRole(ctx) == auth.RoleIntake {
		out.Reason = ""
	}
	return out
}

func (h *handlers) GetAssignment(ctx context.Context, req *pb.GetAssignmentRequest) (*pb.GetAssignmentResponse, error) {
	a, err := h.engine.GetAssignment(ctx, req.GetWorkspace(), req.GetLeadId())
	if err != nil {
		return nil, h.fail(ctx, err)
	}
	return &pb.GetAssignmentResponse{Assignment: assignmentToProto(a)}, nil
}

// AdminService

func (h *handlers) ApplyRoutingConfig(ctx context.Context, req *pb.ApplyRoutingConfigRequest) (*pb.ApplyRoutingConfigResponse, error) {
	if req.GetConfig() == nil {
		return nil, h.fail(ctx, invalid("config", "required"))
	}
	o := applyOptions(ctx, req.GetDryRun(), req.GetOrphaned(), req.GetReassignTo())
	o.Expected = req.ExpectedVersion
	res, err := h.engine.ApplyConfigWith(ctx, req.GetWorkspace(), ConfigFromProto(req.GetConfig()), o)
	if err != nil {
		return nil, h.fail(ctx, err)
	}
	return applyResultToProto(res), nil
}

// applyOptions are an apply's or a rollback's options, with the caller's
// name for the config history.
func applyOptions(ctx context.Context, dryRun bool, orphaned pb.OrphanedLeads, reassignTo string) engine.ApplyOptions {
	o := engine.ApplyOptions{DryRun: dryRun, ReassignTo: reassignTo, By: callerName(ctx)}
	switch orphaned {
	case pb.OrphanedLeads_ORPHANED_LEADS_REQUEUE:
		o.Orphans = engine.OrphansRequeue
	case pb.OrphanedLeads_ORPHANED_LEADS_REASSIGN_TO:
		o.Orphans = engine.OrphansReassign
	}
	return o
}

func (h *handlers) RollbackConfig(ctx context.Context, req *pb.RollbackConfigRequest) (*pb.RollbackConfigResponse, error) {
	res, err := h.engine.RollbackConfig(ctx, req.GetWorkspace(), req.GetVersion(),
		applyOptions(ctx, req.GetDryRun(), req.GetOrphaned(), req.GetReassignTo()))
	if err != nil {
		return nil, h.fail(ctx, err)
	}
	return &pb.RollbackConfigResponse{Applied: applyResultToProto(res)}, nil
}

func (h *handlers) SimulateConfig(ctx context.Context, req *pb.SimulateConfigRequest) (*pb.SimulateConfigResponse, error) {
	if req.GetConfig() == nil {
		return nil, h.fail(ctx, invalid("config", "required"))
	}
	sim, err := h.engine.SimulateConfig(ctx, req.GetWorkspace(), ConfigFromProto(req.GetConfig()), int(req.GetLimit()))
	if err != nil {
		return nil, h.fail(ctx, err)
	}
	return simulationToProto(sim), nil
}

func (h *handlers) ListConfigVersions(ctx context.Context, req *pb.ListConfigVersionsRequest) (*pb.ListConfigVersionsResponse, error) {
	vs, err := h.engine.ConfigVersions(ctx, req.GetWorkspace())
	if err != nil {
		return nil, h.fail(ctx, err)
	}
	out := &pb.ListConfigVersionsResponse{}
	for _, v := range vs {
		out.Versions = append(out.Versions, &pb.ConfigVersion{Version: v.Version, AppliedAt: ts(v.AppliedAt), AppliedBy: v.By, Summary: v.Summary})
	}
	return out, nil
}

func (h *handlers) GetRoutingConfig(ctx context.Context, req *pb.GetRoutingConfigRequest) (*pb.GetRoutingConfigResponse, error) {
	sc, err := h.engine.ConfigAt(ctx, req.GetWorkspace(), req.GetVersion())
	if err != nil {
		return nil, h.fail(ctx, err)
	}
	return &pb.GetRoutingConfigResponse{Config: ConfigToProto(sc.Config), Version: sc.Version,
		AppliedAt: timestamppb.New(sc.AppliedAt)}, nil
}

func (h *handlers) GetRep(ctx context.Context, req *pb.GetRepRequest) (*pb.GetRepResponse, error) {
	r, err := h.engine.Rep(ctx, req.GetWorkspace(), req.GetRepId())
	if err != nil {
		return nil, h.fail(ctx, err)
	}
	return &pb.GetRepResponse{Rep: repStateToProto(r)}, nil
}

func (h *handlers) ListReps(ctx context.Context, req *pb.ListRepsRequest) (*pb.ListRepsResponse, error) {
	reps, err := h.engine.Reps(ctx, req.GetWorkspace())
	if err != nil {
		return nil, h.fail(ctx, err)
	}
	out := &pb.ListRepsResponse{Reps: make([]*pb.RepState, len(reps))}
	for i := range reps {
		out.Reps[i] = repStateToProto(&reps[i])
	}
	return out, nil
}

func (h *handlers) ReleaseAssignment(ctx context.Context, req *pb.ReleaseAssignmentRequest) (*pb.ReleaseAssignmentResponse, error) {
	a, err := h.engine.ReleaseAssignment(ctx, req.GetWorkspace(), req.GetLeadId(), req.GetReason())
	if err != nil {
		return nil, h.fail(ctx, err)
	}
	return &pb.ReleaseAssignmentResponse{Assignment: assignmentToProto(a)}, nil
}

func (h *handlers) RequeueLead(ctx context.Context, req *pb.RequeueLeadRequest) (*pb.RequeueLeadResponse, error) {
	a, err := h.engine.RequeueLead(ctx, req.GetWorkspace(), req.GetLeadId(), req.GetReason())
	if err != nil {
		return nil, h.fail(ctx, err)
	}
	return &pb.RequeueLeadResponse{Assignment: assignmentToProto(a)}, nil
}

func (h *handlers) ReassignLead(ctx context.Context, req *pb.ReassignLeadRequest) (*pb.ReassignLeadResponse, error) {
	a, err := h.engine.ReassignLead(ctx, req.GetWorkspace(), req.GetLeadId(), req.GetRepId(), req.GetReason())
	if err != nil {
		return nil, h.fail(ctx, err)
	}
	return &pb.ReassignLeadResponse{Assignment: assignmentToProto(a)}, nil
}

func (h *handlers) EraseContact(ctx context.Context, req *pb.EraseContactRequest) (*pb.EraseContactResponse, error) {
	ids, err := h.engine.EraseContact(ctx, req.GetWorkspace(), req.GetEmail())
	if err != nil {
		return nil, h.fail(ctx, err)
	}
	return &pb.EraseContactResponse{Erased: int64(len(ids)), LeadIds: ids}, nil
}

func (h *handlers) EraseLead(ctx context.Context, req *pb.EraseLeadRequest) (*pb.EraseLeadResponse, error) {
	st, err := h.engine.EraseLead(ctx, req.GetWorkspace(), req.GetLeadId())
	if err != nil {
		return nil, h.fail(ctx, err)
	}
	return &pb.EraseLeadResponse{State: stateToProto[st]}, nil
}

func (h *handlers) GetSinkStatus(ctx context.Context, req *pb.GetSinkStatusRequest) (*pb.GetSinkStatusResponse, error) {
	reports, err := h.engine.SinkStatus(ctx, req.GetWorkspace(), req.GetSinkId())
	if err != nil {
		return nil, h.fail(ctx, err)
	}
	out := &pb.GetSinkStatusResponse{}
	now := time.Now()
	for _, r := range reports {
		st := &pb.SinkStatus{SinkId: r.Sink.ID, Kind: string(r.Sink.Kind), Pending: r.State.Pending,
			DeadLetters: r.State.DeadLetters, DeadLettersDropped: r.State.DeadDropped, LastError: r.State.LastError,
			Lost: r.State.Lost, Replaying: r.State.Replaying, LastErrorAt: ts(r.State.LastErrorAt),
			LaggingSince: ts(r.State.LaggingSince)}
		if !r.State.Oldest.IsZero() {
			st.OldestUndeliveredAge = durationToProto(engine.Duration(max(0, now.Sub(r.State.Oldest))))
		}
		out.Sinks = append(out.Sinks, st)
	}
	return out, nil
}

func (h *handlers) ReplayDeadLetters(ctx context.Context, req *pb.ReplayDeadLettersRequest) (*pb.ReplayDeadLettersResponse, error) {
	n, err := h.engine.ReplayDeadLetters(ctx, req.GetWorkspace(), req.GetSinkId(), int(req.GetLimit()))
	if err != nil {
		return nil, h.fail(ctx, err)
	}
	return &pb.ReplayDeadLettersResponse{Replayed: int64(n)}, nil
}

// RepService

func (h *handlers) SetRepStatus(ctx context.Context, req *pb.SetRepStatusRequest) (*pb.SetRepStatusResponse, error) {
	st := repStatusFromProto(req.GetStatus())
	prev, err := h.engine.SetRepStatus(ctx, req.GetWorkspace(), req.GetRepId(), st)
	if err != nil {
		return nil, h.fail(ctx, err)
	}
	return &pb.SetRepStatusResponse{Status: statusToProto[st], PreviousStatus: statusToProto[prev]}, nil
}

func (h *handlers) AcceptOffer(ctx context.Context, req *pb.AcceptOfferRequest) (*pb.AcceptOfferResponse, error) {
	a, err := h.engine.AcceptOffer(ctx, req.GetWorkspace(), req.GetLeadId(), req.GetRepId())
	if err != nil {
		return nil, h.fail(ctx, err)
	}
	return &pb.AcceptOfferResponse{Assignment: assignmentToProto(a)}, nil
}

func (h *handlers) RejectOffer(ctx context.Context, req *pb.RejectOfferRequest) (*pb.RejectOfferResponse, error) {
	a, err := h.engine.RejectOffer(ctx, req.GetWorkspace(), req.GetLeadId(), req.GetRepId(), req.GetReason())
	if err != nil {
		return nil, h.fail(ctx, err)
	}
	return &pb.RejectOfferResponse{Assignment: assignmentToProto(a)}, nil
}

func (h *handlers) RecordContact(ctx context.Context, req *pb.RecordContactRequest) (*pb.RecordContactResponse, error) {
	var at time.Time
	if req.GetContactedAt() != nil {
		if req.GetContactedAt().CheckValid() != nil {
			return nil, h.fail(ctx, invalid("contacted_at", "not a valid timestamp"))
		}
		at = req.GetContactedAt().AsTime()
	}
	a, err := h.engine.RecordContact(ctx, req.GetWorkspace(), req.GetLeadId(), req.GetRepId(), req.GetChannel(), at)
	if err != nil {
		return nil, h.fail(ctx, err)
	}
	return &pb.RecordContactResponse{Assignment: assignmentToProto(a)}, nil
}

func (h *handlers) SetDisposition(ctx context.Context, req *pb.SetDispositionRequest) (*pb.SetDispositionResponse, error) {
	d := enumFromProto(req.GetDisposition(), dispositionFromProto)
	a, err := h.engine.SetDisposition(ctx, req.GetWorkspace(), req.GetLeadId(), req.GetRepId(), d, req.GetReasonCode())
	if err != nil {
		return nil, h.fail(ctx, err)
	}
	return &pb.SetDispositionResponse{Assignment: assignmentToProto(a)}, nil
}
