package engine

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Working hours, out-of-office days and daily caps are evaluated inside the
// store's atomic decision, which cannot load time zones. So the engine
// compiles each rep's calendar into plain numbers: the weekly schedule as
// minute-of-week intervals, out-of-office dates as day numbers, and for each
// time zone the UTC offsets in force from each transition over the next
// offsetHorizon. With the offset in force at "now", local day and minute are
// arithmetic, and DST changes are exact.

const (
	minutesPerDay  = 24 * 60
	minutesPerWeek = 7 * minutesPerDay
	// offsetHorizon is how far ahead time-zone transitions are compiled.
	// Applying the config again extends it.
	offsetHorizon = 5 * 365 * 24 * time.Hour
)

var weekdays = [7]string{"monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"}

// RepProfile is a rep's eligibility limits in the form the store evaluates.
type RepProfile struct {
	RepID    string
	MaxOpen  int32
	DailyCap int32
	Zone     string
	// Week holds [start, end) minute-of-week intervals, Monday 00:00 = 0,
	// sorted and non-overlapping; empty means always working.
	Week [][2]int32
	// OutOfOffice holds inclusive [first, last] local day numbers (days
	// since 1970-01-01 in the rep's calendar).
	OutOfOffice [][2]int64
}

// ZoneOffsets lists a time zone's UTC offsets: Offsets[i] seconds are in
// force from From[i] (unix ms) until From[i+1].
type ZoneOffsets struct {
	Zone    string
	From    []int64
	Offsets []int32
}

// schedule is a rep's calendar, compiled for Go-side questions (when is the
// rep back?).
type schedule struct {
	loc  *time.Location
	week [][2]int32
	ooo  [][2]int64
}

// parseSchedule validates and compiles a rep's hours and out-of-office days,
// reporting problems under path (e.g. "reps[2]").
func parseSchedule(v *violations, path string, r *Rep, loc *time.Location) schedule {
	s := schedule{loc: loc}
	if r.WorkingHours != nil {
		type span struct {
			s, e  int32
			field string
		}
		var spans []span
		for d, list := range r.WorkingHours.Days() {
			for j, iv := range list {
				field := fmt.Sprintf("%s.working_hours.%s[%d]", path, weekdays[d], j)
				start, end, err := parseInterval(iv)
				if err != nil {
					v.add(field, "%q: %v", iv, err)
					continue
				}
				base := int32(d * minutesPerDay)
				spans = append(spans, span{base + start, base + end, field})
			}
		}
		sort.Slice(spans, func(i, j int) bool { return spans[i].s < spans[j].s })
		// Each span is compared with the one reaching furthest before it,
		// not only with its neighbour: a long span may hold several others.
		reach := 0
		for i := 1; i < len(spans); i++ {
			if spans[i].s < spans[reach].e {
				v.add(spans[i].field, "overlaps %s", spans[reach].field)
			}
			if spans[i].e > spans[reach].e {
				reach = i
			}
		}
		// Sunday's overnight shift wraps into Monday morning.
		if len(spans) > 0 && spans[reach].e > minutesPerWeek {
			for k := 0; k < len(spans) && spans[k].s < spans[reach].e-minutesPerWeek; k++ {
				v.add(spans[k].field, "overlaps %s", spans[reach].field)
			}
		}
		for _, sp := range spans {
			if sp.e <= minutesPerWeek {
				s.week = append(s.week, [2]int32{sp.s, sp.e})
				continue
			}
			s.week = append(s.week, [2]int32{sp.s, minutesPerWeek}, [2]int32{0, sp.e - minutesPerWeek})
		}
		sort.Slice(s.week, func(i, j int) bool { return s.week[i][0] < s.week[j][0] })
		written := 0
		for _, list := range r.WorkingHours.Days() {
			written += len(list)
		}
		if written == 0 {
			v.add(path+".working_hours", "no working interval on any day: the rep could never take a lead")
		}
	}
	for j, dr := range r.OutOfOffice {
		field := fmt.Sprintf("%s.out_of_office[%d]", path, j)
		from, err1 := time.Parse(time.DateOnly, dr.From)
		to, err2 := time.Parse(time.DateOnly, dr.To)
		switch {
		case err1 != nil:
			v.add(field+".from", "%q is not a date (YYYY-MM-DD)", dr.From)
		case err2 != nil:
			v.add(field+".to", "%q is not a date (YYYY-MM-DD)", dr.To)
		case to.Before(from):
			v.add(field, "to %s is before from %s", dr.To, dr.From)
		default:
			s.ooo = append(s.ooo, [2]int64{dayNumber(from), dayNumber(to)})
		}
	}
	return s
}

// parseInterval reads "HH:MM-HH:MM" or "HH:MM-HH:MM+1" into minutes of the
// day; an interval ending the next day has end > 1440.
func parseInterval(s string) (start, end int32, err error) {
	a, b, ok := strings.Cut(strings.TrimSpace(s), "-")
	if !ok {
		return 0, 0, fmt.Errorf("want HH:MM-HH:MM")
	}
	next := false
	if b, next = strings.CutSuffix(b, "+1"); next {
		b = strings.TrimSpace(b)
	}
	if start, err = parseClock(a, false); err != nil {
		return 0, 0, err
	}
	if end, err = parseClock(b, true); err != nil {
		return 0, 0, err
	}
	switch {
	case next && end >= start:
		return 0, 0, fmt.Errorf("+1 marks an interval ending the next day, but it ends after it starts")
	case next:
		end += minutesPerDay
	case end <= start:
		return 0, 0, fmt.Errorf("ends before it starts (mark an overnight shift with +1, e.g. 22:00-06:00+1)")
	}
	return start, end, nil
}

func parseClock(s string, allow24 bool) (int32, error) {
	h, m, ok := strings.Cut(strings.TrimSpace(s), ":")
	// Digits only: strconv.Atoi alone would take "+9" or "09:+5".
	ok = ok && len(h) >= 1 && len(h) <= 2 && len(m) == 2 && digits(h) && digits(m)
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if !ok || err1 != nil || err2 != nil || mm > 59 || hh > 24 || (hh == 24 && (mm != 0 || !allow24)) {
		return 0, fmt.Errorf("%q is not a time of day HH:MM", s)
	}
	return int32(hh*60 + mm), nil
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// dayNumber is the day count since 1970-01-01 of a date's calendar day.
func dayNumber(t time.Time) int64 {
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400
}

// LocalDay is t's local day number in loc (days since 1970-01-01 of its
// calendar date there): the day a rep's daily cap counts.
func LocalDay(t time.Time, loc *time.Location) int64 {
	day, _ := localMinute(t, loc)
	return day
}

// LocalTimes is, per time zone, the local day number and minute of the
// week (Monday 00:00 = 0) at one instant: what the store's scripts compare
// reps' calendars and daily counts with. localMinute is the one place local
// time is computed; scripts never convert a time themselves.
type LocalTimes map[string][2]int64

// localMinute returns t's local day number and minute of the week (Monday
// 00:00 = 0) in loc.
func localMinute(t time.Time, loc *time.Location) (day int64, minute int32) {
	lt := t.In(loc)
	day = dayNumber(lt)
	wd := (int(lt.Weekday()) + 6) % 7 // Monday = 0
	return day, int32(wd*minutesPerDay + lt.Hour()*60 + lt.Minute())
}

// working reports whether the schedule has the rep working at t.
func (s schedule) working(t time.Time) bool {
	return s.standing(t) == StandingOn
}

// standing is where the rep stands in its calendar at t.
func (s schedule) standing(t time.Time) Standing {
	if s.always() {
		return StandingOn
	}
	day, minute := localMinute(t, s.loc)
	if s.outOfOffice(day) {
		return StandingOutOfOffice
	}
	if len(s.week) == 0 {
		return StandingOn
	}
	for _, iv := range s.week {
		if minute >= iv[0] && minute < iv[1] {
			return StandingOn
		}
	}
	return StandingHours
}

// always reports whether the rep has no calendar: it is always working.
func (s schedule) always() bool {
	return len(s.week) == 0 && len(s.ooo) == 0
}

// nextChange returns the first instant after t, searching up to within,
// where the rep's standing differs from its standing at t; zero when
// there is none that soon.
func (s schedule) nextChange(t time.Time, within time.Duration) time.Time {
	if s.always() {
		return time.Time{}
	}
	from := s.standing(t)
	return s.next(t, within, func(at time.Time) bool { return s.standing(at) != from })
}

// nextStart returns when the rep is next working after t (at minute
// resolution), searching up to 400 days; zero when never.
//
// While the zone's UTC offset stays the same, local time runs with UTC, and
// a rep who is not working can start only where the local clock reaches the
// start of an interval or a midnight (the end of a day out of office, which
// may fall inside an overnight shift that began the day before). Where the
// offset changes, the rep may start at the change itself (a start skipped by
// a spring-forward). So each stretch of constant offset is searched on its
// own, with wall-clock arithmetic: time.Date would move a skipped wall time
// and pick one of two repeated ones.
func (s schedule) nextStart(t time.Time) time.Time {
	return s.next(t, 400*24*time.Hour, s.working)
}

// next returns the first instant after t, up to within, where hit holds,
// of those where the rep's standing may change: a midnight, the start or
// end of a working interval, or a change of the zone's UTC offset.
func (s schedule) next(t time.Time, within time.Duration, hit func(time.Time) bool) time.Time {
	limit := t.Add(within)
	for from := t; from.Before(limit); {
		lt := from.In(s.loc)
		_, off := lt.Zone()
		_, end := lt.ZoneBounds()
		if end.IsZero() || end.After(limit) {
			end = limit
		}
		if from.After(t) && hit(from) {
			return lt
		}
		// Wall-clock seconds: local time as if it were UTC.
		wallFrom, wallEnd := from.Unix()+int64(off), end.Unix()+int64(off)
		for day := floorDiv(wallFrom, 86400); day*86400 < wallEnd; day++ {
			for _, st := range s.edges(int32((day%7 + 10) % 7)) { // day 0 was a Thursday
				wall := day*86400 + int64(st)*60
				if wall <= wallFrom || wall >= wallEnd {
					continue
				}
				if at := time.Unix(wall-int64(off), 0).In(s.loc); hit(at) {
					return at
				}
			}
		}
		from = end
	}
	return time.Time{}
}

// edges lists, in order, the minutes of a weekday (Monday = 0) where the
// rep's standing may change: midnight and the starts and ends of that
// day's intervals.
func (s schedule) edges(weekday int32) []int32 {
	out := []int32{0}
	for _, iv := range s.week {
		for _, m := range iv {
			if m/minutesPerDay == weekday && m%minutesPerDay != 0 {
				out = append(out, m%minutesPerDay)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func (s schedule) outOfOffice(day int64) bool {
	for _, r := range s.ooo {
		if day >= r[0] && day <= r[1] {
			return true
		}
	}
	return false
}

// zoneOffsets lists the offsets of loc in force from just before now until
// now+offsetHorizon.
func zoneOffsets(loc *time.Location, now time.Time) ZoneOffsets {
	z := ZoneOffsets{Zone: loc.String(), From: []int64{0}}
	t := now.Add(-48 * time.Hour).In(loc)
	end := now.Add(offsetHorizon)
	_, off := t.Zone()
	z.Offsets = append(z.Offsets, int32(off))
	for {
		_, next := t.ZoneBounds()
		if next.IsZero() || next.After(end) {
			return z
		}
		t = next.In(loc)
		_, off = t.Zone()
		z.From = append(z.From, next.UnixMilli())
		z.Offsets = append(z.Offsets, int32(off))
	}
}

// Profiles compiles every rep's limits and calendar, and the offsets of every
// time zone they use, as of now. The config must be valid.
func Profiles(cfg *Config, now time.Time) ([]RepProfile, []ZoneOffsets) {
	var zones []ZoneOffsets
	seen := map[string]bool{}
	profiles := make([]RepProfile, 0, len(cfg.Reps))
	for i := range cfg.Reps {
		r := &cfg.Reps[i]
		loc, err := time.LoadLocation(r.Timezone)
		if err != nil {
			loc = time.UTC
		}
		var v violations
		s := parseSchedule(&v, "", r, loc)
		profiles = append(profiles, RepProfile{RepID: r.ID, MaxOpen: r.MaxOpen, DailyCap: r.DailyCap,
			Zone: loc.String(), Week: s.week, OutOfOffice: s.ooo})
		if !seen[loc.String()] {
			seen[loc.String()] = true
			zones = append(zones, zoneOffsets(loc, now))
		}
	}
	return profiles, zones
}
