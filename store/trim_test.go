package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/leadrouter/leadrouter/internal/redistest"
)

// TestTrimEvents: retention removes exactly the events over the length and
// age limits, in batches when there are many, and remembers the newest one
// it removed; with nothing to remove it changes nothing.
func TestTrimEvents(t *testing.T) {
	for _, b := range redistest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			st := b.Open(t)
			ctx := context.Background()
			ws := redistest.Workspace(t)
			events := st.Prefix() + ":{" + ws + "}:events"
			week := 7 * 24 * time.Hour
			// now such that the age limit removes nothing yet.
			young := time.UnixMilli(1000).Add(week)

			check := func(name string, got int64, err error, want int64, through string, left int64) {
				t.Helper()
				if err != nil || got != want {
					t.Fatalf("%s: removed %d, %v; want %d", name, got, err, want)
				}
				if tt, err := st.TrimmedThrough(ctx, ws); err != nil || tt != through {
					t.Fatalf("%s: trimmed through %q, %v; want %q", name, tt, err, through)
				}
				if n := st.Client().XLen(ctx, events).Val(); n != left {
					t.Fatalf("%s: %d events left, want %d", name, n, left)
				}
			}

			n, err := st.TrimEvents(ctx, ws, 10, week, young)
			check("empty history", n, err, 0, "0-0", 0)

			for i := 0; i < 1000; i++ {
				if err := st.Client().XAdd(ctx, &redis.XAddArgs{Stream: events, ID: fmt.Sprintf("%d-0", 1000+i), Values: []string{"kind", "assigned"}}).Err(); err != nil {
					t.Fatal(err)
				}
			}
			n, err = st.TrimEvents(ctx, ws, 1000, week, young)
			check("within both limits", n, err, 0, "0-0", 1000)

			// Over the length limit by more than one batch.
			n, err = st.TrimEvents(ctx, ws, 300, week, young)
			check("length", n, err, 700, "1699-0", 300)

			// Older than the age limit: the events before 1800 ms.
			n, err = st.TrimEvents(ctx, ws, 300, week, time.UnixMilli(1800).Add(week))
			check("age", n, err, 100, "1799-0", 200)

			// Both: the newer of the two cutoffs wins.
			n, err = st.TrimEvents(ctx, ws, 150, week, time.UnixMilli(1900).Add(week))
			check("both", n, err, 100, "1899-0", 100)

			n, err = st.TrimEvents(ctx, ws, 150, week, time.UnixMilli(1900).Add(week))
			check("nothing more", n, err, 0, "1899-0", 100)
		})
	}
}
