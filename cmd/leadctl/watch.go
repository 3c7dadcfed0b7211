package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/leadrouter/leadrouter/gen/leadrouter/v1"
)

// watch tails a rep's stream (watch --rep) or the workspace's (events),
// printing one line per event. After a dropped connection, a shutdown
// (UNAVAILABLE) or falling behind (RESOURCE_EXHAUSTED) it reconnects and
// resumes from the last position printed, so nothing is missed or repeated.
func (c *client) watch(cmd string, args []string) error {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	rep := fs.String("rep", "", "watch: the rep whose stream to tail")
	kinds := fs.String("kinds", "", "events: only these kinds, comma-separated (e.g. sla_breached,queued)")
	epoch := fs.String("from-epoch", "", "resume from this position (epoch)")
	offset := fs.String("from", "", "resume from this position (offset)")
	maxEvents := fs.Int("max", 0, "stop after this many events (0: run until interrupted)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if cmd == "watch" && *rep == "" {
		return errors.New("watch: --rep is required")
	}
	var filter []pb.EventKind
	for _, k := range strings.Split(*kinds, ",") {
		if k = strings.TrimSpace(k); k != "" {
			v, ok := pb.EventKind_value["EVENT_KIND_"+strings.ToUpper(k)]
			if !ok {
				return fmt.Errorf("--kinds: unknown event kind %q", k)
			}
			filter = append(filter, pb.EventKind(v))
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	var from *pb.Position
	if *offset != "" {
		from = &pb.Position{Epoch: *epoch, Offset: *offset}
	}
	seen := 0
	for backoff := time.Second; ; {
		recv, err := c.open(ctx, cmd, *rep, filter, from)
		for err == nil {
			var e *pb.Event
			if e, err = recv(); err == nil {
				printEvent(c.out, e)
				if e.GetPosition().GetOffset() != "" {
					from = e.GetPosition()
				}
				backoff = time.Second
				if seen++; *maxEvents > 0 && seen >= *maxEvents {
					return nil
				}
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		switch status.Code(err) {
		case codes.Unavailable, codes.ResourceExhausted, codes.DeadlineExceeded, codes.Internal:
		default:
			return err
		}
		fmt.Fprintf(os.Stderr, "leadctl: stream ended (%s); resuming from %s in %s\n", status.Code(err), from.GetOffset(), backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// open starts the stream and returns its receive function.
func (c *client) open(ctx context.Context, cmd, rep string, kinds []pb.EventKind, from *pb.Position) (func() (*pb.Event, error), error) {
	if cmd == "watch" {
		s, err := pb.NewRepServiceClient(c.conn).WatchAssignments(ctx,
			&pb.WatchAssignmentsRequest{Workspace: c.workspace, RepId: rep, ResumeFrom: from})
		if err != nil {
			return nil, err
		}
		return func() (*pb.Event, error) { r, err := s.Recv(); return r.GetEvent(), err }, nil
	}
	s, err := pb.NewEventServiceClient(c.conn).WatchEvents(ctx,
		&pb.WatchEventsRequest{Workspace: c.workspace, Kinds: kinds, ResumeFrom: from})
	if err != nil {
		return nil, err
	}
	return func() (*pb.Event, error) { r, err := s.Recv(); return r.GetEvent(), err }, nil
}

func printEvent(w io.Writer, e *pb.Event) {
	kind := strings.ToLower(strings.TrimPrefix(e.GetKind().String(), "EVENT_KIND_"))
	fmt.Fprintf(w, "%s  %-18s", e.GetProducedAt().AsTime().Local().Format("15:04:05.000"), kind)
	for _, f := range []struct{ name, v string }{{"lead", e.GetLeadId()}, {"rep", e.GetRepId()}, {"pool", e.GetPoolId()}} {
		if f.v != "" {
			fmt.Fprintf(w, " %s=%s", f.name, f.v)
		}
	}
	if e.GetDetail() != "" {
		fmt.Fprintf(w, "  %s", e.GetDetail())
	}
	fmt.Fprintf(w, "  @%s\n", e.GetPosition().GetOffset())
}
