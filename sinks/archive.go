package sinks

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/leadrouter/leadrouter/engine"
)

// Archive is the POSTGRES sink's store: one row per lead in assignments
// (upserted on every change) and one per event in lifecycle_events
// (append-only, keyed by the event id, so a redelivery is a no-op). The
// tables are described in migrations/0001_archive.sql; docs/reporting.md
// has the queries reporting runs on them.
//
// The sink that feeds it delivers a workspace's events in per-lead order,
// at least once. Record is written for that: a redelivered event writes
// nothing new, and an older event delivered again after a newer one
// never rolls a lead's row back.
//
// An Archive is safe for concurrent use; several replicas may share one
// database.
type Archive struct {
	pool *pgxpool.Pool
}

// ErrArchiveRejected is returned by Record for an event the archive can
// never store (an id not of the "<ms>-<seq>" form, a record of another
// lead, a bad workspace name): retrying it cannot succeed, so the caller
// should set it aside rather than deliver it again.
var ErrArchiveRejected = errors.New("archive rejects the event")

// OpenArchive parses dsn (a PostgreSQL URL or key=value string, as libpq
// takes) and returns an Archive with its connection pool. It does not
// connect: a server that is not up yet fails the first call, not this one.
func OpenArchive(ctx context.Context, dsn string) (*Archive, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("archive: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("archive: %w", err)
	}
	return &Archive{pool: pool}, nil
}

// Close closes the pool's connections, waiting for calls under way.
func (a *Archive) Close() { a.pool.Close() }

// archiveMigrationFiles are the schema's migrations, NNNN_name.sql,
// applied in the order of their numbers. A migration, once released, is
// never edited: a change is a new file.
//
//go:embed migrations/*.sql
var archiveMigrationFiles embed.FS

// archiveMigrateLock is the pg_advisory_xact_lock key Migrate holds, so
// that replicas starting together migrate one after the other ("lrarchiv").
const archiveMigrateLock int64 = 0x6c72617263686976

type archiveMigration struct {
	version int
	name    string
	sql     string
}

var archiveMigrationName = regexp.MustCompile(`^([0-9]{4})_([a-z0-9_]+)\.sql$`)

// archiveMigrations lists the embedded migrations in version order.
func archiveMigrations() ([]archiveMigration, error) {
	entries, err := fs.ReadDir(archiveMigrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	var out []archiveMigration
	for _, e := range entries {
		m := archiveMigrationName.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("archive migration %q: want a name NNNN_name.sql", e.Name())
		}
		body, err := fs.ReadFile(archiveMigrationFiles, "migrations/"+e.Name())
		if err != nil {
			return nil, err
		}
		v, _ := strconv.Atoi(m[1])
		out = append(out, archiveMigration{version: v, name: m[2], sql: string(body)})
	}
	slices.SortFunc(out, func(a, b archiveMigration) int { return a.version - b.version })
	for i := 1; i < len(out); i++ {
		if out[i].version == out[i-1].version {
			return nil, fmt.Errorf("archive migrations %04d_%s and %04d_%s share a version",
				out[i-1].version, out[i-1].name, out[i].version, out[i].name)
		}
	}
	return out, nil
}

// Migrate brings the database's schema up to this version's: it applies,
// in order, each embedded migration the table leadrouter_schema_migrations
// does not list, and lists it there. It all happens in one transaction
// holding an advisory lock, so replicas migrating at once take turns and
// a failed migration leaves the schema as it was. Running it again is a
// no-op. Versions the table lists that this build does not know (a newer
// replica migrated first) are left alone.
func (a *Archive) Migrate(ctx context.Context) error {
	ms, err := archiveMigrations()
	if err != nil {
		return err
	}
	err = pgx.BeginFunc(ctx, a.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", archiveMigrateLock); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS leadrouter_schema_migrations (
			version    integer     PRIMARY KEY,
			name       text        NOT NULL,
			applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, "SELECT version FROM leadrouter_schema_migrations")
		if err != nil {
			return err
		}
		applied, err := pgx.CollectRows(rows, pgx.RowTo[int32])
		if err != nil {
			return err
		}
		for _, m := range ms {
			if slices.Contains(applied, int32(m.version)) {
				continue
			}
			// Without arguments Exec uses the simple protocol, which
			// takes a file of several statements.
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return fmt.Errorf("migration %04d_%s: %w", m.version, m.name, err)
			}
			if _, err := tx.Exec(ctx, "INSERT INTO leadrouter_schema_migrations (version, name) VALUES ($1, $2)",
				m.version, m.name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("archive migrate: %w", err)
	}
	return nil
}

// Record stores one event of workspace ws, and rec, the lead's record as
// read right after it (nil when there is none: an event of a rep, or of a
// lead erased since), in one transaction:
//
//   - the event becomes a row of lifecycle_events, unless a row has its id
//     already (a redelivery);
//   - rec replaces the lead's row of assignments, unless that row was
//     written for a later event (an older event delivered again);
//   - an `erased` event deletes what the archive holds of its lead from
//     before it (its assignments row and earlier events) and keeps only
//     itself, which names the lead id and nothing else;
//   - an event of a lead older than that lead's erasure writes nothing,
//     so a late redelivery cannot bring an erased lead back.
//
// Text is stored as valid UTF-8 without NUL bytes (PostgreSQL's text takes
// neither): other bytes become U+FFFD.
func (a *Archive) Record(ctx context.Context, ws string, ev engine.Event, rec *engine.Assignment) error {
	ws, err := engine.NormalizeWorkspace(ws)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrArchiveRejected, err)
	}
	ms, seq, ok := archiveEventPosition(ev.ID)
	if !ok {
		return fmt.Errorf("%w: event id %q is not of the form <ms>-<seq>", ErrArchiveRejected, ev.ID)
	}
	if ev.Kind == "" {
		return fmt.Errorf("%w: event %s has no kind", ErrArchiveRejected, ev.ID)
	}
	if rec != nil && (rec.LeadID == "" || rec.LeadID != ev.LeadID) {
		return fmt.Errorf("%w: event %s of lead %q comes with the record of lead %q",
			ErrArchiveRejected, ev.ID, ev.LeadID, rec.LeadID)
	}
	leadID := archiveText(ev.LeadID)

	// A batch runs as one implicit transaction: all of it or none.
	b := &pgx.Batch{}
	if ev.Kind == engine.EventErased && ev.LeadID != "" {
		b.Queue(`DELETE FROM assignments WHERE workspace = $1 AND lead_id = $2
			AND (last_event_ms, last_event_seq) < ($3::bigint, $4::bigint)`, ws, leadID, ms, seq)
		b.Queue(`DELETE FROM lifecycle_events WHERE workspace = $1 AND lead_id = $2
			AND (event_ms, event_seq) < ($3::bigint, $4::bigint)`, ws, leadID, ms, seq)
	}
	b.Queue(archiveInsertEvent, ws, archiveText(ev.ID), ms, seq, archiveTime(ev.At), archiveText(string(ev.Kind)),
		leadID, archiveText(ev.RepID), archiveText(ev.PoolID), archiveText(ev.Detail))
	if rec != nil {
		var speed any
		if !rec.FirstContactAt.IsZero() {
			speed = rec.SpeedToLead().Milliseconds()
		}
		b.Queue(archiveUpsertAssignment, ws, leadID, archiveText(string(rec.State)), archiveText(rec.RepID),
			archiveText(rec.PoolID), archiveText(rec.RuleID), archiveText(rec.Route), rec.ConfigVersion,
			archiveText(rec.Lead.Source), archiveText(rec.Lead.Company), archiveText(rec.Lead.Country),
			archiveTime(rec.Lead.SubmittedAt), archiveTime(rec.ReceivedAt), archiveTime(archiveFirstOffer(rec.History)),
			archiveTime(rec.AcceptedAt), archiveTime(rec.FirstContactAt), archiveTime(rec.ClosedAt), speed,
			rec.Offers, archiveText(string(rec.Disposition)), archiveText(rec.ReasonCode), archiveText(rec.CloseReason),
			archiveTime(ev.At), archiveText(ev.ID), ms, seq)
	}
	if err := a.pool.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("archive event %s: %w", ev.ID, err)
	}
	return nil
}

// archiveErasedSince is the condition that lead $7 (of workspace $1) has
// an `erased` event later than position ($3, $4): what comes before it was
// erased and must stay so.
const archiveErasedSince = `EXISTS (SELECT 1 FROM lifecycle_events x
	WHERE x.workspace = $1 AND x.lead_id = $7 AND x.kind = 'erased'
	AND (x.event_ms, x.event_seq) > ($3::bigint, $4::bigint))`

const archiveInsertEvent = `INSERT INTO lifecycle_events
	(workspace, event_id, event_ms, event_seq, at, kind, lead_id, rep_id, pool_id, detail)
SELECT $1::text, $2::text, $3::bigint, $4::bigint, $5::timestamptz, $6::text, $7::text, $8::text, $9::text, $10::text
WHERE NOT ` + archiveErasedSince + `
ON CONFLICT (workspace, event_id) DO NOTHING`

// archiveUpsertAssignment writes a lead's row unless the row on file was
// written for a later event. offered_at keeps the earliest offer seen: a
// long history drops its oldest entries (engine.MaxHistory), and with them
// perhaps the first offer, which an earlier write recorded.
const archiveUpsertAssignment = `INSERT INTO assignments
	(workspace, lead_id, state, rep_id, pool_id, rule_id, route, config_version, source, company, country,
	 submitted_at, received_at, offered_at, accepted_at, first_contact_at, closed_at, speed_to_lead_ms,
	 offers, disposition, reason_code, close_reason, updated_at, last_event_id, last_event_ms, last_event_seq)
SELECT $1::text, $2::text, $3::text, $4::text, $5::text, $6::text, $7::text, $8::bigint, $9::text, $10::text, $11::text,
	$12::timestamptz, $13::timestamptz, $14::timestamptz, $15::timestamptz, $16::timestamptz, $17::timestamptz, $18::bigint,
	$19::integer, $20::text, $21::text, $22::text, $23::timestamptz, $24::text, $25::bigint, $26::bigint
WHERE NOT EXISTS (SELECT 1 FROM lifecycle_events x
	WHERE x.workspace = $1 AND x.lead_id = $2 AND x.kind = 'erased'
	AND (x.event_ms, x.event_seq) > ($25::bigint, $26::bigint))
ON CONFLICT (workspace, lead_id) DO UPDATE SET
	state = EXCLUDED.state, rep_id = EXCLUDED.rep_id, pool_id = EXCLUDED.pool_id, rule_id = EXCLUDED.rule_id,
	route = EXCLUDED.route, config_version = EXCLUDED.config_version, source = EXCLUDED.source,
	company = EXCLUDED.company, country = EXCLUDED.country, submitted_at = EXCLUDED.submitted_at,
	received_at = EXCLUDED.received_at, offered_at = LEAST(assignments.offered_at, EXCLUDED.offered_at),
	accepted_at = EXCLUDED.accepted_at, first_contact_at = EXCLUDED.first_contact_at,
	closed_at = EXCLUDED.closed_at, speed_to_lead_ms = EXCLUDED.speed_to_lead_ms, offers = EXCLUDED.offers,
	disposition = EXCLUDED.disposition, reason_code = EXCLUDED.reason_code,
	close_reason = EXCLUDED.close_reason, updated_at = EXCLUDED.updated_at,
	last_event_id = EXCLUDED.last_event_id, last_event_ms = EXCLUDED.last_event_ms,
	last_event_seq = EXCLUDED.last_event_seq
WHERE (assignments.last_event_ms, assignments.last_event_seq) <= (EXCLUDED.last_event_ms, EXCLUDED.last_event_seq)`

// Erase deletes the leads' rows of workspace ws from both tables, for a
// person's erasure, in one transaction. Leads the archive does not hold
// are skipped. Unlike a lead's `erased` event (Record), Erase leaves no
// mark: an event of these leads recorded afterwards is archived again.
func (a *Archive) Erase(ctx context.Context, ws string, leadIDs []string) error {
	ws, err := engine.NormalizeWorkspace(ws)
	if err != nil {
		return err
	}
	ids := make([]string, 0, len(leadIDs))
	for _, id := range leadIDs {
		if id != "" {
			ids = append(ids, archiveText(id).(string))
		}
	}
	if len(ids) == 0 {
		return nil
	}
	b := &pgx.Batch{}
	b.Queue("DELETE FROM lifecycle_events WHERE workspace = $1 AND lead_id = ANY($2::text[])", ws, ids)
	b.Queue("DELETE FROM assignments WHERE workspace = $1 AND lead_id = ANY($2::text[])", ws, ids)
	if err := a.pool.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("archive erase: %w", err)
	}
	return nil
}

// archiveEventPosition is an event id's two numbers; ok is false unless
// the id is "<ms>-<seq>" with both in bigint's range.
func archiveEventPosition(id string) (ms, seq int64, ok bool) {
	if !engine.ValidEventID(id) {
		return 0, 0, false
	}
	a, b, _ := strings.Cut(id, "-")
	m, err1 := strconv.ParseUint(a, 10, 64)
	s, err2 := strconv.ParseUint(b, 10, 64)
	if err1 != nil || err2 != nil || m > math.MaxInt64 || s > math.MaxInt64 {
		return 0, 0, false
	}
	return int64(m), int64(s), true
}

// archiveFirstOffer is when the lead was first offered, as its history
// tells (its offer entries are of the kind the offered event has), or
// zero.
func archiveFirstOffer(h []engine.LifecycleEvent) time.Time {
	var first time.Time
	for _, e := range h {
		if e.Kind == string(engine.EventOffered) && !e.At.IsZero() && (first.IsZero() || e.At.Before(first)) {
			first = e.At
		}
	}
	return first
}

// archiveText is s as a text parameter: NULL when empty, else valid UTF-8
// without NUL bytes.
func archiveText(s string) any {
	if s == "" {
		return nil
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

// archiveTime is t as a timestamptz parameter: NULL when zero.
func archiveTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}
