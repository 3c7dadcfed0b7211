package sinks

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/leadrouter/leadrouter/engine"
	"github.com/leadrouter/leadrouter/internal/pgtest"
	"github.com/leadrouter/leadrouter/internal/redistest"
)

// archiveSink configures a POSTGRES sink on a database of the test's own
// and returns a connection to it for checking rows.
func archiveSink(t *testing.T) (string, *pgx.Conn) {
	dsn := pgtest.DSN(t)
	t.Setenv("LR_SINK_ARCHIVE_DSN", dsn)
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return "  - {id: archive, kind: POSTGRES, dsn_env: LR_SINK_ARCHIVE_DSN}\n", conn
}

// checkRowsEqualRecords: the archive has one assignments row per record,
// with the record's state, rep and pool, and one lifecycle_events row per
// event of the stream.
func checkRowsEqualRecords(t *testing.T, e *sinkEnv, conn *pgx.Conn, leads int) {
	t.Helper()
	ctx := context.Background()
	rows, err := conn.Query(ctx, `SELECT lead_id, state, coalesce(rep_id, ''), coalesce(pool_id, '') FROM assignments WHERE workspace = $1`, e.ws)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rows.Next() {
		var id, state, rep, pool string
		if err := rows.Scan(&id, &state, &rep, &pool); err != nil {
			t.Fatal(err)
		}
		n++
		a, err := e.eng.GetAssignment(ctx, e.ws, id)
		if err != nil {
			t.Fatal(err)
		}
		if state != string(a.State) || rep != a.RepID || pool != a.PoolID {
			t.Errorf("%s: row %s/%s/%s, record %s/%s/%s", id, state, rep, pool, a.State, a.RepID, a.PoolID)
		}
	}
	if rows.Err() != nil || n != leads {
		t.Fatalf("%d assignments rows (%v), want %d", n, rows.Err(), leads)
	}
	var events int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM lifecycle_events WHERE workspace = $1`, e.ws).Scan(&events); err != nil {
		t.Fatal(err)
	}
	if want := len(e.eventIDs()); events != want {
		t.Fatalf("%d lifecycle_events rows, want the stream's %d", events, want)
	}
}

// TestArchiveSink: two replicas archive every lead and event, the
// migrations applied once between them; rows equal records.
func TestArchiveSink(t *testing.T) {
	b := redistest.Backends()[len(redistest.Backends())-1]
	e := newSinkEnv(t, b)
	sink, conn := archiveSink(t)
	e.apply(sink)
	e.replica("a", Options{})
	e.replica("b", Options{})
	e.leads(40)
	waitFor(t, 30*time.Second, "the archive caught up", func() bool { st := e.state("archive"); return st.Started && st.Pending == 0 })
	checkRowsEqualRecords(t, e, conn, 40)
	var versions int
	if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM leadrouter_schema_migrations`).Scan(&versions); err != nil || versions != 1 {
		t.Fatalf("%d migration rows, %v", versions, err)
	}
}

// TestArchiveSurvivesPostgresRestart: PostgreSQL restarts while leads
// are routed; the archive retries, catches up, and rows equal records.
func TestArchiveSurvivesPostgresRestart(t *testing.T) {
	b := redistest.Backends()[len(redistest.Backends())-1]
	e := newSinkEnv(t, b)
	sink, conn := archiveSink(t)
	e.apply(sink)
	e.replica("a", Options{MaxBackoff: 500 * time.Millisecond})
	e.replica("b", Options{MaxBackoff: 500 * time.Millisecond})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 20; i++ {
			e.leads(5)
			time.Sleep(50 * time.Millisecond)
		}
	}()
	time.Sleep(300 * time.Millisecond)
	conn.Close(context.Background())
	pgtest.Restart(t)
	wg.Wait()
	waitFor(t, 60*time.Second, "the archive caught up", func() bool { st := e.state("archive"); return st.Started && st.Pending == 0 })
	if st := e.state("archive"); st.DeadLetters != 0 {
		t.Fatalf("dead letters after a restart: %+v", st)
	}
	conn, err := pgx.Connect(context.Background(), pgtestDSNOf(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	checkRowsEqualRecords(t, e, conn, 100)
}

// TestRetentionWaitsForTheArchive: a closed lead's record is not removed
// while the archive sink has not delivered its events; once it has, it is.
func TestRetentionWaitsForTheArchive(t *testing.T) {
	b := redistest.Backends()[0]
	e := newSinkEnv(t, b)
	sink, _ := archiveSink(t)
	e.apply(sink)
	e.leads(1) // lead-1: offered, accepted, closed
	a, err := e.eng.GetAssignment(e.ctx, e.ws, "lead-1")
	if err != nil || a.State != engine.StateClosed {
		t.Fatalf("lead-1: %v, %v", a, err)
	}
	hold := &engine.ArchiveHold{SinkID: "archive", Retain: time.Hour}
	later := time.Now().Add(2 * time.Hour)
	if removed, err := e.st.RemoveLead(e.ctx, e.ws, "lead-1", hold, later); err != nil || removed {
		t.Fatalf("removed %v, %v before the archive had the lead", removed, err)
	}
	e.replica("a", Options{})
	waitFor(t, 20*time.Second, "the archive caught up", func() bool {
		st := e.state("archive")
		return st.Started && st.Pending == 0
	})
	if removed, err := e.st.RemoveLead(e.ctx, e.ws, "lead-1", hold, later.Add(2*time.Minute)); err != nil || !removed {
		t.Fatalf("removed %v, %v once archived", removed, err)
	}
	if _, err := e.eng.GetAssignment(e.ctx, e.ws, "lead-1"); err == nil {
		t.Fatal("the record is still there")
	}
}

func pgtestDSNOf(t *testing.T) string {
	v, ok := os.LookupEnv("LR_SINK_ARCHIVE_DSN")
	if !ok {
		t.Fatal("no DSN")
	}
	return v
}
