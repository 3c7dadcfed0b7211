package engine

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Deadlines live in the store, never in a replica's memory: every replica
// sweeps every workspace, each timer is claimed by exactly one of them in a
// script, and a replica that dies loses nothing.

const (
	timerBatch = 256
	// drainEvery: every this many sweeps, queued pools are drained. That is
	// how leads waiting for a rep whose shift starts, or whose cap resets at
	// midnight, are assigned without any event.
	drainEvery = 10
	// repairEvery: every this many sweeps (a minute at the default 100 ms
	// interval, and at the first sweep), workspaces with a config missing
	// from the workspace list are registered again (Store.
	// RegisterWorkspaces) and every pool's eligible-member index is checked
	// against presence (RepairIndexes).
	repairEvery = 600
)

// RunSweeper sweeps every interval until ctx ends.
func (e *Engine) RunSweeper(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for n := 0; ; n++ {
		if n%repairEvery == 0 {
			if added, err := e.store.RegisterWorkspaces(ctx); err != nil && ctx.Err() == nil {
				e.log.Warn("workspace registration check failed", "err", err)
			} else if added > 0 {
				e.log.Warn("workspaces with a config were not registered for sweeping: registered again", "workspaces", added)
			}
		}
		if err := e.Sweep(ctx, n%drainEvery == 0); err != nil && ctx.Err() == nil {
			e.log.Warn("sweep failed", "err", err)
		}
		if n%repairEvery == 0 {
			if err := e.RepairIndexes(ctx); err != nil && ctx.Err() == nil {
				e.log.Warn("index repair failed", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Sweep fires the due timers of every workspace and, with drain, drains
// every pool that has queued leads.
func (e *Engine) Sweep(ctx context.Context, drain bool) error {
	if err := e.clockOK(); err != nil {
		return err
	}
	wss, err := e.store.Workspaces(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, ws := range wss {
		if err := e.sweepWorkspace(ctx, ws, drain); err != nil {
			errs = append(errs, fmt.Errorf("workspace %q: %w", ws, err))
		}
	}
	return errors.Join(errs...)
}

// RepairIndexes files every member of every pool of every workspace in its
// pool's eligible-member index by its presence now, in script calls of at
// a bounded size each (the store splits them). Every presence change keeps the index
// itself; what this finds was written by something that does not (a
// replica of a version before the index, during a rolling upgrade). Each
// member it moves is logged as a count per workspace.
func (e *Engine) RepairIndexes(ctx context.Context) error {
	wss, err := e.store.Workspaces(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, ws := range wss {
		cc, err := e.config(ctx, ws, false)
		if errors.Is(err, ErrNoConfig) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("workspace %q: %w", ws, err))
			continue
		}
		_, moved, err := e.store.IndexPools(ctx, ws, cc.id, poolIDs(cc.cfg), true, e.clock.Now())
		if err != nil && !errors.Is(err, ErrStaleConfig) { // stale: the new config's load indexed its pools
			errs = append(errs, fmt.Errorf("workspace %q: %w", ws, err))
		}
		if moved > 0 {
			e.log.Warn("eligible-member index repaired", "workspace", ws, "members", moved)
		}
	}
	return errors.Join(errs...)
}

func (e *Engine) sweepWorkspace(ctx context.Context, ws string, drain bool) error {
	var last Timer
	for {
		due, err := e.store.DueTimers(ctx, ws, e.clock.Now(), timerBatch)
		if err != nil {
			return err
		}
		for _, t := range due {
			// One timer that fails must not hold up the ones behind it.
			if err := e.fire(ctx, ws, t); err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				e.log.Warn("timer failed; retried next sweep", "workspace", ws, "timer", string(t.Kind)+"|"+t.LeadID, "err", err)
			}
		}
		// A full batch whose head did not move is not progress: stop and
		// let the next sweep try again.
		if len(due) < timerBatch || due[0] == last {
			break
		}
		last = due[0]
	}
	if !drain {
		return nil
	}
	pools, err := e.store.QueuedPools(ctx, ws)
	if err != nil {
		return err
	}
	for _, p := range pools {
		e.drain(ctx, ws, p)
	}
	if cc, err := e.config(ctx, ws, false); err == nil {
		if err := e.sweepPresence(ctx, ws, cc); err != nil {
			return err
		}
		maxLen, maxAge := cc.cfg.Settings.Retention()
		if _, err := e.store.TrimEvents(ctx, ws, maxLen, maxAge, e.clock.Now()); err != nil {
			return err
		}
	}
	return nil
}

// fire carries out one due timer. The store's scripts make sure it happens
// once, whichever replica gets there first.
func (e *Engine) fire(ctx context.Context, ws string, t Timer) error {
	now := e.clock.Now()
	switch t.Kind {
	case TimerExpire:
		cc, err := e.config(ctx, ws, false)
		if err != nil {
			return err
		}
		reason := fmt.Sprintf("queued longer than max_queue_age (%s)", time.Duration(cc.cfg.Settings.MaxQueueAge))
		fired, err := e.store.Expire(ctx, ws, t.LeadID, reason, now)
		if fired {
			e.log.Warn("queued lead expired: unroutable", "workspace", ws, "lead", t.LeadID)
		}
		return err
	case TimerEscalate:
		_, err := underConfig(ctx, e, ws, func(cc *compiledConfig, _ bool) (struct{}, error) {
			a, err := e.store.Assignment(ctx, ws, t.LeadID)
			if errors.Is(err, ErrNotFound) {
				return struct{}{}, e.store.DropTimer(ctx, ws, t)
			}
			if err != nil {
				return struct{}{}, err
			}
			var next []DecisionTarget
			reason := ""
			if rule := cc.ruleByID(a.RuleID); rule != nil && a.TargetIndex >= 1 && a.TargetIndex <= len(rule.targets) {
				rest := rule.targets[a.TargetIndex:]
				next = cc.targets(rest)
				reason = "nobody eligible in " + poolList(rest)
			}
			fired, backlog, err := e.store.Escalate(ctx, ws, cc.id, a, next, a.TargetIndex+1, reason, cc.cfg.Settings.Sticky(), cc.localTimes(now), now)
			if err != nil {
				return struct{}{}, err
			}
			if fired {
				e.log.Info("queued lead escalated", "workspace", ws, "lead", t.LeadID, "from", a.PoolID)
				if backlog {
					if a, err := e.store.Assignment(ctx, ws, t.LeadID); err == nil {
						e.drain(ctx, ws, a.PoolID)
					}
				}
			}
			return struct{}{}, nil
		})
		if err != nil {
			return fmt.Errorf("escalating %q: %w", t.LeadID, err)
		}
		return nil
	case TimerOffer, TimerSLA, TimerWarn:
		mode := map[TimerKind]RerouteMode{TimerOffer: RerouteTimeout, TimerSLA: RerouteBreach, TimerWarn: RerouteWarn}[t.Kind]
		_, err := e.reroute(ctx, ws, t.LeadID, mode, "", "")
		if errors.Is(err, ErrNotFound) {
			return e.store.DropTimer(ctx, ws, t) // the lead is gone; so is the point of its timer
		}
		return err
	}
	e.log.Warn("dropping a timer of unknown kind", "workspace", ws, "timer", string(t.Kind)+"|"+t.LeadID)
	return e.store.DropTimer(ctx, ws, t)
}
