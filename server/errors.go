package server

import (
	"context"
	"errors"
	"log/slog"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/leadrouter/leadrouter/auth"
	"github.com/leadrouter/leadrouter/engine"
)

// toStatus is the one place engine errors become gRPC statuses. A client can
// tell by the code alone whether its input is wrong (INVALID_ARGUMENT,
// FAILED_PRECONDITION, NOT_FOUND), whether to retry (UNAVAILABLE, ABORTED),
// or whether the server is broken (INTERNAL).
func toStatus(ctx context.Context, log *slog.Logger, err error) error {
	if err == nil {
		return nil
	}
	var ve *engine.ValidationError
	var wrong *engine.WrongRepError
	switch {
	case errors.As(err, &ve):
		st := status.New(codes.InvalidArgument, ve.Error())
		br := &errdetails.BadRequest{}
		for _, v := range ve.Violations {
			br.FieldViolations = append(br.FieldViolations,
				&errdetails.BadRequest_FieldViolation{Field: v.Field, Description: v.Description})
		}
		if withDetails, derr := st.WithDetails(br); derr == nil {
			st = withDetails
		}
		return st.Err()
	case errors.Is(err, engine.ErrNoConfig):
		return status.Error(codes.FailedPrecondition, err.Error()+": apply one with ApplyRoutingConfig")
	case errors.As(err, &wrong) && callerRole(ctx) == auth.RoleRep:
		// A rep learns that the lead is not theirs, not whose it is.
		return status.Errorf(codes.FailedPrecondition, "lead %q is %s to another rep", wrong.LeadID, wrong.Verb())
	case errors.Is(err, engine.ErrNotAssigned), errors.Is(err, engine.ErrPoolHasQueue), errors.Is(err, engine.ErrWrongCaller),
		errors.Is(err, engine.ErrRepNotInConfig), errors.Is(err, engine.ErrOrphanedLeads):
		return status.Error(codes.FailedPrecondition, err.Error())
	case errors.Is(err, engine.ErrNotFound):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, engine.ErrFutureResume):
		return status.Error(codes.OutOfRange, err.Error()+": resume from a position this workspace's stream sent")
	case errors.Is(err, engine.ErrQuota):
		return status.Error(codes.ResourceExhausted, err.Error())
	case errors.Is(err, engine.ErrVersionConflict):
		return status.Error(codes.Aborted, err.Error())
	case errors.Is(err, engine.ErrUnavailable):
		return status.Error(codes.Unavailable, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	}
	log.ErrorContext(ctx, "internal error", "err", err)
	return status.Error(codes.Internal, "internal error")
}

// invalid builds the error for a request that fails before it reaches the
// engine (a missing message).
// Status is toStatus for a caller outside a gRPC call (the HTTP edge's
// webhook intake, which refuses a body before any handler runs): the same
// one mapping from engine errors to statuses.
func Status(err error) error { return toStatus(context.Background(), slog.Default(), err) }

func invalid(field, description string) error {
	return &engine.ValidationError{Violations: []engine.FieldViolation{{Field: field, Description: description}}}
}
