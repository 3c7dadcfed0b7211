package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Deadlines live in the store, never in a replica's memory. Every replica
// sweeps: one round trip finds the workspaces with a timer due (all an
// idle workspace costs), then the replica claims a batch of each one's due
// timers for a lease (Store.ClaimTimers), so each due timer is read and
// fired by about one replica, and a replica that dies holding claims lets
// them go when the lease ends. A round fires a batch of each due workspace
// on a few workers, and the next round looks again at what is due: one
// workspace's burst does not hold up another's timer. A timer
// whose firing fails tries again later, each time after twice as long,
// and is parked after maxAttempts; it never holds up the others.

const (
	// timerBatch is how many timers one claim takes from a workspace: a
	// round of a sweep fires at most one batch of each.
	timerBatch = 64
	// sweepWorkers is how many workspaces a replica fires timers of at once.
	sweepWorkers = 4
	// claimLease is how long claimed timers are one replica's alone.
	claimLease = 3 * time.Second
	// sweepBudget is how long one sweep goes on starting rounds; what is
	// left is the next sweep's.
	sweepBudget = time.Second
	// workspaceDeadline bounds one workspace's batch, maintenance or
	// repair, and listDeadline a read of the workspace list or of what is
	// due: a master that is down or drops packets holds up its own
	// workspaces, not the sweep.
	workspaceDeadline = 5 * time.Second
	listDeadline      = 2 * time.Second
	// A timer that failed tries again after retryBase, twice as long after
	// each further failure up to retryMax, and is parked at its maxAttempts-th
	// failure (about 17 minutes after its first).
	retryBase   = time.Second
	retryMax    = 5 * time.Minute
	maxAttempts = 10
	// drainEvery: every this many sweeps, queued pools are drained. That is
	// how leads waiting for a rep whose shift starts, or whose cap resets at
	// midnight, are assigned without any event.
	drainEvery = 10
	// trimEvery: every this many sweeps (10 s at the default interval),
	// event retention is applied.
	trimEvery = 100
	// repairEvery: every this many sweeps (a minute at the default 100 ms
	// interval, and at the first sweep), the failure counts of timers that
	// are gone are forgotten (Store.PruneTimers) and every pool's
	// eligible-member index is checked against presence (RepairIndexes).
	repairEvery = 600
	// registerEvery: every this many sweeps (ten minutes, and at the
	// first), workspaces with a config missing from the workspace list are
	// registered again (Store.RegisterWorkspaces, a scan of every key).
	registerEvery = 6000
)

// RunSweeper sweeps every interval until ctx ends.
func (e *Engine) RunSweeper(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var registering sync.Mutex                                  // one registration scan at a time
	defer func() { registering.Lock(); registering.Unlock() }() // and none outlives the sweeper
	for n := 0; ; n++ {
		if n%registerEvery == 0 && registering.TryLock() {
			// In the background: a scan of every key may take seconds, and
			// sweeps go on meanwhile.
			go func() {
				defer registering.Unlock()
				rctx, cancel := context.WithTimeout(ctx, time.Minute)
				defer cancel()
				added, err := e.store.RegisterWorkspaces(rctx)
				if err != nil && ctx.Err() == nil {
					e.log.Warn("workspace registration check failed", "err", err)
				} else if added > 0 {
					e.log.Warn("workspaces with a config were not registered for sweeping: registered again", "workspaces", added)
				}
			}()
		}
		if e.guard.max > 0 && !e.guard.measured.Load() {
			// Not a failure: the first health check measures the clock.
		} else if err := e.sweep(ctx, n%drainEvery == 0, n%trimEvery == 0); err != nil && ctx.Err() == nil {
			e.log.Warn("sweep failed", "err", err)
		}
		if n%repairEvery == 0 {
			if err := e.pruneTimers(ctx); err != nil && ctx.Err() == nil {
				e.log.Warn("timer failure pruning failed", "err", err)
			}
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
// every pool that has queued leads and applies event retention.
func (e *Engine) Sweep(ctx context.Context, drain bool) error {
	return e.sweep(ctx, drain, drain)
}

func (e *Engine) sweep(ctx context.Context, drain, trim bool) error {
	if err := e.ClockOK(); err != nil {
		return err
	}
	start := time.Now()
	defer func() { e.obs.Swept(time.Since(start)) }()
	wss, err := e.sweepList(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for {
		dctx, cancel := context.WithTimeout(ctx, listDeadline)
		due, err := e.store.DueWorkspaces(dctx, wss, e.clock.Now())
		cancel()
		if err != nil {
			return err
		}
		full, ferrs := e.fireRound(ctx, due)
		errs = append(errs, ferrs...)
		if len(full) == 0 || time.Since(start) >= sweepBudget || ctx.Err() != nil {
			break
		}
	}
	if drain {
		errs = append(errs, e.eachWorkspace(ctx, wss, func(ctx context.Context, ws string) error {
			return e.maintain(ctx, ws, trim)
		}))
	}
	return errors.Join(errs...)
}

// eachWorkspace runs f for every workspace in turn, each under
// workspaceDeadline, and joins their errors.
func (e *Engine) eachWorkspace(ctx context.Context, wss []string, f func(ctx context.Context, ws string) error) error {
	var errs []error
	for _, ws := range wss {
		wctx, cancel := context.WithTimeout(ctx, workspaceDeadline)
		if err := f(wctx, ws); err != nil {
			errs = append(errs, fmt.Errorf("workspace %q: %w", ws, err))
		}
		cancel()
	}
	return errors.Join(errs...)
}

// sweepList is the workspace list, or, while the server holding it does
// not answer (a cluster master that is down), the last one read: the
// workspaces on the other masters are still swept.
func (e *Engine) sweepList(ctx context.Context) ([]string, error) {
	lctx, cancel := context.WithTimeout(ctx, listDeadline)
	defer cancel()
	wss, err := e.store.Workspaces(lctx)
	if err == nil {
		e.swept.Store(&wss)
		return wss, nil
	}
	if last := e.swept.Load(); last != nil && errors.Is(err, ErrUnavailable) {
		return *last, nil
	}
	return nil, err
}

// fireRound fires one batch of each workspace of wss, on sweepWorkers
// workers, and returns the workspaces whose batch was full (more may be
// due). A sweep runs rounds until no batch is full or it has run for
// sweepBudget, each round starting with a fresh look at what is due: a
// workspace whose timer came due during a burst elsewhere waits at most
// one round.
func (e *Engine) fireRound(ctx context.Context, wss []string) (full []string, errs []error) {
	var (
		mu    sync.Mutex
		queue = slices.Clone(wss)
		wg    sync.WaitGroup
	)
	for range min(sweepWorkers, len(queue)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				if len(queue) == 0 || ctx.Err() != nil {
					mu.Unlock()
					return
				}
				ws := queue[0]
				queue = queue[1:]
				mu.Unlock()
				bctx, cancel := context.WithTimeout(ctx, workspaceDeadline)
				more, err := e.fireBatch(bctx, ws)
				cancel()
				mu.Lock()
				if err != nil {
					errs = append(errs, fmt.Errorf("workspace %q: %w", ws, err))
				} else if more {
					full = append(full, ws)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return full, errs
}

// fireBatch claims and fires one batch of ws's due timers; more reports a
// full batch (more may be due).
func (e *Engine) fireBatch(ctx context.Context, ws string) (more bool, err error) {
	ts, err := e.store.ClaimTimers(ctx, ws, e.clock.Now(), timerBatch, claimLease)
	if err != nil {
		return false, err
	}
	for _, t := range ts {
		err := e.fire(ctx, ws, t)
		switch {
		case err == nil:
			e.obs.TimerFired(ws, t.Kind, e.clock.Now().Sub(t.Due))
			if t.Attempts > 0 {
				if err := e.store.TimerRecovered(ctx, ws, t); err != nil {
					e.log.Warn("timer fired, but its failures could not be forgotten", "workspace", ws, "timer", t.Member(), "err", err)
				}
			}
		case ctx.Err() != nil:
			return false, ctx.Err()
		case errors.Is(err, ErrUnavailable):
			// Not the timer's fault: the rest of the batch is claimed again
			// once the lease ends.
			return false, err
		default:
			e.failed(ctx, ws, t, err)
		}
	}
	return len(ts) == timerBatch, nil
}

// failed schedules a timer whose firing failed to try again, or parks it.
func (e *Engine) failed(ctx context.Context, ws string, t Timer, cause error) {
	attempts := t.Attempts + 1
	park := attempts >= maxAttempts
	delay := min(retryBase<<(attempts-1), retryMax)
	dropped, err := e.store.RetryTimer(ctx, ws, t, e.clock.Now().Add(delay), park)
	e.obs.TimerFailed(ws, t.Kind, park && err == nil)
	switch {
	case err != nil:
		e.log.Warn("timer failed and could not be rescheduled; claimed again when its lease ends", "workspace", ws, "timer", t.Member(),
			"attempt", attempts, "err", cause, "reschedule_err", err)
	case park:
		e.log.Error("timer failed too often: parked, it will not fire", "workspace", ws, "timer", t.Member(), "attempts", attempts,
			"due", t.Due, "err", cause, "parked_dropped", dropped)
	default:
		e.log.Warn("timer failed; tries again", "workspace", ws, "timer", t.Member(), "attempt", attempts, "in", delay, "err", cause)
	}
}

// pruneTimers forgets the failures of timers that are gone, in every
// workspace.
func (e *Engine) pruneTimers(ctx context.Context) error {
	wss, err := e.sweepList(ctx)
	if err != nil {
		return err
	}
	return e.eachWorkspace(ctx, wss, func(ctx context.Context, ws string) error {
		_, err := e.store.PruneTimers(ctx, ws)
		return err
	})
}

// RepairIndexes files every member of every pool of every workspace in its
// pool's eligible-member index by its presence now, in script calls of at
// a bounded size each (the store splits them). Every presence change keeps the index
// itself; what this finds was written by something that does not (a
// replica of a version before the index, during a rolling upgrade). Each
// member it moves is logged as a count per workspace.
func (e *Engine) RepairIndexes(ctx context.Context) error {
	wss, err := e.sweepList(ctx)
	if err != nil {
		return err
	}
	return e.eachWorkspace(ctx, wss, func(ctx context.Context, ws string) error {
		cc, err := e.config(ctx, ws, false)
		if errors.Is(err, ErrNoConfig) {
			return nil
		}
		if err != nil {
			return err
		}
		_, moved, err := e.store.IndexPools(ctx, ws, cc.id, poolIDs(cc.cfg), true, e.clock.Now())
		if moved > 0 {
			e.log.Warn("eligible-member index repaired", "workspace", ws, "members", moved)
		}
		if errors.Is(err, ErrStaleConfig) { // the new config's load indexed its pools
			return nil
		}
		return err
	})
}

// maintain drains ws's queued pools, writes its heartbeats and, with trim,
// applies its event retention.
func (e *Engine) maintain(ctx context.Context, ws string, trim bool) error {
	pools, err := e.store.QueuedPools(ctx, ws)
	if err != nil {
		return err
	}
	for _, p := range pools {
		e.drain(ctx, ws, p)
	}
	cc, err := e.config(ctx, ws, false)
	if err != nil {
		return nil // no config (yet): nothing to maintain
	}
	if err := e.fileShifts(ctx, ws, cc); err != nil && !errors.Is(err, ErrStaleConfig) {
		return err // stale: the next operation loads the new config and files it
	}
	e.backfill(ctx, ws, cc)
	if err := e.sweepPresence(ctx, ws, cc); err != nil {
		return err
	}
	if trim {
		maxLen, maxAge := cc.cfg.Settings.Retention()
		sinks := make([]string, len(cc.cfg.Sinks))
		for i, s := range cc.cfg.Sinks {
			sinks[i] = s.ID
		}
		_, losses, err := e.store.TrimEventsFor(ctx, ws, maxLen, maxAge, e.clock.Now(), sinks)
		for _, l := range losses {
			e.log.Warn("sink lagging: events_max_age removed events it had not delivered", "workspace", ws, "sink", l.SinkID,
				"lost", l.Lost, "events_max_age", maxAge)
			e.obs.SinkLost(ws, l.SinkID, l.Lost)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// backfill gives ws's records from before retention their retain timers,
// and those from before person hashes their hash (Store.BackfillPeople),
// once, in the background (a scan of every record may take minutes), one
// workspace at a time on this replica.
func (e *Engine) backfill(ctx context.Context, ws string, cc *compiledConfig) {
	if _, ok := e.backfilled.Load(ws); ok || !e.backfilling.TryLock() {
		return
	}
	go func() {
		defer e.backfilling.Unlock()
		bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Minute)
		defer cancel()
		added, done, err := e.store.BackfillRetention(bctx, ws, cc.cfg.Settings.Retain())
		switch {
		case err != nil:
			e.log.Warn("retention backfill failed; tried again at a later sweep", "workspace", ws, "err", err)
			return
		case !done:
			e.log.Info("records from before retention given their retain timers", "workspace", ws, "timers", added)
		}
		converted, done, err := e.store.BackfillPeople(bctx, ws, cc.personKey)
		switch {
		case err != nil:
			e.log.Warn("person hash backfill failed; tried again at a later sweep", "workspace", ws, "err", err)
			return
		case !done:
			e.log.Info("records and sticky keys from before person hashes converted", "workspace", ws, "converted", converted)
		}
		e.backfilled.Store(ws, true)
	}()
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
		fired, err := e.store.Expire(ctx, ws, t.LeadID, reason, cc.cfg.Settings.Retain(), now)
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
	case TimerRetain:
		cc, err := e.config(ctx, ws, false)
		if err != nil {
			return err
		}
		var hold *ArchiveHold
		if a := cc.cfg.Archive(); a != nil {
			hold = &ArchiveHold{SinkID: a.ID, Retain: cc.cfg.Settings.Retain()}
		}
		_, err = e.store.RemoveLead(ctx, ws, t.LeadID, hold, now)
		return err
	case TimerOffer, TimerSLA, TimerWarn:
		mode := map[TimerKind]RerouteMode{TimerOffer: RerouteTimeout, TimerSLA: RerouteBreach, TimerWarn: RerouteWarn}[t.Kind]
		_, err := e.reroute(ctx, ws, t.LeadID, mode, "", "", "")
		if errors.Is(err, ErrNotFound) {
			return e.store.DropTimer(ctx, ws, t) // the lead is gone; so is the point of its timer
		}
		return err
	}
	e.log.Warn("dropping a timer of unknown kind", "workspace", ws, "timer", t.Member())
	return e.store.DropTimer(ctx, ws, t)
}
