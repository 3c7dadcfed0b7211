package metrics_test

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/leadrouter/leadrouter/engine"
	"github.com/leadrouter/leadrouter/metrics"
)

// countingSource is a StateSource of 50 workspaces that counts its reads.
type countingSource struct{ workspaces, queues atomic.Int64 }

func (s *countingSource) Workspaces(context.Context) ([]string, error) {
	s.workspaces.Add(1)
	ws := make([]string, 50)
	for i := range ws {
		ws[i] = string(rune('a'+i%26)) + string(rune('a'+i/26))
	}
	return ws, nil
}

func (s *countingSource) QueueState(context.Context, string) ([]engine.PoolQueue, error) {
	s.queues.Add(1)
	return []engine.PoolQueue{{PoolID: "p", Queued: 1}}, nil
}

func (s *countingSource) Reps(context.Context, string) ([]engine.RepState, error) { return nil, nil }

func (s *countingSource) StoredLeads(context.Context, string) (map[engine.State]int64, error) {
	return map[engine.State]int64{engine.StateAssigned: 2}, nil
}

// TestStateReadOncePerScrapeBurst: twenty scrapes at once, then more right
// after, read Redis's state once: one scrape at a time reads, and what it
// read serves the others.
func TestStateReadOncePerScrapeBurst(t *testing.T) {
	src := &countingSource{}
	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics.NewStateCollector(src, metrics.Options{}, slog.New(slog.DiscardHandler)))
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mfs, err := reg.Gather()
			if err != nil {
				t.Error(err)
				return
			}
			for _, mf := range mfs {
				if mf.GetName() == "leadrouter_queued_leads" && mf.GetMetric()[0].GetGauge().GetValue() != 50 {
					t.Errorf("queued_leads %v, want 50 (one per workspace)", mf.GetMetric()[0].GetGauge().GetValue())
				}
				if mf.GetName() == "leadrouter_stored_leads" {
					for _, m := range mf.GetMetric() {
						want := 0.0
						if m.GetLabel()[0].GetValue() == "ASSIGNED" {
							want = 100
						}
						if m.GetGauge().GetValue() != want {
							t.Errorf("stored_leads %v: %v, want %v (summed over workspaces)", m.GetLabel(), m.GetGauge().GetValue(), want)
						}
					}
				}
			}
		}()
	}
	wg.Wait()
	if _, err := reg.Gather(); err != nil {
		t.Fatal(err)
	}
	if w, q := src.workspaces.Load(), src.queues.Load(); w != 1 || q != 50 {
		t.Fatalf("21 scrapes read the workspace list %d times and queues %d times; want once and 50", w, q)
	}
}
