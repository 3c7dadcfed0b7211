package engine

import (
	"fmt"
	"strings"
)

// explain completes a trace read from the store: each target's strategy and
// outcome, and the one-sentence summary. cc may be nil (no config cached);
// strategies are then left empty.
func explain(cc *compiledConfig, a *Assignment) {
	t := &a.Trace
	for i := range t.Targets {
		te := &t.Targets[i]
		if cc != nil {
			if p := cc.pools[te.PoolID]; p != nil {
				te.Strategy = p.Strategy
			}
		}
		if te.Outcome != "" {
			continue
		}
		if c, ok := te.Chosen(); ok {
			te.Outcome = "assigned to " + c.RepID
		} else {
			te.Outcome = fmt.Sprintf("nobody eligible (%d considered)", len(te.Candidates))
		}
	}
	t.Summary = summarize(a)
}

func summarize(a *Assignment) string {
	var b strings.Builder
	if a.RuleID != "" {
		rule := ""
		for _, r := range a.Trace.Rules {
			if r.Matched {
				rule = r.Detail
			}
		}
		fmt.Fprintf(&b, "Rule %q %s. ", a.RuleID, rule)
	}
	switch a.State {
	case StateUnroutable:
		fmt.Fprintf(&b, "Unroutable: %s.", a.Reason)
	case StateQueued:
		fmt.Fprintf(&b, "Queued on pool %q: %s.", a.PoolID, a.Reason)
	case StateAssigned:
		for _, te := range a.Trace.Targets {
			c, ok := te.Chosen()
			if !ok {
				fmt.Fprintf(&b, "Pool %q: %s. ", te.PoolID, te.Outcome)
				continue
			}
			fmt.Fprintf(&b, "Pool %q: %s is the next available member", te.PoolID, c.RepID)
			if te.PreviousRepID != "" {
				fmt.Fprintf(&b, " after %s", te.PreviousRepID)
			}
			b.WriteString(" in round-robin order")
			if skipped := skippedText(te.Candidates); skipped != "" {
				b.WriteString("; skipped " + skipped)
			}
			b.WriteString(".")
		}
	}
	return strings.TrimSpace(b.String())
}

func skippedText(cs []Candidate) string {
	var parts []string
	for _, c := range cs {
		if !c.Chosen {
			parts = append(parts, fmt.Sprintf("%s (%s)", c.RepID, c.SkipReason))
		}
	}
	return strings.Join(parts, ", ")
}
