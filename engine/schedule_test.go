package engine

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// schedLoc loads a time zone or fails the test.
func schedLoc(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// schedCompile compiles a rep's calendar and fails the test on any
// violation.
func schedCompile(t *testing.T, r Rep, zone string) schedule {
	t.Helper()
	var v violations
	s := parseSchedule(&v, "r", &r, schedLoc(t, zone))
	if len(v) > 0 {
		t.Fatalf("parseSchedule: %v", v.err())
	}
	return s
}

// schedEveryDay is a week with the same intervals every day.
func schedEveryDay(iv ...string) *WorkingHours {
	return &WorkingHours{Monday: iv, Tuesday: iv, Wednesday: iv, Thursday: iv, Friday: iv, Saturday: iv, Sunday: iv}
}

// schedWeekdays is a week with the same intervals Monday to Friday.
func schedWeekdays(iv ...string) *WorkingHours {
	return &WorkingHours{Monday: iv, Tuesday: iv, Wednesday: iv, Thursday: iv, Friday: iv}
}

func schedUTC(y int, m time.Month, d, hh, mm int) time.Time {
	return time.Date(y, m, d, hh, mm, 0, 0, time.UTC)
}

func TestParseInterval(t *testing.T) {
	valid := []struct {
		name, in   string
		start, end int32
	}{
		{"office hours", "09:00-17:00", 540, 1020},
		{"spaces around", " 09:00 - 17:00 ", 540, 1020},
		{"one-digit hour", "9:30-17:05", 570, 1025},
		{"whole day", "00:00-24:00", 0, 1440},
		{"until midnight", "18:00-24:00", 1080, 1440},
		{"one minute", "12:00-12:01", 720, 721},
		{"overnight", "22:00-06:00+1", 1320, 1800},
		{"overnight with a space before +1", "22:00-06:00 +1", 1320, 1800},
		{"overnight ending at midnight of the next day", "23:30-00:00+1", 1410, 1440},
		{"overnight from midnight-ish", "00:01-00:00+1", 1, 1440},
	}
	for _, c := range valid {
		t.Run(c.name, func(t *testing.T) {
			start, end, err := parseInterval(c.in)
			if err != nil || start != c.start || end != c.end {
				t.Fatalf("parseInterval(%q) = %d, %d, %v; want %d, %d, nil", c.in, start, end, err, c.start, c.end)
			}
		})
	}

	invalid := []struct {
		name, in, err string
	}{
		{"inverted without +1", "17:00-09:00", "ends before it starts (mark an overnight shift with +1, e.g. 22:00-06:00+1)"},
		{"empty interval", "09:00-09:00", "ends before it starts (mark an overnight shift with +1, e.g. 22:00-06:00+1)"},
		{"+1 on a same-day interval", "09:00-17:00+1", "+1 marks an interval ending the next day, but it ends after it starts"},
		{"24:00 with +1", "22:00-24:00+1", "+1 marks an interval ending the next day, but it ends after it starts"},
		{"24:00 as a start", "24:00-06:00+1", `"24:00" is not a time of day HH:MM`},
		{"24:30", "18:00-24:30", `"24:30" is not a time of day HH:MM`},
		{"hour 25", "09:00-25:00", `"25:00" is not a time of day HH:MM`},
		{"minute 60", "09:60-10:00", `"09:60" is not a time of day HH:MM`},
		{"one-digit minute", "09:0-17:00", `"09:0" is not a time of day HH:MM`},
		{"no separator", "09:00", "want HH:MM-HH:MM"},
		{"empty", "", "want HH:MM-HH:MM"},
		{"no colon", "0900-1700", `"0900" is not a time of day HH:MM`},
		{"am/pm", "9am-5pm", `"9am" is not a time of day HH:MM`},
		{"+2", "22:00-06:00+2", `"06:00+2" is not a time of day HH:MM`},
		{"negative end", "09:00--17:00", `"-17:00" is not a time of day HH:MM`},
		{"sign in the minutes", "09:+5-17:00", `"09:+5" is not a time of day HH:MM`},
		{"sign in the hour", "+9:00-17:00", `"+9:00" is not a time of day HH:MM`},
		{"three-digit hour", "009:00-17:00", `"009:00" is not a time of day HH:MM`},
		{"seconds", "09:00:00-17:00:00", `"09:00:00" is not a time of day HH:MM`},
	}
	for _, c := range invalid {
		t.Run(c.name, func(t *testing.T) {
			start, end, err := parseInterval(c.in)
			if err == nil {
				t.Fatalf("parseInterval(%q) = %d, %d, nil; want error %q", c.in, start, end, c.err)
			}
			if err.Error() != c.err {
				t.Fatalf("parseInterval(%q) error = %q, want %q", c.in, err.Error(), c.err)
			}
		})
	}
}

func TestParseSchedule(t *testing.T) {
	tests := []struct {
		name  string
		hours *WorkingHours
		// want is the exact list of violations, "field: description".
		want []string
		// week is the compiled week when there is no violation.
		week [][2]int32
	}{
		{
			name:  "no working hours: always working",
			hours: nil,
			week:  nil,
		},
		{
			name:  "two intervals a day, written out of order",
			hours: &WorkingHours{Monday: []string{"13:00-17:00", "09:00-12:00"}, Wednesday: []string{"10:00-11:00"}},
			week:  [][2]int32{{540, 720}, {780, 1020}, {2*1440 + 600, 2*1440 + 660}},
		},
		{
			name:  "adjacent intervals do not overlap",
			hours: &WorkingHours{Tuesday: []string{"09:00-12:00", "12:00-13:00"}},
			week:  [][2]int32{{1440 + 540, 1440 + 720}, {1440 + 720, 1440 + 780}},
		},
		{
			name:  "whole days back to back",
			hours: &WorkingHours{Monday: []string{"00:00-24:00"}, Tuesday: []string{"00:00-24:00"}},
			week:  [][2]int32{{0, 1440}, {1440, 2880}},
		},
		{
			name:  "overlap on the same day",
			hours: &WorkingHours{Monday: []string{"09:00-12:00", "11:00-13:00"}},
			want:  []string{"r.working_hours.monday[1]: overlaps r.working_hours.monday[0]"},
		},
		{
			name:  "a long interval holding two others",
			hours: &WorkingHours{Monday: []string{"09:00-17:00", "10:00-11:00", "12:00-13:00"}},
			want: []string{
				"r.working_hours.monday[1]: overlaps r.working_hours.monday[0]",
				"r.working_hours.monday[2]: overlaps r.working_hours.monday[0]",
			},
		},
		{
			name:  "same interval twice",
			hours: &WorkingHours{Friday: []string{"09:00-17:00", "09:00-17:00"}},
			want:  []string{"r.working_hours.friday[1]: overlaps r.working_hours.friday[0]"},
		},
		{
			name:  "weekday overnight shift into the next morning",
			hours: &WorkingHours{Monday: []string{"22:00-06:00+1"}, Tuesday: []string{"05:00-09:00"}},
			want:  []string{"r.working_hours.tuesday[0]: overlaps r.working_hours.monday[0]"},
		},
		{
			name:  "weekday overnight shift ending when the next one starts",
			hours: &WorkingHours{Monday: []string{"22:00-06:00+1"}, Tuesday: []string{"06:00-09:00"}},
			week:  [][2]int32{{1320, 1800}, {1800, 1980}},
		},
		{
			name:  "Sunday overnight shift overlapping Monday morning",
			hours: &WorkingHours{Sunday: []string{"22:00-06:00+1"}, Monday: []string{"05:00-09:00"}},
			want:  []string{"r.working_hours.monday[0]: overlaps r.working_hours.sunday[0]"},
		},
		{
			name:  "Sunday overnight shift overlapping two Monday intervals",
			hours: &WorkingHours{Sunday: []string{"20:00-08:00+1"}, Monday: []string{"05:00-06:00", "07:00-09:00", "09:00-10:00"}},
			want: []string{
				"r.working_hours.monday[0]: overlaps r.working_hours.sunday[0]",
				"r.working_hours.monday[1]: overlaps r.working_hours.sunday[0]",
			},
		},
		{
			name:  "Sunday overnight shift ending when Monday starts",
			hours: &WorkingHours{Sunday: []string{"22:00-06:00+1"}, Monday: []string{"06:00-09:00"}},
			week:  [][2]int32{{0, 360}, {360, 540}, {6*1440 + 1320, 7 * 1440}},
		},
		{
			name:  "Sunday overnight shift alone wraps into Monday",
			hours: &WorkingHours{Sunday: []string{"22:00-06:00+1"}},
			week:  [][2]int32{{0, 360}, {6*1440 + 1320, 7 * 1440}},
		},
		{
			name:  "inverted interval",
			hours: &WorkingHours{Monday: []string{"17:00-09:00"}, Tuesday: []string{"09:00-17:00"}},
			want: []string{`r.working_hours.monday[0]: "17:00-09:00": ends before it starts ` +
				`(mark an overnight shift with +1, e.g. 22:00-06:00+1)`},
		},
		{
			name:  "bad interval on the second day",
			hours: &WorkingHours{Monday: []string{"09:00-17:00"}, Tuesday: []string{"09:00-17:00", "9-5"}},
			want:  []string{`r.working_hours.tuesday[1]: "9-5": "9" is not a time of day HH:MM`},
		},
		{
			name:  "no interval on any day",
			hours: &WorkingHours{},
			want:  []string{"r.working_hours: no working interval on any day: the rep could never take a lead"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var v violations
			r := Rep{ID: "x", WorkingHours: tc.hours}
			s := parseSchedule(&v, "r", &r, time.UTC)
			var got []string
			for _, fv := range v {
				got = append(got, fv.Field+": "+fv.Description)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("violations = %q, want %q", got, tc.want)
			}
			if tc.want == nil && !slices.Equal(s.week, tc.week) {
				t.Fatalf("week = %v, want %v", s.week, tc.week)
			}
		})
	}
}

func TestParseScheduleOutOfOffice(t *testing.T) {
	tests := []struct {
		name string
		ooo  []DateRange
		want []string
		days [][2]int64
	}{
		{
			name: "one day and a range",
			ooo:  []DateRange{{From: "2026-03-04", To: "2026-03-04"}, {From: "2026-12-24", To: "2027-01-01"}},
			// 2026-01-01 is day 20454.
			days: [][2]int64{{20454 + 62, 20454 + 62}, {20454 + 357, 20454 + 365}},
		},
		{
			name: "to before from",
			ooo:  []DateRange{{From: "2026-03-04", To: "2026-03-03"}},
			want: []string{"r.out_of_office[0]: to 2026-03-03 is before from 2026-03-04"},
		},
		{
			name: "bad dates",
			ooo:  []DateRange{{From: "2026-03-04", To: "2026-03-05"}, {From: "04.03.2026", To: "2026-03-05"}, {From: "2026-03-04", To: "2026-02-30"}},
			want: []string{
				`r.out_of_office[1].from: "04.03.2026" is not a date (YYYY-MM-DD)`,
				`r.out_of_office[2].to: "2026-02-30" is not a date (YYYY-MM-DD)`,
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var v violations
			r := Rep{ID: "x", OutOfOffice: tc.ooo}
			s := parseSchedule(&v, "r", &r, time.UTC)
			var got []string
			for _, fv := range v {
				got = append(got, fv.Field+": "+fv.Description)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("violations = %q, want %q", got, tc.want)
			}
			if tc.want == nil && !slices.Equal(s.ooo, tc.days) {
				t.Fatalf("ooo = %v, want %v", s.ooo, tc.days)
			}
		})
	}
}

func TestZoneOffsets(t *testing.T) {
	berlin := schedLoc(t, "Europe/Berlin")
	fallBack := schedUTC(2026, 10, 25, 1, 0)
	springForward := schedUTC(2027, 3, 28, 1, 0)

	t.Run("Berlin around the 2026 fall-back", func(t *testing.T) {
		for _, now := range []time.Time{
			schedUTC(2026, 10, 24, 12, 0),
			schedUTC(2026, 10, 25, 0, 59),
			// Just after the change: compiled from 48 hours before now,
			// so the change itself is still listed.
			schedUTC(2026, 10, 25, 1, 30),
		} {
			z := zoneOffsets(berlin, now)
			if z.Zone != "Europe/Berlin" {
				t.Fatalf("zone = %q", z.Zone)
			}
			if len(z.From) != len(z.Offsets) || len(z.From) < 3 {
				t.Fatalf("now %s: from %v offsets %v", now, z.From, z.Offsets)
			}
			if z.From[0] != 0 || z.Offsets[0] != 7200 {
				t.Errorf("now %s: first entry %d:%d, want 0:7200", now, z.From[0], z.Offsets[0])
			}
			if z.From[1] != fallBack.UnixMilli() || z.Offsets[1] != 3600 {
				t.Errorf("now %s: second entry %d:%d, want %d:3600 (2026-10-25 01:00 UTC)", now, z.From[1], z.Offsets[1], fallBack.UnixMilli())
			}
			if z.From[2] != springForward.UnixMilli() || z.Offsets[2] != 7200 {
				t.Errorf("now %s: third entry %d:%d, want %d:7200 (2027-03-28 01:00 UTC)", now, z.From[2], z.Offsets[2], springForward.UnixMilli())
			}
		}
	})

	t.Run("Berlin covers five years", func(t *testing.T) {
		now := schedUTC(2026, 10, 24, 12, 0)
		z := zoneOffsets(berlin, now)
		// Transitions after now until now+5*365 days (2031-10-23 12:00 UTC):
		// 2026-10 and then two a year for 2027..2030 and 2031-03.
		if len(z.From) != 11 {
			t.Fatalf("%d entries, want 11: %v", len(z.From), z.From)
		}
		last := time.UnixMilli(z.From[10]).UTC()
		if want := schedUTC(2031, 3, 30, 1, 0); !last.Equal(want) || z.Offsets[10] != 7200 {
			t.Fatalf("last entry %s:%d, want %s:7200", last, z.Offsets[10], want)
		}
		// Every instant of the horizon reads the offset Go reads.
		for at := now; at.Before(now.Add(offsetHorizon)); at = at.Add(7*time.Hour + 13*time.Minute) {
			off := int32(0)
			for i := range z.From {
				if z.From[i] <= at.UnixMilli() {
					off = z.Offsets[i]
				}
			}
			if _, want := at.In(berlin).Zone(); off != int32(want) {
				t.Fatalf("at %s: compiled offset %d, want %d", at, off, want)
			}
		}
	})

	t.Run("New York spring-forward", func(t *testing.T) {
		z := zoneOffsets(schedLoc(t, "America/New_York"), schedUTC(2026, 3, 2, 9, 0))
		if z.Offsets[0] != -18000 || z.From[1] != schedUTC(2026, 3, 8, 7, 0).UnixMilli() || z.Offsets[1] != -14400 {
			t.Fatalf("from %v offsets %v", z.From[:2], z.Offsets[:2])
		}
	})

	t.Run("zones without changes", func(t *testing.T) {
		for _, c := range []struct {
			zone string
			off  int32
		}{{"UTC", 0}, {"Asia/Tokyo", 32400}, {"Asia/Kolkata", 19800}} {
			z := zoneOffsets(schedLoc(t, c.zone), schedUTC(2026, 3, 2, 9, 0))
			if z.Zone != c.zone || !slices.Equal(z.From, []int64{0}) || !slices.Equal(z.Offsets, []int32{c.off}) {
				t.Errorf("%s: %+v, want from [0] offsets [%d]", c.zone, z, c.off)
			}
		}
	})
}

func TestProfilesCompileCalendars(t *testing.T) {
	cfg := &Config{Reps: []Rep{
		{ID: "a", Timezone: "Europe/Berlin", MaxOpen: 3, DailyCap: 7,
			WorkingHours: &WorkingHours{Sunday: []string{"22:00-06:00+1"}, Monday: []string{"09:00-17:00"}},
			OutOfOffice:  []DateRange{{From: "2026-03-04", To: "2026-03-05"}}},
		{ID: "b", Timezone: "Europe/Berlin"},
		{ID: "c", Timezone: "UTC"},
	}}
	profiles, zones := Profiles(cfg, schedUTC(2026, 3, 2, 9, 0))
	if len(profiles) != 3 {
		t.Fatalf("%d profiles", len(profiles))
	}
	a := profiles[0]
	if a.RepID != "a" || a.MaxOpen != 3 || a.DailyCap != 7 || a.Zone != "Europe/Berlin" {
		t.Errorf("profile a = %+v", a)
	}
	if want := [][2]int32{{0, 360}, {540, 1020}, {9960, 10080}}; !slices.Equal(a.Week, want) {
		t.Errorf("week = %v, want %v", a.Week, want)
	}
	if want := [][2]int64{{20516, 20517}}; !slices.Equal(a.OutOfOffice, want) {
		t.Errorf("out of office = %v, want %v", a.OutOfOffice, want)
	}
	if profiles[1].Week != nil || profiles[2].Zone != "UTC" {
		t.Errorf("profiles b, c = %+v, %+v", profiles[1], profiles[2])
	}
	var names []string
	for _, z := range zones {
		names = append(names, z.Zone)
	}
	if !slices.Equal(names, []string{"Europe/Berlin", "UTC"}) {
		t.Errorf("zones %q, want each zone once", names)
	}
}

func TestScheduleWorking(t *testing.T) {
	ny := schedCompile(t, Rep{WorkingHours: schedEveryDay("09:00-17:00")}, "America/New_York")
	berlin := schedCompile(t, Rep{WorkingHours: schedEveryDay("09:00-17:00"),
		OutOfOffice: []DateRange{{From: "2026-10-27", To: "2026-10-27"}}}, "Europe/Berlin")
	tests := []struct {
		name string
		s    schedule
		at   time.Time
		want bool
	}{
		{"NY Saturday 08:30 EST", ny, schedUTC(2026, 3, 7, 13, 30), false},
		{"NY Saturday 09:00 EST", ny, schedUTC(2026, 3, 7, 14, 0), true},
		{"NY Sunday 08:30 EDT", ny, schedUTC(2026, 3, 8, 12, 30), false},
		{"NY Sunday 09:00 EDT", ny, schedUTC(2026, 3, 8, 13, 0), true},
		{"NY Sunday 16:59 EDT", ny, schedUTC(2026, 3, 8, 20, 59), true},
		{"NY Sunday 17:00 EDT", ny, schedUTC(2026, 3, 8, 21, 0), false},
		{"Berlin Saturday 09:30 CEST", berlin, schedUTC(2026, 10, 24, 7, 30), true},
		{"Berlin Sunday 08:30 CET", berlin, schedUTC(2026, 10, 25, 7, 30), false},
		{"Berlin Sunday 16:30 CET", berlin, schedUTC(2026, 10, 25, 15, 30), true},
		{"Berlin Tuesday, out of office", berlin, schedUTC(2026, 10, 27, 10, 0), false},
		{"Berlin Wednesday 09:00 CET", berlin, schedUTC(2026, 10, 28, 8, 0), true},
	}
	for _, tc := range tests {
		if got := tc.s.working(tc.at); got != tc.want {
			t.Errorf("%s: working(%s) = %v, want %v", tc.name, tc.at, got, tc.want)
		}
	}
}

func TestNextStart(t *testing.T) {
	berlinOffice := schedCompile(t, Rep{WorkingHours: schedWeekdays("09:00-17:00")}, "Europe/Berlin")
	berlinHoliday := schedCompile(t, Rep{WorkingHours: schedWeekdays("09:00-17:00"),
		OutOfOffice: []DateRange{{From: "2026-03-09", To: "2026-03-13"}}}, "Europe/Berlin")
	sundayNight := schedCompile(t, Rep{WorkingHours: &WorkingHours{Sunday: []string{"22:00-06:00+1"}}}, "Asia/Tokyo")
	nightsOff := schedCompile(t, Rep{WorkingHours: schedEveryDay("22:00-06:00+1"),
		OutOfOffice: []DateRange{{From: "2026-03-03", To: "2026-03-03"}}}, "Europe/Berlin")
	alwaysOff := schedCompile(t, Rep{OutOfOffice: []DateRange{{From: "2026-03-04", To: "2026-03-05"}}}, "Asia/Tokyo")
	neverBack := schedCompile(t, Rep{OutOfOffice: []DateRange{{From: "2026-01-01", To: "2027-12-31"}}}, "UTC")
	nyGap := schedCompile(t, Rep{WorkingHours: &WorkingHours{Sunday: []string{"02:30-04:00"}}}, "America/New_York")
	berlinRepeat := schedCompile(t, Rep{WorkingHours: &WorkingHours{Sunday: []string{"02:00-02:30"}}}, "Europe/Berlin")

	tests := []struct {
		name string
		s    schedule
		at   time.Time
		want time.Time // zero: never
	}{
		{"Saturday to Monday 09:00 CET", berlinOffice, schedUTC(2026, 3, 7, 12, 0), schedUTC(2026, 3, 9, 8, 0)},
		{"Monday 08:59 to 09:00 the same day", berlinOffice, schedUTC(2026, 3, 9, 7, 59), schedUTC(2026, 3, 9, 8, 0)},
		{"Monday 17:00 to Tuesday 09:00", berlinOffice, schedUTC(2026, 3, 9, 16, 0), schedUTC(2026, 3, 10, 8, 0)},
		{"seconds before the start", berlinOffice, schedUTC(2026, 3, 10, 7, 59).Add(59*time.Second + time.Millisecond), schedUTC(2026, 3, 10, 8, 0)},
		{"Friday 17:00 to Monday", berlinOffice, schedUTC(2026, 3, 13, 16, 0), schedUTC(2026, 3, 16, 8, 0)},
		{"Saturday CEST to Monday CET across the fall-back", berlinOffice, schedUTC(2026, 10, 24, 20, 0), schedUTC(2026, 10, 26, 8, 0)},
		{"Friday CET to Monday CEST across the spring-forward", berlinOffice, schedUTC(2026, 3, 27, 17, 0), schedUTC(2026, 3, 30, 7, 0)},
		{"past a week out of office", berlinHoliday, schedUTC(2026, 3, 6, 17, 30), schedUTC(2026, 3, 16, 8, 0)},
		{"from inside the week out of office", berlinHoliday, schedUTC(2026, 3, 11, 10, 0), schedUTC(2026, 3, 16, 8, 0)},
		{"Monday morning JST to next Sunday 22:00", sundayNight, schedUTC(2026, 3, 8, 22, 0), schedUTC(2026, 3, 15, 13, 0)},
		{"Sunday 21:30 JST to 22:00", sundayNight, schedUTC(2026, 3, 8, 12, 30), schedUTC(2026, 3, 8, 13, 0)},
		{"no hours: the day after the time off", alwaysOff, schedUTC(2026, 3, 3, 15, 0), schedUTC(2026, 3, 5, 15, 0)},
		// Out of office on Tuesday only: Tuesday's shift does not count,
		// but it runs on into Wednesday, so the rep is back at midnight.
		{"overnight shift after a day off resumes at midnight", nightsOff, schedUTC(2026, 3, 3, 22, 0), schedUTC(2026, 3, 3, 23, 0)},
		{"early on the day off", nightsOff, schedUTC(2026, 3, 2, 23, 0), schedUTC(2026, 3, 3, 23, 0)},
		{"morning after the day off to the evening shift", nightsOff, schedUTC(2026, 3, 4, 5, 30), schedUTC(2026, 3, 4, 21, 0)},
		// 02:30 does not exist on 2026-03-08 in New York: the clock jumps
		// from 02:00 EST to 03:00 EDT, where the rep is already working.
		{"start skipped by the spring-forward", nyGap, schedUTC(2026, 3, 8, 5, 0), schedUTC(2026, 3, 8, 7, 0)},
		// 02:00-02:30 happens twice on 2026-10-25 in Berlin: first in CEST.
		{"repeated hour: first occurrence", berlinRepeat, schedUTC(2026, 10, 24, 23, 0), schedUTC(2026, 10, 25, 0, 0)},
		{"repeated hour: second occurrence", berlinRepeat, schedUTC(2026, 10, 25, 0, 45), schedUTC(2026, 10, 25, 1, 0)},
		{"never within 400 days", neverBack, schedUTC(2026, 3, 2, 9, 0), time.Time{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.s.working(tc.at) {
				t.Fatalf("test instant %s is within working hours", tc.at)
			}
			got := tc.s.nextStart(tc.at)
			if !got.Equal(tc.want) || got.IsZero() != tc.want.IsZero() {
				t.Fatalf("nextStart(%s) = %s, want %s", tc.at, got.UTC(), tc.want)
			}
			if !got.IsZero() && got.Location() != tc.s.loc {
				t.Errorf("nextStart in %s, want in the rep's zone %s", got.Location(), tc.s.loc)
			}
		})
	}
}

// TestNextStartMatchesMinuteScan checks nextStart against its definition:
// the first minute after t at which working holds.
func TestNextStartMatchesMinuteScan(t *testing.T) {
	scheds := map[string]schedule{
		"NY office": schedCompile(t, Rep{WorkingHours: schedWeekdays("09:00-17:00")}, "America/New_York"),
		"NY nights around the gap": schedCompile(t, Rep{WorkingHours: &WorkingHours{
			Saturday: []string{"22:00-02:30+1"}, Sunday: []string{"02:30-04:00", "23:00-01:00+1"}}}, "America/New_York"),
		"Berlin nights with time off": schedCompile(t, Rep{WorkingHours: schedEveryDay("22:00-06:00+1"),
			OutOfOffice: []DateRange{{From: "2026-03-03", To: "2026-03-03"}, {From: "2026-10-24", To: "2026-10-24"}}}, "Europe/Berlin"),
		"Berlin repeated hour": schedCompile(t, Rep{WorkingHours: &WorkingHours{
			Saturday: []string{"18:00-19:00"}, Sunday: []string{"02:00-02:30", "02:45-03:00"}}}, "Europe/Berlin"),
		"Tokyo split days": schedCompile(t, Rep{WorkingHours: &WorkingHours{
			Monday: []string{"08:00-12:00", "13:00-17:30"}, Sunday: []string{"23:00-00:30+1"}}}, "Asia/Tokyo"),
	}
	windows := []time.Time{schedUTC(2026, 3, 2, 0, 0), schedUTC(2026, 3, 6, 0, 0), schedUTC(2026, 10, 22, 0, 0)}
	for name, s := range scheds {
		for _, from := range windows {
			for at := from; at.Before(from.Add(5 * 24 * time.Hour)); at = at.Add(3*time.Hour + 17*time.Minute + 11*time.Second) {
				if s.working(at) {
					continue
				}
				want := time.Time{}
				for m := at.Truncate(time.Minute).Add(time.Minute); m.Before(at.Add(9 * 24 * time.Hour)); m = m.Add(time.Minute) {
					if s.working(m) {
						want = m
						break
					}
				}
				if want.IsZero() {
					t.Fatalf("%s: no start within 9 days of %s", name, at)
				}
				if got := s.nextStart(at); !got.Equal(want) {
					t.Errorf("%s: nextStart(%s) = %s, want %s", name, at, got.UTC(), want)
				}
			}
		}
	}
}

// schedConfig is a valid config using every calendar and capacity field.
func schedConfig() *Config {
	two := int32(2)
	return &Config{
		Reps: []Rep{
			{ID: "ava", Timezone: "Europe/Berlin", MaxOpen: 3, DailyCap: 10,
				WorkingHours: &WorkingHours{Monday: []string{"09:00-17:00"}, Sunday: []string{"22:00-06:00+1"}},
				OutOfOffice:  []DateRange{{From: "2026-12-24", To: "2026-12-26"}}},
			{ID: "ben"},
		},
		Pools: []Pool{
			{ID: "p", Members: []Member{{RepID: "ava", Weight: &two, DailyCap: 2}, {RepID: "ben"}}},
			{ID: "q", Members: []Member{{RepID: "ben"}}},
		},
		Rules: []Rule{{ID: "all", Targets: []Target{
			{PoolID: "p", Wait: Duration(time.Minute)},
			{PoolID: "q", SkipIfUnavailable: true},
		}}},
		Accounts: []Account{{Domain: "acme.com", OwnerRepID: "ava", FallbackPoolID: "q"}},
		Settings: Settings{MaxQueueAge: Duration(time.Hour)},
	}
}

// schedViolations returns an error's violations as "field: description".
func schedViolations(t *testing.T, err error) []string {
	t.Helper()
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error %v is not a *ValidationError", err)
	}
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("error %v does not match ErrInvalid", err)
	}
	var out []string
	for _, v := range ve.Violations {
		out = append(out, v.Field+": "+v.Description)
	}
	return out
}

func TestValidateCalendarAndCapacity(t *testing.T) {
	zero, minus := int32(0), int32(-1)
	tests := []struct {
		name   string
		mutate func(c *Config)
		want   []string // exact violations, "field: description"; nil: valid
	}{
		{name: "valid", mutate: func(c *Config) {}},
		{
			name:   "unknown time zone",
			mutate: func(c *Config) { c.Reps[1].Timezone = "Europe/Atlantis" },
			want:   []string{`reps[1].timezone: unknown time zone "Europe/Atlantis" (want an IANA name such as Europe/Berlin)`},
		},
		{
			name:   "overlapping hours",
			mutate: func(c *Config) { c.Reps[0].WorkingHours.Monday = []string{"09:00-12:00", "11:30-17:00"} },
			want:   []string{"reps[0].working_hours.monday[1]: overlaps reps[0].working_hours.monday[0]"},
		},
		{
			name:   "Sunday night overlapping Monday morning",
			mutate: func(c *Config) { c.Reps[0].WorkingHours.Monday = []string{"05:59-12:00"} },
			want:   []string{"reps[0].working_hours.monday[0]: overlaps reps[0].working_hours.sunday[0]"},
		},
		{
			name:   "inverted hours",
			mutate: func(c *Config) { c.Reps[0].WorkingHours.Monday = []string{"17:00-09:00"} },
			want: []string{`reps[0].working_hours.monday[0]: "17:00-09:00": ends before it starts ` +
				`(mark an overnight shift with +1, e.g. 22:00-06:00+1)`},
		},
		{
			name:   "malformed hours",
			mutate: func(c *Config) { c.Reps[0].WorkingHours.Wednesday = []string{"9:00 to 17:00"} },
			want:   []string{`reps[0].working_hours.wednesday[0]: "9:00 to 17:00": want HH:MM-HH:MM`},
		},
		{
			name:   "working hours with no interval",
			mutate: func(c *Config) { c.Reps[1].WorkingHours = &WorkingHours{} },
			want:   []string{"reps[1].working_hours: no working interval on any day: the rep could never take a lead"},
		},
		{
			name:   "out of office ending before it starts",
			mutate: func(c *Config) { c.Reps[0].OutOfOffice[0].To = "2026-12-23" },
			want:   []string{"reps[0].out_of_office[0]: to 2026-12-23 is before from 2026-12-24"},
		},
		{
			name:   "out of office with a bad date",
			mutate: func(c *Config) { c.Reps[0].OutOfOffice[0].From = "24/12/2026" },
			want:   []string{`reps[0].out_of_office[0].from: "24/12/2026" is not a date (YYYY-MM-DD)`},
		},
		{
			name:   "negative max_open",
			mutate: func(c *Config) { c.Reps[0].MaxOpen = -1 },
			want:   []string{"reps[0].max_open: -1 is negative (0 means no limit)"},
		},
		{
			name:   "negative daily_cap",
			mutate: func(c *Config) { c.Reps[1].DailyCap = -2 },
			want:   []string{"reps[1].daily_cap: -2 is negative (0 means no limit)"},
		},
		{
			name:   "zero max_open and daily_cap mean no limit",
			mutate: func(c *Config) { c.Reps[0].MaxOpen, c.Reps[0].DailyCap = 0, 0 },
		},
		{
			name:   "member weight 0",
			mutate: func(c *Config) { c.Pools[0].Members[0].Weight = &zero },
			want:   []string{"pools[0].members[0].weight: 0: a weight must be at least 1"},
		},
		{
			name:   "negative member weight",
			mutate: func(c *Config) { c.Pools[1].Members[0].Weight = &minus },
			want:   []string{"pools[1].members[0].weight: -1: a weight must be at least 1"},
		},
		{
			name:   "negative member daily_cap",
			mutate: func(c *Config) { c.Pools[0].Members[1].DailyCap = -1 },
			want:   []string{"pools[0].members[1].daily_cap: -1 is negative (0 means no limit)"},
		},
		{
			name:   "unknown account owner",
			mutate: func(c *Config) { c.Accounts[0].OwnerRepID = "zoe" },
			want:   []string{`accounts[0].owner_rep_id: unknown owner: no rep "zoe"`},
		},
		{
			name:   "account without owner",
			mutate: func(c *Config) { c.Accounts[0].OwnerRepID = "" },
			want:   []string{"accounts[0].owner_rep_id: required"},
		},
		{
			name:   "unknown fallback pool",
			mutate: func(c *Config) { c.Accounts[0].FallbackPoolID = "emea" },
			want:   []string{`accounts[0].fallback_pool_id: unknown pool "emea"`},
		},
		{
			name:   "wait together with skip_if_unavailable",
			mutate: func(c *Config) { c.Rules[0].Targets[1].Wait = Duration(5 * time.Minute) },
			want:   []string{"rules[0].targets[1]: wait and skip_if_unavailable contradict each other"},
		},
		{
			name:   "negative wait",
			mutate: func(c *Config) { c.Rules[0].Targets[0].Wait = Duration(-time.Minute) },
			want:   []string{"rules[0].targets[0].wait: -1m0s is negative"},
		},
		{
			name:   "negative max_queue_age",
			mutate: func(c *Config) { c.Settings.MaxQueueAge = Duration(-2 * time.Hour) },
			want:   []string{"settings.max_queue_age: -2h0m0s is negative"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := schedConfig()
			tc.mutate(c)
			err := c.Validate()
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want %q", tc.want)
			}
			if got := schedViolations(t, err); !slices.Equal(got, tc.want) {
				t.Fatalf("violations = %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestValidateListsEveryCalendarProblem(t *testing.T) {
	c := schedConfig()
	zero := int32(0)
	c.Reps[0].Timezone = "Mars/Olympus"
	c.Reps[0].MaxOpen = -1
	c.Reps[0].DailyCap = -1
	c.Reps[0].WorkingHours.Monday = []string{"09:00-12:00", "11:00-13:00"}
	c.Reps[0].WorkingHours.Tuesday = []string{"17:00-09:00"}
	c.Reps[0].OutOfOffice[0].To = "2026-12-01"
	c.Pools[0].Members[0].Weight = &zero
	c.Pools[0].Members[1].DailyCap = -3
	c.Rules[0].Targets[1].Wait = Duration(time.Minute)
	c.Rules[0].Targets[0].Wait = Duration(-time.Second)
	c.Accounts[0].OwnerRepID = "zoe"
	c.Accounts[0].FallbackPoolID = "nope"
	c.Settings.MaxQueueAge = Duration(-time.Minute)
	err := c.Validate()
	if err == nil {
		t.Fatal("Validate() = nil")
	}
	want := []string{
		`reps[0].timezone: unknown time zone "Mars/Olympus" (want an IANA name such as Europe/Berlin)`,
		"reps[0].max_open: -1 is negative (0 means no limit)",
		"reps[0].daily_cap: -1 is negative (0 means no limit)",
		`reps[0].working_hours.tuesday[0]: "17:00-09:00": ends before it starts (mark an overnight shift with +1, e.g. 22:00-06:00+1)`,
		"reps[0].working_hours.monday[1]: overlaps reps[0].working_hours.monday[0]",
		"reps[0].out_of_office[0]: to 2026-12-01 is before from 2026-12-24",
		"pools[0].members[0].weight: 0: a weight must be at least 1",
		"pools[0].members[1].daily_cap: -3 is negative (0 means no limit)",
		"rules[0].targets[0].wait: -1s is negative",
		"rules[0].targets[1]: wait and skip_if_unavailable contradict each other",
		`accounts[0].owner_rep_id: unknown owner: no rep "zoe"`,
		`accounts[0].fallback_pool_id: unknown pool "nope"`,
		"settings.max_queue_age: -1m0s is negative",
	}
	got := schedViolations(t, err)
	if !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))) {
		t.Fatalf("violations:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	if !strings.Contains(err.Error(), `accounts[0].owner_rep_id: unknown owner: no rep "zoe"`) {
		t.Errorf("Error() = %q, want it to list each path with its description", err.Error())
	}
}

// TestLocalTimes: the local times a config's scripts get are each of its
// zones' day and minute of the week (and UTC's), across a DST change, and
// one second's answer is reused within that second only.
func TestLocalTimes(t *testing.T) {
	cfg := &Config{Reps: []Rep{{ID: "a", Timezone: "Europe/Berlin"}, {ID: "b", Timezone: "America/New_York"},
		{ID: "c", Timezone: "Europe/Berlin"}, {ID: "d", Timezone: "Asia/Kathmandu"}}}
	cc := compile(cfg, nil)
	if len(cc.zones) != 4 {
		t.Fatalf("zones %v, want UTC and the three of the reps", cc.zones)
	}
	// 2026-03-29 00:59:59.5 UTC is one second before Berlin moves from
	// +01:00 to +02:00; the Monday of that week began 2026-03-23.
	before := time.Date(2026, 3, 29, 0, 59, 59, 500e6, time.UTC)
	for _, c := range []struct {
		at    time.Time
		zone  string
		local time.Time
	}{
		{before, "Europe/Berlin", time.Date(2026, 3, 29, 1, 59, 0, 0, time.UTC)},
		{before.Add(time.Second), "Europe/Berlin", time.Date(2026, 3, 29, 3, 0, 0, 0, time.UTC)},
		{before, "America/New_York", time.Date(2026, 3, 28, 20, 59, 0, 0, time.UTC)},
		{before, "Asia/Kathmandu", time.Date(2026, 3, 29, 6, 44, 0, 0, time.UTC)},
		{before, "UTC", time.Date(2026, 3, 29, 0, 59, 0, 0, time.UTC)},
	} {
		got := cc.localTimes(c.at)[c.zone]
		wd := (int(c.local.Weekday()) + 6) % 7
		want := [2]int64{c.local.Unix() / 86400, int64(wd*1440 + c.local.Hour()*60 + c.local.Minute())}
		if got != want {
			t.Errorf("%s at %s: %v, want %v", c.zone, c.at, got, want)
		}
		if got[0] != LocalDay(c.at, schedLoc(t, c.zone)) {
			t.Errorf("%s at %s: day %d, LocalDay %d", c.zone, c.at, got[0], LocalDay(c.at, schedLoc(t, c.zone)))
		}
	}
	first := cc.localTimes(before)
	if again := cc.localTimes(before.Add(-400 * time.Millisecond)); reflect.ValueOf(again).Pointer() != reflect.ValueOf(first).Pointer() {
		t.Fatal("the same second computed its answer again")
	}
	if next := cc.localTimes(before.Add(time.Second)); next["Europe/Berlin"] == first["Europe/Berlin"] {
		t.Fatal("the next second reused the cached answer")
	}
}
