package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/leadrouter/leadrouter/gen/leadrouter/v1"
)

// attrFlag collects repeated --attr key=value flags.
type attrFlag map[string]string

func (a attrFlag) String() string { return fmt.Sprint(map[string]string(a)) }

func (a attrFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok {
		return fmt.Errorf("want key=value, got %q", s)
	}
	a[k] = v
	return nil
}

// leadFromFlags reads a lead from flags, or from a JSON document (the
// protobuf JSON form of leadrouter.v1.Lead) with --json-file.
func leadFromFlags(name string, args []string) (*pb.Lead, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	l := &pb.Lead{}
	attrs := attrFlag{}
	jsonFile := fs.String("json-file", "", "read the lead as JSON from this file ('-' for stdin)")
	fs.StringVar(&l.Id, "id", "", "lead id (default: generated)")
	fs.StringVar(&l.Email, "email", "", "email")
	fs.StringVar(&l.FirstName, "first-name", "", "first name")
	fs.StringVar(&l.LastName, "last-name", "", "last name")
	fs.StringVar(&l.Company, "company", "", "company")
	fs.StringVar(&l.CompanyDomain, "domain", "", "company domain (default: the email's)")
	fs.StringVar(&l.Country, "country", "", "ISO 3166-1 alpha-2 country code")
	fs.StringVar(&l.Region, "region", "", "region or state")
	fs.StringVar(&l.PostalCode, "postal-code", "", "postal code")
	fs.StringVar(&l.Industry, "industry", "", "industry")
	employees := fs.Int("employees", 0, "employee count")
	fs.StringVar(&l.Source, "source", "", "source, e.g. demo_request")
	fs.StringVar(&l.Product, "product", "", "product of interest")
	fs.StringVar(&l.Language, "language", "", "BCP 47 language tag")
	score := fs.Int("score", -1, "score 0-100 (default: unscored)")
	submitted := fs.String("submitted-at", "", "submission time, RFC 3339 (default: now)")
	fs.Var(attrs, "attr", "attribute key=value (repeatable)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if *jsonFile != "" {
		r, closeFn, err := openInput(*jsonFile)
		if err != nil {
			return nil, err
		}
		defer closeFn()
		b, err := io.ReadAll(r)
		if err != nil {
			return nil, err
		}
		l = &pb.Lead{}
		if err := protojson.Unmarshal(b, l); err != nil {
			return nil, fmt.Errorf("%s: %w", *jsonFile, err)
		}
	} else {
		l.EmployeeCount = int32(*employees)
		if *score >= 0 {
			s := int32(*score)
			l.Score = &s
		}
		if len(attrs) > 0 {
			l.Attributes = attrs
		}
		if *submitted != "" {
			t, err := time.Parse(time.RFC3339, *submitted)
			if err != nil {
				return nil, fmt.Errorf("--submitted-at: %w", err)
			}
			l.SubmittedAt = timestamppb.New(t)
		}
	}
	if l.Id == "" {
		l.Id = fmt.Sprintf("lead-%d", time.Now().UnixNano())
	}
	return l, nil
}

func (c *client) assign(args []string, preview bool) error {
	lead, err := leadFromFlags(map[bool]string{false: "assign", true: "preview"}[preview], args)
	if err != nil {
		return err
	}
	ctx, cancel := c.ctx()
	defer cancel()
	rs := pb.NewRoutingServiceClient(c.conn)
	var a *pb.Assignment
	var dup bool
	if preview {
		resp, err := rs.PreviewAssignment(ctx, &pb.PreviewAssignmentRequest{Workspace: c.workspace, Lead: lead, View: pb.AssignmentView_ASSIGNMENT_VIEW_FULL})
		if err != nil {
			return err
		}
		if c.json {
			return c.printJSON(resp)
		}
		a, dup = resp.GetAssignment(), resp.GetDuplicate()
	} else {
		resp, err := rs.AssignLead(ctx, &pb.AssignLeadRequest{Workspace: c.workspace, Lead: lead, View: pb.AssignmentView_ASSIGNMENT_VIEW_FULL})
		if err != nil {
			return err
		}
		if c.json {
			return c.printJSON(resp)
		}
		a, dup = resp.GetAssignment(), resp.GetDuplicate()
	}
	if preview {
		fmt.Fprint(c.out, "preview (nothing written): ")
	}
	printAssignment(c.out, a, dup)
	return nil
}

// printAssignment writes the decision on one line, the summary, then the
// trace.
func printAssignment(w io.Writer, a *pb.Assignment, dup bool) {
	state := strings.TrimPrefix(a.GetState().String(), "ASSIGNMENT_STATE_")
	fmt.Fprintf(w, "%s  %s", a.GetLeadId(), state)
	if a.GetRepId() != "" {
		fmt.Fprintf(w, "  rep=%s", a.GetRepId())
	}
	if a.GetPoolId() != "" {
		fmt.Fprintf(w, "  pool=%s", a.GetPoolId())
	}
	if a.GetRuleId() != "" {
		fmt.Fprintf(w, "  rule=%s", a.GetRuleId())
	}
	fmt.Fprintf(w, "  (config v%d)", a.GetConfigVersion())
	if dup {
		fmt.Fprint(w, "  [duplicate: original assignment]")
	}
	fmt.Fprintln(w)
	if a.GetReason() != "" {
		fmt.Fprintf(w, "  reason: %s\n", a.GetReason())
	}
	if a.GetRoute() != "" && a.GetRoute() != "rule" {
		fmt.Fprintf(w, "  route: %s\n", a.GetRoute())
	}
	printLifecycle(w, a)
	fmt.Fprintf(w, "  why: %s\n", a.GetTrace().GetSummary())
	for _, r := range a.GetTrace().GetRules() {
		mark := "no "
		if r.GetMatched() {
			mark = "YES"
		}
		fmt.Fprintf(w, "    rule %-20s %s  %s\n", r.GetRuleId(), mark, r.GetDetail())
	}
	for _, t := range a.GetTrace().GetTargets() {
		if t.GetLabel() != "" {
			fmt.Fprintf(w, "    %s:", t.GetLabel())
		} else {
			fmt.Fprintf(w, "    pool %-20s %s", t.GetPoolId(), strings.TrimPrefix(t.GetStrategy().String(), "STRATEGY_"))
			if t.GetPreviousRepId() != "" {
				fmt.Fprintf(w, " after %s", t.GetPreviousRepId())
			}
			fmt.Fprint(w, ":")
		}
		for _, c := range t.GetCandidates() {
			if c.GetChosen() {
				fmt.Fprintf(w, " %s (chosen)", c.GetRepId())
			} else {
				fmt.Fprintf(w, " %s (%s)", c.GetRepId(), c.GetSkipReason())
			}
		}
		for _, n := range t.GetSkipped() {
			fmt.Fprintf(w, " +%d %s", n.GetCount(), n.GetReason())
		}
		fmt.Fprintf(w, " -> %s\n", t.GetOutcome())
	}
}

func (c *client) reps(args []string) error {
	ctx, cancel := c.ctx()
	defer cancel()
	admin := pb.NewAdminServiceClient(c.conn)
	sub := "list"
	if len(args) > 0 {
		sub = args[0]
	}
	switch sub {
	case "list":
		resp, err := admin.ListReps(ctx, &pb.ListRepsRequest{Workspace: c.workspace})
		if err != nil {
			return err
		}
		if c.json {
			return c.printJSON(resp)
		}
		fmt.Fprintf(c.out, "%-12s %-10s %9s  %-24s %s\n", "REP", "STATUS", "ASSIGNED", "LAST ASSIGNED", "POOLS")
		for _, r := range resp.GetReps() {
			printRep(c.out, r)
		}
		return nil
	case "get":
		if len(args) != 2 {
			return errors.New("reps get: want REP_ID")
		}
		resp, err := admin.GetRep(ctx, &pb.GetRepRequest{Workspace: c.workspace, RepId: args[1]})
		if err != nil {
			return err
		}
		return c.printJSON(resp)
	case "status":
		if len(args) != 3 {
			return errors.New("reps status: want REP_ID STATUS (available, away, offline)")
		}
		st := pb.RepStatus(pb.RepStatus_value["REP_STATUS_"+strings.ToUpper(args[2])])
		resp, err := pb.NewRepServiceClient(c.conn).SetRepStatus(ctx,
			&pb.SetRepStatusRequest{Workspace: c.workspace, RepId: args[1], Status: st})
		if err != nil {
			return err
		}
		if c.json {
			return c.printJSON(resp)
		}
		fmt.Fprintf(c.out, "%s: %s -> %s\n", args[1], statusName(resp.GetPreviousStatus()), statusName(resp.GetStatus()))
		return nil
	}
	return fmt.Errorf("reps: unknown subcommand %q", sub)
}

func printRep(w io.Writer, r *pb.RepState) {
	last := "-"
	if r.GetLastAssignedAt() != nil {
		last = r.GetLastAssignedAt().AsTime().Format(time.RFC3339)
	}
	fmt.Fprintf(w, "%-12s %-10s %9d  %-24s %s\n", r.GetRep().GetId(), statusName(r.GetStatus()),
		r.GetAssignedTotal(), last, strings.Join(r.GetPoolIds(), ","))
}

func statusName(s pb.RepStatus) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "REP_STATUS_"))
}
