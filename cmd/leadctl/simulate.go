package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	pb "github.com/leadrouter/leadrouter/gen/leadrouter/v1"
	"github.com/leadrouter/leadrouter/server"
)

// simulate replays the workspace's recent leads against a proposed config
// (AdminService.SimulateConfig) and prints the result as tables.
func (c *client) simulate(args []string) error {
	fs := flag.NewFlagSet("simulate", flag.ContinueOnError)
	file := fs.String("f", "", "proposed routing config YAML file ('-' for stdin)")
	limit := fs.Int("limit", 0, "how many of the most recent leads to replay (0: 1,000; at most 10,000)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *file == "" {
		return errors.New("simulate: -f FILE is required")
	}
	cfg, err := readConfig(*file)
	if err != nil {
		return err
	}
	ctx, cancel := c.ctx()
	defer cancel()
	resp, err := pb.NewAdminServiceClient(c.conn).SimulateConfig(ctx, &pb.SimulateConfigRequest{
		Workspace: c.workspace, Config: server.ConfigToProto(cfg), Limit: int32(*limit)})
	if err != nil {
		return err
	}
	if c.json {
		return c.printJSON(resp)
	}
	printSimulation(c.out, *file, resp)
	return nil
}

func printSimulation(w io.Writer, file string, r *pb.SimulateConfigResponse) {
	if r.GetReplayed() == 0 {
		fmt.Fprintf(w, "simulated %s: no stored leads to replay\n", file)
	} else {
		fmt.Fprintf(w, "simulated %s against %d recent lead(s), received %s to %s\n", file, r.GetReplayed(),
			r.GetOldest().AsTime().Format(time.RFC3339), r.GetNewest().AsTime().Format(time.RFC3339))
	}
	fmt.Fprintf(w, "(%s)\n\n", r.GetNote())
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	counts := func(title string, rows []*pb.SimulatedCount, none string, before, after int32) {
		fmt.Fprintf(tw, "%s\tBEFORE\tAFTER\tCHANGE\n", title)
		for _, c := range rows {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%s\n", c.GetId(), c.GetBefore(), c.GetAfter(), delta(c.GetBefore(), c.GetAfter()))
		}
		if before > 0 || after > 0 {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%s\n", none, before, after, delta(before, after))
		}
		fmt.Fprintln(tw)
	}
	counts("RULE", r.GetRules(), "(no rule: unroutable)", r.GetUnroutableBefore(), r.GetUnroutableAfter())
	counts("FIRST POOL", r.GetPools(), "(none)", r.GetUnroutableBefore(), r.GetUnroutableAfter())
	tw.Flush()
	fmt.Fprintf(w, "unroutable: %d before, %d after (%d would become unroutable)\n\n",
		r.GetUnroutableBefore(), r.GetUnroutableAfter(), r.GetBecomeUnroutable())

	if n := r.GetChangedTotal(); n == 0 {
		fmt.Fprintln(w, "no lead changes rule or first pool")
	} else {
		fmt.Fprintf(w, "%d lead(s) change rule or first pool", n)
		if int(n) > len(r.GetChanged()) {
			fmt.Fprintf(w, " (the newest %d shown)", len(r.GetChanged()))
		}
		fmt.Fprintln(w, ":")
		fmt.Fprintln(tw, "LEAD\tBEFORE\tAFTER\tWHY (AFTER)")
		for _, c := range r.GetChanged() {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", c.GetLeadId(), routeText(c.GetBefore()), routeText(c.GetAfter()), why(c.GetAfter()))
		}
		tw.Flush()
	}
	if len(r.GetShares()) > 0 {
		fmt.Fprintln(w, "\nexpected rotation shares (every member eligible):")
		fmt.Fprintln(tw, "POOL\tSTRATEGY\tREP\tWEIGHT\tSHARE\tEXPECTED LEADS")
		for _, p := range r.GetShares() {
			strategy := strings.TrimPrefix(p.GetStrategy().String(), "STRATEGY_")
			for _, m := range p.GetMembers() {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%.1f%%\t%.1f of %d\n", p.GetPoolId(), strategy, m.GetRepId(), m.GetWeight(),
					100*m.GetShare(), m.GetExpected(), p.GetLeads())
			}
		}
		tw.Flush()
	}
}

func delta(before, after int32) string {
	if d := after - before; d != 0 {
		return fmt.Sprintf("%+d", d)
	}
	return "0"
}

func routeText(r *pb.SimulatedRoute) string {
	if r.GetRuleId() == "" {
		return "(unroutable)"
	}
	return r.GetRuleId() + " -> " + r.GetPoolId()
}

// why is the rule trace's last entry: the match, or the last miss.
func why(r *pb.SimulatedRoute) string {
	rules := r.GetRules()
	if len(rules) == 0 {
		return ""
	}
	last := rules[len(rules)-1]
	if !last.GetMatched() {
		return "no rule matched; " + last.GetRuleId() + ": " + last.GetDetail()
	}
	return last.GetDetail()
}
