package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// The speed-to-lead lifecycle: offers a rep accepts or lets expire, the
// first contact, dispositions. Every step is one script in the store; the
// engine validates the call and, for steps that hand the lead to someone
// else, works out where it may go next.

// Contact channels RecordContact accepts.
var contactChannels = map[string]bool{"call": true, "email": true, "sms": true, "meeting": true, "chat": true, "other": true}

// AcceptOffer turns repID's offer of a lead into the assignment. Accepting
// again is a no-op; an offer made to someone else is *WrongRepError, one
// that expired or moved on *OfferGoneError (both ErrWrongCaller).
func (e *Engine) AcceptOffer(ctx context.Context, ws, leadID, repID string) (*Assignment, error) {
	ws, err := e.checkRepCall(ctx, ws, leadID, repID, nil)
	if err != nil {
		return nil, err
	}
	if err := e.ClockOK(); err != nil {
		return nil, err
	}
	a, err := e.store.Accept(ctx, ws, leadID, repID, e.clock.Now())
	if err != nil {
		return nil, err
	}
	return e.explained(ctx, ws, a), nil
}

// RejectOffer withdraws repID's offer at once: the rep gets the pool's
// reject cooldown and the lead is offered to the next eligible rep.
func (e *Engine) RejectOffer(ctx context.Context, ws, leadID, repID, reason string) (*Assignment, error) {
	ws, err := e.checkRepCall(ctx, ws, leadID, repID, func(v *violations) {
		if len(reason) > maxReleaseReason {
			v.add("reason", "%d bytes, at most %d allowed", len(reason), maxReleaseReason)
		}
	})
	if err != nil {
		return nil, err
	}
	res, err := e.reroute(ctx, ws, leadID, RerouteReject, repID, reason, "")
	if err != nil {
		return nil, err
	}
	if !res.Done {
		return nil, fmt.Errorf("lead %q is %s: there is no offer to reject: %w", leadID, res.State, ErrNotAssigned)
	}
	return e.GetAssignment(ctx, ws, leadID)
}

// RecordContact records a contact with the lead by the rep holding it. The
// first contact stops the first-contact SLA and fixes speed to lead.
func (e *Engine) RecordContact(ctx context.Context, ws, leadID, repID, channel string, at time.Time) (*Assignment, error) {
	if err := e.ClockOK(); err != nil {
		return nil, err
	}
	now := e.clock.Now()
	if at.IsZero() {
		at = now
	}
	ws, err := e.checkRepCall(ctx, ws, leadID, repID, func(v *violations) {
		if !contactChannels[channel] {
			v.add("channel", "%q is not one of call, email, sms, meeting, chat, other", channel)
		}
		if at.After(now.Add(time.Minute)) {
			v.add("contacted_at", "%s is in the future", at.Format(time.RFC3339))
		} else if at.Before(earliestSubmission) {
			v.add("contacted_at", "%s is before %s", at.Format(time.RFC3339), earliestSubmission.Format(time.DateOnly))
		}
	})
	if err != nil {
		return nil, err
	}
	a, err := e.store.Contact(ctx, ws, leadID, repID, channel, at, now)
	if err != nil {
		return nil, err
	}
	return e.explained(ctx, ws, a), nil
}

// SetDisposition closes the rep's assignment with its verdict and frees the
// rep's capacity. The same disposition again is a no-op; REJECTED needs a
// reason code.
func (e *Engine) SetDisposition(ctx context.Context, ws, leadID, repID string, d Disposition, reasonCode string) (*Assignment, error) {
	ws, err := e.checkRepCall(ctx, ws, leadID, repID, func(v *violations) {
		switch {
		case d != Qualified && d != Rejected && d != Recycled:
			v.add("disposition", "%q is not one of QUALIFIED, REJECTED, RECYCLED", d)
		case d == Rejected && reasonCode == "":
			v.add("reason_code", "required with REJECTED")
		}
		if reasonCode != "" && (len(reasonCode) > 64 || !isIdent(reasonCode) || strings.ContainsRune(reasonCode, '@')) {
			v.add("reason_code", "%q: at most 64 letters, digits and _ - . :", reasonCode)
		}
	})
	if err != nil {
		return nil, err
	}
	return e.close(ctx, ws, &Closing{LeadID: leadID, RepID: repID, Reason: "disposition " + string(d),
		Disposition: d, ReasonCode: reasonCode})
}

// ReleaseAssignment closes an ASSIGNED lead for its rep (an operator's
// call): the rep's open count falls and the rep's pools drain their queues.
// A QUEUED lead is cancelled: it leaves its queue, CLOSED with the reason.
// Releasing a released lead returns it unchanged; a lead that is offered
// or unroutable is ErrNotAssigned (RequeueLead moves those).
func (e *Engine) ReleaseAssignment(ctx context.Context, ws, leadID, reason string) (*Assignment, error) {
	ws, err := e.checkMove(ws, leadID, reason, nil)
	if err != nil {
		return nil, err
	}
	for range maxMoves {
		cur, err := e.store.Assignment(ctx, ws, leadID)
		if err != nil {
			return nil, err
		}
		c := &Closing{LeadID: leadID, RepID: cur.RepID, Reason: reason}
		switch cur.State {
		case StateQueued:
			c.Pool = cur.PoolID
		case StateOffered, StateUnroutable:
			return nil, fmt.Errorf("lead %q is %s: a release closes an assigned or queued lead; requeue it instead: %w",
				leadID, cur.State, ErrNotAssigned)
		}
		a, err := e.close(ctx, ws, c)
		if !errors.Is(err, ErrConflict) {
			return a, err
		}
	}
	return nil, movingErr(leadID)
}

// maxMoves bounds how often an operator's call (a release, a requeue, an
// erasure) reads a record again that kept changing between its read and
// its write (a drain, an offer timing out).
const maxMoves = 8

// movingErr is the error of a record that kept changing.
func movingErr(leadID string) error {
	return fmt.Errorf("%w: lead %q kept changing; try again", ErrUnavailable, leadID)
}

// close closes an assignment and drains the rep's pools, whose capacity
// grew.
func (e *Engine) close(ctx context.Context, ws string, c *Closing) (*Assignment, error) {
	return underConfig(ctx, e, ws, func(cc *compiledConfig, _ bool) (*Assignment, error) {
		if err := e.ClockOK(); err != nil {
			return nil, err
		}
		c.Retain = cc.cfg.Settings.Retain()
		a, err := e.store.CloseAssignment(ctx, ws, cc.id, c, cc.rankedPools[c.RepID], e.clock.Now())
		if err != nil {
			return nil, err
		}
		e.log.Info("assignment closed", "workspace", ws, "lead", c.LeadID, "rep", a.RepID, "disposition", c.Disposition)
		for _, pool := range cc.repPools[a.RepID] {
			e.drain(ctx, ws, pool)
		}
		cc.explain(a)
		return a, nil
	})
}

// reroute takes a lead from its rep for mode and routes it again over the
// targets it may use; it drains a pool the lead queued behind. An
// operator's move (RerouteRequeue, RerouteReassign to rep to) takes the
// lead from wherever it is and also drains the pools of a rep it freed; it
// reads the record again when it changed under the move.
func (e *Engine) reroute(ctx context.Context, ws, leadID string, mode RerouteMode, repID, reason, to string) (*RerouteResult, error) {
	operator := mode == RerouteRequeue || mode == RerouteReassign
	return underConfig(ctx, e, ws, func(cc *compiledConfig, _ bool) (*RerouteResult, error) {
		for range maxMoves {
			a, err := e.store.Assignment(ctx, ws, leadID)
			if err != nil {
				return nil, err
			}
			holder := repID
			if holder == "" {
				holder = a.RepID
			}
			if err := e.ClockOK(); err != nil {
				return nil, err
			}
			now := e.clock.Now()
			r := &Rerouting{Retain: cc.cfg.Settings.Retain(), Mode: mode, Assignment: a, RepID: holder, Reason: reason,
				Sticky: cc.cfg.Settings.Sticky(), Ranked: cc.rankedPools[a.RepID], ExpireAt: cc.expireAt(now),
				Local: cc.localTimes(now), Policy: cc.pools[a.PlacementPolicyPool()], To: to}
			switch mode {
			case RerouteRequeue:
				r.Targets, r.FirstIndex, r.QueuedReason = cc.requeueTargets(ws, a, now)
			case RerouteReassign:
				pool := cc.reassignPool(a, to)
				if pool == nil {
					return nil, &ValidationError{Violations: []FieldViolation{{Field: "rep_id",
						Description: fmt.Sprintf("rep %q is a member of no pool", to)}}}
				}
				r.Targets, r.FirstIndex = []DecisionTarget{{Pool: pool}}, 1
			default:
				r.Targets, r.FirstIndex, r.QueuedReason = cc.rerouteTargets(ws, a, now)
			}
			res, err := e.store.Reroute(ctx, ws, cc.id, r, now)
			if operator && errors.Is(err, ErrConflict) {
				continue
			}
			if err != nil {
				return nil, err
			}
			if res.Done {
				e.log.LogAttrs(ctx, slog.LevelInfo, "lead rerouted", slog.String("workspace", ws), slog.String("lead", leadID),
					slog.String("mode", string(mode)), slog.String("from", holder), slog.String("state", string(res.State)))
			}
			if res.Done && operator && (a.State == StateAssigned || a.State == StateOffered) {
				for _, pool := range cc.repPools[a.RepID] {
					e.drain(ctx, ws, pool)
				}
			}
			if res.Backlog {
				if cur, err := e.store.Assignment(ctx, ws, leadID); err == nil {
					e.drain(ctx, ws, cur.PoolID)
				}
			}
			return res, nil
		}
		return nil, movingErr(leadID)
	})
}

// rerouteTargets returns where a lead taken from its rep may go: the rest
// of its rule's targets from the one in use, or, for an owner or sticky
// assignment, the targets a new decision would use.
func (cc *compiledConfig) rerouteTargets(ws string, a *Assignment, now time.Time) ([]DecisionTarget, int, string) {
	if rule := cc.ruleByID(a.RuleID); rule != nil {
		i := max(a.TargetIndex, 1)
		if i <= len(rule.targets) {
			rest := rule.targets[i-1:]
			return cc.targets(rest), i, "nobody else eligible in " + poolList(rest)
		}
	}
	d := cc.decision(ws, &a.Lead, now, true)
	return d.Targets, 1, d.QueuedReason
}

// checkRepCall validates the common arguments of the rep calls, and that
// the config has the rep (ErrRepNotInConfig).
func (e *Engine) checkRepCall(ctx context.Context, ws, leadID, repID string, more func(*violations)) (string, error) {
	ws, wsErr := NormalizeWorkspace(ws)
	var v violations
	if leadID == "" {
		v.add("lead_id", "required")
	}
	if repID == "" {
		v.add("rep_id", "required")
	}
	if more != nil {
		more(&v)
	}
	if err := joinViolations(wsErr, v.err()); err != nil {
		return ws, err
	}
	return ws, e.HasRep(ctx, ws, repID)
}

// explained completes a record's trace with the cached config.
func (e *Engine) explained(ctx context.Context, ws string, a *Assignment) *Assignment {
	cc, _ := e.config(ctx, ws, false)
	cc.explain(a)
	return a
}
