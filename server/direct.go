package server

import (
	"context"

	"google.golang.org/grpc"

	pb "github.com/leadrouter/leadrouter/gen/leadrouter/v1"
)

// The HTTP edge's unary calls need not cross the in-process connection:
// grpc-gateway can call a service implementation directly
// (RegisterXHandlerServer). Direct gives it the routing and admin services
// as implementations whose every call runs the server's own unary
// interceptors, in the server's order (logging, metrics, recovery, the
// decode check, auth and limits, the default deadline), around the same
// handler: the same call as over gRPC, without encoding it twice and
// framing it as HTTP/2 in memory. The streams (RepService, EventService)
// keep the in-process connection (InProcess).

// DirectRouting is RoutingService for RegisterRoutingServiceHandlerServer.
func (s *Server) DirectRouting() pb.RoutingServiceServer { return directRouting{s: s} }

// DirectAdmin is AdminService for RegisterAdminServiceHandlerServer.
func (s *Server) DirectAdmin() pb.AdminServiceServer { return directAdmin{s: s} }

// invoke runs h for method under the server's unary interceptors.
func invoke[Req, Resp any](s *Server, ctx context.Context, method string, req Req, h func(context.Context, Req) (Resp, error)) (Resp, error) {
	info := &grpc.UnaryServerInfo{Server: s.handlers, FullMethod: method}
	call := func(ctx context.Context, r any) (any, error) { return h(ctx, r.(Req)) }
	for i := len(s.unary) - 1; i >= 0; i-- {
		ic, next := s.unary[i], call
		call = func(ctx context.Context, r any) (any, error) { return ic(ctx, r, info, next) }
	}
	out, err := call(ctx, req)
	if err != nil {
		var zero Resp
		return zero, err
	}
	return out.(Resp), nil
}

type directRouting struct {
	pb.UnimplementedRoutingServiceServer
	s *Server
}

func (d directRouting) AssignLead(ctx context.Context, r *pb.AssignLeadRequest) (*pb.AssignLeadResponse, error) {
	return invoke(d.s, ctx, pb.RoutingService_AssignLead_FullMethodName, r, d.s.handlers.AssignLead)
}

func (d directRouting) PreviewAssignment(ctx context.Context, r *pb.PreviewAssignmentRequest) (*pb.PreviewAssignmentResponse, error) {
	return invoke(d.s, ctx, pb.RoutingService_PreviewAssignment_FullMethodName, r, d.s.handlers.PreviewAssignment)
}

func (d directRouting) GetAssignment(ctx context.Context, r *pb.GetAssignmentRequest) (*pb.GetAssignmentResponse, error) {
	return invoke(d.s, ctx, pb.RoutingService_GetAssignment_FullMethodName, r, d.s.handlers.GetAssignment)
}

type directAdmin struct {
	pb.UnimplementedAdminServiceServer
	s *Server
}

func (d directAdmin) ApplyRoutingConfig(ctx context.Context, r *pb.ApplyRoutingConfigRequest) (*pb.ApplyRoutingConfigResponse, error) {
	return invoke(d.s, ctx, pb.AdminService_ApplyRoutingConfig_FullMethodName, r, d.s.handlers.ApplyRoutingConfig)
}

func (d directAdmin) GetRoutingConfig(ctx context.Context, r *pb.GetRoutingConfigRequest) (*pb.GetRoutingConfigResponse, error) {
	return invoke(d.s, ctx, pb.AdminService_GetRoutingConfig_FullMethodName, r, d.s.handlers.GetRoutingConfig)
}

func (d directAdmin) ListConfigVersions(ctx context.Context, r *pb.ListConfigVersionsRequest) (*pb.ListConfigVersionsResponse, error) {
	return invoke(d.s, ctx, pb.AdminService_ListConfigVersions_FullMethodName, r, d.s.handlers.ListConfigVersions)
}

func (d directAdmin) RollbackConfig(ctx context.Context, r *pb.RollbackConfigRequest) (*pb.RollbackConfigResponse, error) {
	return invoke(d.s, ctx, pb.AdminService_RollbackConfig_FullMethodName, r, d.s.handlers.RollbackConfig)
}

func (d directAdmin) SimulateConfig(ctx context.Context, r *pb.SimulateConfigRequest) (*pb.SimulateConfigResponse, error) {
	return invoke(d.s, ctx, pb.AdminService_SimulateConfig_FullMethodName, r, d.s.handlers.SimulateConfig)
}

func (d directAdmin) GetRep(ctx context.Context, r *pb.GetRepRequest) (*pb.GetRepResponse, error) {
	return invoke(d.s, ctx, pb.AdminService_GetRep_FullMethodName, r, d.s.handlers.GetRep)
}

func (d directAdmin) ListReps(ctx context.Context, r *pb.ListRepsRequest) (*pb.ListRepsResponse, error) {
	return invoke(d.s, ctx, pb.AdminService_ListReps_FullMethodName, r, d.s.handlers.ListReps)
}

func (d directAdmin) ReleaseAssignment(ctx context.Context, r *pb.ReleaseAssignmentRequest) (*pb.ReleaseAssignmentResponse, error) {
	return invoke(d.s, ctx, pb.AdminService_ReleaseAssignment_FullMethodName, r, d.s.handlers.ReleaseAssignment)
}

func (d directAdmin) RequeueLead(ctx context.Context, r *pb.RequeueLeadRequest) (*pb.RequeueLeadResponse, error) {
	return invoke(d.s, ctx, pb.AdminService_RequeueLead_FullMethodName, r, d.s.handlers.RequeueLead)
}

func (d directAdmin) ReassignLead(ctx context.Context, r *pb.ReassignLeadRequest) (*pb.ReassignLeadResponse, error) {
	return invoke(d.s, ctx, pb.AdminService_ReassignLead_FullMethodName, r, d.s.handlers.ReassignLead)
}

func (d directAdmin) EraseContact(ctx context.Context, r *pb.EraseContactRequest) (*pb.EraseContactResponse, error) {
	return invoke(d.s, ctx, pb.AdminService_EraseContact_FullMethodName, r, d.s.handlers.EraseContact)
}

func (d directAdmin) EraseLead(ctx context.Context, r *pb.EraseLeadRequest) (*pb.EraseLeadResponse, error) {
	return invoke(d.s, ctx, pb.AdminService_EraseLead_FullMethodName, r, d.s.handlers.EraseLead)
}

func (d directAdmin) GetSinkStatus(ctx context.Context, r *pb.GetSinkStatusRequest) (*pb.GetSinkStatusResponse, error) {
	return invoke(d.s, ctx, pb.AdminService_GetSinkStatus_FullMethodName, r, d.s.handlers.GetSinkStatus)
}

func (d directAdmin) ReplayDeadLetters(ctx context.Context, r *pb.ReplayDeadLettersRequest) (*pb.ReplayDeadLettersResponse, error) {
	return invoke(d.s, ctx, pb.AdminService_ReplayDeadLetters_FullMethodName, r, d.s.handlers.ReplayDeadLetters)
}
