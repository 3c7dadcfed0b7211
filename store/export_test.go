package store

import (
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
