package main

import (
	"context"
	"math"
	"slices"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	pb "github.com/leadrouter/leadrouter/gen/leadrouter/v1"
)

// sample is what some load measured: every request's latency, how long the
// load ran, the calls that failed and the assignment states returned.
type sample struct {
	lat      []time.Duration // sorted by finish()
	elapsed  time.Duration
	errs     int
	firstErr error
	states   map[pb.AssignmentState]int
	dups     int
	// Response sizes of every 16th answer: what the client unmarshals.
	respBytes, respSampled int
}

func newSample() *sample {
	return &sample{lat: make([]time.Duration, 0, 4096), states: map[pb.AssignmentState]int{}}
}

// record adds one call's outcome.
func (s *sample) record(d time.Duration, resp *pb.AssignLeadResponse, err error) {
	if err != nil {
		s.errs++
		if s.firstErr == nil {
			s.firstErr = err
		}
		return
	}
	if len(s.lat)%16 == 0 {
		s.respBytes += proto.Size(resp)
		s.respSampled++
	}
	s.lat = append(s.lat, d)
	s.states[resp.GetAssignment().GetState()]++
	if resp.GetDuplicate() {
		s.dups++
	}
}

// merge adds o's calls and running time to s.
func (s *sample) merge(o *sample) {
	s.lat = append(s.lat, o.lat...)
	s.elapsed += o.elapsed
	s.errs += o.errs
	if s.firstErr == nil {
		s.firstErr = o.firstErr
	}
	for k, v := range o.states {
		s.states[k] += v
	}
	s.dups += o.dups
	s.respBytes += o.respBytes
	s.respSampled += o.respSampled
}

// respSize is the mean size of an answer in bytes (protobuf encoding).
func (s *sample) respSize() int {
	if s.respSampled == 0 {
		return 0
	}
	return s.respBytes / s.respSampled
}

// finish sorts the latencies; call it before reading percentiles.
func (s *sample) finish() { slices.Sort(s.lat) }

// n is the number of successful calls.
func (s *sample) n() int { return len(s.lat) }

// rps is successful calls per second of running time.
func (s *sample) rps() float64 {
	if s.elapsed <= 0 {
		return 0
	}
	return float64(s.n()) / s.elapsed.Seconds()
}

// pct returns the p-th percentile (0 < p <= 100) by nearest rank.
func (s *sample) pct(p float64) time.Duration {
	if len(s.lat) == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(len(s.lat)))) - 1
	return s.lat[min(max(i, 0), len(s.lat)-1)]
}

// notAssigned counts the calls answered with another state than ASSIGNED.
func (s *sample) notAssigned() int {
	return s.n() - s.states[pb.AssignmentState_ASSIGNMENT_STATE_ASSIGNED]
}

// closedLoop runs conc workers, each sending one AssignLead (base's
// workspace and view) after another
// for dur (the last call of each may end a little later), worker w on
// clients[w % len(clients)] with leads from gens[w]. Latency is measured
// around the call only; building the lead is not timed.
func closedLoop(ctx context.Context, clients []pb.RoutingServiceClient, base *pb.AssignLeadRequest, dur time.Duration, gens []*leadGen) *sample {
	per := make([]*sample, len(gens))
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(dur)
	for w, g := range gens {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := newSample()
			c := clients[w%len(clients)]
			req := &pb.AssignLeadRequest{Workspace: base.Workspace, View: base.View}
			for {
				now := time.Now()
				if !now.Before(deadline) || ctx.Err() != nil {
					break
				}
				req.Lead = g.next(now)
				t0 := time.Now()
				resp, err := c.AssignLead(ctx, req)
				s.record(time.Since(t0), resp, err)
				if err != nil {
					time.Sleep(10 * time.Millisecond) // a failing server must not become a busy loop
				}
			}
			per[w] = s
		}()
	}
	wg.Wait()
	out := newSample()
	for _, s := range per {
		out.merge(s)
	}
	out.elapsed = time.Since(start)
	out.finish()
	return out
}

// openSample is what a fixed-rate run measured.
type openSample struct {
	*sample          // latency from each call's scheduled send time
	service  *sample // latency from the call's actual start
	sent     int     // calls scheduled
	late     int     // calls that started more than 1 ms after their scheduled time
	duration time.Duration
}

// openLoop sends rate calls per second for dur on a fixed schedule,
// whatever the answers' latency (an open loop: a slow server faces a
// growing backlog, not a slower client). Call i is due at start + i/rate;
// workers take due calls in order. The main latency is measured from
// the due time, so time spent waiting for a free worker counts
// (no coordinated omission); service is measured from the call's start.
func openLoop(ctx context.Context, clients []pb.RoutingServiceClient, base *pb.AssignLeadRequest, rate float64, dur time.Duration, gens []*leadGen) *openSample {
	total := int(rate * dur.Seconds())
	due := make(chan time.Time, total)
	per := make([]*openSample, len(gens))
	var wg sync.WaitGroup
	start := time.Now()
	for w, g := range gens {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o := &openSample{sample: newSample(), service: newSample()}
			c := clients[w%len(clients)]
			req := &pb.AssignLeadRequest{Workspace: base.Workspace, View: base.View}
			for at := range due {
				now := time.Now()
				if now.Sub(at) > time.Millisecond {
					o.late++
				}
				req.Lead = g.next(now)
				t0 := time.Now()
				resp, err := c.AssignLead(ctx, req)
				end := time.Now()
				o.record(end.Sub(at), resp, err)
				o.service.record(end.Sub(t0), resp, err)
			}
			per[w] = o
		}()
	}
	interval := float64(time.Second) / rate
	for i := 0; i < total && ctx.Err() == nil; {
		n := int(float64(time.Since(start))/interval) + 1
		for ; i < min(n, total); i++ {
			due <- start.Add(time.Duration(float64(i) * interval))
		}
		time.Sleep(200 * time.Microsecond)
	}
	close(due)
	wg.Wait()
	out := &openSample{sample: newSample(), service: newSample(), sent: total, duration: time.Since(start)}
	for _, o := range per {
		out.merge(o.sample)
		out.service.merge(o.service)
		out.late += o.late
	}
	out.elapsed = out.duration
	out.finish()
	out.service.finish()
	return out
}
