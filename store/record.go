package store

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/leadrouter/leadrouter/engine"
	storev1 "github.com/leadrouter/leadrouter/gen/leadrouter/store/v1"
	"github.com/leadrouter/leadrouter/internal/pbconv"
)

// A lead's record (keys.lead) is a HASH. Its field pb holds what no script
// reads or changes, written once by lead_decide.lua: a LeadRecord
// (proto/leadrouter/store/v1/record.proto: the lead, the rule trace, the
// matched rule, when it was received, the config version). The other fields
// are the ones scripts read or update:
//
//	state        OFFERED, ASSIGNED, QUEUED, UNROUTABLE or CLOSED
//	rep, pool    the assignee and its pool (pool: the queue while QUEUED)
//	target       1-based index of the rule's target in use
//	route        rule, account owner or sticky owner
//	reason       why QUEUED or UNROUTABLE (a note: engine.RenderNote)
//	picks        the pick trace, one line per step (see lib_pick.lua)
//	submitted_at, decided_at, queued_at, closed_at   unix ms
//	close_reason why it was closed
//	offer_expires, accepted_at, offers, withdrawn, offered ("|a|b|": reps
//	             offered the lead so far)
//	first_contact_at, first_contact_channel, contacts, sla_due, breaches
//	disposition, reason_code
//	sla_from     when the current first-contact SLA window started (the
//	             submission, or the placement after a breach reassignment;
//	             sla_restart marks a reassignment not placed yet)
//	policy_pool  the pool whose offer and SLA policies the placement followed
//	counted      "<day>|<pool>": the daily counters the placement bumped
//	rejected_by  "|a|b|": reps who rejected the lead
//	breached_by  "|a|b|": reps who breached the lead's SLA; never offered it
//	             again
//	history      lifecycle lines "ms<tab>kind<tab>rep<tab>detail" (detail: a note),
//	             at most 200 (lib_workspace.lua HISTORY_MAX)
//	history_folded  the oldest lines dropped past that bound
//	person       the person hash of the lead's email (engine.Person), which
//	             names its sticky binding and its person index entry
//	placed_cfgv  the config version of the last placement after the
//	             decision (a drain, an escalation, a reroute, an operator's
//	             move): the version the lead is placed under
//
// Records written before pb existed keep those parts in fields of their own
// (lead and rules as JSON, rule, received_at, cfgv, email); parseRecord
// reads both (store/testdata holds records of each format).

// encodeHead is a new record's pb field.
func encodeHead(d *engine.DecideRequest) ([]byte, error) {
	h := &storev1.LeadRecord{
		Lead: pbconv.LeadToProto(d.Lead), RuleId: d.RuleID,
		ReceivedAtMs: d.ReceivedAt.UnixMilli(), ConfigVersion: d.ConfigVersion,
	}
	if len(d.Rules) > 0 {
		h.Rules = make([]*storev1.RuleEvaluation, len(d.Rules))
		for i, r := range d.Rules {
			h.Rules[i] = &storev1.RuleEvaluation{RuleId: r.RuleID, Matched: r.Matched, Detail: r.Detail}
		}
	}
	b, err := proto.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("lead %q: encode record: %w", d.Lead.ID, err)
	}
	return b, nil
}

// parseRecord turns a record's fields into an Assignment.
func parseRecord(leadID string, f map[string]string) (*engine.Assignment, error) {
	a := recordFields(leadID, func(k string) string { return f[k] }, true)
	if raw, ok := f["pb"]; ok {
		var h storev1.LeadRecord
		if err := proto.Unmarshal([]byte(raw), &h); err != nil {
			return nil, fmt.Errorf("lead %q: corrupt record: %w", leadID, err)
		}
		a.Lead = pbconv.LeadFromProto(h.GetLead())
		a.RuleID = h.GetRuleId()
		if ms := h.GetReceivedAtMs(); ms != 0 {
			a.ReceivedAt = time.UnixMilli(ms).UTC()
		}
		a.ConfigVersion = h.GetConfigVersion()
		if v := count(f["placed_cfgv"]); v > 0 {
			a.ConfigVersion = int64(v)
		}
		for _, r := range h.GetRules() {
			a.Trace.Rules = append(a.Trace.Rules, engine.RuleEvaluation{RuleID: r.GetRuleId(), Matched: r.GetMatched(), Detail: r.GetDetail()})
		}
		return a, nil
	}
	// The format before pb.
	if err := json.Unmarshal([]byte(f["lead"]), &a.Lead); err != nil {
		return nil, fmt.Errorf("lead %q: corrupt record: %w", leadID, err)
	}
	if r := f["rules"]; r != "" {
		if err := json.Unmarshal([]byte(r), &a.Trace.Rules); err != nil {
			return nil, fmt.Errorf("lead %q: corrupt rule trace: %w", leadID, err)
		}
	}
	return a, nil
}

// packedRecord is a record as lead_decide.lua answers with it:
// "field\0value\0field\0value...". Its fields are read in place, without
// copying a value.
type packedRecord string

// get returns field k's value ("" when absent).
func (p packedRecord) get(k string) string {
	s := string(p)
	for s != "" {
		var f, v string
		f, s, _ = strings.Cut(s, "\x00")
		v, s, _ = strings.Cut(s, "\x00")
		if f == k {
			return v
		}
	}
	return ""
}

// recordFields turns a record's fields (f returns one by name, "" when
// absent) but the lead and the rule trace (the JSON ones) into an
// Assignment; the pick trace and the history only when full.
func recordFields(leadID string, f func(string) string, full bool) *engine.Assignment {
	a := &engine.Assignment{
		LeadID:      leadID,
		State:       engine.State(f("state")),
		RepID:       f("rep"),
		PoolID:      f("pool"),
		RuleID:      f("rule"),
		Reason:      engine.RenderNote(f("reason")),
		Route:       f("route"),
		ReceivedAt:  msTime(f("received_at")),
		DecidedAt:   msTime(f("decided_at")),
		QueuedAt:    msTime(f("queued_at")),
		ClosedAt:    msTime(f("closed_at")),
		CloseReason: f("close_reason"),
		PolicyPool:  f("policy_pool"),
		Person:      f("person"),
	}
	a.ConfigVersion = int64(count(f("cfgv")))
	if v := count(f("placed_cfgv")); v > 0 {
		a.ConfigVersion = int64(v) // placed again after the decision
	}
	a.TargetIndex = count(f("target"))
	a.OfferExpiresAt = msTime(f("offer_expires"))
	a.AcceptedAt = msTime(f("accepted_at"))
	a.FirstContactAt = msTime(f("first_contact_at"))
	a.FirstContactChannel = f("first_contact_channel")
	a.FirstContactDue = msTime(f("sla_due"))
	a.Disposition = engine.Disposition(f("disposition"))
	a.ReasonCode = f("reason_code")
	a.Offers = count(f("offers"))
	a.Contacts = count(f("contacts"))
	a.Breaches = count(f("breaches"))
	if a.State != engine.StateOffered {
		a.OfferExpiresAt = time.Time{}
	}
	if full {
		a.History = parseHistory(f("history"))
		a.HistoryFolded = count(f("history_folded"))
		a.Trace.Targets = parsePicks(f("picks"), a.PlacedVerb())
	}
	return a
}

// parsePicks reads the pick trace lines the scripts write (their format is
// documented at the top of lib_pick.lua).
// verb names the placement ("assigned to", "offered to").
func parsePicks(s, verb string) []engine.TargetEvaluation {
	var out []engine.TargetEvaluation
	drained := ""
	for _, line := range strings.Split(s, "\n") {
		parts := strings.Split(line, "\t")
		cur := len(out) - 1
		switch parts[0] {
		case "D":
			drained = field(parts, 1)
		case "E":
			out = append(out, engine.TargetEvaluation{PoolID: field(parts, 1),
				Outcome: "waited here with nobody eligible; escalated to the next target"})
		case "P":
			out = append(out, engine.TargetEvaluation{PoolID: field(parts, 1),
				Strategy: engine.Strategy(field(parts, 2)), PreviousRepID: field(parts, 3)})
		case "R":
			out = append(out, engine.TargetEvaluation{Label: engine.RenderNote(field(parts, 1))})
		case "C":
			if cur < 0 {
				continue
			}
			rep, note := field(parts, 1), engine.RenderNote(field(parts, 2))
			out[cur].Candidates = append(out[cur].Candidates, engine.Candidate{RepID: rep, Chosen: true})
			switch {
			case drained != "":
				out[cur].Outcome = fmt.Sprintf("%s %s from the queue (queued at %s)",
					verb, rep, msTime(drained).Format(time.RFC3339Nano))
			case note != "":
				out[cur].Outcome = fmt.Sprintf("%s %s (%s)", verb, rep, note)
			}
		case "S":
			if cur >= 0 {
				c := engine.Candidate{RepID: field(parts, 1), SkipReason: field(parts, 2)}
				if len(parts) > 2 {
					if s, ok := engine.ParseSkip(parts[2:], out[cur].PoolID); ok {
						c.Skip, c.SkipReason = s, s.Text()
					}
				}
				out[cur].Candidates = append(out[cur].Candidates, c)
			}
		case "N":
			if cur >= 0 {
				out[cur].Skipped = append(out[cur].Skipped, engine.SkipCount{Reason: engine.SkipCode(field(parts, 1)), Count: count(field(parts, 2))})
			}
		case "B":
			if cur >= 0 {
				out[cur].Outcome = fmt.Sprintf("eligible members, but %s earlier lead(s) queued here: queued behind them", field(parts, 1))
			}
		}
	}
	return out
}

// parseHistory reads the record's lifecycle lines: ms, kind, rep, detail.
func parseHistory(s string) []engine.LifecycleEvent {
	var out []engine.LifecycleEvent
	for _, line := range strings.Split(s, "\n") {
		parts := strings.SplitN(line, "\t", 4)
		if len(parts) < 2 {
			continue
		}
		out = append(out, engine.LifecycleEvent{At: msTime(parts[0]), Kind: parts[1], RepID: field(parts, 2), Detail: engine.RenderNote(field(parts, 3))})
	}
	return out
}

func field(parts []string, i int) string {
	if i < len(parts) {
		return parts[i]
	}
	return ""
}

// count reads a numeric field; an absent one is 0. (Most of a new
// record's fields are absent: parsing "" would allocate an error each.)
func count(s string) int {
	if s == "" {
		return 0
	}
	n, _ := strconv.Atoi(s)
	return n
}

func msTime(s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	ms, err := strconv.ParseInt(s, 10, 64)
	if err != nil || ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

// pairs turns a flat field/value list into a map.
func pairs(flat []string) map[string]string {
	m := make(map[string]string, len(flat)/2)
	for i := 0; i+1 < len(flat); i += 2 {
		m[flat[i]] = flat[i+1]
	}
	return m
}
