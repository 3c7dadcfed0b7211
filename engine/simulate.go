package engine

import (
	"context"
	"errors"
	"time"
)

// RecentLeadsKept is how many of a workspace's newest records the recent
// index names (store keys.recent), and so the most leads one simulation
// replays.
const RecentLeadsKept = 10_000

// DefaultSimulateLimit is how many leads SimulateConfig replays when the
// call names no limit.
const DefaultSimulateLimit = 1_000

// MaxSimulatedChanges bounds the changed leads a simulation lists; the
// rest are counted.
const MaxSimulatedChanges = 100

// SimulationNote says what a simulation is and is not.
const SimulationNote = "replays the leads' rules and pools: which rule each lead matches and which pool it is tried on first. " +
	"It does not say which rep would take a lead at a moment (presence, capacity, calendars, sticky owners and account owners " +
	"are not simulated), and rotation shares assume every member is eligible."

// Simulation is what a proposed config would do to the workspace's recent
// leads (SimulateConfig), compared with what the current config does to
// the same leads, both matched in Go with nothing written.
type Simulation struct {
	// Replayed is how many leads were replayed, received from Oldest to
	// Newest.
	Replayed       int
	Oldest, Newest time.Time
	// Rules and Pools count the leads per rule (its id; an account's
	// fallback as "account:<domain>") and per first target pool, before
	// and after, in the proposed config's order and then the ones it drops.
	Rules, Pools []SimulatedCount
	// Changed lists the leads whose rule or first pool changes, up to
	// MaxSimulatedChanges of ChangedTotal, newest first.
	Changed      []SimulatedChange
	ChangedTotal int
	// UnroutableBefore and UnroutableAfter count the leads no rule
	// matches; BecomeUnroutable those of them that matched before.
	UnroutableBefore, UnroutableAfter, BecomeUnroutable int
	// Shares is, for each pool of the proposed config with a rotation
	// strategy, each member's expected share of the pool's leads.
	Shares []PoolShare
	Note   string
}

// SimulatedCount is a rule's or a pool's lead count before and after.
type SimulatedCount struct {
	ID            string
	Before, After int
}

// SimulatedRoute is where one config sends one lead: the rule ("" for
// none), the first pool, and the rule trace that explains it.
type SimulatedRoute struct {
	RuleID, PoolID string
	Rules          []RuleEvaluation
}

// SimulatedChange is one lead whose rule or first pool changes.
type SimulatedChange struct {
	LeadID        string
	ReceivedAt    time.Time
	Before, After SimulatedRoute
}

// PoolShare is a rotation pool's expected split of the leads sent to it.
type PoolShare struct {
	PoolID   string
	Strategy Strategy
	Leads    int // leads whose first pool it is, after
	Members  []MemberShare
}

// MemberShare is a member's expected share of a rotation pool: its weight
// over the pool's (equal for ROUND_ROBIN), and that share of the pool's
// leads.
type MemberShare struct {
	RepID    string
	Weight   int32
	Share    float64
	Expected float64
}

// SimulateConfig replays up to limit of the workspace's most recent stored
// leads (DefaultSimulateLimit when 0, at most RecentLeadsKept) against a
// proposed config, in Go, writing nothing. An invalid config fails as an
// apply would, with every problem; a workspace without a config compares
// against nothing.
func (e *Engine) SimulateConfig(ctx context.Context, ws string, cfg *Config, limit int) (*Simulation, error) {
	ws, wsErr := NormalizeWorkspace(ws)
	var v violations
	switch {
	case limit < 0:
		v.add("limit", "must not be negative")
	case limit > RecentLeadsKept:
		v.add("limit", "%d is over the most leads a simulation replays, %d", limit, RecentLeadsKept)
	case limit == 0:
		limit = DefaultSimulateLimit
	}
	if err := joinViolations(wsErr, prefixViolations("config", cfg.Validate()), v.err()); err != nil {
		return nil, err
	}
	// The current config: the one decisions use when the cache holds it
	// (a large config compiles in tens of milliseconds), else compiled here.
	var before *compiledConfig
	switch cur, err := e.store.LoadConfig(ctx, ws); {
	case err == nil:
		e.mu.RLock()
		before = e.configs[ws]
		e.mu.RUnlock()
		if before == nil || before.id != cur.ID {
			before = compile(cur.Config, cur)
		}
	case !errors.Is(err, ErrNoConfig):
		return nil, err
	}
	leads, err := e.store.RecentLeads(ctx, ws, limit)
	if err != nil {
		return nil, err
	}
	return simulate(before, compile(cfg, nil), leads), nil
}

// simulate compares where before (nil: no config) and after send each
// lead.
func simulate(before, after *compiledConfig, leads []*Assignment) *Simulation {
	sim := &Simulation{Replayed: len(leads), Note: SimulationNote}
	rules, pools := newTally(), newTally()
	for _, r := range after.cfg.Rules {
		rules.row(r.ID)
	}
	for _, p := range after.cfg.Pools {
		pools.row(p.ID)
	}
	afterPools := map[string]int{}
	for _, a := range leads {
		if sim.Newest.IsZero() || a.ReceivedAt.After(sim.Newest) {
			sim.Newest = a.ReceivedAt
		}
		if sim.Oldest.IsZero() || a.ReceivedAt.Before(sim.Oldest) {
			sim.Oldest = a.ReceivedAt
		}
		var was routing
		if before != nil {
			was = before.route(&a.Lead)
		}
		now := after.route(&a.Lead)
		b, n := simulatedRoute(was), simulatedRoute(now)
		rules.count(b.RuleID, n.RuleID)
		pools.count(b.PoolID, n.PoolID)
		afterPools[n.PoolID]++
		if b.RuleID == "" {
			sim.UnroutableBefore++
		}
		if n.RuleID == "" {
			sim.UnroutableAfter++
			if b.RuleID != "" {
				sim.BecomeUnroutable++
			}
		}
		if b.RuleID != n.RuleID || b.PoolID != n.PoolID {
			if sim.ChangedTotal++; len(sim.Changed) < MaxSimulatedChanges {
				sim.Changed = append(sim.Changed, SimulatedChange{LeadID: a.LeadID, ReceivedAt: a.ReceivedAt, Before: b, After: n})
			}
		}
	}
	sim.Rules, sim.Pools = rules.rows(), pools.rows()
	for _, p := range after.cfg.Pools {
		if p.Strategy != StrategyRoundRobin && p.Strategy != StrategyWeightedRoundRobin {
			continue
		}
		sim.Shares = append(sim.Shares, poolShare(&p, afterPools[p.ID]))
	}
	return sim
}

func simulatedRoute(rt routing) SimulatedRoute {
	return SimulatedRoute{RuleID: rt.ruleLabel(), PoolID: rt.firstPool(), Rules: rt.evals}
}

// poolShare is a rotation pool's expected split of leads: a weighted round
// robin gives each member its weight's share, a round robin an equal one.
func poolShare(p *Pool, leads int) PoolShare {
	ps := PoolShare{PoolID: p.ID, Strategy: p.Strategy, Leads: leads}
	var total int64
	for _, m := range p.Members {
		total += int64(simWeight(p, m))
	}
	for _, m := range p.Members {
		w := simWeight(p, m)
		ms := MemberShare{RepID: m.RepID, Weight: w}
		if total > 0 {
			ms.Share = float64(w) / float64(total)
			ms.Expected = ms.Share * float64(leads)
		}
		ps.Members = append(ps.Members, ms)
	}
	return ps
}

func simWeight(p *Pool, m Member) int32 {
	if p.Strategy == StrategyWeightedRoundRobin {
		return m.EffectiveWeight()
	}
	return 1
}

// tally counts leads per id, before and after, keeping ids in the order
// first seen.
type tally struct {
	order []string
	byID  map[string]*SimulatedCount
}

func newTally() *tally { return &tally{byID: map[string]*SimulatedCount{}} }

func (t *tally) row(id string) *SimulatedCount {
	c := t.byID[id]
	if c == nil {
		c = &SimulatedCount{ID: id}
		t.byID[id] = c
		t.order = append(t.order, id)
	}
	return c
}

// count adds one lead counted under before and under after; "" (nothing
// matched) is not a row: the unroutable counts report it.
func (t *tally) count(before, after string) {
	if before != "" {
		t.row(before).Before++
	}
	if after != "" {
		t.row(after).After++
	}
}

// rows lists the counts: the proposed config's ids in its order, then the
// ids only the current config has, in the order first met.
func (t *tally) rows() []SimulatedCount {
	out := make([]SimulatedCount, 0, len(t.order))
	for _, id := range t.order {
		out = append(out, *t.byID[id])
	}
	return out
}
