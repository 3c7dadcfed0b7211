package engine

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// An operator's moves: any lead that is not closed can be routed again
// (RequeueLead) or placed with a named rep (ReassignLead), whatever state
// it is in. Each is one step of lead_reroute.lua that gives back what the
// lead held, as the lifecycle does, and places it again.

// RequeueLead routes a QUEUED, UNROUTABLE, OFFERED or ASSIGNED lead again
// now, under the current config, from the first target of its rule (a new
// match when the config no longer has the rule, or the lead matched none):
// an offer is withdrawn and an assignment's hold closed, with the reason
// in the history. Reps offered the lead before are passed over unless
// nobody else is eligible. A CLOSED lead is ErrNotAssigned.
func (e *Engine) RequeueLead(ctx context.Context, ws, leadID, reason string) (*Assignment, error) {
	ws, err := e.checkMove(ws, leadID, reason, nil)
	if err != nil {
		return nil, err
	}
	return e.move(ctx, ws, leadID, RerouteRequeue, reason, "")
}

// ReassignLead places a QUEUED, UNROUTABLE, OFFERED or ASSIGNED lead with
// repID at once, as an assignment (no offer), bypassing rules and
// eligibility: in the lead's pool when the rep is a member, else the
// first pool of its rule's targets the rep is in, else the rep's first
// pool. The reason is in the history and the trace. A rep the config
// lacks is a *ValidationError naming rep_id.
func (e *Engine) ReassignLead(ctx context.Context, ws, leadID, repID, reason string) (*Assignment, error) {
	ws, err := e.checkMove(ws, leadID, reason, func(v *violations) {
		if repID == "" {
			v.add("rep_id", "required")
		}
	})
	if err != nil {
		return nil, err
	}
	cc, err := e.config(ctx, ws, false)
	if err != nil {
		return nil, err
	}
	if cc.reps[repID] == nil {
		if cc, err = e.config(ctx, ws, true); err != nil { // a rep added by another replica's apply
			return nil, err
		}
		if cc.reps[repID] == nil {
			return nil, &ValidationError{Violations: []FieldViolation{{Field: "rep_id",
				Description: fmt.Sprintf("no rep %q in the routing config", repID)}}}
		}
	}
	return e.move(ctx, ws, leadID, RerouteReassign, reason, repID)
}

// move runs an operator's move and returns the lead as it is after.
func (e *Engine) move(ctx context.Context, ws, leadID string, mode RerouteMode, reason, to string) (*Assignment, error) {
	res, err := e.reroute(ctx, ws, leadID, mode, "", reason, to)
	if err != nil {
		return nil, err
	}
	if !res.Done {
		if mode == RerouteReassign && res.State == StateAssigned {
			return e.GetAssignment(ctx, ws, leadID) // the rep holds it already
		}
		return nil, fmt.Errorf("lead %q is %s: only a queued, unroutable, offered or assigned lead can be moved: %w",
			leadID, res.State, ErrNotAssigned)
	}
	return e.GetAssignment(ctx, ws, leadID)
}

// checkMove validates the common arguments of the moves.
func (e *Engine) checkMove(ws, leadID, reason string, more func(*violations)) (string, error) {
	ws, wsErr := NormalizeWorkspace(ws)
	var v violations
	if leadID == "" {
		v.add("lead_id", "required")
	}
	if len(reason) > maxReleaseReason {
		v.add("reason", "%d bytes, at most %d allowed", len(reason), maxReleaseReason)
	}
	if more != nil {
		more(&v)
	}
	return ws, joinViolations(wsErr, v.err())
}

// requeueTargets returns where a requeued lead goes: its rule's targets
// from the first, or those of a new decision.
func (cc *compiledConfig) requeueTargets(ws string, a *Assignment, now time.Time) ([]DecisionTarget, int, string) {
	if rule := cc.ruleByID(a.RuleID); rule != nil && len(rule.targets) > 0 {
		return cc.targets(rule.targets), 1, "nobody eligible in " + poolList(rule.targets)
	}
	d := cc.decision(ws, &a.Lead, now, true)
	if len(d.Targets) == 0 {
		return nil, 1, d.UnroutableReason
	}
	return d.Targets, 1, d.QueuedReason
}

// reassignPool is the pool a lead reassigned to rep is placed in (nil when
// the rep is in none).
func (cc *compiledConfig) reassignPool(a *Assignment, rep string) *Pool {
	pools := cc.repPools[rep]
	if slices.Contains(pools, a.PoolID) {
		return cc.pools[a.PoolID]
	}
	if rule := cc.ruleByID(a.RuleID); rule != nil {
		for _, t := range rule.targets {
			if slices.Contains(pools, t.PoolID) {
				return cc.pools[t.PoolID]
			}
		}
	}
	if len(pools) > 0 {
		return cc.pools[pools[0]]
	}
	return nil
}
