package engine

import (
	"context"
	"time"
)

// Observer is told what this replica's calls did, for metrics. Every fact
// is reported once, by the replica whose call produced it, so counters
// summed over replicas count each lead once. Implementations must be fast
// and safe for concurrent use; they must not call back into the engine.
type Observer interface {
	// LeadDecided reports one AssignLead call that reached the store:
	// its outcome, the pool it names ("" for none) and how long the call
	// took.
	LeadDecided(ws string, outcome DecideOutcome, pool string, took time.Duration)
	// StoreRegressed reports a sign that the store lost acknowledged
	// writes: a stream resumed from past the end of the event history.
	StoreRegressed(ws string)
	// QuotaRefused reports an AssignLead refused for the workspace's
	// settings.max_stored_leads.
	QuotaRefused(ws string)
	// Recorded reports facts a store call produced (see Fact).
	Recorded(ws string, facts []Fact)
	// StoreFailed reports a failed store operation: op names it (a script
	// or command), err is what the store returned.
	StoreFailed(op string, err error)
	// TimerFired reports a due timer this replica fired, late by how long
	// after its due time (by this replica's clock).
	TimerFired(ws string, kind TimerKind, late time.Duration)
	// TimerFailed reports a timer whose firing failed; parked when it will
	// not be tried again.
	TimerFailed(ws string, kind TimerKind, parked bool)
	// Swept reports one sweep of every workspace and how long it took.
	Swept(took time.Duration)
	// SinkLost reports events retention removed (settings.events_max_age)
	// before a sink delivered them.
	SinkLost(ws, sinkID string, n int64)
}

// DecideOutcome is what one AssignLead call did.
type DecideOutcome string

// AssignLead outcomes.
const (
	OutcomeAssigned   DecideOutcome = "assigned" // placed with a rep (offered or assigned)
	OutcomeQueued     DecideOutcome = "queued"
	OutcomeUnroutable DecideOutcome = "unroutable"
	OutcomeDuplicate  DecideOutcome = "duplicate" // the lead id was seen before; nothing changed
)

// Fact is one thing a store call did: an event it wrote (Kind is the
// event's kind: offered, accepted, offer_rejected, offer_withdrawn,
// first_contact, sla_breached, auto_paused, ...) or FactDequeued.
type Fact struct {
	Kind   EventKind // or FactDequeued
	PoolID string
	// Took is what the fact measures, when it measures something:
	// accepted: offer to accept; first_contact: submission to first
	// contact (speed to lead); dequeued: time spent queued. Negative when
	// it measures nothing.
	Took time.Duration
}

// FactDequeued: a queued lead left its queue, placed with a rep or given
// up on (UNROUTABLE). It is not an event of its own.
const FactDequeued EventKind = "dequeued"

// FactRemoved: a lead's record was removed when its retention ended
// (settings.retain_closed). Took is how long it had been closed.
const FactRemoved EventKind = "removed"

// Nop is an Observer that ignores everything.
type Nop struct{}

func (Nop) LeadDecided(string, DecideOutcome, string, time.Duration) {}
func (Nop) QuotaRefused(string)                                      {}
func (Nop) StoreRegressed(string)                                    {}
func (Nop) Recorded(string, []Fact)                                  {}
func (Nop) StoreFailed(string, error)                                {}
func (Nop) TimerFired(string, TimerKind, time.Duration)              {}
func (Nop) TimerFailed(string, TimerKind, bool)                      {}
func (Nop) Swept(time.Duration)                                      {}
func (Nop) SinkLost(string, string, int64)                           {}

var _ Observer = Nop{}

// queueScan bounds how many queued leads of one pool QueueState looks at to
// find the oldest.
const queueScan = 10000

// PoolQueue is the queue of one pool of a workspace's config.
type PoolQueue struct {
	PoolID string
	Queued int64
	// OldestAge is how long the earliest arrival still queued has waited
	// (0 for an empty queue). In a queue longer than 10,000 leads only the
	// first 10,000 in priority order are looked at.
	OldestAge time.Duration
}

// Workspaces lists every workspace that has a config.
func (e *Engine) Workspaces(ctx context.Context) ([]string, error) {
	return e.store.Workspaces(ctx)
}

// StoredLeads returns how many records ws holds in each state (the counts
// its scripts keep as records change state, read in one command).
func (e *Engine) StoredLeads(ctx context.Context, ws string) (map[State]int64, error) {
	ws, err := NormalizeWorkspace(ws)
	if err != nil {
		return nil, err
	}
	return e.store.StoredLeads(ctx, ws)
}

// QueueState returns the queue of every pool in ws's config, in config
// order.
func (e *Engine) QueueState(ctx context.Context, ws string) ([]PoolQueue, error) {
	cc, err := e.config(ctx, ws, false)
	if err != nil {
		return nil, err
	}
	stats, err := e.store.QueueStats(ctx, ws, queueScan)
	if err != nil {
		return nil, err
	}
	now := e.clock.Now()
	out := make([]PoolQueue, len(cc.cfg.Pools))
	for i, p := range cc.cfg.Pools {
		st := stats[p.ID]
		out[i] = PoolQueue{PoolID: p.ID, Queued: st.Queued}
		if st.Queued > 0 && !st.OldestQueuedAt.IsZero() && now.After(st.OldestQueuedAt) {
			out[i].OldestAge = now.Sub(st.OldestQueuedAt)
		}
	}
	return out, nil
}
