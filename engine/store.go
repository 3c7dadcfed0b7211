package engine

import (
	"context"
	"time"
)

// Store is the persistent, shared state of every workspace. Implementations
// must make each method atomic on its own: two engine replicas calling
// Decide for the same lead, or for the same pool, never both win.
type Store interface {
	// SinkQueue is the sinks' side (sink.go).
	SinkQueue
	// LoadConfig returns the workspace's current config; ErrNoConfig when
	// none was applied.
	LoadConfig(ctx context.Context, ws string) (*StoredConfig, error)
	// ApplyConfig replaces the config if the current config id is still base
	// ("": none yet), else fails with ErrVersionConflict. prev is the config
	// stored at base (nil for none); the store uses it to clean up removed
	// pools and reps, and refuses (ErrPoolHasQueue) to remove a pool that
	// has queued leads unless moveQueued (the caller requeues them after:
	// a removed pool's queue is kept). Pools whose member list is unchanged keep their
	// rotation position; reps already present keep their presence; new reps
	// start with their initial status. Returns the new version and id.
	ApplyConfig(ctx context.Context, ws string, base string, prev, next *Config, now time.Time, moveQueued bool) (*StoredConfig, error)
	// HeldLeads scans ws's records for leads ASSIGNED or OFFERED to any of
	// reps: up to limit of them, and how many there are. O(records): an
	// apply that removes reps holding leads calls it (ConfigImpact).
	HeldLeads(ctx context.Context, ws string, reps []string, limit int) ([]HeldLead, int, error)
	// RecordConfigVersion keeps cfg, applied as v, in the workspace's
	// config history, and drops the oldest past keep versions.
	RecordConfigVersion(ctx context.Context, ws string, v ConfigVersion, cfg *Config, keep int) error
	// ConfigVersions lists the history's versions, newest first.
	ConfigVersions(ctx context.Context, ws string) ([]ConfigVersion, error)
	// ConfigAt returns a version's config from the history; ErrNotFound
	// when it is not kept.
	ConfigAt(ctx context.Context, ws string, version int64) (*Config, error)
	// ConfigSource returns the hash of the config file last applied from a
	// file (leadrouterd --config) and the version that apply made ("", 0
	// for none); SetConfigSource records them.
	ConfigSource(ctx context.Context, ws string) (hash string, version int64, err error)
	SetConfigSource(ctx context.Context, ws, hash string, version int64) error
	// Decide makes and, unless d.DryRun, records the decision for one lead
	// in one atomic step. It fails with ErrStaleConfig when d.ConfigID is
	// no longer current. A lead id already recorded returns the stored
	// assignment with Duplicate set and changes nothing.
	Decide(ctx context.Context, d *DecideRequest) (*Outcome, error)
	// Assignment returns a recorded assignment; ErrNotFound when none.
	Assignment(ctx context.Context, ws, leadID string) (*Assignment, error)
	// SetRepStatus sets a rep's presence, files the rep in the
	// eligible-member index of its pools (the rep's pools under configID),
	// and returns the previous status; ErrStaleConfig when configID is no
	// longer current.
	SetRepStatus(ctx context.Context, ws, configID, repID string, st RepStatus, pools []string, now time.Time) (RepStatus, error)
	// RepRuntime returns the runtime state of the given reps, in order;
	// days[i] is rep i's local day now (LocalDay), the day its daily count
	// is of.
	RepRuntime(ctx context.Context, ws string, repIDs []string, days []int64) ([]RepRuntime, error)
	// QueuedLeads returns up to limit lead ids queued on a pool, in queue
	// order, from offset.
	QueuedLeads(ctx context.Context, ws, poolID string, offset, limit int) ([]string, error)
	// DrainQueue assigns the given queued leads of a pool, in order, while
	// the pool has an eligible member. Leads no longer queued (another
	// replica drained them) are skipped. ErrStaleConfig as for Decide.
	// local is the local time of the config's zones at now.
	DrainQueue(ctx context.Context, ws, configID string, pool *Pool, leadIDs []string, sticky time.Duration, local LocalTimes, now time.Time) (*DrainResult, error)
	// CloseAssignment closes an ASSIGNED lead (a release or a disposition, see
	// Closing), or cancels a QUEUED one (a release); ranked lists the rep's least-loaded and longest-idle pools,
	// whose scores fall with the open count. A CLOSED lead closed the same
	// way is returned unchanged. ErrNotAssigned when the lead is offered
	// or unroutable, queued (a disposition), or closed otherwise; *WrongRepError when another
	// rep holds it; ErrStaleConfig as for Decide.
	CloseAssignment(ctx context.Context, ws, configID string, c *Closing, ranked []Pool, now time.Time) (*Assignment, error)
	// Accept turns repID's offer into the assignment (a no-op when accepted
	// already); *WrongRepError or *OfferGoneError otherwise.
	Accept(ctx context.Context, ws, leadID, repID string, now time.Time) (*Assignment, error)
	// Contact records a contact by the rep holding the lead; the first stops
	// the SLA timers.
	Contact(ctx context.Context, ws, leadID, repID, channel string, at, now time.Time) (*Assignment, error)
	// Reroute withdraws a lead from its rep (offer timeout, reject, SLA
	// breach with REASSIGN) and routes it again, or sends an SLA warning or
	// breach notice. Timer modes fire exactly once.
	Reroute(ctx context.Context, ws, configID string, r *Rerouting, now time.Time) (*RerouteResult, error)
	// DropTimer removes a timer that can do nothing (its lead is gone or
	// its kind unknown), if it is still due at t.Due.
	DropTimer(ctx context.Context, ws string, t Timer) error
	// DueWorkspaces returns those of wss with a timer due at now, in one
	// round trip: all an idle workspace costs a sweep.
	DueWorkspaces(ctx context.Context, wss []string, now time.Time) ([]string, error)
	// ClaimTimers claims up to limit of ws's due timers, oldest first, for
	// lease: no other call returns one of them until its lease ends or it
	// is set again for another deadline.
	ClaimTimers(ctx context.Context, ws string, now time.Time, limit int, lease time.Duration) ([]Timer, error)
	// RetryTimer moves a claimed timer whose firing failed to try again at
	// at, counting the attempt; with park it is parked instead (taken out
	// of the due set and kept, up to a bound; dropped is how many of the
	// oldest parked were dropped for it). A timer fired or set again
	// meanwhile is left alone.
	RetryTimer(ctx context.Context, ws string, t Timer, at time.Time, park bool) (dropped int, err error)
	// TimerRecovered forgets the failed attempts of a timer that fired.
	TimerRecovered(ctx context.Context, ws string, t Timer) error
	// PruneTimers forgets the failed attempts of timers that are gone,
	// returning how many.
	PruneTimers(ctx context.Context, ws string) (int, error)
	// Escalate fires a lead's escalation timer exactly once: the lead leaves
	// the queue of fromPool and is routed over next. Returns false when the
	// timer had fired already or the lead moved on; backlog as in Outcome.
	Escalate(ctx context.Context, ws, configID string, a *Assignment, next []DecisionTarget, firstIndex int, queuedReason string, sticky time.Duration, local LocalTimes, now time.Time) (fired, backlog bool, err error)
	// Expire fires a lead's expiry timer exactly once: a lead still queued
	// becomes UNROUTABLE with the reason. Returns false when the timer had
	// fired already or the lead is placed.
	Expire(ctx context.Context, ws, leadID, reason string, retain time.Duration, now time.Time) (bool, error)
	// BackfillRetention gives records written before retention existed a
	// retain timer and a place in the workspace's record count, once per
	// workspace (done: finished before). It scans every record of ws.
	BackfillRetention(ctx context.Context, ws string, retain time.Duration) (added int, done bool, err error)
	// BackfillPeople gives records written before person hashes existed
	// their person hash and person index entry, and renames sticky keys
	// named by an address to their person hash (personKey:
	// StoredConfig.PersonKey), once per workspace (done: finished before).
	// It scans every record and sticky key of ws.
	BackfillPeople(ctx context.Context, ws, personKey string) (converted int, done bool, err error)
	// RecentLeads returns the records of up to limit of ws's newest leads
	// (at most RecentLeadsKept are indexed), newest first: the lead, its
	// rule, pool and state, without history or picks.
	RecentLeads(ctx context.Context, ws string, limit int) ([]*Assignment, error)
	// StoredLeads counts ws's records per state.
	StoredLeads(ctx context.Context, ws string) (map[State]int64, error)
	// PersonLeads lists up to limit ids of the leads of person (a person
	// hash) that have records, from the person index.
	PersonLeads(ctx context.Context, ws, person string, limit int) ([]string, error)
	// EraseLead erases the lead whose record was read as e.Assignment, in
	// whatever state it is (see Erasure). moved reports a record that
	// changed since it was read: read it again and call again. ErrNotFound
	// when it has no record.
	EraseLead(ctx context.Context, ws, configID string, e *Erasure, now time.Time) (moved bool, err error)
	// ForgetPerson deletes person's sticky binding, whatever lead it names.
	ForgetPerson(ctx context.Context, ws, person string) error
	// RemoveLead removes a CLOSED or UNROUTABLE lead's record whose
	// retention has ended (its TimerRetain is due), with its timers; false when the timer was fired already or
	// the lead is gone.
	// With hold (a POSTGRES sink is configured) the removal waits until
	// that sink has delivered every event of the lead; the timer is set
	// again a minute on and false returned.
	RemoveLead(ctx context.Context, ws, leadID string, hold *ArchiveHold, now time.Time) (bool, error)
	// QueuedPools lists the pools that have queued leads.
	QueuedPools(ctx context.Context, ws string) ([]string, error)
	// QueueStats returns, for each pool of ws with leads queued, how many
	// and when the earliest arrival among the first scan of them (in
	// priority order) was queued.
	QueueStats(ctx context.Context, ws string, scan int) (map[string]QueueStat, error)
	// Workspaces lists every workspace that has a config.
	Workspaces(ctx context.Context) ([]string, error)
	// RegisterWorkspaces finds every workspace that has a config and adds
	// those Workspaces lacks (a registration lost between an apply and its
	// registration), returning how many it added.
	RegisterWorkspaces(ctx context.Context) (int, error)
	// EventsEpoch returns the epoch of the workspace's event history,
	// creating one when there is none (a new history, or Redis lost it).
	EventsEpoch(ctx context.Context, ws string) (string, error)
	// LastEventID returns the id of the newest event ("0-0" for none).
	LastEventID(ctx context.Context, ws string) (string, error)
	// HasEvent reports whether the history holds the event id.
	HasEvent(ctx context.Context, ws, id string) (bool, error)
	// EventTallies returns, for each workspace of one FeedGroup whose store
	// counts appends, the history's newest id and how many events were
	// ever appended to it (in one read, so the two agree). A store that
	// does not count them (the embedded one) leaves its workspaces out.
	EventTallies(ctx context.Context, wss []string) (map[string]EventTally, error)
	// EventsAfter returns up to limit events after the id after, oldest
	// first.
	EventsAfter(ctx context.Context, ws, after string, limit int) ([]Event, error)
	// FeedGroup names the group of workspaces whose streams one ReadFeeds
	// can wait on together.
	FeedGroup(ws string) string
	// ReadFeeds waits up to block for events after each workspace's id (the
	// workspaces of one FeedGroup) and returns up to limit of each, oldest
	// first, by workspace. Its connections are not the ones requests use.
	ReadFeeds(ctx context.Context, after map[string]string, limit int, block time.Duration) (map[string][]Event, error)
	// TrimEventsFor applies retention: events beyond maxLen or older than
	// maxAge are removed, and TrimmedThrough remembers the newest of them.
	// The sinks' groups hold the length limit back at the oldest event one
	// of them has not acknowledged; the age limit is not held back, and
	// what it removes before a sink delivered it is returned as losses.
	TrimEventsFor(ctx context.Context, ws string, maxLen int64, maxAge time.Duration, now time.Time, sinks []string) (int64, []SinkLoss, error)
	// TrimmedThrough returns the id of the newest event removed from the
	// history by retention ("0-0" for none): a client whose position is
	// before it has missed events.
	TrimmedThrough(ctx context.Context, ws string) (string, error)
	// RepConnection records a rep's desktop connecting (connect: restores
	// the status an earlier lost connection took away) or, when its last
	// heartbeat is at or before lostBefore, losing it (an AVAILABLE rep goes
	// OFFLINE). A change files the rep in the eligible-member index of its
	// pools under configID. Returns the rep's status after; ErrStaleConfig
	// when configID is no longer current.
	RepConnection(ctx context.Context, ws, configID, repID string, pools []string, connect bool, lostBefore, now time.Time) (RepStatus, error)
	// IndexPools builds the eligible-member index of the given pools of
	// configID that have none (written by a version before it) and, with
	// repair, files every member of every one of them by its presence now.
	// It returns how many pools it indexed and how many members a repair
	// moved; ErrStaleConfig when configID is no longer current.
	IndexPools(ctx context.Context, ws, configID string, pools []string, repair bool, now time.Time) (built, moved int, err error)
	// FileShifts files each rep by where it stands in its calendar at now
	// (engine/shifts.go) in the eligible-member index of its pools under
	// configID: inside it, a rep is ranked while AVAILABLE; outside, it is
	// not. A standing computed at an instant no later than the one kept is
	// ignored. It returns how many reps' standing changed; ErrStaleConfig
	// when configID is no longer current.
	FileShifts(ctx context.Context, ws, configID string, reps []ShiftFiling, now time.Time) (changed int, err error)
	// Heartbeat notes that these reps have a desktop stream open now
	// (onlyNew: only reps with no heartbeat yet).
	Heartbeat(ctx context.Context, ws string, repIDs []string, now time.Time, onlyNew bool) error
	// LostConnections returns up to limit reps whose last heartbeat is at or
	// before before.
	LostConnections(ctx context.Context, ws string, before time.Time, limit int) ([]string, error)
	// Ping reports whether the store is reachable.
	Ping(ctx context.Context) error
	// Time is the store's clock (the one every replica shares).
	Time(ctx context.Context) (time.Time, error)
}

// ShardedStore is a Store spread over several servers (a Redis Cluster's
// masters). A server that is down fails only the calls of the workspaces it
// holds, so a replica serves while any of them answers.
type ShardedStore interface {
	Store
	// PingShards pings every server and returns how many did not answer
	// out of how many there are.
	PingShards(ctx context.Context) (down, total int)
}

// Timer is a due deadline of one lead.
type Timer struct {
	Kind   TimerKind
	LeadID string
	Due    time.Time
	// Attempts is how many times firing it failed before (ClaimTimers).
	Attempts int
}

// Member is the timer's member of the workspace's timers set:
// "<kind>|<lead>".
func (t Timer) Member() string { return string(t.Kind) + "|" + t.LeadID }

// TimerKind says what a timer does when it fires.
type TimerKind string

// Timer kinds.
const (
	// TimerOffer withdraws an offer not accepted in time.
	TimerOffer TimerKind = "offer"
	// TimerSLA fires when the first-contact SLA runs out.
	TimerSLA TimerKind = "sla"
	// TimerWarn sends the SLA warning.
	TimerWarn TimerKind = "warn"
	// TimerEscalate moves a queued lead to its rule's next target.
	TimerEscalate TimerKind = "escalate"
	// TimerExpire makes a lead queued past max_queue_age UNROUTABLE.
	TimerExpire TimerKind = "expire"
	// TimerRetain removes a CLOSED or UNROUTABLE lead's record once
	// settings.retain_closed has passed.
	TimerRetain TimerKind = "retain"
)

// ConfigVersion is one entry of a workspace's config history.
type ConfigVersion struct {
	Version   int64
	AppliedAt time.Time
	By        string // the applying credential's name ("" without auth)
	Summary   string // the diff against the version before, in one line
}

// StoredConfig is a config with its version and id. The version counts
// applies; the id (version plus a random nonce) names this very apply, so a
// replica can never mistake another config of the same version (after Redis
// lost its data and the count started again) for the one it holds.
type StoredConfig struct {
	Config    *Config
	Version   int64
	ID        string
	AppliedAt time.Time
	// PersonKey is the workspace's secret for person hashes (Person),
	// made at its first apply and kept by every later one.
	PersonKey string
}

// DecideRequest is everything the store needs to place one lead: the engine has
// matched the rule; the store picks the rep.
type DecideRequest struct {
	Workspace     string
	ConfigVersion int64
	ConfigID      string
	Lead          *Lead
	ReceivedAt    time.Time
	RuleID        string           // empty: no rule matched
	Rules         []RuleEvaluation // the rule trace
	Targets       []DecisionTarget // in order; empty when no rule matched
	// StickyWindow > 0 enables sticky dedupe on Lead.Email, whose person
	// hash is Person ("" for no email).
	StickyWindow time.Duration
	Person       string
	// Owner is the account owner tried before the targets ("" for none);
	// Domain names the account in the trace.
	Owner, Domain string
	// ExpireAt is when a queued lead becomes UNROUTABLE (zero: never).
	ExpireAt time.Time
	// Quota is how many records the workspace may hold
	// (settings.max_stored_leads); Retain how long a lead decided
	// UNROUTABLE is kept (settings.retain_closed).
	Quota  int64
	Retain time.Duration
	// QueuedReason is recorded when nobody in any target is eligible;
	// UnroutableReason when no rule matched.
	QueuedReason     string
	UnroutableReason string
	DryRun           bool
	// Local is the local time of the config's zones at ReceivedAt.
	Local LocalTimes
	// View is how much of the assignment the caller reads: ViewBasic lets
	// the store leave out the pick trace and the history.
	View View
	// ReceivedNote is the detail of the history's "received" entry (a
	// submitted_at clamped to the time received; "" for none).
	ReceivedNote string
}

// DecisionTarget is one pool a decision may use.
type DecisionTarget struct {
	Pool              *Pool
	SkipIfUnavailable bool
	Wait              time.Duration
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
	// Skipped: leads left waiting because every eligible member breached
	// their SLA; they do not block the leads behind them.
	Skipped int
}

// QueueStat describes one pool's queue.
type QueueStat struct {
	Queued         int64
	OldestQueuedAt time.Time // zero when unknown
}

// RepRuntime is what the engine knows of a rep at run time.
type RepRuntime struct {
	RepID           string
	Status          RepStatus // empty when the store has no record
	StatusChangedAt time.Time
	AssignedTotal   int64
	LastAssignedAt  time.Time
	Open            int64 // assignments held now
	AssignedToday   int64 // since midnight in the rep's time zone
}

// Closing is what Store.CloseAssignment needs: a release (no disposition) or a
// disposition by the rep.
type Closing struct {
	LeadID, RepID, Reason string
	Disposition           Disposition
	ReasonCode            string
	// Retain is how long the closed record is kept (settings.retain_closed).
	Retain time.Duration
	// Pool is the queue of a QUEUED lead a release cancels, as read
	// ("" for a lead read in any other state); ErrConflict when the lead
	// is queued elsewhere now.
	Pool string
}

// RerouteMode says why a lead is taken from its rep (or only warned about).
type RerouteMode string

// Reroute modes.
const (
	RerouteTimeout RerouteMode = "timeout"
	RerouteReject  RerouteMode = "reject"
	RerouteBreach  RerouteMode = "breach"
	RerouteWarn    RerouteMode = "warn"
	// RerouteRequeue and RerouteReassign are an operator's moves
	// (Engine.RequeueLead, ReassignLead): they take a QUEUED, UNROUTABLE,
	// OFFERED or ASSIGNED lead from where it is, and fail with ErrConflict
	// when the record is no longer as Assignment read it.
	RerouteRequeue  RerouteMode = "requeue"
	RerouteReassign RerouteMode = "reassign"
)

// Erasure is what Store.EraseLead needs: the lead as read (its state, rep,
// pool and person choose the keys the erasure touches; only its id and
// person when it had no record), the holder's least-loaded and
// longest-idle pools, whose scores its open count moves, and Person, set
// when a person is erased (EraseContact): the record must be theirs (else
// their stale index entry for the id goes, and the answer is ErrNotFound),
// and their sticky binding goes whatever lead it names.
type Erasure struct {
	Assignment *Assignment
	Ranked     []Pool
	Person     string
}

// Rerouting is what Store.Reroute needs.
type Rerouting struct {
	// Retain is how long the record is kept should the lead end UNROUTABLE
	// (settings.retain_closed).
	Retain       time.Duration
	Mode         RerouteMode
	Assignment   *Assignment // the record as the caller read it
	RepID        string      // the rep expected to hold the lead
	Reason       string
	Targets      []DecisionTarget
	FirstIndex   int // rule index (1-based) of Targets[0]
	QueuedReason string
	Sticky       time.Duration
	// Ranked lists the holder's least-loaded and longest-idle pools, whose
	// scores fall when the lead is withdrawn.
	Ranked []Pool
	// ExpireAt is when the lead becomes UNROUTABLE if it ends up queued
	// (zero: never; an earlier expiry is kept).
	ExpireAt time.Time
	// Local is the local time of the config's zones now.
	Local LocalTimes
	// Policy is the pool whose offer and SLA policies the lead's placement
	// followed (nil when the config no longer has it).
	Policy *Pool
	// To is the rep RerouteReassign gives the lead to, in Targets[0]'s
	// pool.
	To string
}

// RerouteResult is what Store.Reroute did.
type RerouteResult struct {
	Done    bool  // false: nothing to do (timer fired already, offer accepted...)
	State   State // the lead's state now
	Backlog bool  // queued behind earlier leads on a pool with an eligible rep
}

// EventTally is a history's newest id and how many events were ever
// appended to it. Retention does not lower Added; only a store that lost
// appends (restored from an older copy, a failover that lost writes) does.
type EventTally struct {
	Last  string
	Added int64
}
