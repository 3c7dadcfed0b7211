package engine

import (
	"fmt"
	"strings"
	"time"
)

// explain completes a trace read from the store: strategies where the store
// did not record them, calendar skip reasons with when the rep is back, each
// target's outcome, and the one-sentence summary. cc may be nil (no config
// cached); skip reasons then stay as the store wrote them.
func (cc *compiledConfig) explain(a *Assignment) {
	t := &a.Trace
	for i := range t.Targets {
		te := &t.Targets[i]
		if cc != nil {
			if p := cc.pools[te.PoolID]; p != nil && te.Strategy == "" {
				te.Strategy = p.Strategy
			}
			for j := range te.Candidates {
				te.Candidates[j].SkipReason = cc.skipReason(te.Candidates[j], a.DecidedAt)
			}
		}
		if te.Outcome != "" {
			continue
		}
		if c, ok := te.Chosen(); ok {
			te.Outcome = a.PlacedVerb() + " " + c.RepID
		} else if te.Label != "" {
			te.Outcome = "not eligible; routing goes on"
		} else {
			te.Outcome = fmt.Sprintf("nobody eligible (%d considered)", len(te.Candidates)+skippedCount(te.Skipped))
		}
	}
	t.Summary = summarize(a)
}

// skipReason adds when a rep outside its hours or out of office is back.
func (cc *compiledConfig) skipReason(c Candidate, at time.Time) string {
	if c.Skip.Code != "" {
		c.SkipReason = c.Skip.Text() // from the code, so that explaining twice adds nothing twice
	}
	if c.Skip.Code != SkipHours && c.Skip.Code != SkipOutOfOff &&
		c.SkipReason != "outside working hours" && c.SkipReason != "out of office" { // the latter: older records
		return c.SkipReason
	}
	s, ok := cc.schedules[c.RepID]
	if !ok {
		return c.SkipReason
	}
	back := s.nextStart(at)
	if back.IsZero() {
		return c.SkipReason
	}
	format := "Mon 15:04"
	if back.Sub(at) > 6*24*time.Hour {
		format = "Mon 2006-01-02 15:04"
	}
	return fmt.Sprintf("%s, back %s %s", c.SkipReason, back.In(s.loc).Format(format), s.loc)
}

func summarize(a *Assignment) string {
	var b strings.Builder
	if a.RuleID != "" {
		rule := ""
		for _, r := range a.Trace.Rules {
			if r.Matched && r.RuleID == a.RuleID {
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
	case StateAssigned, StateClosed, StateOffered:
		for _, te := range a.Trace.Targets {
			c, ok := te.Chosen()
			switch {
			case !ok && te.Label != "":
				fmt.Fprintf(&b, "Skipped %s: %s. ", te.Label, skippedText(te.Candidates, te.Skipped))
			case !ok:
				fmt.Fprintf(&b, "Pool %q: %s. ", te.PoolID, te.Outcome)
			case te.Label != "" && a.Route == RouteOperator:
				fmt.Fprintf(&b, "Assigned to %s, %s.", c.RepID, te.Label)
			case te.Label != "":
				fmt.Fprintf(&b, "%s %s, the %s, without taking a rotation turn.", upperFirst(a.PlacedVerb()), c.RepID, te.Label)
			default:
				fmt.Fprintf(&b, "Pool %q (%s): %s", te.PoolID, strategyName(te.Strategy), c.RepID)
				if te.Strategy == StrategyRoundRobin || te.Strategy == "" {
					b.WriteString(" is the next available member")
					if te.PreviousRepID != "" {
						fmt.Fprintf(&b, " after %s", te.PreviousRepID)
					}
				} else {
					b.WriteString(" is the first eligible member in strategy order")
				}
				if skipped := skippedText(te.Candidates, te.Skipped); skipped != "" {
					b.WriteString("; skipped " + skipped)
				}
				b.WriteString(".")
			}
		}
		switch a.State {
		case StateOffered:
			fmt.Fprintf(&b, " Offered to %s until %s.", a.RepID, a.OfferExpiresAt.Format(time.RFC3339))
		case StateClosed:
			fmt.Fprintf(&b, " Closed: %s.", orNone(a.CloseReason))
		}
	}
	return strings.TrimSpace(b.String())
}

func strategyName(s Strategy) string {
	if s == "" {
		s = StrategyRoundRobin
	}
	return strings.ToLower(strings.ReplaceAll(string(s), "_", " "))
}

func skippedText(cs []Candidate, more []SkipCount) string {
	var parts []string
	for _, c := range cs {
		if !c.Chosen {
			parts = append(parts, fmt.Sprintf("%s (%s)", c.RepID, c.SkipReason))
		}
	}
	s := strings.Join(parts, ", ")
	if n := skippedCount(more); n > 0 {
		counts := make([]string, len(more))
		for i, m := range more {
			counts[i] = fmt.Sprintf("%d %s", m.Count, m.Reason.Text())
		}
		s += fmt.Sprintf(" and %d more (%s)", n, strings.Join(counts, ", "))
	}
	return s
}

func skippedCount(more []SkipCount) int {
	n := 0
	for _, m := range more {
		n += m.Count
	}
	return n
}

// upperFirst capitalizes an ASCII sentence's first letter.
func upperFirst(s string) string {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}
