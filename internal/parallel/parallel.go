// Package parallel spreads numbered work over goroutines, the way the
// concurrency tests and benchmarks load a server: each of several workers
// takes the next index not yet taken, until none is left.
package parallel

import (
	"sync"
	"sync/atomic"
)

// Group is workers running over indexes (Go).
type Group struct {
	wg   sync.WaitGroup
	mu   sync.Mutex
	errs []error
}

// Go starts workers goroutines that each take the next index in [0, n)
// and call f with it, until no index is left or f returns an error. An
// error stops that worker only (the others go on) and is kept for Wait.
func Go(workers, n int, f func(i int) error) *Group {
	g := &Group{}
	var next atomic.Int64
	for range workers {
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := f(i); err != nil {
					g.mu.Lock()
					g.errs = append(g.errs, err)
					g.mu.Unlock()
					return
				}
			}
		}()
	}
	return g
}

// Wait returns once every worker has stopped, with the errors that
// stopped them in the order they happened. It may be called again.
func (g *Group) Wait() []error {
	g.wg.Wait()
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.errs
}

// Each is Go and Wait: f for every index in [0, n), from workers
// goroutines.
func Each(workers, n int, f func(i int) error) []error {
	return Go(workers, n, f).Wait()
}
