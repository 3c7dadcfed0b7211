package sinks

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/leadrouter/leadrouter/engine"
	"github.com/leadrouter/leadrouter/internal/pgtest"
)

// TestMain is the package's: tests needing another harness nest its Main
// in pgtest.Run (see internal/pgtest).

// archiveTestOpen is an Archive on a database of the test's own, migrated,
// with a plain connection to the same database for checking rows.
func archiveTestOpen(t *testing.T) (*Archive, *pgx.Conn) {
	t.Helper()
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	a, err := OpenArchive(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	if err := a.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return a, c
}

// archiveTestCount is the first column of a one-row query, as an int.
func archiveTestCount(t *testing.T, c *pgx.Conn, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := c.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func archiveTestRecord(t *testing.T, a *Archive, ws string, ev engine.Event, rec *engine.Assignment) {
	t.Helper()
	if err := a.Record(context.Background(), ws, ev, rec); err != nil {
		t.Fatalf("Record %s %s: %v", ev.ID, ev.Kind, err)
	}
}

var archiveTestT0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

func archiveTestAt(d time.Duration) time.Time { return archiveTestT0.Add(d) }

func TestArchiveMigrationFiles(t *testing.T) {
	ms, err := archiveMigrations()
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) == 0 {
		t.Fatal("no migrations embedded")
	}
	for i, m := range ms {
		if m.version != i+1 {
			t.Errorf("migration %d is version %d (%s): want versions 1, 2, ... without gaps", i, m.version, m.name)
		}
	}
	if ms[0].name != "archive" {
		t.Errorf("first migration is %q, want archive", ms[0].name)
	}
}

func TestArchiveMigrateTwice(t *testing.T) {
	ctx := context.Background()
	a, c := archiveTestOpen(t) // migrated once
	ms, _ := archiveMigrations()
	var before time.Time
	if err := c.QueryRow(ctx, "SELECT max(applied_at) FROM leadrouter_schema_migrations").Scan(&before); err != nil {
		t.Fatal(err)
	}
	if err := a.Migrate(ctx); err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
	rows, err := c.Query(ctx, "SELECT version, name, applied_at FROM leadrouter_schema_migrations ORDER BY version")
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		Version int32
		Name    string
		At      time.Time
	}
	got, err := pgx.CollectRows(rows, pgx.RowToStructByPos[row])
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(ms) {
		t.Fatalf("version table has %d rows, want %d (one per migration): %v", len(got), len(ms), got)
	}
	for i, r := range got {
		if int(r.Version) != ms[i].version || r.Name != ms[i].name || r.At.After(before) {
			t.Errorf("row %d = %+v, want version %d %s applied by the first Migrate", i, r, ms[i].version, ms[i].name)
		}
	}
	for _, table := range []string{"assignments", "lifecycle_events"} {
		if n := archiveTestCount(t, c, "SELECT count(*) FROM pg_tables WHERE tablename = $1", table); n != 1 {
			t.Errorf("table %s: %d, want 1", table, n)
		}
	}
}

// Replicas starting together both succeed; the schema is applied once.
func TestArchiveMigrateConcurrently(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	const replicas = 4
	var wg sync.WaitGroup
	errs := make([]error, replicas)
	for i := range replicas {
		a, err := OpenArchive(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = a.Migrate(ctx)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("replica %d: %v", i, err)
		}
	}
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	ms, _ := archiveMigrations()
	if n := archiveTestCount(t, c, "SELECT count(*) FROM leadrouter_schema_migrations"); n != len(ms) {
		t.Errorf("version table has %d rows, want %d", n, len(ms))
	}
}

func TestArchiveOpenDoesNotConnect(t *testing.T) {
	ctx := context.Background()
	a, err := OpenArchive(ctx, "postgres://nobody@127.0.0.1:1/none?connect_timeout=1")
	if err != nil {
		t.Fatalf("OpenArchive of a server that is down: %v", err)
	}
	defer a.Close()
	if err := a.Migrate(ctx); err == nil {
		t.Error("Migrate on a server that is down succeeded")
	}
	if _, err := OpenArchive(ctx, "postgres://%zz"); err == nil {
		t.Error("OpenArchive of a malformed DSN succeeded")
	}
}

// A redelivered event leaves one row, and the first delivery's values.
func TestArchiveRecordRedelivery(t *testing.T) {
	a, c := archiveTestOpen(t)
	ev := engine.Event{ID: "1772442000000-0", At: archiveTestT0, Kind: engine.EventQueued, LeadID: "l1", PoolID: "p", Detail: "waiting"}
	archiveTestRecord(t, a, "default", ev, nil)
	again := ev
	again.Detail = "changed"
	archiveTestRecord(t, a, "default", again, nil)
	if n := archiveTestCount(t, c, "SELECT count(*) FROM lifecycle_events"); n != 1 {
		t.Fatalf("lifecycle_events has %d rows after a redelivery, want 1", n)
	}
	var detail string
	var ms, seq int64
	if err := c.QueryRow(context.Background(), "SELECT detail, event_ms, event_seq FROM lifecycle_events").Scan(&detail, &ms, &seq); err != nil {
		t.Fatal(err)
	}
	if detail != "waiting" || ms != 1772442000000 || seq != 0 {
		t.Errorf("row = %q %d-%d, want the first delivery's, 1772442000000-0", detail, ms, seq)
	}
}

// rec == nil writes the event only; the same id in another workspace is
// another event.
func TestArchiveRecordEventOnly(t *testing.T) {
	a, c := archiveTestOpen(t)
	ev := engine.Event{ID: "5-0", At: archiveTestT0, Kind: engine.EventAutoPaused, RepID: "r1", PoolID: "p"}
	archiveTestRecord(t, a, "default", ev, nil)
	archiveTestRecord(t, a, "", ev, nil) // "" is the default workspace
	archiveTestRecord(t, a, "eu", ev, nil)
	if n := archiveTestCount(t, c, "SELECT count(*) FROM assignments"); n != 0 {
		t.Errorf("assignments has %d rows, want 0", n)
	}
	if n := archiveTestCount(t, c, "SELECT count(*) FROM lifecycle_events"); n != 2 {
		t.Errorf("lifecycle_events has %d rows, want 2 (default and eu)", n)
	}
	if n := archiveTestCount(t, c, "SELECT count(*) FROM lifecycle_events WHERE lead_id IS NULL AND detail IS NULL AND rep_id = 'r1'"); n != 2 {
		t.Errorf("%d rows with NULL lead_id and detail, want 2", n)
	}
}

// archiveTestLead is a lead's record as the store returns it after an
// offer to r1 (made at +1m).
func archiveTestLead(id string) *engine.Assignment {
	return &engine.Assignment{
		LeadID: id, State: engine.StateOffered, RepID: "r1", PoolID: "p1", RuleID: "all", Route: engine.RouteRule,
		ConfigVersion: 3, ReceivedAt: archiveTestAt(time.Minute), DecidedAt: archiveTestAt(time.Minute), Offers: 1,
		Lead: engine.Lead{ID: id, Email: "ada@example.com", FirstName: "Ada", LastName: "Lovelace",
			Company: "Analytical", Country: "GB", Source: "web", SubmittedAt: archiveTestT0},
		History: []engine.LifecycleEvent{
			{At: archiveTestAt(time.Minute), Kind: "received"},
			{At: archiveTestAt(time.Minute), Kind: "offered", RepID: "r1", Detail: "p1"},
		},
	}
}

func TestArchiveRecordUpserts(t *testing.T) {
	ctx := context.Background()
	a, c := archiveTestOpen(t)
	rec := archiveTestLead("l1")
	archiveTestRecord(t, a, "default", engine.Event{ID: "100-0", At: archiveTestAt(time.Minute), Kind: engine.EventOffered,
		LeadID: "l1", RepID: "r1", PoolID: "p1"}, rec)

	var state string
	var offered time.Time
	var contact *time.Time
	var speed *int64
	if err := c.QueryRow(ctx, `SELECT state, offered_at, first_contact_at, speed_to_lead_ms FROM assignments
		WHERE workspace = 'default' AND lead_id = 'l1'`).Scan(&state, &offered, &contact, &speed); err != nil {
		t.Fatal(err)
	}
	if state != "OFFERED" || !offered.Equal(archiveTestAt(time.Minute)) || contact != nil || speed != nil {
		t.Errorf("after the offer: %s offered %v contact %v speed %v; want OFFERED at +1m, contact and speed NULL",
			state, offered, contact, speed)
	}

	// Accepted at +2m, contacted at +3m, qualified at +1h.
	rec.State, rec.AcceptedAt, rec.FirstContactAt, rec.Contacts = engine.StateAssigned, archiveTestAt(2*time.Minute), archiveTestAt(3*time.Minute), 1
	archiveTestRecord(t, a, "default", engine.Event{ID: "200-0", At: rec.FirstContactAt, Kind: engine.EventFirstContact, LeadID: "l1", RepID: "r1"}, rec)
	rec.State, rec.ClosedAt, rec.Disposition, rec.ReasonCode, rec.CloseReason = engine.StateClosed, archiveTestAt(time.Hour), engine.Qualified, "budget", "done"
	archiveTestRecord(t, a, "default", engine.Event{ID: "300-0", At: rec.ClosedAt, Kind: engine.EventDispositioned, LeadID: "l1", RepID: "r1"}, rec)

	type row struct {
		State, RepID, PoolID, RuleID, Route    string
		ConfigVersion                          int64
		Source, Company, Country               string
		Submitted, Received, Offered, Accepted time.Time
		Contact, Closed                        time.Time
		Speed                                  int64
		Offers                                 int32
		Disposition, ReasonCode, CloseReason   string
		Updated                                time.Time
		LastEventID                            string
		LastEventMs, LastEventSeq              int64
	}
	rows, err := c.Query(ctx, `SELECT state, rep_id, pool_id, rule_id, route, config_version, source, company, country,
		submitted_at, received_at, offered_at, accepted_at, first_contact_at, closed_at, speed_to_lead_ms, offers,
		disposition, reason_code, close_reason, updated_at, last_event_id, last_event_ms, last_event_seq FROM assignments`)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, pgx.RowToStructByPos[row])
	if err != nil {
		t.Fatal(err)
	}
	want := row{"CLOSED", "r1", "p1", "all", "rule", 3, "web", "Analytical", "GB",
		archiveTestT0, archiveTestAt(time.Minute), archiveTestAt(time.Minute), archiveTestAt(2 * time.Minute),
		archiveTestAt(3 * time.Minute), archiveTestAt(time.Hour), (3 * time.Minute).Milliseconds(), 1,
		"QUALIFIED", "budget", "done", archiveTestAt(time.Hour), "300-0", 300, 0}
	if len(got) != 1 {
		t.Fatalf("%d assignment rows, want 1", len(got))
	}
	g := got[0]
	for _, p := range []struct{ a, b *time.Time }{{&g.Submitted, &want.Submitted}, {&g.Received, &want.Received},
		{&g.Offered, &want.Offered}, {&g.Accepted, &want.Accepted}, {&g.Contact, &want.Contact},
		{&g.Closed, &want.Closed}, {&g.Updated, &want.Updated}} {
		if p.a.Equal(*p.b) {
			*p.a = *p.b // same instant; compare the rest with ==
		}
	}
	if g != want {
		t.Errorf("row\n got %+v\nwant %+v", g, want)
	}
	if n := archiveTestCount(t, c, "SELECT count(*) FROM lifecycle_events WHERE lead_id = 'l1'"); n != 3 {
		t.Errorf("%d events of l1, want 3", n)
	}
}

// An older event delivered again after a newer one keeps the newer row;
// offered_at keeps the earliest offer even when the history no longer
// holds it.
func TestArchiveRecordNeverRollsBack(t *testing.T) {
	ctx := context.Background()
	a, c := archiveTestOpen(t)
	rec := archiveTestLead("l1")
	offered := engine.Event{ID: "100-0", At: archiveTestAt(time.Minute), Kind: engine.EventOffered, LeadID: "l1", RepID: "r1"}
	archiveTestRecord(t, a, "default", offered, rec)

	later := *rec
	later.State, later.AcceptedAt = engine.StateAssigned, archiveTestAt(2*time.Minute)
	later.History = []engine.LifecycleEvent{{At: archiveTestAt(2 * time.Minute), Kind: "accepted", RepID: "r1"}} // folded
	later.HistoryFolded = 2
	archiveTestRecord(t, a, "default", engine.Event{ID: "100-1", At: later.AcceptedAt, Kind: engine.EventAccepted, LeadID: "l1", RepID: "r1"}, &later)
	archiveTestRecord(t, a, "default", offered, rec) // the offer again, with the record as it was then

	var state, last string
	var offeredAt time.Time
	if err := c.QueryRow(ctx, "SELECT state, last_event_id, offered_at FROM assignments").Scan(&state, &last, &offeredAt); err != nil {
		t.Fatal(err)
	}
	if state != "ASSIGNED" || last != "100-1" || !offeredAt.Equal(archiveTestAt(time.Minute)) {
		t.Errorf("row: %s after %s offered %v; want ASSIGNED after 100-1, offered at +1m", state, last, offeredAt)
	}
}

func TestArchiveErase(t *testing.T) {
	a, c := archiveTestOpen(t)
	for i, ws := range []string{"default", "default", "default", "eu"} {
		id := []string{"l1", "l2", "l3", "l1"}[i]
		archiveTestRecord(t, a, ws, engine.Event{ID: "1-" + string(rune('0'+i)), At: archiveTestT0, Kind: engine.EventOffered, LeadID: id, RepID: "r1"}, archiveTestLead(id))
	}
	if err := a.Erase(context.Background(), "default", []string{"l1", "l2", "never-seen", ""}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, sql string
		want      int
	}{
		{"erased assignments", "SELECT count(*) FROM assignments WHERE workspace = 'default' AND lead_id IN ('l1', 'l2')", 0},
		{"erased events", "SELECT count(*) FROM lifecycle_events WHERE workspace = 'default' AND lead_id IN ('l1', 'l2')", 0},
		{"other lead", "SELECT count(*) FROM assignments WHERE workspace = 'default' AND lead_id = 'l3'", 1},
		{"other workspace", "SELECT count(*) FROM lifecycle_events WHERE workspace = 'eu' AND lead_id = 'l1'", 1},
	} {
		if n := archiveTestCount(t, c, tc.sql); n != tc.want {
			t.Errorf("%s: %d rows, want %d", tc.name, n, tc.want)
		}
	}
	if err := a.Erase(context.Background(), "default", nil); err != nil {
		t.Errorf("Erase of no leads: %v", err)
	}
}

// The lead's erased event erases what came before it and keeps itself; a
// late redelivery of an earlier event does not bring the lead back, while
// a new lead given the same id later is archived.
func TestArchiveErasedEvent(t *testing.T) {
	a, c := archiveTestOpen(t)
	archiveTestRecord(t, a, "default", engine.Event{ID: "10-0", At: archiveTestT0, Kind: engine.EventOffered, LeadID: "l1", RepID: "r1"}, archiveTestLead("l1"))
	archiveTestRecord(t, a, "default", engine.Event{ID: "11-0", At: archiveTestT0, Kind: engine.EventOffered, LeadID: "l2", RepID: "r1"}, archiveTestLead("l2"))
	erased := engine.Event{ID: "20-0", At: archiveTestAt(time.Hour), Kind: engine.EventErased, LeadID: "l1", RepID: "r1"}
	archiveTestRecord(t, a, "default", erased, nil)
	archiveTestRecord(t, a, "default", erased, nil) // redelivered
	archiveTestRecord(t, a, "default", engine.Event{ID: "10-0", At: archiveTestT0, Kind: engine.EventOffered, LeadID: "l1", RepID: "r1"}, archiveTestLead("l1"))
	if n := archiveTestCount(t, c, "SELECT count(*) FROM assignments WHERE lead_id = 'l1'"); n != 0 {
		t.Errorf("l1 has %d assignment rows after its erasure, want 0", n)
	}
	if n := archiveTestCount(t, c, "SELECT count(*) FROM lifecycle_events WHERE lead_id = 'l1' AND kind <> 'erased'"); n != 0 {
		t.Errorf("l1 has %d events besides its erasure, want 0", n)
	}
	if n := archiveTestCount(t, c, "SELECT count(*) FROM lifecycle_events WHERE lead_id = 'l1' AND kind = 'erased'"); n != 1 {
		t.Errorf("l1 has %d erased events, want 1", n)
	}
	if n := archiveTestCount(t, c, "SELECT count(*) FROM assignments WHERE lead_id = 'l2'"); n != 1 {
		t.Errorf("l2 has %d rows, want 1: another lead's erasure took it", n)
	}
	archiveTestRecord(t, a, "default", engine.Event{ID: "30-0", At: archiveTestAt(2 * time.Hour), Kind: engine.EventOffered, LeadID: "l1", RepID: "r2"}, archiveTestLead("l1"))
	if n := archiveTestCount(t, c, "SELECT count(*) FROM assignments WHERE lead_id = 'l1' AND last_event_id = '30-0'"); n != 1 {
		t.Errorf("a lead submitted again with id l1 after the erasure: %d rows, want 1", n)
	}
}

// Record writes both rows or neither.
func TestArchiveRecordIsAtomic(t *testing.T) {
	ctx := context.Background()
	a, c := archiveTestOpen(t)
	if _, err := c.Exec(ctx, `CREATE FUNCTION archive_test_fail() RETURNS trigger LANGUAGE plpgsql AS
		$$BEGIN RAISE EXCEPTION 'refused by test'; END$$;
		CREATE TRIGGER archive_test_fail BEFORE INSERT ON assignments FOR EACH ROW EXECUTE FUNCTION archive_test_fail()`); err != nil {
		t.Fatal(err)
	}
	err := a.Record(ctx, "default", engine.Event{ID: "1-0", At: archiveTestT0, Kind: engine.EventOffered, LeadID: "l1"}, archiveTestLead("l1"))
	if err == nil {
		t.Fatal("Record succeeded though the assignments insert failed")
	}
	if errors.Is(err, ErrArchiveRejected) {
		t.Errorf("a server error is ErrArchiveRejected: %v", err)
	}
	if n := archiveTestCount(t, c, "SELECT count(*) FROM lifecycle_events"); n != 0 {
		t.Errorf("lifecycle_events has %d rows after a failed Record, want 0", n)
	}
}

func TestArchiveRecordRejects(t *testing.T) {
	a, _ := archiveTestOpen(t)
	ok := engine.Event{ID: "1-0", At: archiveTestT0, Kind: engine.EventOffered, LeadID: "l1"}
	for _, tc := range []struct {
		name string
		ws   string
		ev   func(engine.Event) engine.Event
		rec  *engine.Assignment
	}{
		{"id not ms-seq", "default", func(e engine.Event) engine.Event { e.ID = "1"; return e }, nil},
		{"id past bigint", "default", func(e engine.Event) engine.Event { e.ID = "18446744073709551615-0"; return e }, nil},
		{"no kind", "default", func(e engine.Event) engine.Event { e.Kind = ""; return e }, nil},
		{"record of another lead", "default", func(e engine.Event) engine.Event { return e }, archiveTestLead("l2")},
		{"bad workspace", "a{b}", func(e engine.Event) engine.Event { return e }, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := a.Record(context.Background(), tc.ws, tc.ev(ok), tc.rec); !errors.Is(err, ErrArchiveRejected) {
				t.Errorf("Record = %v, want ErrArchiveRejected", err)
			}
		})
	}
}

// PostgreSQL's text takes no NUL bytes nor invalid UTF-8: such text is
// stored with U+FFFD rather than failing the event for ever.
func TestArchiveRecordSanitizesText(t *testing.T) {
	a, c := archiveTestOpen(t)
	rec := archiveTestLead("l1")
	rec.Lead.Company = "Nul\x00Co\xff"
	archiveTestRecord(t, a, "default", engine.Event{ID: "1-0", At: archiveTestT0, Kind: engine.EventOffered, LeadID: "l1", Detail: "a\x00b"}, rec)
	var company, detail string
	if err := c.QueryRow(context.Background(), "SELECT company, detail FROM assignments JOIN lifecycle_events USING (workspace, lead_id)").Scan(&company, &detail); err != nil {
		t.Fatal(err)
	}
	if company != "Nul\uFFFDCo\uFFFD" || detail != "a\uFFFDb" {
		t.Errorf("company %q, detail %q", company, detail)
	}
}

// The archive copies no email address or names.
func TestArchiveHoldsNoContactDetails(t *testing.T) {
	a, c := archiveTestOpen(t)
	archiveTestRecord(t, a, "default", engine.Event{ID: "1-0", At: archiveTestT0, Kind: engine.EventOffered, LeadID: "l1"}, archiveTestLead("l1"))
	var row string
	if err := c.QueryRow(context.Background(), "SELECT assignments::text FROM assignments").Scan(&row); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"ada@example.com", "Ada", "Lovelace"} {
		if strings.Contains(strings.ToLower(row), strings.ToLower(s)) {
			t.Errorf("assignments row %s holds %q", row, s)
		}
	}
}
