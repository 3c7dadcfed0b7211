package store

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/leadrouter/leadrouter/engine"
)

// A lead's record (keys.lead) has these fields, written by lead_decide.lua
// and updated by queue_drain.lua:
//
//	lead         engine.Lead as JSON (written once)
//	state        ASSIGNED, QUEUED or UNROUTABLE
//	rep, pool    the assignee and its pool (pool: the queue while QUEUED)
//	rule         the matched rule id ('' when none)
//	reason       why QUEUED or UNROUTABLE
//	rules        the rule trace, []engine.RuleEvaluation as JSON
//	picks        the pick trace, one line per step (see lib_rotation.lua)
//	received_at, decided_at   unix ms
//	cfgv         the config version of the first decision

// parseRecord turns a record's fields into an Assignment.
func parseRecord(leadID string, f map[string]string) (*engine.Assignment, error) {
	a := &engine.Assignment{
		LeadID:     leadID,
		State:      engine.State(f["state"]),
		RepID:      f["rep"],
		PoolID:     f["pool"],
		RuleID:     f["rule"],
		Reason:     f["reason"],
		ReceivedAt: msTime(f["received_at"]),
		DecidedAt:  msTime(f["decided_at"]),
	}
	a.ConfigVersion, _ = strconv.ParseInt(f["cfgv"], 10, 64)
	if err := json.Unmarshal([]byte(f["lead"]), &a.Lead); err != nil {
		return nil, fmt.Errorf("lead %q: corrupt record: %w", leadID, err)
	}
	if r := f["rules"]; r != "" {
		if err := json.Unmarshal([]byte(r), &a.Trace.Rules); err != nil {
			return nil, fmt.Errorf("lead %q: corrupt rule trace: %w", leadID, err)
		}
	}
	a.Trace.Targets = parsePicks(f["picks"])
	return a, nil
}

// parsePicks reads the pick trace lines written by the scripts.
func parsePicks(s string) []engine.TargetEvaluation {
	var out []engine.TargetEvaluation
	drained := ""
	for _, line := range strings.Split(s, "\n") {
		parts := strings.Split(line, "\t")
		if len(out) == 0 && parts[0] != "P" && parts[0] != "D" {
			continue
		}
		cur := len(out) - 1
		switch parts[0] {
		case "D":
			drained = parts[1]
		case "P":
			te := engine.TargetEvaluation{PoolID: field(parts, 1), PreviousRepID: field(parts, 2)}
			out = append(out, te)
		case "C":
			out[cur].Candidates = append(out[cur].Candidates, engine.Candidate{RepID: field(parts, 1), Chosen: true})
			if drained != "" {
				out[cur].Outcome = fmt.Sprintf("assigned to %s from the queue (queued at %s)",
					field(parts, 1), msTime(drained).Format(time.RFC3339Nano))
			}
		case "S":
			out[cur].Candidates = append(out[cur].Candidates, engine.Candidate{RepID: field(parts, 1), SkipReason: field(parts, 2)})
		case "B":
			out[cur].Outcome = fmt.Sprintf("eligible members, but %s earlier lead(s) queued here: queued behind them", field(parts, 1))
		}
	}
	return out
}

func field(parts []string, i int) string {
	if i < len(parts) {
		return parts[i]
	}
	return ""
}

func msTime(s string) time.Time {
	ms, err := strconv.ParseInt(s, 10, 64)
	if err != nil || ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

func ms(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

// pairs turns a flat field/value list into a map.
func pairs(flat []string) map[string]string {
	m := make(map[string]string, len(flat)/2)
	for i := 0; i+1 < len(flat); i += 2 {
		m[flat[i]] = flat[i+1]
	}
	return m
}
