package engine

import (
	"strconv"
	"time"
)

// SkipCode is why a strategy passed over a member, as the store's scripts
// record it: a code with up to two numbers crosses the Go-Lua seam, and the
// text a person reads is rendered here, in one place (Skip.Text,
// SkipCode.Text).
type SkipCode string

const (
	SkipOffered   SkipCode = "offered"  // offered this lead already
	SkipAway      SkipCode = "away"     // presence AWAY
	SkipOffline   SkipCode = "offline"  // presence OFFLINE
	SkipUnknown   SkipCode = "unknown"  // no presence (not a rep of the config)
	SkipAbsent    SkipCode = "absent"   // AWAY or OFFLINE: counted, not named (the eligible-member index)
	SkipCapacity  SkipCode = "capacity" // at max_open: N open of Of
	SkipOutOfOff  SkipCode = "ooo"      // out of office
	SkipHours     SkipCode = "hours"    // outside working hours
	SkipDailyCap  SkipCode = "daily"    // at the rep's daily cap: N of Of today
	SkipCooldown  SkipCode = "cooldown" // in a reject cooldown until Until
	SkipPoolCap   SkipCode = "poolcap"  // at the membership's daily cap in Pool: N of Of today
	skipCodeCount          = 11
)

// SkipCodes lists every code, for tests and documentation.
var SkipCodes = [skipCodeCount]SkipCode{SkipOffered, SkipAway, SkipOffline, SkipUnknown, SkipAbsent,
	SkipCapacity, SkipOutOfOff, SkipHours, SkipDailyCap, SkipCooldown, SkipPoolCap}

// Skip is one passed-over member's reason with its numbers.
type Skip struct {
	Code  SkipCode
	N, Of int64     // capacity, daily, poolcap
	Until time.Time // cooldown
	Pool  string    // poolcap
}

// ParseSkip reads a trace's code and numbers (the fields after the rep).
// ok is false for text that is no code: a record written before codes
// crossed the seam, whose reason is its own text.
func ParseSkip(fields []string, pool string) (s Skip, ok bool) {
	if len(fields) == 0 {
		return Skip{}, false
	}
	s.Code = SkipCode(fields[0])
	if !s.Code.Known() {
		return Skip{}, false
	}
	num := func(i int) int64 {
		if i >= len(fields) {
			return 0
		}
		n, _ := strconv.ParseInt(fields[i], 10, 64)
		return n
	}
	switch s.Code {
	case SkipCapacity, SkipDailyCap:
		s.N, s.Of = num(1), num(2)
	case SkipPoolCap:
		s.N, s.Of, s.Pool = num(1), num(2), pool
	case SkipCooldown:
		s.Until = time.UnixMilli(num(1)).UTC()
	}
	return s, true
}

// Known reports whether c is one of SkipCodes.
func (c SkipCode) Known() bool {
	for _, k := range SkipCodes {
		if c == k {
			return true
		}
	}
	return false
}

// Text is the reason without its numbers, as a count of members reads it
// ("12 at capacity").
func (c SkipCode) Text() string {
	switch c {
	case SkipOffered:
		return "offered this lead already"
	case SkipAway, SkipOffline, SkipUnknown:
		return string(c)
	case SkipAbsent:
		return "away or offline"
	case SkipCapacity:
		return "at capacity"
	case SkipOutOfOff:
		return "out of office"
	case SkipHours:
		return "outside working hours"
	case SkipDailyCap:
		return "at their daily cap"
	case SkipCooldown:
		return "in cooldown after a reject"
	case SkipPoolCap:
		return "at their daily cap in the pool"
	}
	return string(c)
}

// Text is the reason as a trace names it for one member.
func (s Skip) Text() string {
	switch s.Code {
	case SkipCapacity:
		return "at capacity " + strconv.FormatInt(s.N, 10) + "/" + strconv.FormatInt(s.Of, 10)
	case SkipDailyCap:
		return "capped " + strconv.FormatInt(s.N, 10) + "/" + strconv.FormatInt(s.Of, 10) + " today"
	case SkipPoolCap:
		return "capped " + strconv.FormatInt(s.N, 10) + "/" + strconv.FormatInt(s.Of, 10) + " today in " + s.Pool
	case SkipCooldown:
		return "in cooldown after a reject until " + s.Until.Format(time.RFC3339)
	}
	return s.Code.Text()
}

// SkipCount is how many more members a pick passed over for one reason
// than its trace names.
type SkipCount struct {
	Reason SkipCode
	Count  int
}
