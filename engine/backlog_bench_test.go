package engine_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/leadrouter/leadrouter/engine"
	"github.com/leadrouter/leadrouter/internal/redistest"
	"github.com/leadrouter/leadrouter/store"
)

// seedEvents appends n offered events to ws's stream, a thousand per
// pipeline, as the scripts write them.
func seedEvents(tb testing.TB, st *store.Redis, ws string, n int) {
	tb.Helper()
	ctx := context.Background()
	key := st.Prefix() + ":{" + ws + "}:events"
	for i := 0; i < n; i += 1000 {
		pipe := st.Client().Pipeline()
		for j := i; j < min(i+1000, n); j++ {
			pipe.Do(ctx, "XADD", key, "*", "kind", "offered", "lead", fmt.Sprint("lead-", j), "rep", "r1", "pool", "p",
				"at", time.Now().UnixMilli(), "detail", "a detail of some forty bytes, as events carry")
		}
		if _, err := pipe.Exec(ctx); err != nil {
			tb.Fatal(err)
		}
	}
}

// BenchmarkResumeBacklog: a stream resumed from the start of a 100,000-event
// history on the real Redis. The backlog is read and sent a page at a time,
// so the heap it takes stays at about one page whatever the backlog's length.
// Reports the time to send it all and the largest heap growth seen while
// sending (sampled every 1,000 events, after a GC at the start).
func BenchmarkResumeBacklog(b *testing.B) {
	const events = 100_000
	st := redistest.RealStore(b)
	ctx := context.Background()
	ws := redistest.Workspace(b)
	seedEvents(b, st, ws, events)
	w := engine.NewWatcher(st, quiet, 0)
	defer w.Close()
	epoch, err := st.EventsEpoch(ctx, ws)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		wt, err := w.Watch(ctx, ws, &engine.Position{Epoch: epoch, Offset: "0-0"}, engine.WatchFilter{Match: func(*engine.Event) bool { return true }})
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		base, peak := ms.HeapAlloc, ms.HeapAlloc
		n := 0
		start := time.Now()
		err = wt.SendBacklog(ctx, func(*engine.Event) error {
			if n++; n%1000 == 0 {
				runtime.ReadMemStats(&ms)
				peak = max(peak, ms.HeapAlloc)
			}
			return nil
		})
		took := time.Since(start)
		wt.Close()
		if err != nil || n != events {
			b.Fatalf("sent %d of %d: %v", n, events, err)
		}
		b.ReportMetric(took.Seconds(), "s/resume")
		b.ReportMetric(float64(peak-base)/(1<<20), "peak-heap-growth-MB")
	}
	b.ReportMetric(0, "ns/op")
}

// TestBacklogOutlivedByRetention: retention removes events a slow resume
// has not sent yet; the backlog ends with ErrBacklogGone (the client gets
// RESET) rather than skip them silently.
func TestBacklogOutlivedByRetention(t *testing.T) {
	st := redistest.RealStore(t)
	ctx := context.Background()
	ws := redistest.Workspace(t)
	seedEvents(t, st, ws, 3000)
	w := engine.NewWatcher(st, quiet, 0)
	defer w.Close()
	epoch, err := st.EventsEpoch(ctx, ws)
	if err != nil {
		t.Fatal(err)
	}
	wt, err := w.Watch(ctx, ws, &engine.Position{Epoch: epoch, Offset: "0-0"}, engine.WatchFilter{Match: func(*engine.Event) bool { return true }})
	if err != nil {
		t.Fatal(err)
	}
	defer wt.Close()
	sent := 0
	err = wt.SendBacklog(ctx, func(*engine.Event) error {
		if sent++; sent == 500 { // the client is slow; retention runs meanwhile
			if _, err := st.TrimEvents(ctx, ws, 1000, 24*time.Hour, time.Now()); err != nil {
				t.Fatal(err)
			}
		}
		return nil
	})
	if !errors.Is(err, engine.ErrBacklogGone) || sent != 1000 {
		t.Fatalf("sent %d, then %v; want the first page (1,000) and ErrBacklogGone", sent, err)
	}
}
