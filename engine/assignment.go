package engine

import "time"

// State is where a lead stands.
type State string

// Every lead ends in one of these states: never lost, never assigned twice.
// MaxHistory is how many history entries a record keeps: past it the
// oldest are dropped and counted (Assignment.HistoryFolded). The store's
// scripts hold the same number (lib_workspace.lua HISTORY_MAX).
const MaxHistory = 200

// MaxRecordBytes bounds what a stored record takes in Redis (MEMORY USAGE).
// The parts at their limits: the lead about 80 KB (its field and attribute
// limits), the rule trace about 82 KB (maxRuleTrace misses and a match,
// each naming at most traceListItems values of traceTextBytes), the
// history about 94 KB (MaxHistory lines of a rep id and a 256-byte
// reason), the pick trace about 53 KB (MaxRuleTargets pools, each at most
// 22 lines), the other fields under 2 KB: about 311 KB, and Redis's own
// overhead on top. TestRecordSizeAtMaximum measures a record with the lead
// and the rule trace at their limits and a full history.
const MaxRecordBytes = 384 << 10

const (
	StateAssigned   State = "ASSIGNED"
	StateQueued     State = "QUEUED"
	StateUnroutable State = "UNROUTABLE"
	StateClosed     State = "CLOSED"
	StateOffered    State = "OFFERED"
)

// States lists every state, in lifecycle order.
var States = []State{StateOffered, StateAssigned, StateQueued, StateUnroutable, StateClosed}

// Disposition is the rep's verdict, which closes an assignment.
type Disposition string

// Dispositions.
const (
	Qualified Disposition = "QUALIFIED"
	Rejected  Disposition = "REJECTED"
	Recycled  Disposition = "RECYCLED"
)

// LifecycleEvent is one step of a lead's history.
type LifecycleEvent struct {
	At     time.Time
	Kind   string
	RepID  string
	Detail string
}

// Routes: how a rep was found.
const (
	RouteRule         = "rule"
	RouteAccountOwner = "account owner"
	RouteStickyOwner  = "sticky owner"
	RouteOperator     = "operator" // placed by an operator (Engine.ReassignLead)
)

// Assignment is the decision for one lead with its explanation.
type Assignment struct {
	LeadID        string
	State         State
	RepID         string // ASSIGNED only
	PoolID        string // the assigning pool, or the pool the lead is queued on
	RuleID        string // empty when UNROUTABLE
	Reason        string // why QUEUED or UNROUTABLE
	ReceivedAt    time.Time
	DecidedAt     time.Time
	ConfigVersion int64
	Trace         Trace
	Lead          Lead
	// ContentDiffers is set on a duplicate's answer (AssignLead of a lead
	// id recorded before) when the lead sent differs from the stored one,
	// which is what the answer carries. Not stored.
	ContentDiffers bool
	Route          string // RouteRule, RouteAccountOwner, RouteStickyOwner or RouteOperator
	// TargetIndex is the 1-based index, in the rule's targets, of the pool
	// that assigned or queues the lead (0 for none).
	TargetIndex int
	QueuedAt    time.Time
	ClosedAt    time.Time
	CloseReason string
	// The offer and first-contact lifecycle.
	OfferExpiresAt      time.Time // OFFERED only
	Offers              int       // offers made for the lead
	AcceptedAt          time.Time
	FirstContactAt      time.Time
	FirstContactChannel string
	Contacts            int
	FirstContactDue     time.Time // zero: no SLA
	Breaches            int
	Disposition         Disposition
	ReasonCode          string
	History             []LifecycleEvent
	// HistoryFolded is how many of the oldest history entries the record
	// dropped to keep at most MaxHistory.
	HistoryFolded int
	// PolicyPool is the pool whose offer and SLA policies the lead's
	// placement followed (for owner and sticky routes, not PoolID).
	PolicyPool string
	// Person is the person hash of the lead's email (Person; "" for none),
	// which names their sticky binding.
	Person string
}

// SpeedToLead is the time from the lead's submission to its first recorded
// contact; zero before any contact.
func (a *Assignment) SpeedToLead() time.Duration {
	if a.FirstContactAt.IsZero() {
		return 0
	}
	return a.FirstContactAt.Sub(a.Lead.SubmittedAt)
}

// Trace answers "why was this lead assigned to me?".
type Trace struct {
	Rules   []RuleEvaluation   // up to and including the matching rule
	Targets []TargetEvaluation // pools tried, in order
	Summary string             // one sentence
}

// RuleEvaluation records whether one rule matched and why, briefly.
type RuleEvaluation struct {
	RuleID  string `json:"rule_id"`
	Matched bool   `json:"matched"`
	Detail  string `json:"detail"`
}

// TargetEvaluation records one pool tried for a lead.
type TargetEvaluation struct {
	PoolID        string
	Label         string // for a single-rep target: "owner of the person's open lead ...", "account owner of ..."
	Strategy      Strategy
	PreviousRepID string      // the member picked last before this decision
	Candidates    []Candidate // in the order the strategy considered them; at most the first few skipped are named
	Skipped       []SkipCount // members passed over beyond those named, per reason
	Outcome       string
}

// Candidate is one rep a strategy looked at.
type Candidate struct {
	RepID      string
	Chosen     bool
	SkipReason string // e.g. "away", "offline"; empty when chosen
	Skip       Skip   // the reason as the store recorded it (Code empty in records older than skip codes)
}

// PlacedVerb is how the trace names the placement: "offered to" when the
// lead is offered, or was and then accepted; else "assigned to".
func (a *Assignment) PlacedVerb() string {
	if a.State == StateOffered || a.AcceptedAt.After(a.DecidedAt) {
		return "offered to"
	}
	return "assigned to"
}

// Chosen returns the chosen candidate of the evaluation, if any.
func (t TargetEvaluation) Chosen() (Candidate, bool) {
	for _, c := range t.Candidates {
		if c.Chosen {
			return c, true
		}
	}
	return Candidate{}, false
}

// PlacementPolicyPool is the pool whose offer and SLA policies the lead's
// placement followed: PolicyPool, or for records written before it, the
// lead's pool.
func (a *Assignment) PlacementPolicyPool() string {
	if a.PolicyPool != "" {
		return a.PolicyPool
	}
	return a.PoolID
}
