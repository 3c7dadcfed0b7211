package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
	"time"

	pb "github.com/leadrouter/leadrouter/gen/leadrouter/v1"
)

// lastErrorWidth is how much of a sink's last error the table shows.
const lastErrorWidth = 60

// sinks prints the delivery state of the workspace's sinks, or of the one
// named (AdminService.GetSinkStatus).
func (c *client) sinks(args []string) error {
	fs := flag.NewFlagSet("sinks", flag.ContinueOnError)
	sink := fs.String("sink", "", "one sink; empty: every sink of the config")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return errors.New("sinks: want [--sink ID]")
	}
	ctx, cancel := c.ctx()
	defer cancel()
	resp, err := pb.NewAdminServiceClient(c.conn).GetSinkStatus(ctx,
		&pb.GetSinkStatusRequest{Workspace: c.workspace, SinkId: *sink})
	if err != nil {
		return err
	}
	if c.json {
		return c.printJSON(resp)
	}
	printSinks(c.out, resp.GetSinks())
	return nil
}

// printSinks writes one line per sink: its backlog, dead letters, losses
// and last error.
func printSinks(w io.Writer, sinks []*pb.SinkStatus) {
	if len(sinks) == 0 {
		fmt.Fprintln(w, "no sinks configured")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SINK\tKIND\tPENDING\tOLDEST\tDEAD\tLOST\tLAST ERROR")
	for _, s := range sinks {
		oldest := "-"
		if d := s.GetOldestUndeliveredAge().AsDuration(); d > 0 {
			oldest = age(d)
		}
		dead := fmt.Sprint(s.GetDeadLetters())
		if n := s.GetDeadLettersDropped(); n > 0 {
			dead += fmt.Sprintf(" +%d dropped", n)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%d\t%s\n", s.GetSinkId(), s.GetKind(), s.GetPending(), oldest, dead,
			s.GetLost(), lastError(s))
	}
	tw.Flush()
}

// age renders a backlog's age: milliseconds under a second, else whole
// seconds (3s, 4m12s, 26h0m5s).
func age(d time.Duration) string {
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// lastError is a sink's last failed attempt, its time first, on one line
// and cut to lastErrorWidth characters; "-" when there was none.
func lastError(s *pb.SinkStatus) string {
	msg := strings.Join(strings.Fields(s.GetLastError()), " ")
	if msg == "" {
		return "-"
	}
	if r := []rune(msg); len(r) > lastErrorWidth {
		msg = string(r[:lastErrorWidth-3]) + "..."
	}
	if s.GetLastErrorAt() != nil {
		msg = s.GetLastErrorAt().AsTime().Format(time.RFC3339) + " " + msg
	}
	return msg
}

// replayDeadLetters puts a sink's dead letters back for delivery, oldest
// first (AdminService.ReplayDeadLetters).
func (c *client) replayDeadLetters(args []string) error {
	fs := flag.NewFlagSet("replay-dead-letters", flag.ContinueOnError)
	limit := fs.Int("limit", 0, "at most this many, oldest first (0: all, up to 10,000)")
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return errors.New("replay-dead-letters: want SINK [--limit N]")
	}
	sink := args[0]
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return errors.New("replay-dead-letters: want SINK [--limit N]")
	}
	ctx, cancel := c.ctx()
	defer cancel()
	resp, err := pb.NewAdminServiceClient(c.conn).ReplayDeadLetters(ctx,
		&pb.ReplayDeadLettersRequest{Workspace: c.workspace, SinkId: sink, Limit: int32(max(min(*limit, math.MaxInt32), math.MinInt32))})
	if err != nil {
		return err
	}
	if c.json {
		return c.printJSON(resp)
	}
	noun := "dead letters"
	if resp.GetReplayed() == 1 {
		noun = "dead letter"
	}
	fmt.Fprintf(c.out, "replayed %d %s of sink %s\n", resp.GetReplayed(), noun, sink)
	return nil
}
