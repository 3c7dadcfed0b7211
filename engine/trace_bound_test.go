package engine_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/leadrouter/leadrouter/engine"
)

// maxNamed is lib_pick.lua's MAX_NAMED: skipped members a pick names.
const maxNamed = 10

// TestTraceBoundLargePool: in a 2,000-member pool where 1,999 members are
// passed over (1,000 AWAY, 999 at capacity) a decision's trace names at most ten of them and counts the rest per
// reason, and the stored record stays under 8 KB whatever the pool size.
func TestTraceBoundLargePool(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		const size = 2000
		var b strings.Builder
		b.WriteString("reps:\n")
		for i := 0; i < size; i++ {
			fmt.Fprintf(&b, "  - id: r%04d\n", i)
			switch {
			case i < 1000:
				b.WriteString("    initial_status: AWAY\n")
			case i < size-1:
				b.WriteString("    max_open: 1\n")
			}
		}
		b.WriteString("pools:\n  - id: p\n    members:\n")
		for i := 0; i < size; i++ {
			fmt.Fprintf(&b, "      - rep_id: r%04d\n", i)
		}
		b.WriteString("rules:\n  - id: all\n    targets: [{pool_id: p}]\n")
		f.apply(b.String())
		// Bring the capped members to capacity through the rotation itself:
		// the first 999 leads go to r1000..r1998, one each.
		for i := 1000; i < size-1; i++ {
			if a := f.assign(lead(fmt.Sprint("fill-", i))); a.RepID != fmt.Sprintf("r%04d", i) {
				t.Fatalf("fill %d went to %s", i, a.RepID)
			}
		}
		a := f.assign(lead("big"))
		if a.RepID != "r1999" {
			t.Fatalf("big went to %q: %s", a.RepID, a.Trace.Summary)
		}
		// The rotation stands at r1999: the next lead passes over everyone
		// else, r0000..r0999 away and r1000..r1998 at capacity, and comes
		// back to r1999.
		next := f.assign(lead("after"))
		te := next.Trace.Targets[0]
		if next.RepID != "r1999" {
			t.Fatalf("after: %s to %q", next.State, next.RepID)
		}
		named, counted := 0, 0
		for _, c := range te.Candidates {
			if !c.Chosen {
				named++
			}
		}
		for _, s := range te.Skipped {
			counted += s.Count
		}
		if named > maxNamed || named+counted != size-1 {
			t.Fatalf("trace names %d and counts %d skipped members, want at most %d named and %d in all: %+v", named, counted, maxNamed, size-1, te.Skipped)
		}
		if !strings.Contains(next.Trace.Summary, "more (") {
			t.Fatalf("summary does not count the rest: %s", next.Trace.Summary)
		}
		for _, id := range []string{"big", "after"} {
			fields, err := f.st.Client().HGetAll(f.ctx, f.st.Prefix()+":{"+f.ws+"}:lead:"+id).Result()
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for k, v := range fields {
				n += len(k) + len(v)
			}
			if lines := strings.Count(fields["picks"], "\n") + 1; lines > maxNamed+12 {
				t.Errorf("%s: %d pick trace lines, want at most %d", id, lines, maxNamed+12)
			}
			if n >= 8<<10 {
				t.Errorf("%s: record of %d bytes, want under 8 KB", id, n)
			}
		}
	})
}

// TestSkipText renders every skip code, with and without numbers.
func TestSkipText(t *testing.T) {
	until := time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC)
	want := map[engine.SkipCode][2]string{
		engine.SkipOffered:  {"offered this lead already", "offered this lead already"},
		engine.SkipAway:     {"away", "away"},
		engine.SkipOffline:  {"offline", "offline"},
		engine.SkipUnknown:  {"unknown", "unknown"},
		engine.SkipAbsent:   {"away or offline", "away or offline"},
		engine.SkipCapacity: {"at capacity", "at capacity 3/3"},
		engine.SkipOutOfOff: {"out of office", "out of office"},
		engine.SkipHours:    {"outside working hours", "outside working hours"},
		engine.SkipDailyCap: {"at their daily cap", "capped 20/20 today"},
		engine.SkipCooldown: {"in cooldown after a reject", "in cooldown after a reject until 2026-03-02T09:30:00Z"},
		engine.SkipPoolCap:  {"at their daily cap in the pool", "capped 5/5 today in inbound"},
	}
	if len(want) != len(engine.SkipCodes) {
		t.Fatalf("%d codes tested, %d exist", len(want), len(engine.SkipCodes))
	}
	fields := map[engine.SkipCode][]string{
		engine.SkipCapacity: {"capacity", "3", "3"},
		engine.SkipDailyCap: {"daily", "20", "20"},
		engine.SkipPoolCap:  {"poolcap", "5", "5"},
		engine.SkipCooldown: {"cooldown", fmt.Sprint(until.UnixMilli())},
	}
	for _, code := range engine.SkipCodes {
		w := want[code]
		if got := code.Text(); got != w[0] {
			t.Errorf("%s: count text %q, want %q", code, got, w[0])
		}
		f := fields[code]
		if f == nil {
			f = []string{string(code)}
		}
		s, ok := engine.ParseSkip(f, "inbound")
		if !ok || s.Code != code {
			t.Fatalf("%s: ParseSkip(%q) = %+v, %v", code, f, s, ok)
		}
		if got := s.Text(); got != w[1] {
			t.Errorf("%s: text %q, want %q", code, got, w[1])
		}
	}
	if _, ok := engine.ParseSkip([]string{"at capacity 2/2"}, "p"); ok {
		t.Error("a reason written as text (before skip codes) parsed as a code")
	}
}
