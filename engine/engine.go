package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Bounds on retries and background work.
const (
	// maxStaleRetries: a decision retries only when the config changed
	// under it.
	maxStaleRetries = 4
	// drainBatch is how many queued leads one drain script call takes.
	drainBatch = 64
	// drainTimeout bounds one drain, which runs to completion even when
	// the call that started it is cancelled.
	drainTimeout = 30 * time.Second
	// maxReleaseReason bounds the text kept on a released record.
	maxReleaseReason = 256
)

// Engine routes leads. It is safe for concurrent use and holds no state that
// another replica would need: its only cache is the compiled routing config
// of each workspace, which the store's config-id check keeps honest.
type Engine struct {
	store Store
	clock Clock
	guard clockGuard
	swept atomic.Pointer[[]string] // the last workspace list the sweeper read
	// backfilled holds the workspaces whose records this replica knows have
	// retain timers (Store.BackfillRetention); backfilling is the one
	// backfill running on this replica.
	backfilled  sync.Map
	backfilling sync.Mutex
	log         *slog.Logger
	obs         Observer

	mu      sync.RWMutex
	configs map[string]*compiledConfig
	conns   connections
}

// Option configures an Engine.
type Option func(*Engine)

// WithClock sets where the engine reads "now" (default: the wall clock).
func WithClock(c Clock) Option { return func(e *Engine) { e.clock = c } }

// WithLogger sets the logger (default: slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(e *Engine) { e.log = l } }

// WithObserver sets who is told how AssignLead calls went (default:
// nobody). The store reports the facts of its own calls (store.Observe).
func WithObserver(o Observer) Option { return func(e *Engine) { e.obs = o } }

// New returns an engine on the given store.
func New(s Store, opts ...Option) *Engine {
	e := &Engine{store: s, clock: SystemClock{}, log: slog.Default(), obs: Nop{}, configs: make(map[string]*compiledConfig)}
	for _, o := range opts {
		o(e)
	}
	return e
}

// Store returns the engine's store.
func (e *Engine) Store() Store { return e.store }

// Observer returns the engine's observer.
func (e *Engine) Observer() Observer { return e.obs }

// AssignLead routes one lead and records the decision. The bool is true when
// the lead id was already recorded: the original assignment is returned and
// nothing changes. When the rule's first eligible pool has leads queued
// before this one, the lead joins that queue and the queue is drained before
// AssignLead returns, so arrival order holds.
func (e *Engine) AssignLead(ctx context.Context, ws string, lead Lead) (*Assignment, bool, error) {
	return e.decide(ctx, ws, lead, false, ViewFull)
}

// View is how much of an assignment a decision's caller reads.
type View uint8

const (
	// ViewFull is the whole assignment: trace with its summary, history,
	// lead.
	ViewFull View = iota
	// ViewBasic is the decision: state, rep, pool, rule, route, reason,
	// offer deadline, decision time and version. The assignment's trace
	// targets, summary and history are left empty.
	ViewBasic
)

// AssignLeadView is AssignLead answering with the given view.
func (e *Engine) AssignLeadView(ctx context.Context, ws string, lead Lead, view View) (*Assignment, bool, error) {
	return e.decide(ctx, ws, lead, false, view)
}

// PreviewAssignmentView is PreviewAssignment answering with the given view.
func (e *Engine) PreviewAssignmentView(ctx context.Context, ws string, lead Lead, view View) (*Assignment, bool, error) {
	return e.decide(ctx, ws, lead, true, view)
}

// PreviewAssignment returns the decision AssignLead would make now, with the
// same trace, writing nothing and advancing no rotation.
func (e *Engine) PreviewAssignment(ctx context.Context, ws string, lead Lead) (*Assignment, bool, error) {
	return e.decide(ctx, ws, lead, true, ViewFull)
}

func (e *Engine) decide(ctx context.Context, ws string, lead Lead, dryRun bool, view View) (*Assignment, bool, error) {
	start := time.Now() // the decision's duration is wall time, whatever e.clock says
	if err := e.ClockOK(); err != nil {
		return nil, false, err
	}
	now := e.clock.Now()
	ws, wsErr := NormalizeWorkspace(ws)
	l, leadErr := NormalizeLead(lead, now)
	if err := joinViolations(wsErr, leadErr); err != nil {
		return nil, false, err
	}
	type decided struct {
		cc  *compiledConfig
		out *Outcome
	}
	d, err := underConfig(ctx, e, ws, func(cc *compiledConfig, _ bool) (decided, error) {
		req := cc.decision(ws, &l, now, dryRun)
		req.View, req.ReceivedNote = view, ClampedNote(lead, now)
		out, err := e.store.Decide(ctx, req)
		return decided{cc, out}, err
	})
	if errors.Is(err, ErrQuota) && !dryRun {
		e.obs.QuotaRefused(ws)
	}
	if err != nil {
		return nil, false, err
	}
	cc, out := d.cc, d.out
	a := out.Assignment
	if out.Duplicate && a.Lead.ID != "" {
		a.ContentDiffers = !sameContent(&a.Lead, &l, !lead.SubmittedAt.IsZero())
	}
	// A lead queued behind others (or a repeat of a lead still queued)
	// is drained now: arrival order holds, and a retry after a failed
	// drain finishes the job.
	if !dryRun && a.State == StateQueued && (out.Backlog || out.Duplicate) {
		e.drain(ctx, ws, a.PoolID)
		if fresh, err := e.store.Assignment(ctx, ws, l.ID); err == nil {
			a = fresh
		}
	}
	if !dryRun {
		e.obs.LeadDecided(ws, decideOutcome(a.State, out.Duplicate), a.PoolID, time.Since(start))
	}
	if view == ViewFull {
		cc.explain(a)
	} else {
		a.Trace.Targets, a.History = nil, nil
	}
	e.log.LogAttrs(ctx, slog.LevelDebug, "lead decided",
		slog.String("workspace", ws), slog.String("lead", l.ID), slog.String("state", string(a.State)),
		slog.String("rep", a.RepID), slog.String("pool", a.PoolID), slog.String("rule", a.RuleID),
		slog.String("route", a.Route), slog.Bool("duplicate", out.Duplicate), slog.Bool("preview", dryRun))
	return a, out.Duplicate, nil
}

func decideOutcome(st State, duplicate bool) DecideOutcome {
	switch {
	case duplicate:
		return OutcomeDuplicate
	case st == StateQueued:
		return OutcomeQueued
	case st == StateUnroutable:
		return OutcomeUnroutable
	default:
		return OutcomeAssigned
	}
}

// GetAssignment returns a recorded assignment with its trace; ErrNotFound
// when the lead was never assigned.
func (e *Engine) GetAssignment(ctx context.Context, ws, leadID string) (*Assignment, error) {
	ws, err := NormalizeWorkspace(ws)
	if err != nil {
		return nil, err
	}
	if leadID == "" {
		return nil, &ValidationError{Violations: []FieldViolation{{"lead_id", "required"}}}
	}
	a, err := e.store.Assignment(ctx, ws, leadID)
	if err != nil {
		return nil, err
	}
	cc, _ := e.config(ctx, ws, false) // for calendars in skip reasons; nil is fine
	cc.explain(a)
	return a, nil
}

// ApplyConfig validates cfg (filling defaults in place) and makes it the
// workspace's config. With expected set, it applies only if the current
// version is *expected (0: none yet), else ErrVersionConflict. An apply
// that would orphan leads is *OrphansError (see ApplyConfigWith).
func (e *Engine) ApplyConfig(ctx context.Context, ws string, cfg *Config, expected *int64) (int64, error) {
	res, err := e.ApplyConfigWith(ctx, ws, cfg, ApplyOptions{Expected: expected})
	if err != nil {
		return 0, err
	}
	return res.Version, nil
}

// OrphanPolicy says what an apply does with leads held or offered by reps
// it removes.
type OrphanPolicy string

const (
	OrphansRefuse   OrphanPolicy = ""         // the apply fails with *OrphansError
	OrphansRequeue  OrphanPolicy = "requeue"  // each is requeued under the new config (RequeueLead)
	OrphansReassign OrphanPolicy = "reassign" // each goes to ApplyOptions.ReassignTo (ReassignLead)
)

// ApplyOptions are an apply's options.
type ApplyOptions struct {
	Expected   *int64 // apply only over this version (0: none yet)
	DryRun     bool   // work out the diff and the impact, write nothing
	Orphans    OrphanPolicy
	ReassignTo string // the rep OrphansReassign gives the orphans to
	By         string // the applying credential's name, for the history
}

// ApplyResult is what an apply did, or (DryRun) would do.
type ApplyResult struct {
	Version int64 // the new version (DryRun: the current one)
	DryRun  bool
	Diff    ConfigDiff
	Impact  *ConfigImpact
	// Moved lists the orphans requeued or reassigned after the apply.
	Moved []string
}

// OrphansError: an apply would leave leads held or offered by reps it
// removes, and the request did not say what to do with them.
type OrphansError struct{ Impact *ConfigImpact }

func (e *OrphansError) Error() string {
	parts := make([]string, len(e.Impact.Held))
	for i, h := range e.Impact.Held {
		parts[i] = fmt.Sprintf("%s (%s to %s)", h.LeadID, h.State, h.RepID)
	}
	more := ""
	if n := e.Impact.HeldTotal - len(e.Impact.Held); n > 0 {
		more = fmt.Sprintf(" and %d more", n)
	}
	return fmt.Sprintf("the config removes reps who hold %d lead(s): %s%s; set orphaned to requeue them or reassign them to a rep",
		e.Impact.HeldTotal, strings.Join(parts, ", "), more)
}

func (e *OrphansError) Unwrap() error { return ErrOrphanedLeads }

// ApplyConfigWith validates cfg and applies it under o: with DryRun it
// returns the diff against the current config and the impact on the leads
// in flight and writes nothing. A real apply that removes reps holding or
// offered leads is *OrphansError unless o.Orphans says what to do with
// them; one that removes pools with queued leads is ErrPoolHasQueue. Queues
// of the new config's pools are drained before it returns; a drain that
// fails does not fail the apply (the sweeper finishes it).
func (e *Engine) ApplyConfigWith(ctx context.Context, ws string, cfg *Config, o ApplyOptions) (*ApplyResult, error) {
	ws, wsErr := NormalizeWorkspace(ws)
	var v violations
	switch o.Orphans {
	case OrphansRefuse, OrphansRequeue:
	case OrphansReassign:
		if !slices.ContainsFunc(cfg.Reps, func(r Rep) bool { return r.ID == o.ReassignTo }) {
			v.add("reassign_to", "%q is not a rep of the config applied", o.ReassignTo)
		}
	default:
		v.add("orphaned", "%q is not one of requeue, reassign", o.Orphans)
	}
	if err := joinViolations(wsErr, prefixViolations("config", cfg.Validate()), v.err()); err != nil {
		return nil, err
	}
	if err := prefixViolations("config", checkSinkTargets(cfg)); err != nil {
		return nil, err
	}
	for attempt := 0; attempt < 16; attempt++ {
		var base string
		var baseVersion int64
		var prev *Config
		cur, err := e.store.LoadConfig(ctx, ws)
		switch {
		case err == nil:
			base, baseVersion, prev = cur.ID, cur.Version, cur.Config
		case !errors.Is(err, ErrNoConfig):
			return nil, err
		}
		if o.Expected != nil && *o.Expected != baseVersion {
			return nil, fmt.Errorf("%w: expected version %d, current is %d", ErrVersionConflict, *o.Expected, baseVersion)
		}
		res := &ApplyResult{Version: baseVersion, DryRun: o.DryRun, Diff: DiffConfigs(prev, cfg)}
		if res.Impact, err = e.impact(ctx, ws, prev, cfg); err != nil {
			return nil, err
		}
		if o.DryRun {
			return res, nil
		}
		if res.Impact.HeldTotal > 0 && o.Orphans == OrphansRefuse {
			return nil, &OrphansError{Impact: res.Impact}
		}
		now := e.clock.Now()
		sc, err := e.store.ApplyConfig(ctx, ws, base, prev, cfg, now, o.Orphans != OrphansRefuse)
		if errors.Is(err, ErrVersionConflict) && o.Expected == nil {
			continue // another apply won the race; apply on top of it
		}
		if err != nil {
			return nil, err
		}
		res.Version = sc.Version
		e.remember(ws, compile(cfg, sc))
		if cfg.Settings.Grace() > 0 {
			// Every rep gets the grace period from now to connect.
			ids := make([]string, len(cfg.Reps))
			for i, r := range cfg.Reps {
				ids[i] = r.ID
			}
			if err := e.store.Heartbeat(ctx, ws, ids, now, true); err != nil {
				e.log.Warn("presence heartbeats not written", "workspace", ws, "err", err)
			}
		}
		e.log.Info("routing config applied", "workspace", ws, "version", sc.Version,
			"reps", len(cfg.Reps), "pools", len(cfg.Pools), "rules", len(cfg.Rules), "changes", res.Diff.Summary())
		entry := ConfigVersion{Version: sc.Version, AppliedAt: sc.AppliedAt, By: o.By, Summary: res.Diff.Summary()}
		if err := e.store.RecordConfigVersion(ctx, ws, entry, cfg, ConfigHistoryKept); err != nil {
			e.log.Warn("config version not kept in the history", "workspace", ws, "version", sc.Version, "err", err)
		}
		if res.Impact.Orphans() && o.Orphans != OrphansRefuse {
			if res.Moved, err = e.moveOrphans(ctx, ws, prev, cfg, o, res.Impact.HeldTotal > 0); err != nil {
				return res, err
			}
		}
		for _, p := range cfg.Pools {
			e.drain(ctx, ws, p.ID)
		}
		return res, nil
	}
	return nil, fmt.Errorf("%w: concurrent applies kept winning", ErrVersionConflict)
}

// moveOrphans requeues or reassigns, under the config just applied, every
// lead held or offered by a rep prev had and next lacks.
// held says whether the impact found held leads: only then are the
// records scanned for them (again, for those placed since).
func (e *Engine) moveOrphans(ctx context.Context, ws string, prev, next *Config, o ApplyOptions, held bool) ([]string, error) {
	var orphans []HeldLead
	if held {
		var err error
		if orphans, _, err = e.store.HeldLeads(ctx, ws, removedReps(prev, next), maxOrphansMoved); err != nil {
			return nil, err
		}
	}
	// Leads queued on removed pools: their queues were kept for this.
	keep := map[string]bool{}
	for _, p := range next.Pools {
		keep[p.ID] = true
	}
	for _, p := range prev.Pools {
		for offset := 0; !keep[p.ID] && len(orphans) < maxOrphansMoved; offset += erasePage {
			ids, err := e.store.QueuedLeads(ctx, ws, p.ID, offset, erasePage)
			if err != nil {
				return nil, err
			}
			for _, id := range ids {
				orphans = append(orphans, HeldLead{LeadID: id, State: StateQueued})
			}
			if len(ids) < erasePage {
				break
			}
		}
	}
	var moved []string
	for _, h := range orphans {
		var err error
		reason := "rep " + h.RepID + " removed from the routing config"
		if h.State == StateQueued {
			reason = "its pool was removed from the routing config"
		}
		if o.Orphans == OrphansReassign {
			_, err = e.move(ctx, ws, h.LeadID, RerouteReassign, reason, o.ReassignTo)
		} else {
			_, err = e.move(ctx, ws, h.LeadID, RerouteRequeue, reason, "")
		}
		if err != nil && !errors.Is(err, ErrNotAssigned) { // closed meanwhile: nothing to move
			return moved, fmt.Errorf("config applied, but orphan %s was not moved (requeue it): %w", h.LeadID, err)
		}
		moved = append(moved, h.LeadID)
	}
	return moved, nil
}

// maxOrphansMoved bounds the orphans one apply moves: a removed rep holds
// at most its max_open leads and offers, far fewer in practice.
const maxOrphansMoved = 100_000

// Config returns the workspace's current config as stored.
func (e *Engine) Config(ctx context.Context, ws string) (*StoredConfig, error) {
	ws, err := NormalizeWorkspace(ws)
	if err != nil {
		return nil, err
	}
	return e.store.LoadConfig(ctx, ws)
}

// SetRepStatus sets a rep's declared presence and returns the previous one.
// Becoming AVAILABLE drains the queues of the rep's pools before returning
// (a drain that fails does not fail the call; the sweeper finishes it).
func (e *Engine) SetRepStatus(ctx context.Context, ws, repID string, st RepStatus) (RepStatus, error) {
	ws, wsErr := NormalizeWorkspace(ws)
	var v violations
	if repID == "" {
		v.add("rep_id", "required")
	}
	if !st.Valid() {
		v.add("status", "%q is not one of AVAILABLE, AWAY, OFFLINE", st)
	}
	if err := joinViolations(wsErr, v.err()); err != nil {
		return "", err
	}
	return underConfig(ctx, e, ws, func(cc *compiledConfig, fresh bool) (RepStatus, error) {
		if cc.reps[repID] == nil {
			if !fresh {
				return "", ErrStaleConfig // the cache may predate the rep; look again
			}
			return "", fmt.Errorf("rep %q: %w (removed, or never added)", repID, ErrRepNotInConfig)
		}
		if err := e.ClockOK(); err != nil {
			return "", err
		}
		prev, err := e.store.SetRepStatus(ctx, ws, cc.id, repID, st, cc.repPools[repID], e.clock.Now())
		if err != nil {
			return "", err
		}
		e.log.Info("rep status set", "workspace", ws, "rep", repID, "status", st, "previous", prev)
		if st == StatusAvailable {
			for _, pool := range cc.repPools[repID] {
				e.drain(ctx, ws, pool)
			}
		}
		return prev, nil
	})
}

// RepState is a rep as configured plus its runtime state.
type RepState struct {
	Rep     Rep
	PoolIDs []string
	RepRuntime
}

// Reps returns every rep of the workspace's current config, in config order.
func (e *Engine) Reps(ctx context.Context, ws string) ([]RepState, error) {
	cc, err := e.freshConfig(ctx, ws)
	if err != nil {
		return nil, err
	}
	return e.repStates(ctx, cc, cc.cfg.Reps)
}

// HasRep reports (nil) whether the workspace's config has the rep, from the
// cached config; it reloads only when the rep is not in the cache. A rep
// the config lacks is ErrRepNotInConfig.
func (e *Engine) HasRep(ctx context.Context, ws, repID string) error {
	for refresh := false; ; refresh = true {
		cc, err := e.config(ctx, ws, refresh)
		if err != nil {
			return err
		}
		if cc.reps[repID] != nil {
			return nil
		}
		if refresh {
			return fmt.Errorf("rep %q: %w (removed, or never added)", repID, ErrRepNotInConfig)
		}
	}
}

// Rep returns one rep; ErrNotFound when the config has no such rep.
func (e *Engine) Rep(ctx context.Context, ws, repID string) (*RepState, error) {
	if repID == "" {
		return nil, &ValidationError{Violations: []FieldViolation{{"rep_id", "required"}}}
	}
	cc, err := e.freshConfig(ctx, ws)
	if err != nil {
		return nil, err
	}
	r := cc.reps[repID]
	if r == nil {
		return nil, fmt.Errorf("rep %q: %w", repID, ErrNotFound)
	}
	states, err := e.repStates(ctx, cc, []Rep{*r})
	if err != nil {
		return nil, err
	}
	return &states[0], nil
}

func (e *Engine) repStates(ctx context.Context, cc *compiledConfig, reps []Rep) ([]RepState, error) {
	ids := make([]string, len(reps))
	days := make([]int64, len(reps))
	now := e.clock.Now()
	for i, r := range reps {
		ids[i] = r.ID
		loc := time.UTC
		if s, ok := cc.schedules[r.ID]; ok {
			loc = s.loc
		}
		days[i] = LocalDay(now, loc)
	}
	rt, err := e.store.RepRuntime(ctx, cc.workspace, ids, days)
	if err != nil {
		return nil, err
	}
	out := make([]RepState, len(reps))
	for i, r := range reps {
		out[i] = RepState{Rep: r, PoolIDs: cc.repPools[r.ID], RepRuntime: rt[i]}
	}
	return out, nil
}

// drain assigns leads queued on a pool, in queue order, until the queue is
// empty or nobody in the pool is eligible. It finishes even when ctx is
// cancelled (within drainTimeout): a drain half done is a drain the next
// trigger must redo. Failures are logged; the sweeper retries.
func (e *Engine) drain(ctx context.Context, ws, poolID string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), drainTimeout)
	defer cancel()
	if err := e.drainPool(ctx, ws, poolID); err != nil {
		e.log.Warn("queue drain failed; the sweeper will retry", "workspace", ws, "pool", poolID, "err", err)
	}
}

func (e *Engine) drainPool(ctx context.Context, ws, poolID string) error {
	refresh := false
	stalled, offset := 0, 0
	for {
		cc, err := e.config(ctx, ws, refresh)
		if err != nil {
			return err
		}
		if cc.pools[poolID] == nil {
			return nil // not in this config; a config cannot drop a pool with a queue
		}
		if err := e.fileShifts(ctx, ws, cc); errors.Is(err, ErrStaleConfig) {
			refresh = true
			continue
		} else if err != nil {
			return err
		}
		ids, err := e.store.QueuedLeads(ctx, ws, poolID, offset, drainBatch)
		if err != nil || len(ids) == 0 {
			return err
		}
		if err := e.ClockOK(); err != nil {
			return err
		}
		now := e.clock.Now()
		res, err := e.store.DrainQueue(ctx, ws, cc.id, cc.pools[poolID], ids, cc.cfg.Settings.Sticky(), cc.localTimes(now), now)
		if errors.Is(err, ErrStaleConfig) {
			refresh = true
			continue
		}
		if err != nil {
			return err
		}
		refresh = false
		if res.Blocked {
			return nil
		}
		switch {
		case len(res.Assigned) > 0:
			stalled, offset = 0, 0
		case res.Skipped == len(ids):
			// Every lead of the batch waits for a rep it may go to: look
			// at the leads behind them.
			offset += len(ids)
		default:
			// Nothing assigned and not blocked: other replicas took this
			// batch. Go on while they make progress.
			if stalled++; stalled > 100 {
				return fmt.Errorf("pool %q: queue head did not move", poolID)
			}
		}
	}
}

// config returns the workspace's compiled config, from the cache unless
// refresh is set or nothing is cached.
func (e *Engine) config(ctx context.Context, ws string, refresh bool) (*compiledConfig, error) {
	if !refresh {
		e.mu.RLock()
		cc := e.configs[ws]
		e.mu.RUnlock()
		if cc != nil {
			return cc, nil
		}
	}
	return e.freshConfig(ctx, ws)
}

// underConfig runs op under the workspace's compiled config. When op
// answers ErrStaleConfig (the config changed between reading it and the
// store's check of its id) it runs again under a freshly loaded one, at
// most maxStaleRetries times in all. fresh tells op whether its config was
// just loaded rather than cached.
func underConfig[T any](ctx context.Context, e *Engine, ws string, op func(cc *compiledConfig, fresh bool) (T, error)) (T, error) {
	var zero T
	for attempt := 0; attempt < maxStaleRetries; attempt++ {
		cc, err := e.config(ctx, ws, attempt > 0)
		if err != nil {
			return zero, err
		}
		err = e.fileShifts(ctx, ws, cc)
		if errors.Is(err, ErrStaleConfig) {
			continue
		}
		if err != nil {
			return zero, err
		}
		v, err := op(cc, attempt > 0)
		if errors.Is(err, ErrStaleConfig) {
			continue
		}
		return v, err
	}
	return zero, fmt.Errorf("%w: routing config kept changing", ErrUnavailable)
}

// freshConfig loads the workspace's config from the store and caches it.
func (e *Engine) freshConfig(ctx context.Context, ws string) (*compiledConfig, error) {
	ws, err := NormalizeWorkspace(ws)
	if err != nil {
		return nil, err
	}
	sc, err := e.store.LoadConfig(ctx, ws)
	if err != nil {
		return nil, err
	}
	cc := compile(sc.Config, sc)
	cc.loadedAt = time.Now()
	// Pools written by a version before the eligible-member index get it
	// now, once; for every other pool this is one HGET.
	if built, _, err := e.store.IndexPools(ctx, ws, cc.id, poolIDs(cc.cfg), false, e.clock.Now()); err != nil && !errors.Is(err, ErrStaleConfig) {
		return nil, err
	} else if built > 0 {
		e.log.Info("pools indexed", "workspace", ws, "pools", built)
	}
	e.remember(ws, cc)
	return cc, nil
}

func poolIDs(cfg *Config) []string {
	ids := make([]string, len(cfg.Pools))
	for i, p := range cfg.Pools {
		ids[i] = p.ID
	}
	return ids
}

// remember caches what the store holds. The store is the truth: a config
// with a lower version than the cached one replaces it too (Redis may have
// lost its data and started counting again).
func (e *Engine) remember(ws string, cc *compiledConfig) {
	cc.workspace = ws
	e.mu.Lock()
	e.configs[ws] = cc
	e.mu.Unlock()
}

// joinViolations merges validation errors so a caller sees every problem at
// once; any other error is returned as it is.
func joinViolations(errs ...error) error {
	var all []FieldViolation
	for _, err := range errs {
		if err == nil {
			continue
		}
		var ve *ValidationError
		if !errors.As(err, &ve) {
			return err
		}
		all = append(all, ve.Violations...)
	}
	if len(all) == 0 {
		return nil
	}
	return &ValidationError{Violations: all}
}

// prefixViolations puts a request field in front of each violation's path.
func prefixViolations(prefix string, err error) error {
	var ve *ValidationError
	if !errors.As(err, &ve) {
		return err
	}
	for i := range ve.Violations {
		ve.Violations[i].Field = prefix + "." + ve.Violations[i].Field
	}
	return ve
}
