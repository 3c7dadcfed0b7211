package engine

import (
	"context"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Shift filing: a pool's eligible-member index ranks only the members who
// are AVAILABLE and inside their calendar, so that a pick in a
// follow-the-sun pool, two thirds of it off shift, costs what a pick among
// the third on shift costs (store/lua/lib_index.lua). Calendars follow
// from the config and the clock, so Go computes them: each replica knows,
// per compiled config, when each rep's standing changes next, and once its
// clock passes the earliest such instant it files the reps whose standing
// changed (Store.FileShifts). The first filing under a config files every
// rep.
//
// Every operation under a config files what is due before it runs
// (underConfig, drainPool), and the sweeper does for idle workspaces, so a
// decision never sees an index older than its own clock: a rep whose shift
// starts at 09:00 is ranked for a decision made at 09:00:00.001. The
// replicas file the same changes; filing is idempotent. A pick still
// checks hours and days off itself (the store's ineligible): between two
// replicas whose clocks differ by a few milliseconds, a rep may be ranked
// moments before its own shift starts, and is then passed over, not
// offered.

// Standing is where a rep stands in its calendar. Outside it, the standing
// is the skip code a trace gives the rep when a pick passes it over in
// away (lib_pick.lua trace_skips), so the two share their values.
type Standing string

const (
	StandingOn          Standing = "on"                   // inside working hours, not out of office (or no calendar)
	StandingHours                = Standing(SkipHours)    // outside working hours
	StandingOutOfOffice          = Standing(SkipOutOfOff) // on a day out of office
)

// ShiftFiling is a rep's standing to file in the indexes of its pools.
type ShiftFiling struct {
	Rep      string
	Standing Standing
	Pools    []string
}

// shiftHorizon is how far ahead a rep's next change is looked for. A rep
// with none in the horizon (a long leave) is filed again at its end, which
// changes nothing and costs one look.
const shiftHorizon = 8 * 24 * time.Hour

// shiftFiler is a compiled config's filing state on this replica.
type shiftFiler struct {
	mu sync.Mutex
	// due is the unix ms at which some rep's standing changes next;
	// 0 before the first filing, math.MaxInt64 when no rep's ever does.
	due atomic.Int64
	// filed is the unix ms of the last filing: a clock set back before it
	// (a test's, or a stepped one) files every rep again.
	filed atomic.Int64
	next  map[string]time.Time // rep -> its next change (zero: none)
}

// current reports whether the filing holds at now: filed, no change due
// yet, and the clock not set back before it.
func (f *shiftFiler) current(now time.Time) bool {
	ms := now.UnixMilli()
	d := f.due.Load()
	return d != 0 && ms < d && ms >= f.filed.Load()
}

// fileShifts files the reps of cc whose standing changed since the last
// filing (every rep at the first), unless none is due yet: then it is two
// atomic loads.
func (e *Engine) fileShifts(ctx context.Context, ws string, cc *compiledConfig) error {
	f := &cc.shifts
	if f.current(e.clock.Now()) {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	now := e.clock.Now()
	if f.current(now) {
		return nil // filed by another call meanwhile
	}
	all := f.due.Load() == 0 || now.UnixMilli() < f.filed.Load()
	var filings []ShiftFiling
	for i := range cc.cfg.Reps {
		id := cc.cfg.Reps[i].ID
		if at := f.next[id]; !all && (at.IsZero() || now.Before(at)) {
			continue
		}
		filings = append(filings, ShiftFiling{Rep: id, Standing: cc.schedules[id].standing(now), Pools: cc.repPools[id]})
	}
	changed, err := e.store.FileShifts(ctx, ws, cc.id, filings, now)
	if err != nil {
		return err
	}
	if f.next == nil {
		f.next = make(map[string]time.Time, len(cc.cfg.Reps))
	}
	for _, r := range filings {
		f.next[r.Rep] = cc.schedules[r.Rep].nextChange(now, shiftHorizon)
	}
	due := int64(math.MaxInt64)
	for _, at := range f.next {
		if !at.IsZero() {
			due = min(due, at.UnixMilli())
		}
	}
	f.filed.Store(now.UnixMilli())
	f.due.Store(due)
	if changed > 0 {
		e.log.Debug("reps filed by their calendars", "workspace", ws, "changed", changed)
	}
	return nil
}
