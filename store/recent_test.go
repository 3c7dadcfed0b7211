package store_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/leadrouter/leadrouter/engine"
	"github.com/leadrouter/leadrouter/internal/redistest"
	"github.com/leadrouter/leadrouter/store"
)

// TestRecentIndexIsBounded: the recent index keeps the newest records
// only, and a record removed by retention or erased leaves it with the
// record.
func TestRecentIndexIsBounded(t *testing.T) {
	for _, b := range redistest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			st := b.Open(t)
			store.SetRecentKept(st, 5)
			ctx := context.Background()
			ws := redistest.Workspace(t)
			clock := engine.NewManualClock(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
			eng := engine.New(st, engine.WithClock(clock))
			cfg, err := engine.ParseConfigYAML(strings.NewReader(`
reps: [{id: a}]
pools: [{id: p, accept_within: 0s, members: [{rep_id: a}]}]
rules: [{id: us, match: {countries: [US]}, targets: [{pool_id: p}]}]
settings: {retain_closed: 1h}
`))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := eng.ApplyConfig(ctx, ws, cfg, nil); err != nil {
				t.Fatal(err)
			}
			// l1..l8; the odd ones match no rule and are UNROUTABLE.
			for i := 1; i <= 8; i++ {
				country := "US"
				if i%2 == 1 {
					country = "DE"
				}
				if _, _, err := eng.AssignLead(ctx, ws, engine.Lead{ID: fmt.Sprintf("l%d", i), Country: country}); err != nil {
					t.Fatal(err)
				}
				clock.Advance(time.Millisecond)
			}
			recent := func() string {
				t.Helper()
				as, err := st.RecentLeads(ctx, ws, 100)
				if err != nil {
					t.Fatal(err)
				}
				var ids []string
				for _, a := range as {
					ids = append(ids, a.LeadID)
				}
				return strings.Join(ids, " ")
			}
			key := st.Prefix() + ":{" + ws + "}:recent"
			if got := recent(); got != "l8 l7 l6 l5 l4" {
				t.Fatalf("recent %q", got)
			}
			if n := st.Client().ZCard(ctx, key).Val(); n != 5 {
				t.Fatalf("index holds %d", n)
			}
			// l7's retention ends; l6 is erased.
			if ok, err := st.RemoveLead(ctx, ws, "l7", nil, clock.Now().Add(2*time.Hour)); err != nil || !ok {
				t.Fatalf("remove: %v %v", ok, err)
			}
			if _, err := eng.EraseLead(ctx, ws, "l6"); err != nil {
				t.Fatal(err)
			}
			if got := recent(); got != "l8 l5 l4" {
				t.Fatalf("recent after removal %q", got)
			}
			if n := st.Client().ZCard(ctx, key).Val(); n != 3 {
				t.Fatalf("index holds %d", n)
			}
		})
	}
}
