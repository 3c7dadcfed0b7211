package server

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/leadrouter/leadrouter/auth"
	"github.com/leadrouter/leadrouter/engine"
	pb "github.com/leadrouter/leadrouter/gen/leadrouter/v1"
)

// The webhook intake of the HTTP edge (httpapi/intake.go) has no bearer
// token: the request's signature, checked against the intake's secret, is
// its credential. So it does not call over the in-process connection,
// whose interceptors would ask for a token; it calls the AssignLead
// handler itself, with the same default deadline and panic recovery, and
// the edge bounds each intake's rate.

// Intake returns a workspace's intake by id, from the cached config (once
// more from the store when the cache has none of that id: it may have
// been added since). NOT_FOUND when the config has no such intake.
func (s *Server) Intake(ctx context.Context, ws, id string) (*engine.Intake, error) {
	in, err := s.engine.Intake(ctx, ws, id)
	if errors.Is(err, engine.ErrNoConfig) {
		// As for any unknown intake: nothing tells an unsigned caller
		// which workspaces exist.
		err = fmt.Errorf("%w: workspace %s has no intake %q", engine.ErrNotFound, ws, id)
	}
	if err != nil {
		return nil, s.handlers.fail(ctx, err)
	}
	return in, nil
}

// AssignFromIntake routes a lead posted to intake id, as AssignLead does
// for an intake token: the BASIC view, and a repeated lead id answers
// without the original decision's reason (anyone using a public form can
// send another submission's id). from says where each lead field came from
// ("body path x", by field: email, attributes.utm): a refused field's
// violation names it.
func (s *Server) AssignFromIntake(ctx context.Context, ws, id string, lead *pb.Lead, from map[string]string) (resp *pb.AssignLeadResponse, err error) {
	ctx = context.WithValue(ctx, identityKey{}, &auth.Identity{Name: "intake:" + id, Key: "intake:" + ws + "/" + id, Workspace: ws, Role: auth.RoleIntake})
	ctx, cancel := context.WithTimeout(ctx, s.deadline)
	defer cancel()
	defer func() {
		if p := recover(); p != nil {
			s.log.ErrorContext(ctx, "panic in intake", "panic", p, "stack", string(debug.Stack()))
			s.metrics.HandlerPanicked()
			resp, err = nil, status.Error(codes.Internal, "internal error")
		}
	}()
	explain := func(err error) error {
		var ve *engine.ValidationError
		if !errors.As(err, &ve) {
			return err
		}
		for i, v := range ve.Violations {
			if f, ok := from[strings.TrimPrefix(v.Field, "lead.")]; ok {
				ve.Violations[i].Description += " (from " + f + ")"
			}
		}
		return ve
	}
	resp, err = s.handlers.assign(ctx, &pb.AssignLeadRequest{Workspace: ws, Lead: lead, View: pb.AssignmentView_ASSIGNMENT_VIEW_BASIC}, explain)
	if resp != nil {
		resp.ContentDiffers = false // a guess at a stored submission's content is not confirmed
	}
	return resp, err
}
