package sinks

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/leadrouter/leadrouter/engine"
)

// The queries of docs/reporting.md, run as the doc has them against a
// scripted day of leads, with results worked out by hand below.

// archiveTestQuery is one ```sql block of the doc and the heading above it.
type archiveTestQuery struct {
	heading, sql string
}

// archiveTestDocQueries reads every ```sql block of docs/reporting.md.
func archiveTestDocQueries(t *testing.T) []archiveTestQuery {
	t.Helper()
	f, err := os.Open("../docs/reporting.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []archiveTestQuery
	var heading string
	var block *strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case block != nil && strings.TrimSpace(line) == "```":
			out = append(out, archiveTestQuery{heading, block.String()})
			block = nil
		case block != nil:
			block.WriteString(line + "\n")
		case strings.TrimSpace(line) == "```sql":
			block = &strings.Builder{}
		case strings.HasPrefix(line, "#"):
			heading = strings.TrimSpace(strings.TrimLeft(line, "#"))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if block != nil {
		t.Fatalf("docs/reporting.md: the sql block under %q is not closed", heading)
	}
	return out
}

// archiveTestStep is one event of a scripted lead: after is the time
// since the lead's submission.
type archiveTestStep struct {
	after  time.Duration
	kind   engine.EventKind
	rep    string
	detail string
}

// archiveTestPlan is a scripted lead.
type archiveTestPlan struct {
	ws, id, source, pool string
	submitted            time.Time
	steps                []archiveTestStep
}

// archiveTestSnapshot is an event and the lead's record right after it.
type archiveTestSnapshot struct {
	ws  string
	ev  engine.Event
	rec *engine.Assignment
}

// events plays the plan: each step's event and the record as the store
// would hold it after the step.
func (p archiveTestPlan) events() []archiveTestSnapshot {
	rec := &engine.Assignment{LeadID: p.id, RuleID: "all", Route: engine.RouteRule, ConfigVersion: 1,
		ReceivedAt: p.submitted, DecidedAt: p.submitted,
		Lead: engine.Lead{ID: p.id, Email: p.id + "@example.com", FirstName: "First", LastName: "Last",
			Company: "Company of " + p.id, Country: "DE", Source: p.source, SubmittedAt: p.submitted},
		History: []engine.LifecycleEvent{{At: p.submitted, Kind: "received"}}}
	var out []archiveTestSnapshot
	for _, s := range p.steps {
		at := p.submitted.Add(s.after)
		ev := engine.Event{At: at, Kind: s.kind, LeadID: p.id, RepID: s.rep, PoolID: p.pool, Detail: s.detail}
		history := s.kind
		switch s.kind {
		case engine.EventOffered:
			rec.State, rec.RepID, rec.PoolID, rec.OfferExpiresAt = engine.StateOffered, s.rep, p.pool, at.Add(5*time.Minute)
			rec.Offers++
		case engine.EventOfferWithdrawn, engine.EventOfferRejected:
			rec.State, rec.RepID, rec.OfferExpiresAt = engine.StateQueued, "", time.Time{}
			history = "offer_expired"
		case engine.EventAccepted:
			rec.State, rec.AcceptedAt = engine.StateAssigned, at
		case engine.EventAssigned:
			rec.State, rec.RepID, rec.PoolID, rec.AcceptedAt = engine.StateAssigned, s.rep, p.pool, at
		case engine.EventQueued:
			rec.State, rec.PoolID = engine.StateQueued, p.pool
		case engine.EventUnroutable:
			rec.State, rec.RuleID, rec.Reason = engine.StateUnroutable, "", s.detail
		case engine.EventFirstContact:
			rec.FirstContactAt, rec.FirstContactChannel, rec.Contacts = at, "call", 1
		case engine.EventDispositioned:
			rec.State, rec.ClosedAt, rec.Disposition, rec.CloseReason = engine.StateClosed, at, engine.Disposition(s.detail), "dispositioned"
		}
		rec.History = append(rec.History, engine.LifecycleEvent{At: at, Kind: string(history), RepID: s.rep})
		snap := *rec
		snap.History = slices.Clone(rec.History)
		if s.kind == engine.EventErased {
			out = append(out, archiveTestSnapshot{p.ws, ev, nil}) // the record is gone
			continue
		}
		out = append(out, archiveTestSnapshot{p.ws, ev, &snap})
	}
	return out
}

// archiveTestDay is the scripted day: Sunday 2025-03-09 14:00 UTC to
// Monday 2025-03-10 11:00 UTC, so its leads fall in two ISO weeks, named
// by their Mondays 2025-03-03 (leads L01-L06, L14) and 2025-03-10
// (L07-L12). Three reps (r1 and r2 take offers in pool inbound; r3 is
// assigned directly in pool enterprise), two sources (web, event).
func archiveTestDay() []archiveTestPlan {
	sun := func(h int) time.Time { return time.Date(2025, 3, 9, h, 0, 0, 0, time.UTC) }
	mon := func(h, m int) time.Time { return time.Date(2025, 3, 10, h, m, 0, 0, time.UTC) }
	timeout := engine.RenderNote(engine.NoteMark + string(engine.NoteNotAccepted))
	const min, hour = time.Minute, time.Hour
	offer := func(after time.Duration, rep string) archiveTestStep {
		return archiveTestStep{after, engine.EventOffered, rep, "accept within 300s"}
	}
	step := func(after time.Duration, kind engine.EventKind, rep string) archiveTestStep {
		return archiveTestStep{after: after, kind: kind, rep: rep}
	}
	disposition := func(after time.Duration, rep string, d engine.Disposition) archiveTestStep {
		return archiveTestStep{after, engine.EventDispositioned, rep, string(d)}
	}
	return []archiveTestPlan{
		// L01: offered to r1, accepted, contacted in 2 min, qualified after 3 h.
		{"default", "L01", "web", "inbound", sun(14), []archiveTestStep{
			offer(0, "r1"), step(min, engine.EventAccepted, "r1"), step(2*min, engine.EventFirstContact, "r1"),
			disposition(3*hour, "r1", engine.Qualified)}},
		// L02: r2, contacted in 10 min, rejected after 50 h (too late for 48 h).
		{"default", "L02", "web", "inbound", sun(15), []archiveTestStep{
			offer(0, "r2"), step(min, engine.EventAccepted, "r2"), step(10*min, engine.EventFirstContact, "r2"),
			disposition(50*hour, "r2", engine.Rejected)}},
		// L03: assigned to r3 without an offer, contacted in 2 min, qualified after 24 h.
		{"default", "L03", "event", "enterprise", sun(16), []archiveTestStep{
			step(0, engine.EventAssigned, "r3"), step(2*min, engine.EventFirstContact, "r3"),
			disposition(24*hour, "r3", engine.Qualified)}},
		// L04: offered to r1, timed out after 5 min, offered to r2, accepted,
		// contacted by r2 at 7 min, qualified after 2 h.
		{"default", "L04", "event", "inbound", sun(18), []archiveTestStep{
			offer(0, "r1"), {5 * min, engine.EventOfferWithdrawn, "r1", timeout}, offer(5*min, "r2"),
			step(6*min, engine.EventAccepted, "r2"), step(7*min, engine.EventFirstContact, "r2"),
			disposition(2*hour, "r2", engine.Qualified)}},
		// L05: offered to r1, withdrawn by an operator (not a timeout),
		// offered to r2, accepted, never contacted.
		{"default", "L05", "web", "inbound", sun(20), []archiveTestStep{
			offer(0, "r1"), {2 * min, engine.EventOfferWithdrawn, "r1", "moved to r2 by ops"}, offer(2*min, "r2"),
			step(3*min, engine.EventAccepted, "r2")}},
		// L06: queued on enterprise, never placed.
		{"default", "L06", "web", "enterprise", sun(21), []archiveTestStep{
			{0, engine.EventQueued, "", "nobody eligible in enterprise"}}},
		// L14: offered to r1, accepted, contacted in 1 min, then erased: in no report.
		{"default", "L14", "web", "inbound", sun(22), []archiveTestStep{
			offer(0, "r1"), step(min, engine.EventAccepted, "r1"), step(min, engine.EventFirstContact, "r1"),
			disposition(hour, "r1", engine.Qualified), step(2*hour, engine.EventErased, "r1")}},
		// L07: r1, accepted at 30 s, contacted in 2 min, qualified after 1 h.
		{"default", "L07", "web", "inbound", mon(8, 0), []archiveTestStep{
			offer(0, "r1"), step(min/2, engine.EventAccepted, "r1"), step(2*min, engine.EventFirstContact, "r1"),
			disposition(hour, "r1", engine.Qualified)}},
		// L08: r1, contacted in 10 min, qualified after 4 h.
		{"default", "L08", "event", "inbound", mon(9, 0), []archiveTestStep{
			offer(0, "r1"), step(min, engine.EventAccepted, "r1"), step(10*min, engine.EventFirstContact, "r1"),
			disposition(4*hour, "r1", engine.Qualified)}},
		// L09: r3 directly, contacted in 2 min, rejected after 30 min.
		{"default", "L09", "event", "enterprise", mon(9, 30), []archiveTestStep{
			step(0, engine.EventAssigned, "r3"), step(2*min, engine.EventFirstContact, "r3"),
			disposition(30*min, "r3", engine.Rejected)}},
		// L10: r3 directly, contacted in 10 min, no disposition.
		{"default", "L10", "web", "enterprise", mon(10, 0), []archiveTestStep{
			step(0, engine.EventAssigned, "r3"), step(10*min, engine.EventFirstContact, "r3")}},
		// L11: offered to r2, who rejects it at 1 min; offered to r1,
		// accepted, contacted at 4 min, qualified after 47 h.
		{"default", "L11", "web", "inbound", mon(10, 30), []archiveTestStep{
			offer(0, "r2"), {min, engine.EventOfferRejected, "r2", "not my territory"}, offer(min, "r1"),
			step(2*min, engine.EventAccepted, "r1"), step(4*min, engine.EventFirstContact, "r1"),
			disposition(47*hour, "r1", engine.Qualified)}},
		// L12: unroutable (no pool, no rep).
		{"default", "L12", "event", "", mon(11, 0), []archiveTestStep{
			{0, engine.EventUnroutable, "", "no rule matched"}}},
		// Another workspace: in no report of 'default'.
		{"other", "L01", "web", "inbound", sun(14), []archiveTestStep{
			offer(0, "r1"), step(min, engine.EventAccepted, "r1"), step(min, engine.EventFirstContact, "r1"),
			disposition(hour, "r1", engine.Qualified)}},
	}
}

// archiveTestWant is each doc query's result, by heading, worked out by
// hand from archiveTestDay.
var archiveTestWant = map[string][][]string{
	// Contacted leads (L14 erased, other workspace out):
	//   week 03-03: r1 L01 2m; r2 L02 10m, L04 7m; r3 L03 2m.
	//   week 03-10: r1 L07 2m, L08 10m, L11 4m; r3 L09 2m, L10 10m.
	// r1 03-10: sorted 120000, 240000, 600000: p50 240000; p90 at rank
	//   0.9*(3-1) = 1.8: 240000 + 0.8*(600000-240000) = 528000.
	// r2 03-03: 420000, 600000: p50 510000; p90 420000 + 0.9*180000 = 582000.
	// r3 03-10: 120000, 600000: p50 360000; p90 120000 + 0.9*480000 = 552000.
	"Speed to lead, p50 and p90 per rep per week": {
		{"r1", "2025-03-03", "1", "120000", "120000"},
		{"r1", "2025-03-10", "3", "240000", "528000"},
		{"r2", "2025-03-03", "2", "510000", "582000"},
		{"r3", "2025-03-03", "1", "120000", "120000"},
		{"r3", "2025-03-10", "2", "360000", "552000"},
	},
	// event: L03 2m, L04 7m, L08 10m, L09 2m, L12 never: 2 of 5 = 0.4.
	// web: L01 2m, L02 10m, L05 never, L06 never, L07 2m, L10 10m, L11 4m:
	//   3 of 7 = 0.4286.
	"Share of leads contacted within 5 minutes, per source": {
		{"event", "5", "2", "0.4"},
		{"web", "7", "3", "0.4286"},
	},
	// week 03-03, L01-L06: L01 3h, L03 24h, L04 2h within; L02 50h too late;
	//   L05, L06 none: 3 of 6 = 0.5.
	// week 03-10, L07-L12: L07 1h, L08 4h, L09 30m, L11 47h within; L10,
	//   L12 none: 4 of 6 = 0.6667.
	"Leads dispositioned within 48 hours, per week": {
		{"2025-03-03", "6", "3", "0.5"},
		{"2025-03-10", "6", "4", "0.6667"},
	},
	// event (no pool): L12: 1 lead, none dispositioned.
	// event/enterprise: L03 Q, L09 R: 2, 2, 1 -> 0.5.
	// event/inbound: L04 Q, L08 Q: 2, 2, 2 -> 1.
	// web/enterprise: L06 queued, L10 open: 2, 0, 0 -> 0.
	// web/inbound: L01 Q, L02 R, L05 open, L07 Q, L11 Q: 5, 4, 3 -> 0.6.
	"Qualified rate by source and pool": {
		{"event", "(no pool)", "1", "0", "0", "0"},
		{"event", "enterprise", "2", "2", "1", "0.5"},
		{"event", "inbound", "2", "2", "2", "1"},
		{"web", "enterprise", "2", "0", "0", "0"},
		{"web", "inbound", "5", "4", "3", "0.6"},
	},
	// r1 offered: L01, L04, L05, L07, L08, L11 = 6; accepted L01, L07, L08,
	//   L11 = 4 (0.6667); timed out L04 = 1 (0.1667); L05's withdrawal was
	//   an operator's.
	// r2 offered: L02, L04, L05, L11 = 4; accepted L02, L04, L05 = 3 (0.75);
	//   rejected L11 = 1; timed out 0.
	// r3 takes no offers. L14 (erased) and the other workspace count nowhere.
	"Offer acceptance and timeout rates per rep": {
		{"r1", "6", "4", "0", "1", "0.6667", "0.1667"},
		{"r2", "4", "3", "1", "0", "0.75", "0"},
	},
}

func TestReportingQueries(t *testing.T) {
	ctx := context.Background()
	queries := archiveTestDocQueries(t)
	if len(queries) != len(archiveTestWant) {
		t.Errorf("docs/reporting.md has %d sql blocks, the test expects %d: give each query its results here", len(queries), len(archiveTestWant))
	}

	a, c := archiveTestOpen(t)
	var all []archiveTestSnapshot
	for _, p := range archiveTestDay() {
		all = append(all, p.events()...)
	}
	// The stream's order: by time, ties in script order; ids as Redis
	// gives them.
	slices.SortStableFunc(all, func(x, y archiveTestSnapshot) int { return x.ev.At.Compare(y.ev.At) })
	seq := map[int64]int{}
	for i := range all {
		ms := all[i].ev.At.UnixMilli()
		all[i].ev.ID = fmt.Sprintf("%d-%d", ms, seq[ms])
		seq[ms]++
	}
	for i, s := range all {
		archiveTestRecord(t, a, s.ws, s.ev, s.rec)
		if i%3 == 0 { // at least once: some events arrive twice
			archiveTestRecord(t, a, s.ws, s.ev, s.rec)
		}
	}
	// A rep's own events name no lead and are no offers.
	archiveTestRecord(t, a, "default", engine.Event{ID: "1741600000000-0", At: time.UnixMilli(1741600000000),
		Kind: engine.EventRepStatusChanged, RepID: "r1", Detail: "AVAILABLE -> AWAY"}, nil)

	for _, q := range queries {
		t.Run(q.heading, func(t *testing.T) {
			want, ok := archiveTestWant[q.heading]
			if !ok {
				t.Fatalf("no expected results for the query under %q", q.heading)
			}
			rows, err := c.Query(ctx, q.sql)
			if err != nil {
				t.Fatalf("%v\n%s", err, q.sql)
			}
			defer rows.Close()
			var got [][]string
			for rows.Next() {
				vals, err := rows.Values()
				if err != nil {
					t.Fatal(err)
				}
				row := make([]string, len(vals))
				for i, v := range vals {
					row[i] = archiveTestCell(t, v)
				}
				got = append(got, row)
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			if !slices.EqualFunc(got, want, slices.Equal[[]string]) {
				t.Errorf("rows:\n got %v\nwant %v\n%s", got, want, q.sql)
			}
		})
	}
}

// The timeout query names the detail the store renders for an offer
// withdrawn at its deadline.
func TestReportingTimeoutDetail(t *testing.T) {
	detail := engine.RenderNote(engine.NoteMark + string(engine.NoteNotAccepted))
	for _, q := range archiveTestDocQueries(t) {
		if strings.Contains(q.sql, "offer_withdrawn") && !strings.Contains(q.sql, "detail = '"+detail+"'") {
			t.Errorf("query %q counts offer_withdrawn without detail = '%s', the timeout's", q.heading, detail)
		}
	}
}

// archiveTestCell is a result value as text: numbers without trailing
// zeros (floats to 3 decimals), dates as YYYY-MM-DD, NULL as NULL.
func archiveTestCell(t *testing.T, v any) string {
	t.Helper()
	num := func(f float64) string { return strconv.FormatFloat(math.Round(f*1000)/1000, 'f', -1, 64) }
	switch v := v.(type) {
	case nil:
		return "NULL"
	case string:
		return v
	case int64:
		return strconv.FormatInt(v, 10)
	case int32:
		return strconv.FormatInt(int64(v), 10)
	case float64:
		return num(v)
	case time.Time:
		return v.Format(time.DateOnly)
	case pgtype.Numeric:
		f, err := v.Float64Value()
		if err != nil {
			t.Fatal(err)
		}
		return strconv.FormatFloat(f.Float64, 'f', -1, 64)
	}
	t.Fatalf("result value %v of type %T", v, v)
	return ""
}
