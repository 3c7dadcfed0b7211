package engine

import (
	"strconv"
	"strings"
	"time"
)

// Event is one entry of a workspace's event history, written by the store
// in the same atomic step as the change it reports.
type Event struct {
	ID     string // position in the history, "<ms>-<seq>"; grows
	At     time.Time
	Kind   EventKind
	LeadID string
	RepID  string
	PoolID string
	Detail string
}

// EventKind is what an event records, as the store's scripts write it
// (see event.proto for each kind's meaning).
type EventKind string

const (
	EventOffered          EventKind = "offered"
	EventOfferWithdrawn   EventKind = "offer_withdrawn" // an offer not accepted in time
	EventOfferRejected    EventKind = "offer_rejected"
	EventAccepted         EventKind = "accepted"
	EventAssigned         EventKind = "assigned"
	EventQueued           EventKind = "queued"
	EventUnroutable       EventKind = "unroutable"
	EventEscalated        EventKind = "escalated"
	EventReassigned       EventKind = "reassigned"
	EventSLAWarning       EventKind = "sla_warning"
	EventSLABreached      EventKind = "sla_breached"
	EventFirstContact     EventKind = "first_contact"
	EventDispositioned    EventKind = "dispositioned"
	EventReleased         EventKind = "released"
	EventAutoPaused       EventKind = "auto_paused"
	EventRepStatusChanged EventKind = "rep_status_changed"
	EventErased           EventKind = "erased" // the lead's record was erased (Engine.EraseLead)
)

// EventKinds lists every kind.
var EventKinds = []EventKind{EventOffered, EventOfferWithdrawn, EventOfferRejected, EventAccepted, EventAssigned,
	EventQueued, EventUnroutable, EventEscalated, EventReassigned, EventSLAWarning, EventSLABreached,
	EventFirstContact, EventDispositioned, EventReleased, EventAutoPaused, EventRepStatusChanged, EventErased}

// Position is where a client stands in a workspace's event history.
type Position struct {
	Epoch  string // changes when the history is reset
	Offset string // an Event.ID
}

// EventIDLess orders event ids ("<ms>-<seq>") numerically.
func EventIDLess(a, b string) bool {
	am, as := splitEventID(a)
	bm, bs := splitEventID(b)
	if am != bm {
		return am < bm
	}
	return as < bs
}

func splitEventID(id string) (uint64, uint64) {
	ms, seq, _ := strings.Cut(id, "-")
	m, _ := strconv.ParseUint(ms, 10, 64)
	s, _ := strconv.ParseUint(seq, 10, 64)
	return m, s
}

// EventTime is when an event was produced: its id's milliseconds.
func EventTime(id string) time.Time {
	ms, _ := splitEventID(id)
	return time.UnixMilli(int64(ms))
}

// ValidEventID reports whether id has the "<ms>-<seq>" form.
func ValidEventID(id string) bool {
	ms, seq, ok := strings.Cut(id, "-")
	_, err1 := strconv.ParseUint(ms, 10, 64)
	_, err2 := strconv.ParseUint(seq, 10, 64)
	return ok && err1 == nil && err2 == nil
}
