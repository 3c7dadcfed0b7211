package engine_test

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/leadrouter/leadrouter/engine"
)

// Reps are filed in their pools' eligible-member index by their calendars
// (engine/shifts.go, rep_shift.lua): inside working hours and not out of
// office, an AVAILABLE rep is in rank; outside, in away.

// shiftConfig: one round-robin pool of day (09:00-17:00 UTC weekdays),
// night (22:00-06:00+1 UTC every day), any (no calendar) and off (out of
// office on 2026-03-03).
const shiftConfig = `
reps:
  - {id: day, working_hours: {monday: ["09:00-17:00"], tuesday: ["09:00-17:00"], wednesday: ["09:00-17:00"], thursday: ["09:00-17:00"], friday: ["09:00-17:00"]}}
  - {id: night, working_hours: {monday: ["22:00-06:00+1"], tuesday: ["22:00-06:00+1"], wednesday: ["22:00-06:00+1"], thursday: ["22:00-06:00+1"], friday: ["22:00-06:00+1"], saturday: ["22:00-06:00+1"], sunday: ["22:00-06:00+1"]}}
  - {id: any}
  - {id: off, out_of_office: [{from: 2026-03-03, to: 2026-03-03}]}
pools:
  - {id: p, members: [{rep_id: day}, {rep_id: night}, {rep_id: any}, {rep_id: off}]}
rules:
  - {id: all, targets: [{pool_id: p}]}
`

// rankOf is the sorted members of pool p's rank.
func rankOf(t *testing.T, f *fixture) string {
	t.Helper()
	got, err := f.st.Client().ZRange(f.ctx, f.st.Prefix()+":{"+f.ws+"}:rank:p", 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(got)
	return strings.Join(got, " ")
}

// TestShiftsFiledAtTheirChange: a decision made at the instant a shift
// starts or ends sees the index filed for that instant, whichever replica
// makes it; the sweeper files idle workspaces; a clock set back files
// every rep again.
func TestShiftsFiledAtTheirChange(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		// Monday 2026-03-02 09:00 UTC.
		f.apply(shiftConfig)
		probe := func(replica *engine.Engine, want string) {
			t.Helper()
			if _, _, err := replica.PreviewAssignment(f.ctx, f.ws, lead("probe")); err != nil {
				t.Fatal(err)
			}
			if got := rankOf(t, f); got != want {
				t.Fatalf("%s: rank [%s], want [%s]", f.clock.Now().Format(time.DateTime), got, want)
			}
		}
		probe(f.eng, "any day off")
		other := f.another()
		// 16:59:59.999, then 17:00 exactly: day's shift ends.
		f.clock.Advance(8*time.Hour - time.Millisecond)
		probe(other, "any day off")
		f.clock.Advance(time.Millisecond)
		probe(other, "any off")
		probe(f.eng, "any off")
		// 22:00: night starts; no decision, the sweeper files it.
		f.clock.Advance(5 * time.Hour)
		f.sweep()
		if got := rankOf(t, f); got != "any night off" {
			t.Fatalf("after the sweep at 22:00: rank [%s], want [any night off]", got)
		}
		// Tuesday 00:00: off's day out of office. A lead goes to an on-shift
		// member and the trace names off's reason.
		f.clock.Advance(2 * time.Hour)
		a := f.assign(lead("tue"))
		if a.RepID == "off" || a.RepID == "day" {
			t.Fatalf("Tuesday 00:00 assigned to %q", a.RepID)
		}
		if got := rankOf(t, f); got != "any night" {
			t.Fatalf("Tuesday 00:00: rank [%s], want [any night]", got)
		}
		// Back to Monday 10:00: every rep is filed again for that instant.
		f.clock.Advance(-14*time.Hour - time.Millisecond)
		probe(f.eng, "any day off")
	})
}

// TestShiftAbsenceTraced: members outside their calendar, passed over from
// away, are named with their calendar's reason, not "available".
func TestShiftAbsenceTraced(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		f.apply(shiftConfig)
		f.clock.Advance(15 * time.Hour) // Tuesday 00:00: day and off are out
		f.status("night", engine.StatusAway)
		if a := f.assign(lead("l1")); a.RepID != "any" {
			t.Fatalf("assigned to %q, want any", a.RepID)
		}
		// The rotation passes off, day and night on its way back to any.
		a := f.assign(lead("l2"))
		if a.RepID != "any" {
			t.Fatalf("assigned to %q, want any", a.RepID)
		}
		var named []string
		for _, c := range a.Trace.Targets[0].Candidates {
			named = append(named, c.RepID+": "+c.SkipReason)
		}
		got := strings.Join(named, "; ")
		for _, want := range []string{"day: outside working hours, back Tue 09:00 UTC", "off: out of office, back Wed 00:00 UTC", "night: away"} {
			if !strings.Contains(got, want) {
				t.Errorf("trace %q lacks %q", got, want)
			}
		}
	})
}

// TestShiftsKeepAbsencePolicies: being outside one's calendar is not an
// absence a CATCH_UP pool makes up for (as before the index filed it: a
// present member passed over forfeits its turn), while an AWAY spell
// still is, even one that began off shift.
func TestShiftsKeepAbsencePolicies(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		f.apply(`
reps:
  - {id: a}
  - {id: b}
  - {id: d, working_hours: {monday: ["09:00-10:00"], tuesday: ["09:00-10:00"]}}
pools:
  - {id: p, absence_policy: CATCH_UP, catch_up_limit: 5, members: [{rep_id: a}, {rep_id: b}, {rep_id: d}]}
rules:
  - {id: all, targets: [{pool_id: p}]}
`)
		f.clock.Advance(time.Hour) // Monday 10:00: d's shift is over
		var got []string
		for i := 0; i < 4; i++ {
			got = append(got, f.assign(lead(fmt.Sprint("off", i))).RepID)
		}
		if s := strings.Join(got, " "); s != "a b a b" {
			t.Fatalf("with d off shift: %s, want a b a b", s)
		}
		// Tuesday 09:00: d is back and owed nothing.
		f.clock.Advance(23 * time.Hour)
		got = got[:0]
		for i := 0; i < 3; i++ {
			got = append(got, f.assign(lead(fmt.Sprint("on", i))).RepID)
		}
		if s := strings.Join(got, " "); s != "d a b" {
			t.Fatalf("d back on shift: %s, want d a b", s)
		}
		// d goes AWAY at 09:30 (its shift running), misses two turns, and
		// is owed them on its return.
		f.clock.Advance(30 * time.Minute)
		f.status("d", engine.StatusAway)
		got = got[:0]
		for i := 0; i < 2; i++ {
			got = append(got, f.assign(lead(fmt.Sprint("away", i))).RepID)
		}
		f.status("d", engine.StatusAvailable)
		for i := 0; i < 3; i++ {
			got = append(got, f.assign(lead(fmt.Sprint("back", i))).RepID)
		}
		// a passes d once: d's owed turn, then its own.
		if s := strings.Join(got, " "); s != "a b d d a" {
			t.Fatalf("d back from AWAY: %s, want a b d d a", s)
		}
		// Tuesday 10:00, d off shift again, goes AWAY and is passed over,
		// then AVAILABLE (still off shift) and passed over again: only the
		// AWAY spell is owed, on Monday 09:00 when its shift starts.
		f.clock.Advance(30 * time.Minute)
		f.status("d", engine.StatusAway)
		for i := 0; i < 3; i++ {
			f.assign(lead(fmt.Sprint("tue-away", i))) // b a b: d passed once
		}
		f.status("d", engine.StatusAvailable)
		for i := 0; i < 6; i++ {
			f.assign(lead(fmt.Sprint("tue-off", i))) // d passed three times, owed nothing more
		}
		f.clock.Advance(6*24*time.Hour - time.Hour) // Monday 09:00
		got = got[:0]
		for i := 0; i < 4; i++ {
			got = append(got, f.assign(lead(fmt.Sprint("mon", i))).RepID)
		}
		// The cursor is at b: d's owed turn, then its own, then a b.
		if s := strings.Join(got, " "); s != "d d a b" {
			t.Fatalf("Monday 09:00: %s, want d d a b (d owed once)", s)
		}
	})
}

// TestShiftFilingUnderConcurrentReplicas: four replicas decide from eight
// goroutines each while the clock crosses shift changes; each change is
// filed by whichever replica gets there, concurrently with the others'
// decisions. No lead goes to a rep outside its hours at its decision, and
// once traffic stops the index is exactly the final instant's.
func TestShiftFilingUnderConcurrentReplicas(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		f.apply(shiftConfig)
		replicas := []*engine.Engine{f.eng, f.another(), f.another(), f.another()}
		var (
			wg   sync.WaitGroup
			stop atomic.Bool
			mu   sync.Mutex
			bad  []string
			n    atomic.Int64
			// failed: a goroutine gave up on an error
			failed atomic.Bool
		)
		for _, r := range replicas {
			for g := 0; g < 8; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for !stop.Load() {
						id := fmt.Sprint("c", n.Add(1))
						a, _, err := r.AssignLead(f.ctx, f.ws, lead(id))
						if err != nil {
							mu.Lock()
							bad = append(bad, err.Error())
							mu.Unlock()
							failed.Store(true)
							return
						}
						// day works 09:00-17:00, night 22:00-06:00 (UTC).
						h := a.DecidedAt.UTC().Hour()
						if a.RepID == "day" && (h < 9 || h >= 17) || a.RepID == "night" && h >= 6 && h < 22 {
							mu.Lock()
							bad = append(bad, fmt.Sprintf("%s to %s at %s", id, a.RepID, a.DecidedAt.Format(time.DateTime)))
							mu.Unlock()
						}
					}
				}()
			}
		}
		// Monday 09:00 on: 16:59, 17:00, 21:59, 22:00, 05:59, 06:00 ...
		for _, d := range []time.Duration{8*time.Hour - time.Minute, time.Minute, 5*time.Hour - time.Minute, time.Minute,
			8*time.Hour - time.Minute, time.Minute, 3 * time.Hour} {
			f.clock.Advance(d)
			// Some decisions at each instant, and some in flight as it changes.
			for start := n.Load(); n.Load() < start+20 && !failed.Load(); {
				time.Sleep(time.Millisecond)
			}
		}
		stop.Store(true)
		wg.Wait()
		if len(bad) > 0 {
			t.Fatalf("%d bad decisions, e.g. %v", len(bad), bad[:min(len(bad), 5)])
		}
		// Tuesday 09:00: day and any work, night is done, off is out.
		for _, r := range replicas {
			if _, _, err := r.PreviewAssignment(f.ctx, f.ws, lead("probe")); err != nil {
				t.Fatal(err)
			}
		}
		if got := rankOf(t, f); got != "any day" {
			t.Fatalf("Tuesday 09:00: rank [%s], want [any day]", got)
		}
	})
}
