package store

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/leadrouter/leadrouter/engine"
)

// The contract between Go and each script: the script's keys, and one
// request, a JSON object its Lua reads as A (contract.lua). A script that
// stores a payload it never reads gets it as a second argument, as bytes.
// Every reply is {code, value, ...}: a code (below) that means the same in
// every script, then values as the script documents them. Text meant for
// people is rendered in Go (engine.Skip and the store's readers), not in
// Lua.

// code is a script's outcome; contract.lua's C table holds the same values.
type code int

const (
	codeOK               code = 0  // done; the values are the script's result
	codeStale            code = 1  // the config id the caller holds is not current
	codeDuplicate        code = 2  // the lead is recorded already: its record
	codeNotFound         code = 3  // no record of the lead
	codeWrongState       code = 4  // the lead is not in a state the call acts on: its state
	codeWrongRep         code = 5  // the lead is offered to or held by another rep: rep, state
	codeMoved            code = 6  // the lead waits on another pool than the caller read: that pool
	codeClaimed          code = 7  // the timer was fired already
	codeConflict         code = 8  // the change contradicts one made before: what was made
	codeExpired          code = 9  // the rep's offer expired: when, unix ms
	codeBeforeSubmission code = 10 // a contact dated before the submission: the submission, unix ms
	codeDone             code = 11 // the step was carried out already: the step due
	codeIncomplete       code = 12 // the apply's steps are not all carried out: the step due
	codeQueuedPool       code = 13 // a pool to remove holds queued leads: its index
	codeHeld             code = 14 // another applier holds a live lease
	codeQuota            code = 15 // the workspace holds its quota of records: the count
)

var codeNames = map[code]string{
	codeOK: "OK", codeStale: "STALE", codeDuplicate: "DUPLICATE", codeNotFound: "NOT_FOUND",
	codeWrongState: "WRONG_STATE", codeWrongRep: "WRONG_REP", codeMoved: "MOVED", codeClaimed: "CLAIMED",
	codeConflict: "CONFLICT", codeExpired: "EXPIRED", codeBeforeSubmission: "BEFORE_SUBMISSION",
	codeDone: "DONE", codeIncomplete: "INCOMPLETE", codeQueuedPool: "QUEUED_POOL", codeHeld: "HELD", codeQuota: "QUOTA",
}

func (c code) String() string {
	if n, ok := codeNames[c]; ok {
		return n
	}
	return "code " + strconv.Itoa(int(c))
}

// reply is a script's answer: its code and values.
type reply struct {
	code code
	vals []string
}

// val returns value i ("" past the end).
func (r reply) val(i int) string {
	if i < len(r.vals) {
		return r.vals[i]
	}
	return ""
}

// leadError is the engine error of a code that means the same from every
// script that acts on a lead: STALE, NOT_FOUND, and WRONG_REP (rep, state;
// held is the state to report when the reply names none). ok is false for
// the other codes, whose meaning the caller knows.
func (r reply) leadError(leadID string, held engine.State) (err error, ok bool) {
	switch r.code {
	case codeStale:
		return engine.ErrStaleConfig, true
	case codeNotFound:
		return fmt.Errorf("lead %q: %w", leadID, engine.ErrNotFound), true
	case codeWrongRep:
		state := engine.State(r.val(1))
		if state == "" {
			state = held
		}
		return &engine.WrongRepError{LeadID: leadID, Holder: r.val(0), State: state}, true
	}
	return nil, false
}

// unexpected is the error for a code a caller does not handle.
func (r reply) unexpected(sc *script) error {
	return fmt.Errorf("store %s: unexpected reply %v %q", sc.name, r.code, r.vals)
}

func (b base) isDry() bool { return b.Dry }

// base is what every routing script's request starts with (lib_workspace).
type base struct {
	Cfg string `json:"cfg"` // the config id the caller holds
	Now int64  `json:"now"` // unix ms
	Dry bool   `json:"dry,omitempty"`
	// Retain is how long a lead that reaches CLOSED or UNROUTABLE is kept,
	// ms (settings.retain_closed): the scripts that put it there set its
	// retain timer (lib_workspace retain).
	Retain int64 `json:"retain,omitempty"`
	// Zones is the local time of the config's zones at now, for the scripts
	// that check reps' calendars and count their days (lib_eligibility), as
	// zonesArg encodes it.
	Zones string `json:"zones,omitempty"`
}

// commitArgs is config_commit's request: ws, on one server, is registered
// in the workspace list with the commit.
type commitArgs struct {
	base
	WS        string `json:"ws,omitempty"`
	PersonKey string `json:"person_key"`
}

// zonesArg encodes local times as ";zone=day,minute;zone=day,minute;": one
// string, which a script searches for the few zones it needs, rather than
// an object cjson would turn into a table per zone on every call (a
// 19-zone config's zones cost 20 µs of decoding that way). The engine
// hands out one LocalTimes per config and second, so the last encoding is
// kept and reused while the same map comes back.
func zonesArg(local engine.LocalTimes) string {
	if len(local) == 0 {
		return ""
	}
	if c := lastZones.Load(); c != nil && reflect.ValueOf(c.local).UnsafePointer() == reflect.ValueOf(local).UnsafePointer() {
		return c.enc
	}
	var b strings.Builder
	b.WriteByte(';')
	for zone, t := range local {
		b.WriteString(zone)
		b.WriteByte('=')
		b.WriteString(strconv.FormatInt(t[0], 10))
		b.WriteByte(',')
		b.WriteString(strconv.FormatInt(t[1], 10))
		b.WriteByte(';')
	}
	enc := b.String()
	// The cache holds the map, so its address is not reused for another.
	lastZones.Store(&zonesCache{local: local, enc: enc})
	return enc
}

type zonesCache struct {
	local engine.LocalTimes
	enc   string
}

var lastZones atomic.Pointer[zonesCache]

func at(cfg string, now int64) base { return base{Cfg: cfg, Now: now} }

// policyArg is a pool's offer and first-contact policies, from the config:
// scripts read them from the request, not from the pool's hash (which
// config_chunk still writes for replicas of older versions). Zero is off.
type policyArg struct {
	Accept    int64  `json:"accept"`     // ms a rep has to accept an offer (0: no offers)
	Cooldown  int64  `json:"cooldown"`   // ms a rejecting rep is skipped in the pool
	MaxMissed int32  `json:"max_missed"` // offers in a row not accepted that set a rep AWAY
	MaxOffers int32  `json:"max_offers"` // withdrawn offers after which a lead is queued
	SLA       int64  `json:"sla"`        // ms to the first contact
	Warn      int64  `json:"warn"`       // ms to the SLA warning
	Breach    string `json:"breach"`     // NOTIFY or REASSIGN
}

// policyOf is a pool's policyArg (all off for a pool the config lacks).
func policyOf(p *engine.Pool) policyArg {
	if p == nil {
		return policyArg{}
	}
	return policyArg{Accept: p.Accept().Milliseconds(), Cooldown: time.Duration(p.RejectCooldown).Milliseconds(),
		MaxMissed: p.MissedOffersLimit(), MaxOffers: p.MaxOffers,
		SLA: time.Duration(p.FirstContactWithin).Milliseconds(), Warn: time.Duration(p.WarnAt).Milliseconds(),
		Breach: string(p.OnBreach)}
}

// targetArg is one routing target (lib_pick read_targets) with its pool's
// policies.
type targetArg struct {
	Pool string `json:"pool"`
	Skip bool   `json:"skip"` // skip_if_unavailable
	Wait int64  `json:"wait"` // ms to wait here before escalating (0: none)
	policyArg
}

// targetArgs adds the targets' keys and returns their requests.
func targetArgs(k keys, ks []string, targets []engine.DecisionTarget) ([]string, []targetArg) {
	out := make([]targetArg, len(targets))
	for i, t := range targets {
		ks = k.target(ks, t.Pool.ID)
		out[i] = targetArg{Pool: t.Pool.ID, Skip: t.SkipIfUnavailable, Wait: t.Wait.Milliseconds(), policyArg: policyOf(t.Pool)}
	}
	return ks, out
}

// call runs a script with its request (and payloads) and returns its reply.
func (s *Redis) call(ctx context.Context, ws string, sc *script, keys []string, req any, payload ...any) (reply, error) {
	arg, err := json.Marshal(req)
	if err != nil {
		return reply{}, fmt.Errorf("store %s: request: %w", sc.name, err)
	}
	args := make([]any, 0, 1+len(payload))
	args = append(append(args, arg), payload...)
	dry := false
	if b, ok := req.(interface{ isDry() bool }); ok {
		dry = b.isDry()
	}
	list, err := s.runAcked(ctx, ws, sc, !dry, keys, args...)
	if err != nil {
		return reply{}, err
	}
	c, err := strconv.Atoi(list[0])
	if err != nil {
		return reply{}, fmt.Errorf("store %s: reply without a code: %q", sc.name, list)
	}
	return reply{code: code(c), vals: list[1:]}, nil
}

// The requests, one per script (each script's header documents its own).
// Lists are omitted when empty (never null, which Lua's cjson decodes to a
// value that is not a table); scripts read a missing list as empty.

type drainLead struct {
	ID     string `json:"id"`
	Person string `json:"person"`
}

// countedArgs is records_counted.lua's request.
type countedArgs struct {
	Found int `json:"found"`
}

// removeArgs is lead_remove.lua's request.
type removeArgs struct {
	base
	Lead         string `json:"lead"`
	Archive      bool   `json:"archive,omitempty"`
	RetainWindow int64  `json:"retain_window,omitempty"`
}

// eraseArgs is lead_erase.lua's request.
type eraseArgs struct {
	base
	Lead   string   `json:"lead"`
	State  string   `json:"state"`
	Rep    string   `json:"rep"`
	Pool   string   `json:"pool"`
	Person string   `json:"person"`
	Ranked []string `json:"ranked,omitempty"`
}

// backfillArgs is people_backfill.lua's request.
type backfillArgs struct {
	Leads   []string `json:"leads"`
	Persons []string `json:"persons"`
}

// drainArgs is queue_drain.lua's request.
type drainArgs struct {
	base
	Pool   string      `json:"pool"`
	Policy policyArg   `json:"policy"`
	Sticky int64       `json:"sticky"`
	Leads  []drainLead `json:"leads,omitempty"`
}

// escalateArgs is lead_escalate.lua's request.
type escalateArgs struct {
	base
	Lead    string      `json:"lead"`
	Pool    string      `json:"pool"`
	Score   int32       `json:"score"`
	Person  string      `json:"person"`
	Sticky  int64       `json:"sticky"`
	First   int         `json:"first"`
	Queued  string      `json:"queued"`
	Targets []targetArg `json:"targets,omitempty"`
}

// rerouteArgs is lead_reroute.lua's request.
type rerouteArgs struct {
	base
	Lead    string      `json:"lead"`
	Mode    string      `json:"mode"`
	Rep     string      `json:"rep"`
	Reason  string      `json:"reason"`
	Person  string      `json:"person"`
	Sticky  int64       `json:"sticky"`
	Score   int32       `json:"score"`
	First   int         `json:"first"`
	Queued  string      `json:"queued"`
	Expire  int64       `json:"expire"`
	Targets []targetArg `json:"targets,omitempty"`
	Policy  policyArg   `json:"policy"`           // of the pool whose policies the lead's placement followed
	Ranked  []string    `json:"ranked,omitempty"` // strategies of the rank keys after the targets'
	Was     string      `json:"was"`              // (requeue, reassign) the state read
	Pool    string      `json:"pool"`             // (requeue, reassign) the pool read
	To      string      `json:"to"`               // (reassign) the rep who gets the lead
}

// rankedArgs are the strategies of ranked pools whose rank keys a script
// gets.
func rankedArgs(pools []engine.Pool) []string {
	out := make([]string, len(pools))
	for i, p := range pools {
		out[i] = string(p.Strategy)
	}
	return out
}

// expireArgs is lead_expire.lua's request.
type expireArgs struct {
	base
	Lead   string `json:"lead"`
	Pool   string `json:"pool"`
	Reason string `json:"reason"`
}

// closeArgs is assignment_close.lua's request.
type closeArgs struct {
	base
	Lead        string   `json:"lead"`
	Rep         string   `json:"rep"`
	Reason      string   `json:"reason"`
	Disposition string   `json:"disposition"`
	ReasonCode  string   `json:"reason_code"`
	Pool        string   `json:"pool"` // the queue a QUEUED lead is cancelled from
	Ranked      []string `json:"ranked,omitempty"`
}

// leadRepArgs is offer_accept.lua's request.
type leadRepArgs struct {
	base
	Lead string `json:"lead"`
	Rep  string `json:"rep"`
}

// contactArgs is lead_contact.lua's request.
type contactArgs struct {
	leadRepArgs
	Channel string `json:"channel"`
	At      int64  `json:"at"`
}

// repArgs is rep_set_status.lua's request.
type repArgs struct {
	base
	Rep    string   `json:"rep"`
	Status string   `json:"status,omitempty"`
	Pools  []string `json:"pools,omitempty"`
}

// shiftArgs is rep_shift.lua's request: reps are [rep, standing, [pool
// numbers from 1]].
type shiftArgs struct {
	base
	Pools []string `json:"pools"`
	Reps  [][3]any `json:"reps"`
}

// connectionArgs is rep_connection.lua's request.
type connectionArgs struct {
	repArgs
	Mode   string `json:"mode"`   // connect or lost
	Cutoff int64  `json:"cutoff"` // lost: heartbeats at or before this unix ms are lost
}

// indexArgs is pool_index.lua's request.
type indexArgs struct {
	base
	Mode  string   `json:"mode"` // build or repair
	Pools []string `json:"pools,omitempty"`
}

// chunkArgs is config_chunk.lua's request.
type chunkArgs struct {
	base
	Step  int   `json:"step"`
	Lease int64 `json:"lease"`
}

// beginArgs is config_begin.lua's request.
type beginArgs struct {
	Base  string `json:"base"`
	Nonce string `json:"nonce"`
	Lease int64  `json:"lease"`
}

// leaseArgs is config_lease.lua's request.
type leaseArgs struct {
	Now   int64 `json:"now"`
	Lease int64 `json:"lease"`
}

// timerArgs is timer_drop.lua's request.
type timerArgs struct {
	Member string `json:"member"`
	Due    int64  `json:"due"`
}

// claimArgs is timers_claim.lua's request.
type claimArgs struct {
	Now   int64 `json:"now"`
	Limit int   `json:"limit"`
	Scan  int   `json:"scan"`
	Lease int64 `json:"lease"`
}

// retryArgs is timer_retry.lua's request.
type retryArgs struct {
	Member    string `json:"member"`
	Due       int64  `json:"due"`
	Attempts  int    `json:"attempts"`
	At        int64  `json:"at"`
	Park      bool   `json:"park,omitempty"`
	MaxParked int    `json:"max_parked"`
}

// pruneArgs is timers_prune.lua's request.
type pruneArgs struct {
	Cursor string `json:"cursor"`
	Count  int    `json:"count"`
}

// trimArgs is events_trim.lua's request.
type trimArgs struct {
	MaxLen int64    `json:"max_len"`
	Cutoff int64    `json:"cutoff"`
	Limit  int      `json:"limit"`
	Groups []string `json:"groups"`
	Now    int64    `json:"now"`
}

// sinkReadArgs is sink_read.lua's request.
type sinkReadArgs struct {
	Group    string          `json:"group"`
	Consumer string          `json:"consumer"`
	Count    int             `json:"count"`
	Kinds    map[string]bool `json:"kinds"`
	Start    string          `json:"start"`
}

// sinkAckArgs is sink_ack.lua's request.
type sinkAckArgs struct {
	Group    string `json:"group"`
	Consumer string `json:"consumer"`
	ID       string `json:"id"`
	Key      string `json:"key"`
	Dead     string `json:"dead"`
	Letter   string `json:"letter"`
	MaxDead  int    `json:"max_dead"`
}

// sinkClaimArgs is sink_claim.lua's request.
type sinkClaimArgs struct {
	Group    string `json:"group"`
	Consumer string `json:"consumer"`
	MinIdle  int64  `json:"min_idle"`
	Count    int    `json:"count"`
	Start    string `json:"start"`
}

// sinkTouchArgs is sink_touch.lua's request.
type sinkTouchArgs struct {
	Group    string   `json:"group"`
	Consumer string   `json:"consumer"`
	IDs      []string `json:"ids"`
}

// sinkReplayArgs is sink_replay.lua's request.
type sinkReplayArgs struct {
	Limit int `json:"limit"`
}

// sinkReplayTakeArgs is sink_replay_take.lua's request.
type sinkReplayTakeArgs struct {
	Now      int64 `json:"now"`
	LeaseEnd int64 `json:"lease_end"`
	Count    int   `json:"count"`
}

// sinkReplayDoneArgs is sink_replay_done.lua's request.
type sinkReplayDoneArgs struct {
	Taken   string `json:"taken"`
	Letter  string `json:"letter"`
	MaxDead int    `json:"max_dead"`
}

// sinkStatusArgs is sink_status.lua's request.
type sinkStatusArgs struct {
	Group string `json:"group"`
	Cap   int    `json:"cap"`
}

// sinkRemoveArgs is sink_remove.lua's request.
type sinkRemoveArgs struct {
	Group string `json:"group"`
}
