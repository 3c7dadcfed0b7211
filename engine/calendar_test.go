package engine_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/leadrouter/leadrouter/engine"
)

// Conformance tests of working hours, out-of-office days, daily caps and
// capacity: the store evaluates them in its scripts from the calendars the
// engine compiles, and the engine explains them in traces.

// calAt moves the fixture's clock forward to at.
func calAt(f *fixture, at time.Time) {
	f.t.Helper()
	d := at.Sub(f.clock.Now())
	if d < 0 {
		f.t.Fatalf("clock is at %s, cannot go back to %s", f.clock.Now().UTC(), at)
	}
	f.clock.Advance(d)
}

func calUTC(y int, m time.Month, d, hh, mm int) time.Time {
	return time.Date(y, m, d, hh, mm, 0, 0, time.UTC)
}

// calRep is one rep of calConfig: its id and the rest of its YAML mapping.
type calRep struct{ id, fields string }

// calConfig gives each rep a pool of its own, "p-<id>", and a rule sending
// leads whose source is the rep's id to it.
func calConfig(reps ...calRep) string {
	var b strings.Builder
	b.WriteString("reps:\n")
	for _, r := range reps {
		fmt.Fprintf(&b, "  - {id: %s, %s}\n", r.id, r.fields)
	}
	b.WriteString("pools:\n")
	for _, r := range reps {
		fmt.Fprintf(&b, "  - {id: p-%s, members: [{rep_id: %s}]}\n", r.id, r.id)
	}
	b.WriteString("rules:\n")
	for _, r := range reps {
		fmt.Fprintf(&b, "  - {id: r-%s, match: {sources: [%s]}, targets: [{pool_id: p-%s}]}\n", r.id, r.id, r.id)
	}
	return b.String()
}

// calEveryDay is a working_hours mapping with the same interval every day.
func calEveryDay(iv string) string {
	var days []string
	for _, d := range []string{"monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"} {
		days = append(days, fmt.Sprintf("%s: [%q]", d, iv))
	}
	return "{" + strings.Join(days, ", ") + "}"
}

// calWeekdays is a working_hours mapping with the same interval Monday to
// Friday.
func calWeekdays(iv string) string {
	var days []string
	for _, d := range []string{"monday", "tuesday", "wednesday", "thursday", "friday"} {
		days = append(days, fmt.Sprintf("%s: [%q]", d, iv))
	}
	return "{" + strings.Join(days, ", ") + "}"
}

// calLead is a lead for rep's own pool (see calConfig).
func calLead(id, rep string) engine.Lead { return engine.Lead{ID: id, Source: rep} }

// calSkip returns the trace's only candidate of a one-member pool.
func calSkip(t *testing.T, a *engine.Assignment) engine.Candidate {
	t.Helper()
	if len(a.Trace.Targets) != 1 || len(a.Trace.Targets[0].Candidates) != 1 {
		t.Fatalf("lead %s: trace targets %+v, want one target with one candidate", a.LeadID, a.Trace.Targets)
	}
	return a.Trace.Targets[0].Candidates[0]
}

// calCheck checks a decision for rep's own pool: ASSIGNED to rep when
// reason is "", else QUEUED with rep skipped for exactly that reason. It
// returns the complaint, "" for none.
func calCheck(a *engine.Assignment, rep, reason string) string {
	if len(a.Trace.Targets) != 1 || len(a.Trace.Targets[0].Candidates) != 1 {
		return fmt.Sprintf("trace targets %+v, want one target with one candidate", a.Trace.Targets)
	}
	c := a.Trace.Targets[0].Candidates[0]
	if reason == "" {
		if a.State != engine.StateAssigned || a.RepID != rep || a.PoolID != "p-"+rep || !c.Chosen || c.RepID != rep {
			return fmt.Sprintf("%s to %q in %q, candidate %+v; want ASSIGNED to %s", a.State, a.RepID, a.PoolID, c, rep)
		}
		return ""
	}
	if a.State != engine.StateQueued || a.RepID != "" || a.PoolID != "p-"+rep || a.Reason != "nobody eligible in p-"+rep ||
		c.Chosen || c.RepID != rep || c.SkipReason != reason {
		return fmt.Sprintf("%s to %q in %q (%q), candidate %+v; want QUEUED in p-%s with %s skipped: %q",
			a.State, a.RepID, a.PoolID, a.Reason, c, rep, rep, reason)
	}
	return ""
}

// calWant fails the test when calCheck complains.
func calWant(t *testing.T, a *engine.Assignment, rep, reason string) {
	t.Helper()
	if msg := calCheck(a, rep, reason); msg != "" {
		t.Fatalf("lead %s at %s: %s", a.LeadID, a.DecidedAt.UTC().Format(time.DateTime), msg)
	}
}

// calPreview previews a lead for rep's own pool now and checks it as
// calWant does.
func calPreview(t *testing.T, f *fixture, rep, reason string) {
	t.Helper()
	a, dup, err := f.eng.PreviewAssignment(f.ctx, f.ws, calLead("preview", rep))
	if err != nil || dup {
		t.Fatalf("preview: %v (duplicate %v)", err, dup)
	}
	calWant(t, a, rep, reason)
}

// calStep is one instant of a calendar table: the decision for rep's pool
// at that instant, by preview or (assign set) by a real assignment.
type calStep struct {
	name   string
	at     time.Time
	rep    string
	reason string // "" for eligible
	assign bool
}

func calRun(t *testing.T, f *fixture, steps []calStep) {
	t.Helper()
	for i, s := range steps {
		calAt(f, s.at)
		if !s.assign {
			a, dup, err := f.eng.PreviewAssignment(f.ctx, f.ws, calLead("preview", s.rep))
			if err != nil || dup {
				t.Fatalf("%s: preview: %v (duplicate %v)", s.name, err, dup)
			}
			if msg := calCheck(a, s.rep, s.reason); msg != "" {
				t.Errorf("%s (%s): %s", s.name, s.at.Format(time.DateTime), msg)
			}
			continue
		}
		a := f.assign(calLead(fmt.Sprint("step", i), s.rep))
		if msg := calCheck(a, s.rep, s.reason); msg != "" {
			t.Errorf("%s (%s), assigned: %s", s.name, s.at.Format(time.DateTime), msg)
		}
	}
}

func calSweep(t *testing.T, f *fixture) {
	t.Helper()
	if err := f.eng.Sweep(f.ctx, true); err != nil {
		t.Fatalf("sweep: %v", err)
	}
}

func calGet(t *testing.T, f *fixture, id string) *engine.Assignment {
	t.Helper()
	a, err := f.eng.GetAssignment(f.ctx, f.ws, id)
	if err != nil {
		t.Fatalf("get %s: %v", id, err)
	}
	return a
}

func calRepState(t *testing.T, f *fixture, id string) *engine.RepState {
	t.Helper()
	r, err := f.eng.Rep(f.ctx, f.ws, id)
	if err != nil {
		t.Fatalf("rep %s: %v", id, err)
	}
	return r
}

// TestWorkingHoursAcrossDST: New York springs forward on 2026-03-08 at
// 07:00 UTC (02:00 EST -> 03:00 EDT); Berlin falls back on 2026-10-25 at
// 01:00 UTC (03:00 CEST -> 02:00 CET). Hours are local wall-clock hours on
// both sides of each change, and on the changed night itself.
func TestWorkingHoursAcrossDST(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		f.apply(calConfig(
			calRep{"ny", "timezone: America/New_York, working_hours: " + calEveryDay("09:00-17:00")},
			calRep{"nynight", `timezone: America/New_York, working_hours: {sunday: ["03:00-04:00"]}`},
			calRep{"nygap", `timezone: America/New_York, working_hours: {sunday: ["02:30-04:00"]}`},
			calRep{"ber", "timezone: Europe/Berlin, working_hours: " + calEveryDay("09:00-17:00")},
			calRep{"bernight", `timezone: Europe/Berlin, working_hours: {sunday: ["02:00-03:00"]}`},
		))
		const (
			nyBackSat  = "outside working hours, back Sat 09:00 America/New_York"
			nyBackSun  = "outside working hours, back Sun 09:00 America/New_York"
			nyBackMon  = "outside working hours, back Mon 09:00 America/New_York"
			berBackSun = "outside working hours, back Sun 09:00 Europe/Berlin"
			berBackMon = "outside working hours, back Mon 09:00 Europe/Berlin"
		)
		calRun(t, f, []calStep{
			{name: "NY Sat 08:30 EST", at: calUTC(2026, 3, 7, 13, 30), rep: "ny", reason: nyBackSat},
			{name: "NY Sat 09:00 EST", at: calUTC(2026, 3, 7, 14, 0), rep: "ny"},
			{name: "NY Sat 16:59 EST", at: calUTC(2026, 3, 7, 21, 59), rep: "ny", assign: true},
			{name: "NY Sat 17:00 EST", at: calUTC(2026, 3, 7, 22, 0), rep: "ny", reason: nyBackSun},
			{name: "NY Sun 01:59 EST, before the jump", at: calUTC(2026, 3, 8, 6, 59), rep: "nynight",
				reason: "outside working hours, back Sun 03:00 America/New_York"},
			// 02:30 does not exist that night: the shift starts at the jump.
			{name: "NY Sun 01:59 EST, shift starting in the skipped hour", at: calUTC(2026, 3, 8, 6, 59), rep: "nygap",
				reason: "outside working hours, back Sun 03:00 America/New_York"},
			{name: "NY Sun 03:00 EDT, the jump, shift from 02:30", at: calUTC(2026, 3, 8, 7, 0), rep: "nygap"},
			{name: "NY Sun 03:00 EDT, the jump", at: calUTC(2026, 3, 8, 7, 0), rep: "nynight", assign: true},
			{name: "NY Sun 03:01 EDT, shift from 02:30", at: calUTC(2026, 3, 8, 7, 1), rep: "nygap", assign: true},
			{name: "NY Sun 03:59 EDT", at: calUTC(2026, 3, 8, 7, 59), rep: "nynight"},
			{name: "NY Sun 04:00 EDT", at: calUTC(2026, 3, 8, 8, 0), rep: "nynight",
				reason: "outside working hours, back Sun 2026-03-15 03:00 America/New_York"},
			{name: "NY Sun 08:30 EDT", at: calUTC(2026, 3, 8, 12, 30), rep: "ny", reason: nyBackSun},
			// 13:00 UTC was 08:00 EST the day before; now it is 09:00 EDT.
			{name: "NY Sun 09:00 EDT", at: calUTC(2026, 3, 8, 13, 0), rep: "ny"},
			{name: "NY Sun 09:30 EDT", at: calUTC(2026, 3, 8, 13, 30), rep: "ny", assign: true},
			{name: "NY Sun 16:59 EDT", at: calUTC(2026, 3, 8, 20, 59), rep: "ny"},
			// 21:00 UTC was 16:00 EST the day before.
			{name: "NY Sun 17:00 EDT", at: calUTC(2026, 3, 8, 21, 0), rep: "ny", reason: nyBackMon},

			{name: "Berlin Sat 08:59 CEST", at: calUTC(2026, 10, 24, 6, 59), rep: "ber",
				reason: "outside working hours, back Sat 09:00 Europe/Berlin"},
			{name: "Berlin Sat 09:00 CEST", at: calUTC(2026, 10, 24, 7, 0), rep: "ber", assign: true},
			{name: "Berlin Sat 16:59 CEST", at: calUTC(2026, 10, 24, 14, 59), rep: "ber"},
			{name: "Berlin Sat 17:00 CEST", at: calUTC(2026, 10, 24, 15, 0), rep: "ber", reason: berBackSun},
			{name: "Berlin Sun 01:59 CEST", at: calUTC(2026, 10, 24, 23, 59), rep: "bernight",
				reason: "outside working hours, back Sun 02:00 Europe/Berlin"},
			{name: "Berlin Sun 02:00 CEST, first time", at: calUTC(2026, 10, 25, 0, 0), rep: "bernight", assign: true},
			{name: "Berlin Sun 02:59 CEST", at: calUTC(2026, 10, 25, 0, 59), rep: "bernight"},
			{name: "Berlin Sun 02:00 CET, second time", at: calUTC(2026, 10, 25, 1, 0), rep: "bernight", assign: true},
			{name: "Berlin Sun 02:59 CET", at: calUTC(2026, 10, 25, 1, 59), rep: "bernight"},
			{name: "Berlin Sun 03:00 CET", at: calUTC(2026, 10, 25, 2, 0), rep: "bernight",
				reason: "outside working hours, back Sun 2026-11-01 02:00 Europe/Berlin"},
			// 07:30 UTC was 09:30 CEST the day before; now it is 08:30 CET.
			{name: "Berlin Sun 08:30 CET", at: calUTC(2026, 10, 25, 7, 30), rep: "ber", reason: berBackSun},
			{name: "Berlin Sun 09:00 CET", at: calUTC(2026, 10, 25, 8, 0), rep: "ber", assign: true},
			// 15:30 UTC was 17:30 CEST the day before.
			{name: "Berlin Sun 16:30 CET", at: calUTC(2026, 10, 25, 15, 30), rep: "ber"},
			{name: "Berlin Sun 17:00 CET", at: calUTC(2026, 10, 25, 16, 0), rep: "ber", reason: berBackMon},
		})
	})
}

// TestOvernightShiftAcrossWeek: "22:00-06:00+1" works from 22:00 to 06:00
// the next local morning, including from Sunday night into Monday, whatever
// day it is in UTC.
func TestOvernightShiftAcrossWeek(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		f.apply(calConfig(
			calRep{"tk", `timezone: Asia/Tokyo, working_hours: {wednesday: ["22:00-06:00+1"], sunday: ["22:00-06:00+1"]}`},
			calRep{"la", `timezone: America/Los_Angeles, working_hours: {sunday: ["22:00-06:00+1"]}`},
		))
		const (
			tkBackWed = "outside working hours, back Wed 22:00 Asia/Tokyo"
			tkBackSun = "outside working hours, back Sun 22:00 Asia/Tokyo"
			laBackSun = "outside working hours, back Sun 22:00 America/Los_Angeles"
		)
		calRun(t, f, []calStep{
			{name: "Tokyo Wed 21:30", at: calUTC(2026, 3, 4, 12, 30), rep: "tk", reason: tkBackWed},
			{name: "Tokyo Wed 22:00", at: calUTC(2026, 3, 4, 13, 0), rep: "tk"},
			{name: "Tokyo Wed 23:30", at: calUTC(2026, 3, 4, 14, 30), rep: "tk", assign: true},
			{name: "Tokyo Thu 00:00", at: calUTC(2026, 3, 4, 15, 0), rep: "tk"},
			{name: "Tokyo Thu 05:30", at: calUTC(2026, 3, 4, 20, 30), rep: "tk", assign: true},
			{name: "Tokyo Thu 05:59", at: calUTC(2026, 3, 4, 20, 59), rep: "tk"},
			{name: "Tokyo Thu 06:00", at: calUTC(2026, 3, 4, 21, 0), rep: "tk", reason: tkBackSun},
			{name: "Tokyo Thu 06:30", at: calUTC(2026, 3, 4, 21, 30), rep: "tk", reason: tkBackSun},
			{name: "Tokyo Thu 23:30, no Thursday shift", at: calUTC(2026, 3, 5, 14, 30), rep: "tk", reason: tkBackSun},
			{name: "Tokyo Sun 21:30", at: calUTC(2026, 3, 8, 12, 30), rep: "tk", reason: tkBackSun},
			{name: "Tokyo Sun 23:30", at: calUTC(2026, 3, 8, 14, 30), rep: "tk", assign: true},
			{name: "Tokyo Mon 00:00", at: calUTC(2026, 3, 8, 15, 0), rep: "tk"},
			// Monday morning in Tokyo, still Sunday in UTC.
			{name: "Tokyo Mon 05:30", at: calUTC(2026, 3, 8, 20, 30), rep: "tk", assign: true},
			{name: "Tokyo Mon 05:59", at: calUTC(2026, 3, 8, 20, 59), rep: "tk"},
			{name: "Tokyo Mon 06:00", at: calUTC(2026, 3, 8, 21, 0), rep: "tk", reason: tkBackWed},
			{name: "Tokyo Mon 06:30", at: calUTC(2026, 3, 8, 21, 30), rep: "tk", reason: tkBackWed},
			// Sunday night in Los Angeles, already Monday in UTC.
			{name: "LA Sun 21:30 PDT", at: calUTC(2026, 3, 9, 4, 30), rep: "la", reason: laBackSun},
			{name: "LA Sun 23:30 PDT", at: calUTC(2026, 3, 9, 6, 30), rep: "la", assign: true},
			{name: "LA Mon 00:00 PDT", at: calUTC(2026, 3, 9, 7, 0), rep: "la"},
			{name: "LA Mon 05:30 PDT", at: calUTC(2026, 3, 9, 12, 30), rep: "la", assign: true},
			{name: "LA Mon 06:30 PDT", at: calUTC(2026, 3, 9, 13, 30), rep: "la",
				reason: "outside working hours, back Sun 2026-03-15 22:00 America/Los_Angeles"},
		})
	})
}

// TestDailyCapResetsAtLocalMidnight: a daily cap counts the rep's local day.
// Los Angeles is UTC-8 in early March 2026.
func TestDailyCapResetsAtLocalMidnight(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		f.apply(calConfig(calRep{"la", "timezone: America/Los_Angeles, daily_cap: 2"}))
		today := func(want int64) {
			t.Helper()
			if r := calRepState(t, f, "la"); r.AssignedToday != want {
				t.Fatalf("at %s: AssignedToday = %d, want %d", f.clock.Now().UTC(), r.AssignedToday, want)
			}
		}
		queued := func(id string) {
			t.Helper()
			calSweep(t, f)
			if a := calGet(t, f, id); a.State != engine.StateQueued {
				t.Fatalf("at %s: %s is %s to %q, want still QUEUED", f.clock.Now().UTC(), id, a.State, a.RepID)
			}
		}
		const capped = "capped 2/2 today"

		// Monday 15:00 PST = 23:00 UTC.
		calAt(f, calUTC(2026, 3, 2, 23, 0))
		calWant(t, f.assign(calLead("c1", "la")), "la", "")
		calWant(t, f.assign(calLead("c2", "la")), "la", "")
		calWant(t, f.assign(calLead("c3", "la")), "la", capped)
		today(2)

		// Tuesday in UTC, still Monday 16:30 in Los Angeles.
		calAt(f, calUTC(2026, 3, 3, 0, 30))
		calPreview(t, f, "la", capped)
		queued("c3")
		today(2)

		// Monday 23:59 PST.
		calAt(f, calUTC(2026, 3, 3, 7, 59))
		calPreview(t, f, "la", capped)
		queued("c3")

		// Tuesday 00:00 PST: the cap resets and the sweeper assigns c3.
		calAt(f, calUTC(2026, 3, 3, 8, 0))
		today(0)
		calSweep(t, f)
		if a := calGet(t, f, "c3"); a.State != engine.StateAssigned || a.RepID != "la" {
			t.Fatalf("c3 after local midnight: %s to %q, want ASSIGNED to la", a.State, a.RepID)
		}
		today(1)

		// Tuesday 20:00 PST = Wednesday 04:00 UTC: c3 (Tuesday 00:00) and c4
		// are on the same local day, not the same UTC day.
		calAt(f, calUTC(2026, 3, 4, 4, 0))
		calWant(t, f.assign(calLead("c4", "la")), "la", "")
		calWant(t, f.assign(calLead("c5", "la")), "la", capped)
		today(2)

		calAt(f, calUTC(2026, 3, 4, 7, 59))
		queued("c5")

		calAt(f, calUTC(2026, 3, 4, 8, 0))
		calSweep(t, f)
		if a := calGet(t, f, "c5"); a.State != engine.StateAssigned || a.RepID != "la" {
			t.Fatalf("c5 after local midnight: %s to %q, want ASSIGNED to la", a.State, a.RepID)
		}
		if r := calRepState(t, f, "la"); r.AssignedToday != 1 || r.AssignedTotal != 5 || r.Open != 5 {
			t.Fatalf("rep la: today %d total %d open %d, want 1, 5, 5", r.AssignedToday, r.AssignedTotal, r.Open)
		}
	})
}

// TestMemberDailyCap: pools[].members[].daily_cap limits the rep's leads
// from that pool only, per local day.
func TestMemberDailyCap(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		f.apply(`
reps: [{id: m, timezone: Asia/Tokyo}]
pools:
  - {id: inbound, members: [{rep_id: m, daily_cap: 1}]}
  - {id: outbound, members: [{rep_id: m}]}
rules:
  - {id: in, match: {sources: [in]}, targets: [{pool_id: inbound}]}
  - {id: out, targets: [{pool_id: outbound}]}
`)
		in := func(id string) engine.Lead { return engine.Lead{ID: id, Source: "in"} }
		want := func(a *engine.Assignment, state engine.State, pool, skip string) {
			t.Helper()
			c := calSkip(t, a)
			if a.State != state || a.PoolID != pool || c.RepID != "m" || c.SkipReason != skip {
				t.Fatalf("lead %s: %s in %q, candidate %+v; want %s in %s, skip %q", a.LeadID, a.State, a.PoolID, c, state, pool, skip)
			}
		}
		const capped = "capped 1/1 today in inbound"

		// Monday 18:00 JST. Two leads from outbound do not count in inbound.
		want(f.assign(lead("o1")), engine.StateAssigned, "outbound", "")
		want(f.assign(lead("o2")), engine.StateAssigned, "outbound", "")
		want(f.assign(in("i1")), engine.StateAssigned, "inbound", "")
		want(f.assign(in("i2")), engine.StateQueued, "inbound", capped)
		// The cap of the inbound membership does not limit outbound.
		want(f.assign(lead("o3")), engine.StateAssigned, "outbound", "")
		if r := calRepState(t, f, "m"); r.AssignedToday != 4 {
			t.Fatalf("AssignedToday = %d, want 4", r.AssignedToday)
		}

		// Monday 23:59 JST.
		calAt(f, calUTC(2026, 3, 2, 14, 59))
		calSweep(t, f)
		if a := calGet(t, f, "i2"); a.State != engine.StateQueued {
			t.Fatalf("i2 before local midnight: %s, want QUEUED", a.State)
		}
		// Tuesday 00:00 JST, still Monday in UTC.
		calAt(f, calUTC(2026, 3, 2, 15, 0))
		calSweep(t, f)
		if a := calGet(t, f, "i2"); a.State != engine.StateAssigned || a.RepID != "m" || a.PoolID != "inbound" {
			t.Fatalf("i2 after local midnight: %s to %q in %q, want ASSIGNED to m in inbound", a.State, a.RepID, a.PoolID)
		}
		want(f.assign(in("i3")), engine.StateQueued, "inbound", capped)
		want(f.assign(lead("o4")), engine.StateAssigned, "outbound", "")
		if r := calRepState(t, f, "m"); r.AssignedToday != 2 || r.AssignedTotal != 6 {
			t.Fatalf("AssignedToday = %d, AssignedTotal = %d, want 2, 6", r.AssignedToday, r.AssignedTotal)
		}
	})
}

// TestMaxOpenFreedByRelease: a rep holding max_open open assignments is
// skipped until one is released; releasing a lead twice releases it once.
func TestMaxOpenFreedByRelease(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		f.apply(calConfig(calRep{"a", "max_open: 2"}))
		open := func(want int64) {
			t.Helper()
			if r := calRepState(t, f, "a"); r.Open != want {
				t.Fatalf("Open = %d, want %d", r.Open, want)
			}
		}
		release := func(id string) {
			t.Helper()
			a, err := f.eng.ReleaseAssignment(f.ctx, f.ws, id, "done")
			if err != nil || a.State != engine.StateClosed || a.RepID != "a" {
				t.Fatalf("release %s: %v %+v", id, err, a)
			}
		}
		const full = "at capacity 2/2"

		calWant(t, f.assign(calLead("l1", "a")), "a", "")
		open(1)
		calWant(t, f.assign(calLead("l2", "a")), "a", "")
		open(2)
		calPreview(t, f, "a", full)

		release("l1")
		open(1)
		calPreview(t, f, "a", "")
		release("l1")
		open(1)
		calPreview(t, f, "a", "")

		calWant(t, f.assign(calLead("l3", "a")), "a", "")
		open(2)
		calWant(t, f.assign(calLead("l4", "a")), "a", full)

		// Releasing l2 frees a place: the pool's queue is drained, l4 takes
		// it, and the rep is full again.
		release("l2")
		if a := calGet(t, f, "l4"); a.State != engine.StateAssigned || a.RepID != "a" {
			t.Fatalf("l4 after a release: %s to %q, want ASSIGNED to a", a.State, a.RepID)
		}
		open(2)
		release("l2")
		open(2)
		calPreview(t, f, "a", full)
		if r := calRepState(t, f, "a"); r.AssignedTotal != 4 {
			t.Fatalf("AssignedTotal = %d, want 4", r.AssignedTotal)
		}
	})
}

// TestOutOfOfficeLocalDates: out_of_office ranges are inclusive and in the
// rep's local dates.
func TestOutOfOfficeLocalDates(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		f.apply(calConfig(
			calRep{"tk", "timezone: Asia/Tokyo, out_of_office: [{from: 2026-03-04, to: 2026-03-05}]"},
			calRep{"night", "timezone: Europe/Berlin, working_hours: " + calEveryDay("22:00-06:00+1") +
				", out_of_office: [{from: 2026-03-03, to: 2026-03-03}]"},
			calRep{"ber", "timezone: Europe/Berlin, working_hours: " + calWeekdays("09:00-17:00") +
				", out_of_office: [{from: 2026-03-09, to: 2026-03-13}]"},
			calRep{"la", "timezone: America/Los_Angeles, " +
				"out_of_office: [{from: 2026-03-10, to: 2026-03-10}, {from: 2026-03-12, to: 2026-03-12}]"},
		))
		const (
			tkBack    = "out of office, back Fri 00:00 Asia/Tokyo"
			nightBack = "out of office, back Wed 00:00 Europe/Berlin"
			berBack   = "back Mon 2026-03-16 09:00 Europe/Berlin"
		)
		calRun(t, f, []calStep{
			{name: "Berlin night shift Mon 23:59", at: calUTC(2026, 3, 2, 22, 59), rep: "night", assign: true},
			// Tuesday is off, even in the shift that began Monday night.
			{name: "Berlin Tue 00:00", at: calUTC(2026, 3, 2, 23, 0), rep: "night", reason: nightBack},
			{name: "Tokyo Tue 23:59", at: calUTC(2026, 3, 3, 14, 59), rep: "tk", assign: true},
			{name: "Tokyo Wed 00:00, Tuesday in UTC", at: calUTC(2026, 3, 3, 15, 0), rep: "tk", reason: tkBack},
			// Tuesday night's shift runs on into Wednesday, which is not off.
			{name: "Berlin Tue 23:00", at: calUTC(2026, 3, 3, 22, 0), rep: "night", reason: nightBack},
			{name: "Berlin Tue 23:59", at: calUTC(2026, 3, 3, 22, 59), rep: "night", reason: nightBack},
			{name: "Berlin Wed 00:00", at: calUTC(2026, 3, 3, 23, 0), rep: "night", assign: true},
			{name: "Berlin Wed 06:30", at: calUTC(2026, 3, 4, 5, 30), rep: "night", reason: "outside working hours, back Wed 22:00 Europe/Berlin"},
			{name: "Tokyo Thu 23:59, last day off", at: calUTC(2026, 3, 5, 14, 59), rep: "tk", reason: tkBack},
			{name: "Tokyo Fri 00:00", at: calUTC(2026, 3, 5, 15, 0), rep: "tk", assign: true},
			{name: "Berlin Fri 17:30 before a week off", at: calUTC(2026, 3, 6, 16, 30), rep: "ber", reason: "outside working hours, " + berBack},
			{name: "Berlin Mon 10:00, first day off", at: calUTC(2026, 3, 9, 9, 0), rep: "ber", reason: "out of office, " + berBack},
			// Tuesday 2026-03-10 in UTC, still Monday in Los Angeles (PDT).
			{name: "LA Mon 23:59", at: calUTC(2026, 3, 10, 6, 59), rep: "la", assign: true},
			{name: "LA Tue 00:00", at: calUTC(2026, 3, 10, 7, 0), rep: "la", reason: "out of office, back Wed 00:00 America/Los_Angeles"},
			{name: "LA Tue 23:59", at: calUTC(2026, 3, 11, 6, 59), rep: "la", reason: "out of office, back Wed 00:00 America/Los_Angeles"},
			{name: "LA Wed 00:00", at: calUTC(2026, 3, 11, 7, 0), rep: "la", assign: true},
			{name: "LA Thu 12:00, second range", at: calUTC(2026, 3, 12, 19, 0), rep: "la", reason: "out of office, back Fri 00:00 America/Los_Angeles"},
			{name: "LA Fri 00:00", at: calUTC(2026, 3, 13, 7, 0), rep: "la", assign: true},
			{name: "Berlin Fri 16:59, last day off", at: calUTC(2026, 3, 13, 15, 59), rep: "ber", reason: "out of office, back Mon 09:00 Europe/Berlin"},
			{name: "Berlin Mon 09:00, back", at: calUTC(2026, 3, 16, 8, 0), rep: "ber", assign: true},
		})
	})
}

// TestOutsideHoursTraceSaysWhenBack: the skip reason of a rep outside its
// hours says when the rep is back, in the rep's zone, as of the decision;
// reading the record later says the same.
func TestOutsideHoursTraceSaysWhenBack(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		f.apply(calConfig(calRep{"ber", "timezone: Europe/Berlin, working_hours: " + calWeekdays("09:00-17:00")}))
		const back = "outside working hours, back Mon 09:00 Europe/Berlin"

		// Saturday 13:00 CET.
		calAt(f, calUTC(2026, 3, 7, 12, 0))
		a := f.assign(calLead("sat", "ber"))
		calWant(t, a, "ber", back)
		if want := `Queued on pool "p-ber": nobody eligible in p-ber.`; !strings.HasSuffix(a.Trace.Summary, want) {
			t.Errorf("summary %q, want it to end with %q", a.Trace.Summary, want)
		}

		// Sunday 23:00 CET: the stored trace still explains Saturday's
		// decision.
		calAt(f, calUTC(2026, 3, 8, 22, 0))
		calWant(t, calGet(t, f, "sat"), "ber", back)
		calPreview(t, f, "ber", back)

		// Monday 08:59 CET.
		calAt(f, calUTC(2026, 3, 9, 7, 59))
		calPreview(t, f, "ber", back)
		// Monday 17:00 CET (the queued lead is not drained: no sweep ran).
		calAt(f, calUTC(2026, 3, 9, 16, 0))
		calPreview(t, f, "ber", "outside working hours, back Tue 09:00 Europe/Berlin")
		// Friday 17:00 CET.
		calAt(f, calUTC(2026, 3, 13, 16, 0))
		calPreview(t, f, "ber", back)
	})
}

// TestSweeperAssignsWhenShiftStarts: leads queued because nobody is within
// hours are assigned by the sweeper once the shift starts, with no other
// event.
func TestSweeperAssignsWhenShiftStarts(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		f.apply(calConfig(calRep{"ber", "timezone: Europe/Berlin, working_hours: " + calWeekdays("09:00-17:00")}))

		// Monday 08:30 CET.
		queuedAt := calUTC(2026, 3, 9, 7, 30)
		calAt(f, queuedAt)
		calWant(t, f.assign(calLead("s1", "ber")), "ber", "outside working hours, back Mon 09:00 Europe/Berlin")
		calWant(t, f.assign(calLead("s2", "ber")), "ber", "outside working hours, back Mon 09:00 Europe/Berlin")

		// 08:59 CET: a sweep leaves them queued.
		calAt(f, calUTC(2026, 3, 9, 7, 59))
		calSweep(t, f)
		for _, id := range []string{"s1", "s2"} {
			if a := calGet(t, f, id); a.State != engine.StateQueued {
				t.Fatalf("%s at 08:59: %s, want QUEUED", id, a.State)
			}
		}

		// 09:05 CET: nothing happens until the sweeper runs.
		calAt(f, calUTC(2026, 3, 9, 8, 5))
		if a := calGet(t, f, "s1"); a.State != engine.StateQueued {
			t.Fatalf("s1 before the sweep: %s, want QUEUED", a.State)
		}
		calSweep(t, f)
		now := f.clock.Now()
		for _, id := range []string{"s1", "s2"} {
			a := calGet(t, f, id)
			if a.State != engine.StateAssigned || a.RepID != "ber" || a.PoolID != "p-ber" {
				t.Fatalf("%s after the sweep: %s to %q in %q, want ASSIGNED to ber in p-ber", id, a.State, a.RepID, a.PoolID)
			}
			if !a.DecidedAt.Equal(now) || a.QueuedAt.Before(queuedAt) || a.QueuedAt.After(queuedAt.Add(time.Second)) {
				t.Fatalf("%s: decided %s (want %s), queued %s (want %s)", id, a.DecidedAt.UTC(), now.UTC(), a.QueuedAt.UTC(), queuedAt)
			}
			if c, ok := a.Trace.Targets[len(a.Trace.Targets)-1].Chosen(); !ok || c.RepID != "ber" {
				t.Fatalf("%s trace %+v, want ber chosen", id, a.Trace.Targets)
			}
		}
		if r := calRepState(t, f, "ber"); r.AssignedToday != 2 || r.Open != 2 {
			t.Fatalf("rep ber: today %d open %d, want 2, 2", r.AssignedToday, r.Open)
		}
	})
}
