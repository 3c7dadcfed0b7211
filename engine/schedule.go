package engine

import (
	"fmt"
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
		for i := 1; i < len(spans); i++ {
			if spans[i].s < spans[i-1].e {
				v.add(spans[i].field, "overlaps %s", spans[i-1].field)
			}
		}
		// Sunday's overnight shift wraps into Monday morning.
		if n := len(spans); n > 0 && spans[n-1].e > minutesPerWeek && spans[n-1].e-minutesPerWeek > spans[0].s {
			v.add(spans[0].field, "overlaps %s", spans[n-1].field)
		}
		for _, sp := range spans {
			if sp.e <= minutesPerWeek {
				s.week = append(s.week, [2]int32{sp.s, sp.e})
				continue
			}
			s.week = append(s.week, [2]int32{sp.s, minutesPerWeek}, [2]int32{0, sp.e - minutesPerWeek})
		}
		sort.Slice(s.week, func(i, j int) bool { return s.week[i][0] < s.week[j][0] })
		if len(spans) == 0 {
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
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if !ok || err1 != nil || err2 != nil || len(m) != 2 || mm < 0 || mm > 59 || hh < 0 ||
		hh > 24 || (hh == 24 && (mm != 0 || !allow24)) {
		return 0, fmt.Errorf("%q is not a time of day HH:MM", s)
	}
	return int32(hh*60 + mm), nil
}

// dayNumber is the day count since 1970-01-01 of a date's calendar day.
func dayNumber(t time.Time) int64 {
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400
}

// localMinute returns t's local day number and minute of the week (Monday
// 00:00 = 0) in loc: the same arithmetic the store's script does.
func localMinute(t time.Time, loc *time.Location) (day int64, minute int32) {
	lt := t.In(loc)
	day = dayNumber(lt)
	wd := (int(lt.Weekday()) + 6) % 7 // Monday = 0
	return day, int32(wd*minutesPerDay + lt.Hour()*60 + lt.Minute())
}

// working reports whether the schedule has the rep working at t.
func (s schedule) working(t time.Time) bool {
	day, minute := localMinute(t, s.loc)
	for _, r := range s.ooo {
		if day >= r[0] && day <= r[1] {
			return false
		}
	}
	if len(s.week) == 0 {
		return true
	}
	for _, iv := range s.week {
		if minute >= iv[0] && minute < iv[1] {
			return true
		}
	}
	return false
}

// nextStart returns when the rep is next working after t (at minute
// resolution), searching up to 400 days; zero when never.
func (s schedule) nextStart(t time.Time) time.Time {
	lt := t.In(s.loc)
	y, m, d := lt.Date()
	for i := 0; i < 400; i++ {
		date := time.Date(y, m, d+i, 0, 0, 0, 0, s.loc)
		if s.outOfOffice(dayNumber(date)) {
			continue
		}
		wd := int32((int(date.Weekday()) + 6) % 7)
		var starts []int32
		if len(s.week) == 0 {
			starts = []int32{0}
		}
		for _, iv := range s.week {
			if iv[0]/minutesPerDay == wd {
				starts = append(starts, iv[0]%minutesPerDay)
			}
		}
		for _, st := range starts {
			at := time.Date(date.Year(), date.Month(), date.Day(), int(st/60), int(st%60), 0, 0, s.loc)
			if at.After(t) && s.working(at) {
				return at
			}
		}
	}
	return time.Time{}
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
