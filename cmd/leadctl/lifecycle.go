package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/leadrouter/leadrouter/gen/leadrouter/v1"
)

// lifecycle runs accept, reject, contact and dispose: a rep acting on a
// lead, `leadctl <command> LEAD_ID --rep REP [flags]`.
func (c *client) lifecycle(cmd string, args []string) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return fmt.Errorf("%s: want LEAD_ID --rep REP_ID", cmd)
	}
	lead := args[0]
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	rep := fs.String("rep", "", "the rep acting")
	reason := fs.String("reason", "", "reject: why")
	channel := fs.String("channel", "call", "contact: call, email, sms, meeting, chat or other")
	at := fs.String("at", "", "contact: when, RFC 3339 (default: now)")
	disposition := fs.String("disposition", "", "dispose: qualified, rejected or recycled")
	code := fs.String("reason-code", "", "dispose: reason code (required with rejected)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *rep == "" {
		return errors.New(cmd + ": --rep is required")
	}
	ctx, cancel := c.ctx()
	defer cancel()
	rs := pb.NewRepServiceClient(c.conn)
	var a *pb.Assignment
	switch cmd {
	case "accept":
		resp, err := rs.AcceptOffer(ctx, &pb.AcceptOfferRequest{Workspace: c.workspace, LeadId: lead, RepId: *rep})
		if err != nil {
			return err
		}
		a = resp.GetAssignment()
	case "reject":
		resp, err := rs.RejectOffer(ctx, &pb.RejectOfferRequest{Workspace: c.workspace, LeadId: lead, RepId: *rep, Reason: *reason})
		if err != nil {
			return err
		}
		a = resp.GetAssignment()
	case "contact":
		req := &pb.RecordContactRequest{Workspace: c.workspace, LeadId: lead, RepId: *rep, Channel: *channel}
		if *at != "" {
			t, err := time.Parse(time.RFC3339, *at)
			if err != nil {
				return fmt.Errorf("--at: %w", err)
			}
			req.ContactedAt = timestamppb.New(t)
		}
		resp, err := rs.RecordContact(ctx, req)
		if err != nil {
			return err
		}
		a = resp.GetAssignment()
	case "dispose":
		d := pb.Disposition(pb.Disposition_value["DISPOSITION_"+strings.ToUpper(*disposition)])
		resp, err := rs.SetDisposition(ctx, &pb.SetDispositionRequest{Workspace: c.workspace, LeadId: lead, RepId: *rep,
			Disposition: d, ReasonCode: *code})
		if err != nil {
			return err
		}
		a = resp.GetAssignment()
	}
	if c.json {
		return c.printJSON(a)
	}
	printAssignment(c.out, a, false)
	return nil
}

// printLifecycle writes the offer, contact and disposition facts and the
// history of an assignment.
func printLifecycle(w io.Writer, a *pb.Assignment) {
	if a.GetOfferExpiresAt() != nil {
		fmt.Fprintf(w, "  offer expires: %s\n", a.GetOfferExpiresAt().AsTime().Format(time.RFC3339))
	}
	if a.GetFirstContactDueAt() != nil && a.GetFirstContactAt() == nil {
		fmt.Fprintf(w, "  first contact due: %s\n", a.GetFirstContactDueAt().AsTime().Format(time.RFC3339))
	}
	if a.GetSpeedToLead() != nil {
		fmt.Fprintf(w, "  speed to lead: %s (first contact by %s)\n", a.GetSpeedToLead().AsDuration(), a.GetFirstContactChannel())
	}
	if a.GetDisposition() != pb.Disposition_DISPOSITION_UNSPECIFIED {
		fmt.Fprintf(w, "  disposition: %s %s\n", strings.TrimPrefix(a.GetDisposition().String(), "DISPOSITION_"), a.GetReasonCode())
	}
	if len(a.GetHistory()) > 0 {
		fmt.Fprintln(w, "  history:")
		for _, h := range a.GetHistory() {
			fmt.Fprintf(w, "    %s  %-14s %-8s %s\n", h.GetAt().AsTime().Format("15:04:05.000"), h.GetKind(), h.GetRepId(), h.GetDetail())
		}
	}
}
