package store

import (
	"fmt"
	"strconv"
	"time"
)

// The replies, one type per script: each decodes its script's values as
// the script's header documents them ("Returns:"), for every code it
// answers, so that a value's position is written down once, here. Codes
// that carry a record ({OK, field, value, ...}) decode to its field pairs.
// TestRepliesMatchTheirScripts checks that each type knows every code its
// script returns.

// decideReply is lead_decide.lua's reply.
type decideReply struct {
	code     code
	backlog  bool         // OK: queued behind earlier leads on a pool with an eligible member
	record   packedRecord // OK: the new record, without pb
	existing []string     // DUPLICATE: the stored record's field, value pairs
	stored   int          // QUOTA: the workspace's records
}

func decodeDecide(r reply) decideReply {
	d := decideReply{code: r.code}
	switch r.code {
	case codeOK:
		d.backlog, d.record = r.val(0) == "1", packedRecord(r.val(1))
	case codeDuplicate:
		d.existing = r.vals
	case codeQuota:
		d.stored = count(r.val(0))
	}
	return d
}

// drainReply is queue_drain.lua's reply.
type drainReply struct {
	code     code
	blocked  bool     // OK: the pool ran out of eligible members
	skipped  int      // OK: leads left waiting: every eligible member breached their SLA
	assigned []string // OK: the leads assigned, in order
}

func decodeDrain(r reply) drainReply {
	d := drainReply{code: r.code}
	if r.code == codeOK && len(r.vals) >= 2 {
		d.blocked, d.skipped, d.assigned = r.val(0) == "1", count(r.val(1)), r.vals[2:]
	}
	return d
}

// leadReply is the reply of the scripts that act on one lead's record for
// a rep (assignment_close, offer_accept, lead_contact). WRONG_REP,
// NOT_FOUND and STALE are reply.leadError's.
type leadReply struct {
	code   code
	record []string  // OK: the record's field, value pairs
	state  string    // WRONG_STATE, EXPIRED: the lead's state
	closed string    // CONFLICT: the disposition the lead was closed with
	at     time.Time // EXPIRED: when the offer expired; BEFORE_SUBMISSION: the submission
}

func decodeLead(r reply) leadReply {
	l := leadReply{code: r.code}
	switch r.code {
	case codeOK:
		l.record = r.vals
	case codeWrongState:
		l.state = r.val(0)
	case codeConflict:
		l.closed = r.val(0)
	case codeExpired:
		l.state, l.at = r.val(0), msTime(r.val(1))
	case codeBeforeSubmission:
		l.at = msTime(r.val(0))
	}
	return l
}

// statusReply is rep_set_status.lua's and rep_connection.lua's reply.
type statusReply struct {
	code   code
	status string // OK: the presence before (rep_set_status) or after (rep_connection)
}

func decodeStatus(r reply) statusReply { return statusReply{code: r.code, status: r.val(0)} }

// movedReply is the reply of the scripts that file reps in pools'
// indexes: pool_index.lua {OK, built, moved} and rep_shift.lua {OK,
// changed, moved}.
type movedReply struct {
	code  code
	filed int // OK: pools built (pool_index), reps whose standing changed (rep_shift)
	moved int // OK: members that entered or left a rank
}

func decodeMoved(r reply) movedReply {
	return movedReply{code: r.code, filed: count(r.val(0)), moved: count(r.val(1))}
}

// placeReply is lead_escalate.lua's and lead_reroute.lua's reply.
type placeReply struct {
	code    code
	state   string // OK, WRONG_STATE, CLAIMED (reroute): the lead's state
	backlog bool   // OK: queued behind earlier leads on a pool with an eligible member
	pool    string // MOVED (escalate): the pool the lead waits on
}

func decodeEscalate(r reply) placeReply {
	p := placeReply{code: r.code}
	switch r.code {
	case codeOK:
		p.backlog, p.state = r.val(0) == "1", r.val(1)
	case codeWrongState:
		p.state = r.val(0)
	case codeMoved:
		p.pool = r.val(0)
	}
	return p
}

func decodeReroute(r reply) placeReply {
	p := placeReply{code: r.code}
	switch r.code {
	case codeOK:
		p.state, p.backlog = r.val(0), r.val(1) == "1"
	case codeWrongState, codeClaimed:
		p.state = r.val(0)
	}
	return p
}

// expireReply is lead_expire.lua's reply.
type expireReply struct {
	code code
	pool string // MOVED: the pool the lead waits on now
}

func decodeExpire(r reply) expireReply {
	e := expireReply{code: r.code}
	if r.code == codeMoved {
		e.pool = r.val(0)
	}
	return e
}

// timersReply is timers_claim.lua's reply: {OK, member, due, attempts,
// ...}, the member "<kind>|<lead>".
type timersReply struct {
	code    code
	claimed []claimedTimer
}

type claimedTimer struct {
	member   string
	due      time.Time
	attempts int
}

func decodeTimers(r reply) (timersReply, error) {
	t := timersReply{code: r.code}
	if r.code != codeOK {
		return t, nil
	}
	if len(r.vals)%3 != 0 {
		return t, fmt.Errorf("%d values, not triples", len(r.vals))
	}
	t.claimed = make([]claimedTimer, 0, len(r.vals)/3)
	for i := 0; i < len(r.vals); i += 3 {
		due, err := strconv.ParseInt(r.vals[i+1], 10, 64)
		if err != nil {
			return t, fmt.Errorf("due %q", r.vals[i+1])
		}
		t.claimed = append(t.claimed, claimedTimer{member: r.vals[i], due: time.UnixMilli(due).UTC(), attempts: count(r.vals[i+2])})
	}
	return t, nil
}

// countReply is the reply of the scripts that remove in steps:
// events_trim.lua {OK, removed, more}, timers_prune.lua {OK, cursor,
// removed} and timer_retry.lua {OK, parked, dropped}.
type countReply struct {
	code   code
	n      int    // OK: removed (events_trim, timers_prune); dropped (timer_retry)
	more   bool   // OK (events_trim): more to remove
	cursor string // OK (timers_prune): the next HSCAN cursor, "0" at the end
}

func decodeTrim(r reply) countReply {
	return countReply{code: r.code, n: count(r.val(0)), more: r.val(1) == "1"}
}

func decodePrune(r reply) countReply {
	return countReply{code: r.code, cursor: r.val(0), n: count(r.val(1))}
}

func decodeRetry(r reply) countReply { return countReply{code: r.code, n: count(r.val(1))} }

// applyReply is the reply of the config apply's scripts: config_begin
// {OK, id} {CONFLICT, current id} {QUEUED_POOL, i}; config_commit {OK, version, id} {INCOMPLETE, next}
// {STALE, id}; config_lease {OK, id, next, steps} {HELD, id, lease}
// {DONE, id}.
type applyReply struct {
	code    code
	id      string // the apply's or the config's id
	next    int    // the step due (commit INCOMPLETE, lease OK)
	pool    int    // QUEUED_POOL: the removed pool's index
	version string // commit OK: the new version
	person  string // commit OK: the workspace's person key
}

func decodeBegin(r reply) applyReply {
	a := applyReply{code: r.code, id: r.val(0)}
	if r.code == codeQueuedPool {
		a.id, a.pool = "", count(r.val(0))
	}
	return a
}

func decodeCommit(r reply) applyReply {
	a := applyReply{code: r.code}
	switch r.code {
	case codeOK:
		a.version, a.id, a.person = r.val(0), r.val(1), r.val(2)
	case codeIncomplete:
		a.next = count(r.val(0))
	case codeStale:
		a.id = r.val(0)
	}
	return a
}

func decodeLease(r reply) applyReply {
	a := applyReply{code: r.code, id: r.val(0)}
	if r.code == codeOK {
		a.next = count(r.val(1))
	}
	return a
}

// replyCodes are the codes each script answers, as its header documents
// them and its Store method handles them (any other is r.unexpected).
// Scripts not listed answer OK only.
var replyCodes = map[*script][]code{
	leadDecide:      {codeOK, codeStale, codeDuplicate, codeQuota},
	leadRemove:      {codeOK, codeClaimed, codeNotFound, codeWrongState, codeHeld},
	sinkAck:         {codeOK, codeClaimed},
	leadErase:       {codeOK, codeStale, codeNotFound, codeMoved},
	queueDrain:      {codeOK, codeStale},
	leadEscalate:    {codeOK, codeStale, codeMoved, codeClaimed, codeWrongState},
	leadReroute:     {codeOK, codeStale, codeClaimed, codeWrongState, codeWrongRep, codeMoved},
	leadExpire:      {codeOK, codeMoved, codeClaimed, codeWrongState},
	assignmentClose: {codeOK, codeStale, codeWrongRep, codeNotFound, codeWrongState, codeConflict, codeMoved},
	offerAccept:     {codeOK, codeWrongRep, codeNotFound, codeExpired, codeWrongState},
	leadContact:     {codeOK, codeWrongRep, codeBeforeSubmission, codeNotFound, codeWrongState},
	repSetStatus:    {codeOK, codeStale},
	repConnection:   {codeOK, codeStale},
	poolIndex:       {codeOK, codeStale},
	repShift:        {codeOK, codeStale},
	configBegin:     {codeOK, codeConflict, codeQueuedPool},
	configChunk:     {codeOK, codeStale, codeDone},
	configCommit:    {codeOK, codeStale, codeIncomplete},
	configLease:     {codeOK, codeDone, codeHeld},
}
