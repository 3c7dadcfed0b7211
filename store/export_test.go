package store

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/leadrouter/leadrouter/engine"
)

// StopApplyAfter makes this package's config applies fail after steps
// steps, as an applier that died would, with lease as the apply lease;
// the returned function restores both. Tests only: not safe to use with
// applies running in parallel.
func StopApplyAfter(steps int, lease time.Duration) (restore func()) {
	oldStop, oldLease := applyStopAfter, applyLease
	applyStopAfter, applyLease = steps, lease
	return func() { applyStopAfter, applyLease = oldStop, oldLease }
}

// ErrApplyStopped is what an apply stopped by StopApplyAfter returns.
var ErrApplyStopped = errApplyStopped

// PlanSteps returns the kinds, reps and pool members of the steps of an
// apply from prev to next.
func PlanSteps(prev, next *engine.Config, now time.Time) (kinds []string, reps, members []int) {
	for _, st := range planApply(prev, next, now) {
		kinds, reps = append(kinds, st.Kind), append(reps, len(st.Reps))
		n := 0
		for _, p := range st.Pools {
			n += len(p.Members)
		}
		members = append(members, n)
	}
	return kinds, reps, members
}

// ScriptSource returns the assembled Lua of the script called name.
func ScriptSource(name string) string {
	for _, sc := range allScripts {
		if sc.name == name {
			return sc.body
		}
	}
	return ""
}

// ScriptNames lists every script.
func ScriptNames() []string {
	names := make([]string, len(allScripts))
	for i, sc := range allScripts {
		names[i] = sc.name
	}
	return names
}

// ReplyCodes are the Go side's reply codes by name.
func ReplyCodes() map[string]int {
	out := map[string]int{}
	for c, n := range codeNames {
		out[n] = int(c)
	}
	return out
}

// CallScript runs the script called name with a raw request (which need
// not be valid) on the workspace's common keys plus keys, and returns its
// reply code and values.
func CallScript(ctx context.Context, s *Redis, ws, name string, keys []string, request string) (int, []string, error) {
	for _, sc := range allScripts {
		if sc.name == name {
			list, err := s.run(ctx, ws, sc, append(s.keys(ws).common(), keys...), request)
			if err != nil {
				return 0, nil, err
			}
			c, _ := strconv.Atoi(list[0])
			return c, list[1:], nil
		}
	}
	return 0, nil, fmt.Errorf("no script %q", name)
}

// DecideKeys are lead_decide's keys after the common ones, for a lead and
// one target pool.
func DecideKeys(s *Redis, ws, leadID, poolID string) []string {
	k := s.keys(ws)
	return k.target([]string{k.lead(leadID), k.lead(leadID), k.people(), k.recent()}, poolID)
}

// SetRecentKept sets how many records the recent index keeps.
func SetRecentKept(s *Redis, n int) { s.recentKept = n }

// Fail classifies err as the store does for a failed call of op.
func Fail(op string, err error) error { return New(nil, "").fail(op, err) }

// ScriptReplyCodes is, per script name, the names of the codes replyCodes
// says it answers.
func ScriptReplyCodes() map[string][]string {
	out := map[string][]string{}
	for _, sc := range allScripts {
		codes := replyCodes[sc]
		if codes == nil {
			codes = []code{codeOK}
		}
		for _, c := range codes {
			out[sc.name] = append(out[sc.name], c.String())
		}
	}
	return out
}
