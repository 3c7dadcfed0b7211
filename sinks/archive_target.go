package sinks

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/leadrouter/leadrouter/engine"
)

// archiveTarget is a POSTGRES sink: each event is recorded in the archive
// with the lead's record as it is now (Archive.Record). Its migrations are
// applied when the sink starts, and again before the next event when that
// failed (the database was down).
type archiveTarget struct {
	sink     *engine.Sink
	eng      *engine.Engine
	archive  *Archive
	migrated atomic.Bool
}

func newArchiveTarget(ctx context.Context, s *engine.Sink, eng *engine.Engine) (*archiveTarget, error) {
	dsn, err := s.DSN()
	if err != nil {
		return nil, err
	}
	a, err := OpenArchive(ctx, dsn)
	if err != nil {
		return nil, errors.New("the DSN does not parse") // its error can quote the password
	}
	t := &archiveTarget{sink: s, eng: eng, archive: a}
	t.migrated.Store(a.Migrate(ctx) == nil)
	return t, nil
}

func (t *archiveTarget) Deliver(ctx context.Context, ws string, ev engine.Event) error {
	if !t.migrated.Load() {
		// Migrate is safe to run concurrently and again.
		if err := t.archive.Migrate(ctx); err != nil {
			return fmt.Errorf("applying the archive's migrations: %w", err)
		}
		t.migrated.Store(true)
	}
	var rec *engine.Assignment
	if ev.LeadID != "" && ev.Kind != engine.EventErased {
		r, err := t.eng.GetAssignment(ctx, ws, ev.LeadID)
		switch {
		case err == nil:
			rec = r
		case !errors.Is(err, engine.ErrNotFound):
			return err
		}
	}
	err := t.archive.Record(ctx, ws, ev, rec)
	if errors.Is(err, ErrArchiveRejected) {
		return permanent("%v", err)
	}
	return err
}

func (t *archiveTarget) Close() { t.archive.Close() }
