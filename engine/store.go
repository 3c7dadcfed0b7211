package engine

import (
	"context"
	"time"
)

// Store is the persistent, shared state of every workspace. Implementations
// must make each method atomic on its own: two engine replicas calling
// Decide for the same lead, or for the same pool, never both win.
type Store interface {
	// LoadConfig returns the workspace's current config; ErrNoConfig when
	// none was applied.
	LoadConfig(ctx context.Context, ws string) (*StoredConfig, error)
	// ApplyConfig replaces the config if the current version is still base
	// (0: none yet), else fails with ErrVersionConflict. prev is the config
	// stored at base (nil for none); the store uses it to clean up removed
	// pools and reps. Pools whose member list is unchanged keep their
	// rotation position; reps already present keep their presence; new reps
	// start with their initial status. Returns the new version.
	ApplyConfig(ctx context.Context, ws string, base int64, prev, next *Config, now time.Time) (int64, error)
	// Decide makes and, unless d.DryRun, records the decision for one lead
	// in one atomic step. It fails with ErrStaleConfig when d.ConfigVersion
	// is no longer current. A lead id already recorded returns the stored
	// assignment with Duplicate set and changes nothing.
	Decide(ctx context.Context, d *Decision) (*Outcome, error)
	// Assignment returns a recorded assignment; ErrNotFound when none.
	Assignment(ctx context.Context, ws, leadID string) (*Assignment, error)
	// SetRepStatus sets a rep's presence and returns the previous one;
	// ErrStaleConfig when version is no longer current.
	SetRepStatus(ctx context.Context, ws string, version int64, repID string, st RepStatus, now time.Time) (RepStatus, error)
	// RepRuntime returns the runtime state of the given reps, in order.
	RepRuntime(ctx context.Context, ws string, repIDs []string) ([]RepRuntime, error)
	// QueuedLeads returns up to limit lead ids queued on a pool, oldest
	// first.
	QueuedLeads(ctx context.Context, ws, poolID string, limit int) ([]string, error)
	// DrainQueue assigns the given queued leads of a pool, in order, while
	// the pool has an eligible member. Leads no longer queued (another
	// replica drained them) are skipped. ErrStaleConfig as for Decide.
	DrainQueue(ctx context.Context, ws string, version int64, poolID string, leadIDs []string, now time.Time) (*DrainResult, error)
	// Ping reports whether the store is reachable.
	Ping(ctx context.Context) error
}

// StoredConfig is a config with its version.
type StoredConfig struct {
	Config    *Config
	Version   int64
	AppliedAt time.Time
}

// Decision is everything the store needs to place one lead: the engine has
// matched the rule; the store picks the rep.
type Decision struct {
	Workspace     string
	ConfigVersion int64
	Lead          *Lead
	ReceivedAt    time.Time
	RuleID        string           // empty: no rule matched
	Rules         []RuleEvaluation // the rule trace
	Targets       []string         // pool ids in order; empty when no rule matched
	// QueuedReason is recorded when nobody in any target is eligible;
	// UnroutableReason when no rule matched.
	QueuedReason     string
	UnroutableReason string
	DryRun           bool
}

// Outcome is what Decide did.
type Outcome struct {
	Assignment *Assignment
	// Duplicate: the lead id was recorded before; Assignment is the stored
	// one.
	Duplicate bool
	// Backlog: a target pool had an eligible rep but also leads queued
	// before this one, so this lead was queued behind them. The caller
	// drains that pool (Assignment.PoolID) to keep arrival order.
	Backlog bool
}

// DrainResult is what DrainQueue did.
type DrainResult struct {
	Assigned []string // lead ids assigned, in order
	// Blocked: the pool ran out of eligible members before the list did.
	Blocked bool
}

// RepRuntime is what the engine knows of a rep at run time.
type RepRuntime struct {
	RepID           string
	Status          RepStatus // empty when the store has no record
	StatusChangedAt time.Time
	AssignedTotal   int64
	LastAssignedAt  time.Time
}
