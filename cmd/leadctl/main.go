// Command leadctl is leadrouter's command-line client: apply and read the
// routing config, assign and preview leads, read assignments and their
// traces, list reps and set their presence, report the sinks' backlogs and
// replay their dead letters.
//
//	leadctl [global flags] <command> [flags]
//
// Run `leadctl help` for the commands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/leadrouter/leadrouter/engine"
	pb "github.com/leadrouter/leadrouter/gen/leadrouter/v1"
	"github.com/leadrouter/leadrouter/server"
)

const usage = `leadctl talks to a leadrouterd over gRPC.

Usage: leadctl [global flags] <command> [flags]

Commands:
  apply -f FILE [--expected-version N] [--dry-run] [--orphaned requeue|reassign --reassign-to REP]
                                         apply a routing config (YAML); --dry-run prints
                                         the diff and the impact on leads in flight
  get [--version N]                      print the current routing config (YAML), or a kept version
  history                                the last 50 applied configs: version, time, who, what changed
  diff A B                               what changed from kept version A to B, field by field
  rollback VERSION [--dry-run] [--orphaned requeue|reassign --reassign-to REP]
                                         apply a kept version again, as a new version
  simulate -f FILE [--limit N]           replay the most recent leads (1,000; at most 10,000)
                                         against a proposed config: leads per rule and pool,
                                         before and after, the leads that change, rotation shares
  assign [lead flags]                    assign a lead and print the decision
  preview [lead flags]                   show the decision without making it
  assignment LEAD_ID                     print a lead's assignment and trace
  release LEAD_ID [--reason TEXT]        close an assignment, freeing the rep's capacity,
                                         or cancel a queued lead
  requeue LEAD_ID [--reason TEXT]        route a queued, unroutable, offered or assigned
                                         lead again under the current config
  reassign LEAD_ID --rep REP [--reason TEXT]
                                         give a lead to a rep at once, bypassing rules
  erase lead LEAD_ID                     erase one lead's record, in any state (admin)
  erase contact EMAIL                    erase every record of a person (admin)
  accept LEAD_ID --rep REP               accept an offer
  reject LEAD_ID --rep REP [--reason T]  reject an offer (it goes to the next rep)
  contact LEAD_ID --rep REP [--channel call] [--at TIME]
                                         record a contact (the first stops the SLA)
  dispose LEAD_ID --rep REP --disposition qualified|rejected|recycled [--reason-code C]
                                         close the assignment with a verdict
  watch --rep REP [--from OFFSET --from-epoch E]
                                         tail a rep's stream (offers, SLA, ...)
  events [--kinds k1,k2] [--from OFFSET --from-epoch E]
                                         tail the workspace's events
                                         (both resume by themselves after a drop)
  reps [list]                            list reps with presence and counts
  reps get REP_ID                        one rep
  reps status REP_ID STATUS              set presence: available, away, offline
  sinks [--sink ID]                      each sink's backlog: pending events, the oldest's age,
                                         dead letters, events lost to retention, the last error
                                         (admin)
  replay-dead-letters SINK [--limit N]   deliver a sink's dead letters again, oldest first
                                         (0: all, up to 10,000) (admin)
  token --role R [--workspace W] [--rep REP] [--name N] [--file F]
                                         create a bearer token; print it and its
                                         token-file entry, or add the entry to F
                                         (talks to no server)

Global flags:
`

// client bundles the connection and the global flags.
type client struct {
	conn      *grpc.ClientConn
	workspace string
	timeout   time.Duration
	json      bool
	out       io.Writer
}

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		if st, ok := status.FromError(err); ok {
			fmt.Fprintf(os.Stderr, "leadctl: %s: %s\n", st.Code(), st.Message())
			printViolations(os.Stderr, st)
		} else {
			fmt.Fprintln(os.Stderr, "leadctl:", err)
		}
		os.Exit(1)
	}
}

func run(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("leadctl", flag.ContinueOnError)
	addr := fs.String("addr", envOr("LEADROUTER_ADDR", "127.0.0.1:7070"), "leadrouterd gRPC address (LEADROUTER_ADDR)")
	ws := fs.String("workspace", os.Getenv("LEADROUTER_WORKSPACE"), "workspace (LEADROUTER_WORKSPACE; empty: default)")
	timeout := fs.Duration("timeout", 10*time.Second, "deadline of each call")
	asJSON := fs.Bool("json", false, "print replies as protobuf JSON")
	var tr transport
	tr.flags(fs)
	fs.Usage = func() { fmt.Fprint(fs.Output(), usage); fs.PrintDefaults() }
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 || fs.Arg(0) == "help" {
		fs.Usage()
		return nil
	}
	if fs.Arg(0) == "token" {
		return tokenCommand(fs.Args()[1:], out)
	}
	dial, err := tr.dialOptions()
	if err != nil {
		return err
	}
	conn, err := grpc.NewClient(*addr, dial...)
	if err != nil {
		return err
	}
	defer conn.Close()
	c := &client{conn: conn, workspace: *ws, timeout: *timeout, json: *asJSON, out: out}
	cmd, rest := fs.Arg(0), fs.Args()[1:]
	switch cmd {
	case "apply":
		return c.apply(rest)
	case "get":
		return c.get(rest)
	case "history":
		return c.history()
	case "diff":
		return c.diff(rest)
	case "rollback":
		return c.rollback(rest)
	case "simulate":
		return c.simulate(rest)
	case "assign":
		return c.assign(rest, false)
	case "preview":
		return c.assign(rest, true)
	case "assignment":
		return c.assignment(rest)
	case "release", "requeue", "reassign":
		return c.move(cmd, rest)
	case "erase":
		return c.erase(rest)
	case "accept", "reject", "contact", "dispose":
		return c.lifecycle(cmd, rest)
	case "watch", "events":
		return c.watch(cmd, rest)
	case "reps":
		return c.reps(rest)
	case "sinks":
		return c.sinks(rest)
	case "replay-dead-letters":
		return c.replayDeadLetters(rest)
	}
	return fmt.Errorf("unknown command %q (leadctl help)", cmd)
}

func (c *client) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), c.timeout)
}

func (c *client) apply(args []string) error {
	fs := flag.NewFlagSet("apply", flag.ContinueOnError)
	file := fs.String("f", "", "routing config YAML file ('-' for stdin)")
	expected := fs.Int64("expected-version", -1, "apply only if this is the current version")
	dryRun := fs.Bool("dry-run", false, "print the diff and the impact on leads in flight; apply nothing")
	orphaned := fs.String("orphaned", "", "leads held by removed reps: requeue, or reassign (with --reassign-to)")
	reassignTo := fs.String("reassign-to", "", "the rep --orphaned reassign gives them to")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *file == "" {
		return errors.New("apply: -f FILE is required")
	}
	orphans, err := orphanPolicy(*orphaned)
	if err != nil {
		return fmt.Errorf("apply: %w", err)
	}
	cfg, err := readConfig(*file)
	if err != nil {
		return err
	}
	req := &pb.ApplyRoutingConfigRequest{Workspace: c.workspace, Config: server.ConfigToProto(cfg), DryRun: *dryRun,
		Orphaned: orphans, ReassignTo: *reassignTo}
	if *expected >= 0 {
		req.ExpectedVersion = expected
	}
	ctx, cancel := c.ctx()
	defer cancel()
	resp, err := pb.NewAdminServiceClient(c.conn).ApplyRoutingConfig(ctx, req)
	if err != nil {
		return err
	}
	if c.json {
		return c.printJSON(resp)
	}
	if resp.GetDryRun() {
		fmt.Fprintf(c.out, "dry run of %s over version %d (nothing applied): %s\n", *file, resp.GetVersion(), resp.GetDiff().GetSummary())
	} else {
		fmt.Fprintf(c.out, "applied %s: version %d (%s)\n", *file, resp.GetVersion(), resp.GetDiff().GetSummary())
	}
	printImpact(c.out, resp)
	return nil
}

// printImpact prints an apply's diff, field by field, and its impact on
// the leads in flight.
func printImpact(w io.Writer, resp *pb.ApplyRoutingConfigResponse) {
	for _, ch := range resp.GetDiff().GetChanges() {
		line := fmt.Sprintf("  %-8s %-9s %s", ch.GetOp(), ch.GetSection(), ch.GetId())
		if len(ch.GetFields()) > 0 {
			line += ": " + strings.Join(ch.GetFields(), ", ")
		}
		fmt.Fprintln(w, strings.TrimRight(line, " "))
	}
	im := resp.GetImpact()
	if n := im.GetHeldTotal(); n > 0 {
		fmt.Fprintf(w, "  %d lead(s) held or offered by removed reps:\n", n)
		for _, h := range im.GetHeld() {
			fmt.Fprintf(w, "    %s  %s  rep=%s\n", h.GetLeadId(), strings.TrimPrefix(h.GetState().String(), "ASSIGNMENT_STATE_"), h.GetRepId())
		}
	}
	if n := im.GetQueuedTotal(); n > 0 {
		fmt.Fprintf(w, "  %d lead(s) queued on removed pools:\n", n)
		for _, q := range im.GetQueued() {
			fmt.Fprintf(w, "    %s  QUEUED  pool=%s\n", q.GetLeadId(), q.GetPoolId())
		}
	}
	for _, m := range im.GetLeaving() {
		fmt.Fprintf(w, "  %s leaves pool %s\n", m.GetRepId(), m.GetPoolId())
	}
	if ids := resp.GetMovedLeadIds(); len(ids) > 0 {
		fmt.Fprintf(w, "  moved %d orphaned lead(s): %s\n", len(ids), strings.Join(ids, ", "))
	}
}

func (c *client) get(args []string) error {
	fs := flag.NewFlagSet("get", flag.ContinueOnError)
	version := fs.Int64("version", 0, "a kept version (leadctl history); 0: the current one")
	if err := fs.Parse(args); err != nil {
		return err
	}
	resp, err := c.configAt(*version)
	if err != nil {
		return err
	}
	if c.json {
		return c.printJSON(resp)
	}
	y, err := server.ConfigFromProto(resp.GetConfig()).YAML()
	if err != nil {
		return err
	}
	fmt.Fprintf(c.out, "# version %d, applied %s\n%s", resp.GetVersion(),
		resp.GetAppliedAt().AsTime().Format(time.RFC3339), y)
	return nil
}

// configAt reads the current config (version 0) or a kept version.
func (c *client) configAt(version int64) (*pb.GetRoutingConfigResponse, error) {
	ctx, cancel := c.ctx()
	defer cancel()
	return pb.NewAdminServiceClient(c.conn).GetRoutingConfig(ctx, &pb.GetRoutingConfigRequest{Workspace: c.workspace, Version: version})
}

func (c *client) history() error {
	ctx, cancel := c.ctx()
	defer cancel()
	resp, err := pb.NewAdminServiceClient(c.conn).ListConfigVersions(ctx, &pb.ListConfigVersionsRequest{Workspace: c.workspace})
	if err != nil {
		return err
	}
	if c.json {
		return c.printJSON(resp)
	}
	for _, v := range resp.GetVersions() {
		by := v.GetAppliedBy()
		if by == "" {
			by = "-"
		}
		fmt.Fprintf(c.out, "v%-5d %s  %-16s %s\n", v.GetVersion(), v.GetAppliedAt().AsTime().Format(time.RFC3339), by, v.GetSummary())
	}
	return nil
}

func (c *client) diff(args []string) error {
	if len(args) != 2 {
		return errors.New("diff: want two versions, A B (leadctl history)")
	}
	var cfgs [2]*engine.Config
	for i, a := range args {
		v, err := strconv.ParseInt(strings.TrimPrefix(a, "v"), 10, 64)
		if err != nil {
			return fmt.Errorf("diff: %q is not a version", a)
		}
		resp, err := c.configAt(v)
		if err != nil {
			return err
		}
		cfgs[i] = server.ConfigFromProto(resp.GetConfig())
	}
	d := engine.DiffConfigs(cfgs[0], cfgs[1])
	fmt.Fprintf(c.out, "%s -> %s: %s\n", args[0], args[1], d.Summary())
	resp := &pb.ApplyRoutingConfigResponse{Diff: &pb.ConfigDiff{}}
	for _, ch := range d.Changes {
		resp.Diff.Changes = append(resp.Diff.Changes, &pb.ConfigChange{Section: ch.Section, Id: ch.ID, Op: ch.Op, Fields: ch.Fields})
	}
	printImpact(c.out, resp)
	return nil
}

func (c *client) rollback(args []string) error {
	fs := flag.NewFlagSet("rollback", flag.ContinueOnError)
	dryRun := fs.Bool("dry-run", false, "print the diff and the impact; apply nothing")
	orphaned := fs.String("orphaned", "", "leads held by removed reps: requeue, or reassign (with --reassign-to)")
	reassignTo := fs.String("reassign-to", "", "the rep --orphaned reassign gives them to")
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return errors.New("rollback: want VERSION [--dry-run] [--orphaned requeue|reassign --reassign-to REP]")
	}
	v, err := strconv.ParseInt(strings.TrimPrefix(args[0], "v"), 10, 64)
	if err != nil {
		return fmt.Errorf("rollback: %q is not a version", args[0])
	}
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	orphans, err := orphanPolicy(*orphaned)
	if err != nil {
		return fmt.Errorf("rollback: %w", err)
	}
	ctx, cancel := c.ctx()
	defer cancel()
	out, err := pb.NewAdminServiceClient(c.conn).RollbackConfig(ctx, &pb.RollbackConfigRequest{Workspace: c.workspace, Version: v,
		DryRun: *dryRun, Orphaned: orphans, ReassignTo: *reassignTo})
	if err != nil {
		return err
	}
	if c.json {
		return c.printJSON(out)
	}
	resp := out.GetApplied()
	if resp.GetDryRun() {
		fmt.Fprintf(c.out, "dry run of a rollback to v%d over version %d (nothing applied): %s\n", v, resp.GetVersion(), resp.GetDiff().GetSummary())
	} else {
		fmt.Fprintf(c.out, "rolled back to v%d's config: version %d (%s)\n", v, resp.GetVersion(), resp.GetDiff().GetSummary())
	}
	printImpact(c.out, resp)
	return nil
}

// orphanPolicy reads --orphaned.
func orphanPolicy(s string) (pb.OrphanedLeads, error) {
	switch s {
	case "":
		return pb.OrphanedLeads_ORPHANED_LEADS_UNSPECIFIED, nil
	case "requeue":
		return pb.OrphanedLeads_ORPHANED_LEADS_REQUEUE, nil
	case "reassign":
		return pb.OrphanedLeads_ORPHANED_LEADS_REASSIGN_TO, nil
	}
	return 0, fmt.Errorf("--orphaned %q: want requeue or reassign", s)
}

func (c *client) assignment(args []string) error {
	if len(args) != 1 {
		return errors.New("assignment: want one LEAD_ID")
	}
	ctx, cancel := c.ctx()
	defer cancel()
	resp, err := pb.NewRoutingServiceClient(c.conn).GetAssignment(ctx,
		&pb.GetAssignmentRequest{Workspace: c.workspace, LeadId: args[0]})
	if err != nil {
		return err
	}
	if c.json {
		return c.printJSON(resp)
	}
	printAssignment(c.out, resp.GetAssignment(), false)
	return nil
}

// move is an operator's move of one lead: release (close an assignment,
// cancel a queued lead), requeue (route it again) or reassign (to --rep).
func (c *client) move(cmd string, args []string) error {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	reason := fs.String("reason", "", "why, kept in the history")
	rep := ""
	want := "LEAD_ID [--reason TEXT]"
	if cmd == "reassign" {
		fs.StringVar(&rep, "rep", "", "the rep who gets the lead")
		want = "LEAD_ID --rep REP [--reason TEXT]"
	}
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return fmt.Errorf("%s: want %s", cmd, want)
	}
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	ctx, cancel := c.ctx()
	defer cancel()
	admin := pb.NewAdminServiceClient(c.conn)
	var resp interface{ GetAssignment() *pb.Assignment }
	var err error
	switch cmd {
	case "release":
		resp, err = admin.ReleaseAssignment(ctx, &pb.ReleaseAssignmentRequest{Workspace: c.workspace, LeadId: args[0], Reason: *reason})
	case "requeue":
		resp, err = admin.RequeueLead(ctx, &pb.RequeueLeadRequest{Workspace: c.workspace, LeadId: args[0], Reason: *reason})
	default:
		resp, err = admin.ReassignLead(ctx, &pb.ReassignLeadRequest{Workspace: c.workspace, LeadId: args[0], RepId: rep, Reason: *reason})
	}
	if err != nil {
		return err
	}
	if c.json {
		return c.printJSON(resp.(proto.Message))
	}
	printAssignment(c.out, resp.GetAssignment(), false)
	return nil
}

func (c *client) erase(args []string) error {
	if len(args) != 2 || (args[0] != "lead" && args[0] != "contact") {
		return errors.New("erase: want lead LEAD_ID, or contact EMAIL")
	}
	ctx, cancel := c.ctx()
	defer cancel()
	admin := pb.NewAdminServiceClient(c.conn)
	if args[0] == "lead" {
		resp, err := admin.EraseLead(ctx, &pb.EraseLeadRequest{Workspace: c.workspace, LeadId: args[1]})
		if err != nil {
			return err
		}
		if c.json {
			return c.printJSON(resp)
		}
		fmt.Fprintf(c.out, "erased %s (it was %s)\n", args[1], strings.TrimPrefix(resp.GetState().String(), "ASSIGNMENT_STATE_"))
		return nil
	}
	resp, err := admin.EraseContact(ctx, &pb.EraseContactRequest{Workspace: c.workspace, Email: args[1]})
	if err != nil {
		return err
	}
	if c.json {
		return c.printJSON(resp)
	}
	noun := "leads"
	if resp.GetErased() == 1 {
		noun = "lead"
	}
	fmt.Fprintf(c.out, "erased %d %s", resp.GetErased(), noun)
	if len(resp.GetLeadIds()) > 0 {
		fmt.Fprintf(c.out, ": %s", strings.Join(resp.GetLeadIds(), " "))
	}
	fmt.Fprintln(c.out)
	return nil
}

func (c *client) printJSON(m proto.Message) error {
	b, err := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(m)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(c.out, string(b))
	return err
}

// readConfig reads a routing config YAML file ('-': stdin).
func readConfig(name string) (*engine.Config, error) {
	r, closeFn, err := openInput(name)
	if err != nil {
		return nil, err
	}
	defer closeFn()
	return engine.ParseConfigYAML(r)
}

func openInput(name string) (io.Reader, func(), error) {
	if name == "-" {
		return os.Stdin, func() {}, nil
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, nil, err
	}
	return f, func() { f.Close() }, nil
}

func envOr(key, def string) string {
	if v, ok := os.LookupEnv(key); ok {
		return v
	}
	return def
}

// printViolations lists the field violations of an INVALID_ARGUMENT status,
// one per line.
func printViolations(w io.Writer, st *status.Status) {
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				fmt.Fprintf(w, "  %s: %s\n", v.GetField(), v.GetDescription())
			}
		}
	}
}
