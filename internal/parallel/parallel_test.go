package parallel

import (
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
)

// TestEachCallsEveryIndexOnce: every index once, from several goroutines.
func TestEachCallsEveryIndexOnce(t *testing.T) {
	const n = 10000
	var calls [n]atomic.Int32
	if errs := Each(8, n, func(i int) error { calls[i].Add(1); return nil }); len(errs) != 0 {
		t.Fatal(errs)
	}
	for i := range calls {
		if c := calls[i].Load(); c != 1 {
			t.Fatalf("index %d called %d times", i, c)
		}
	}
}

// TestErrorStopsItsWorkerOnly: three of four workers stop at an error
// each; the fourth takes every other index, and Wait returns the three
// errors (again when asked again).
func TestErrorStopsItsWorkerOnly(t *testing.T) {
	const n, workers = 1000, 4
	var done atomic.Int64
	g := Go(workers, n, func(i int) error {
		if i == 7 || i == 257 || i == 507 {
			return fmt.Errorf("index %d", i)
		}
		done.Add(1)
		return nil
	})
	errs := g.Wait()
	if len(errs) != 3 {
		t.Fatalf("errors %v, want the three", errs)
	}
	if done.Load() != n-3 {
		t.Errorf("%d indexes done, want %d: the last worker must take the rest", done.Load(), n-3)
	}
	if again := g.Wait(); len(again) != 3 || !errors.Is(again[0], errs[0]) {
		t.Errorf("second Wait: %v, first %v", again, errs)
	}
}
