package engine

import (
	"fmt"
	"math/rand"
	"testing"
	"time"
)

// TestNextChangeMatchesMinuteScan: a rep's next change of standing, as the
// shift filer computes it, is the first minute after t at which a
// minute-by-minute scan of the calendar finds another standing, for random
// weekly hours (overnight ones too), days out of office and time zones
// with and without daylight saving, across their transitions.
func TestNextChangeMatchesMinuteScan(t *testing.T) {
	zones := []string{"UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe", "Asia/Tokyo"}
	days := []func(*WorkingHours) *[]string{
		func(w *WorkingHours) *[]string { return &w.Monday }, func(w *WorkingHours) *[]string { return &w.Tuesday },
		func(w *WorkingHours) *[]string { return &w.Wednesday }, func(w *WorkingHours) *[]string { return &w.Thursday },
		func(w *WorkingHours) *[]string { return &w.Friday }, func(w *WorkingHours) *[]string { return &w.Saturday },
		func(w *WorkingHours) *[]string { return &w.Sunday },
	}
	checked := 0
	rng := rand.New(rand.NewSource(19))
	const within = 3 * 24 * time.Hour
	for c := 0; c < 150; c++ {
		zone := zones[rng.Intn(len(zones))]
		loc, err := time.LoadLocation(zone)
		if err != nil {
			t.Fatal(err)
		}
		r := &Rep{ID: "r", Timezone: zone}
		if rng.Intn(4) > 0 {
			r.WorkingHours = &WorkingHours{}
			for _, d := range days {
				if rng.Intn(3) == 0 {
					continue
				}
				start := rng.Intn(20*60/15) * 15
				length := 15 + rng.Intn(10*60/15)*15
				end := start + length
				iv := fmt.Sprintf("%02d:%02d-%02d:%02d", start/60, start%60, end/60%24, end%60)
				if end >= 24*60 && end%(24*60) != 0 {
					iv += "+1"
				} else if end == 24*60 {
					iv = fmt.Sprintf("%02d:%02d-24:00", start/60, start%60)
				}
				*d(r.WorkingHours) = []string{iv}
			}
		}
		// Around the 2026 spring and autumn changes of most zones.
		base := []time.Time{time.Date(2026, 3, 6, 0, 0, 0, 0, time.UTC), time.Date(2026, 3, 27, 0, 0, 0, 0, time.UTC),
			time.Date(2026, 10, 23, 0, 0, 0, 0, time.UTC), time.Date(2026, 4, 2, 0, 0, 0, 0, time.UTC)}[rng.Intn(4)]
		if rng.Intn(2) == 0 {
			from := base.AddDate(0, 0, rng.Intn(4))
			r.OutOfOffice = []DateRange{{From: from.Format(time.DateOnly), To: from.AddDate(0, 0, rng.Intn(3)).Format(time.DateOnly)}}
		}
		var v violations
		s := parseSchedule(&v, "r", r, loc)
		if err := v.err(); err != nil {
			continue // an overlap of the random intervals: not a calendar
		}
		checked++
		at := base.Add(time.Duration(rng.Int63n(int64(72 * time.Hour))))
		for step := 0; step < 6; step++ {
			got := s.nextChange(at, within)
			from, want := s.standing(at), time.Time{}
			for m := at.Truncate(time.Minute).Add(time.Minute); m.Before(at.Add(within)); m = m.Add(time.Minute) {
				if s.standing(m) != from {
					want = m
					break
				}
			}
			if !got.Equal(want) {
				t.Fatalf("case %d %s %+v %v: after %s (%s), next change %s, a minute scan finds %s",
					c, zone, r.WorkingHours, r.OutOfOffice, at.In(loc), from, got.In(loc), want.In(loc))
			}
			if got.IsZero() {
				break
			}
			at = got
		}
	}
	if checked < 100 {
		t.Fatalf("only %d calendars checked", checked)
	}
}
