package engine

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"
)

// Deadlines are judged by the clock of the replica that reads them: an
// offer expires when a sweeper's "now" passes its deadline, an accept is
// refused when the accepting replica's "now" is past it. A replica whose
// clock runs ahead would withdraw offers early; one that runs behind would
// accept after the deadline. Redis's clock is the one every replica
// shares, so each replica measures its own against it (CheckClock, at
// every health check) and, while the offset is beyond the maximum
// (WithMaxClockOffset), refuses every call that reads the clock with
// ErrClockOffset and sweeps nothing. The other replicas go on.

// ErrClockOffset: this replica's clock is too far from Redis's to judge a
// deadline; the call is safe to retry on another replica.
var ErrClockOffset = fmt.Errorf("%w: this replica's clock is off", ErrUnavailable)

// DefaultMaxClockOffset is leadrouterd's default for WithMaxClockOffset.
const DefaultMaxClockOffset = 250 * time.Millisecond

// WithMaxClockOffset sets the largest offset between the engine's clock and
// the store's that the engine works with (0: no check; the default, since
// a test's clock is its own).
func WithMaxClockOffset(d time.Duration) Option { return func(e *Engine) { e.guard.max = d } }

type clockGuard struct {
	max      time.Duration
	offset   atomic.Int64 // ns, the last measurement
	off      atomic.Bool  // beyond max at the last conclusive measurement
	measured atomic.Bool  // a measurement has concluded
}

// ClockOK is nil unless the clock is off, or, with a maximum set, not yet
// measured: a replica judges no deadline before it knows its clock.
func (e *Engine) ClockOK() error {
	if e.guard.max <= 0 {
		return nil
	}
	if !e.guard.measured.Load() {
		return fmt.Errorf("%w: not yet measured against Redis's", ErrClockOffset)
	}
	if e.guard.off.Load() {
		return fmt.Errorf("%w: %s from Redis's, more than the %s allowed (fix the replica's time sync)",
			ErrClockOffset, time.Duration(e.guard.offset.Load()).Round(time.Millisecond), e.guard.max)
	}
	return nil
}

// CheckClock measures the engine's clock against the store's and returns
// the offset (positive: this replica is ahead) and ClockOK's verdict. The
// measurement brackets the store's reading between two of the engine's: a
// round trip too slow to tell (its half more than the maximum) leaves the
// verdict as it was (and a replica never measured refuses). Without a
// maximum it only measures.
func (e *Engine) CheckClock(ctx context.Context) (time.Duration, error) {
	t0 := e.clock.Now()
	at, err := e.store.Time(ctx)
	if err != nil {
		return 0, err
	}
	t1 := e.clock.Now()
	half := t1.Sub(t0) / 2
	offset := t0.Add(half).Sub(at)
	e.guard.offset.Store(int64(offset))
	if e.guard.max > 0 && half <= e.guard.max {
		e.guard.off.Store(abs(offset)-half > e.guard.max)
		e.guard.measured.Store(true)
	}
	return offset, e.ClockOK()
}

func abs(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}
