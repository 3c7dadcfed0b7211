// Package sinks delivers a workspace's events out of the system: signed
// webhooks, Slack channels and a PostgreSQL archive (engine.Sink).
//
// Every replica runs a Runner. For each sink of each workspace it reads the
// event stream through the sink's Redis Streams consumer group (store:
// sink_read.lua), so the work spreads over the replicas, and delivers at
// least once: an event is acknowledged only after its delivery succeeded
// or was dead-lettered. A replica that dies leaves its events pending;
// another takes them over (XAUTOCLAIM) once they have been idle for
// TakeoverIdle, while a live replica keeps the events it is still
// retrying fresh. The group's heads (lib_sink.lua) hand out only the
// oldest unfinished event of each lead, so a lead's deliveries never
// overtake each other, whichever replicas hold them; different leads go
// out in parallel, up to the sink's concurrency on each replica.
//
// Delivering never blocks routing: the runner's goroutines and Redis calls
// are its own, and an event is in the stream before any sink sees it.
package sinks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/leadrouter/leadrouter/engine"
	"github.com/leadrouter/leadrouter/metrics"
)

// Options configure a Runner.
type Options struct {
	Engine *engine.Engine
	Queue  engine.SinkQueue
	// Consumer names this process in the groups; unique per process.
	Consumer string
	Metrics  *metrics.Metrics
	Log      *slog.Logger
	// AllowPrivate lets webhooks and Slack posts reach loopback, private
	// and link-local addresses (leadrouterd --allow-private-sinks).
	AllowPrivate bool
	// Reconcile is how often the workspaces' configs are read for their
	// sinks (default 2 s).
	Reconcile time.Duration
	// TakeoverIdle is how long an event may sit unfinished with a
	// consumer that does not touch it before another takes it over
	// (default 15 s).
	TakeoverIdle time.Duration
	// MaxBackoff caps the wait between attempts (default 5 min).
	MaxBackoff time.Duration
}

// Runner runs every sink of every workspace on this replica.
type Runner struct {
	o     Options
	log   *slog.Logger
	mu    sync.Mutex
	loops map[string]*loop // workspace "/" sink id
	wg    sync.WaitGroup
}

// New returns a Runner; Run starts it.
func New(o Options) *Runner {
	if o.Reconcile <= 0 {
		o.Reconcile = 2 * time.Second
	}
	if o.TakeoverIdle <= 0 {
		o.TakeoverIdle = 15 * time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 5 * time.Minute
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	return &Runner{o: o, log: o.Log, loops: map[string]*loop{}}
}

// Run reconciles the sinks with the configs until ctx ends, then stops
// every sink (deliveries under way are abandoned unacknowledged: another
// replica, or this one restarted, delivers them) and returns.
func (r *Runner) Run(ctx context.Context) {
	t := time.NewTicker(r.o.Reconcile)
	defer t.Stop()
	for {
		if err := r.reconcile(ctx); err != nil && ctx.Err() == nil {
			r.log.Warn("sinks: reading the configs failed; tried again", "err", err)
		}
		select {
		case <-ctx.Done():
			r.mu.Lock()
			for _, l := range r.loops {
				l.cancel()
			}
			r.mu.Unlock()
			r.wg.Wait()
			return
		case <-t.C:
		}
	}
}

// reconcile starts a loop for each sink configured, restarts one whose
// config changed, stops those gone, and removes the groups of sinks no
// config names any more.
func (r *Runner) reconcile(ctx context.Context) error {
	wss, err := r.o.Engine.Workspaces(ctx)
	if err != nil {
		return err
	}
	configs := make(map[string]*engine.Config, len(wss))
	groupsOf := make(map[string][]string, len(wss))
	for _, ws := range wss {
		// The groups are listed before the config is read: a group made
		// by a replica that saw a config newer than this one is not
		// listed, and so not removed as if its sink were gone.
		groups, err := r.o.Queue.SinkGroups(ctx, ws)
		if err != nil {
			return err
		}
		groupsOf[ws] = groups
		sc, err := r.o.Engine.Config(ctx, ws)
		switch {
		case errors.Is(err, engine.ErrNoConfig):
			continue
		case err != nil:
			return err
		}
		configs[ws] = sc.Config
		for i := range sc.Config.Sinks {
			s := sc.Config.Sinks[i]
			fp, _ := json.Marshal(s)
			r.mu.Lock()
			l := r.loops[ws+"/"+s.ID]
			r.mu.Unlock()
			if l != nil && l.fingerprint == string(fp) {
				continue
			}
			if l != nil {
				l.stop()
			}
			// The group starts a little before the apply: a replica whose
			// clock is ahead of Redis's (up to the clock guard's bound)
			// would otherwise skip the first events.
			r.start(ctx, ws, s, string(fp), fmt.Sprintf("%d-0", sc.AppliedAt.Add(-engine.DefaultMaxClockOffset).UnixMilli()))
		}
	}
	// Stop the loops of sinks gone before deleting their groups, which a
	// running loop would create again.
	r.mu.Lock()
	var gone []*loop
	for key, l := range r.loops {
		if cfg := configs[l.ws]; cfg == nil || cfg.Sink(l.sink.ID) == nil {
			gone = append(gone, l)
			delete(r.loops, key)
		}
	}
	r.mu.Unlock()
	for _, l := range gone {
		l.stop()
	}
	for ws, cfg := range configs {
		for _, id := range groupsOf[ws] {
			if cfg.Sink(id) != nil {
				continue
			}
			if err := r.o.Queue.RemoveSink(ctx, ws, id); err != nil {
				return err
			}
			r.o.Metrics.SinkGone(ws, id)
			r.log.Info("sink removed from the config: its consumer group and state deleted", "workspace", ws, "sink", id)
		}
	}
	return nil
}

func (r *Runner) start(ctx context.Context, ws string, s engine.Sink, fp, start string) {
	lctx, cancel := context.WithCancel(ctx)
	l := &loop{r: r, ws: ws, sink: s, fingerprint: fp, start: start, cancel: cancel, done: make(chan struct{})}
	r.mu.Lock()
	r.loops[ws+"/"+s.ID] = l
	r.mu.Unlock()
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer close(l.done)
		l.run(lctx)
	}()
}

// loop runs one sink of one workspace on this replica.
type loop struct {
	r           *Runner
	ws          string
	sink        engine.Sink
	fingerprint string
	start       string
	cancel      context.CancelFunc
	done        chan struct{}
	tgt         target
}

func (l *loop) stop() {
	l.cancel()
	<-l.done
}

// Poll intervals: after a read that found nothing the loop waits
// minPoll, doubling to maxPoll while the stream stays idle. An idle sink
// costs each replica about seven Redis calls a second (reads, and the
// takeover, replay and status checks).
const (
	minPoll     = 5 * time.Millisecond
	maxPoll     = 200 * time.Millisecond
	statusEvery = 5 * time.Second
	pruneEvery  = time.Minute
	replayLease = 5 * time.Minute
	claimScan   = 100
)

func (l *loop) run(ctx context.Context) {
	r, q, id := l.r, l.r.o.Queue, l.sink.ID
	tgt, err := newTarget(ctx, l)
	for err != nil {
		l.r.log.Warn("sink cannot start; tried again in 10 s", "workspace", l.ws, "sink", id, "err", err)
		_ = q.NoteSinkError(ctx, l.ws, id, err.Error(), time.Now())
		select {
		case <-ctx.Done():
			return
		case <-time.After(10 * time.Second):
		}
		tgt, err = newTarget(ctx, l)
	}
	l.tgt = tgt
	defer tgt.Close()

	slots := make(chan struct{}, l.sink.Workers())
	var wg sync.WaitGroup
	defer wg.Wait()
	freed := make(chan struct{}, 1)
	spawn := func(f func()) {
		slots <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() {
				<-slots
				wg.Done()
				select {
				case freed <- struct{}{}:
				default:
				}
			}()
			f()
		}()
	}
	kinds := l.sink.WantedKinds()
	if slices.Equal(kinds, engine.EventKinds) {
		kinds = nil
	}
	poll := minPoll
	var lastClaim, lastReplay, lastStatus, lastPrune time.Time
	cursor := "0-0"
	for ctx.Err() == nil {
		now := time.Now()
		got, full := 0, false
		if free := cap(slots) - len(slots); free > 0 {
			ds, read, err := q.ReadSink(ctx, l.ws, id, r.o.Consumer, kinds, l.start, free)
			if err != nil {
				l.fail(ctx, "reading the stream", err)
			}
			for _, d := range ds {
				spawn(func() { l.chain(ctx, d) })
			}
			got, full = read, read == free
		}
		if free := cap(slots) - len(slots); free > 0 && now.Sub(lastClaim) > r.o.TakeoverIdle/3 {
			lastClaim = now
			// A larger count than free: waiting events are claimed too and
			// skipped; the heads among them take the free slots first, the
			// rest wait for slots (spawn).
			ds, next, err := q.ClaimSink(ctx, l.ws, id, r.o.Consumer, r.o.TakeoverIdle, cursor, max(free, claimScan))
			if err != nil {
				l.fail(ctx, "taking over idle events", err)
			}
			cursor = next
			for _, d := range ds {
				spawn(func() { l.chain(ctx, d) })
			}
			got += len(ds)
		}
		if free := cap(slots) - len(slots); free > 0 && now.Sub(lastReplay) > time.Second {
			lastReplay = now
			ts, err := q.TakeReplays(ctx, l.ws, id, now, replayLease, free)
			if err != nil {
				l.fail(ctx, "taking replayed dead letters", err)
			}
			for _, t := range ts {
				spawn(func() { l.replay(ctx, t) })
			}
		}
		if now.Sub(lastStatus) > statusEvery {
			lastStatus = now
			if st, err := q.SinkState(ctx, l.ws, id); err == nil {
				var lag time.Duration
				if !st.Oldest.IsZero() {
					lag = max(0, now.Sub(st.Oldest))
				}
				r.o.Metrics.SinkBacklog(l.ws, id, lag, st.DeadLetters)
			}
		}
		if now.Sub(lastPrune) > pruneEvery {
			lastPrune = now
			if n, err := q.PruneSinkConsumers(ctx, l.ws, id, time.Hour); err == nil && n > 0 {
				r.log.Info("sink: consumers of gone replicas forgotten", "workspace", l.ws, "sink", id, "consumers", n)
			}
		}
		switch {
		case len(slots) == cap(slots):
			// Every slot busy: read again when one frees up.
			select {
			case <-ctx.Done():
			case <-freed:
			case <-time.After(time.Second):
			}
			continue
		case full:
			continue // a backlog: read on at once
		case got > 0:
			poll = minPoll // a trickle: wait minPoll to read the next events in one call
		}
		select {
		case <-ctx.Done():
		case <-time.After(poll):
		}
		poll = min(2*poll, maxPoll)
	}
}

// fail logs a failed store call of the loop and waits a second.
func (l *loop) fail(ctx context.Context, what string, err error) {
	if ctx.Err() != nil {
		return
	}
	l.r.log.Warn("sink: "+what+" failed", "workspace", l.ws, "sink", l.sink.ID, "err", err)
	select {
	case <-ctx.Done():
	case <-time.After(time.Second):
	}
}

// chain delivers d, then each event of its lead that waited behind it.
// Each event is kept fresh in the group (touch) until it is acknowledged;
// one another replica took over meanwhile is abandoned to it.
func (l *loop) chain(ctx context.Context, d engine.SinkDelivery) {
	for {
		dctx, stopTouch := l.touch(ctx, d.Event.ID)
		dead, ok := l.deliver(dctx, d.Event, engine.EventTime(d.Event.ID))
		var next *engine.SinkDelivery
		var err error
		if ok {
			next, err = l.ack(dctx, d, dead)
		}
		stopTouch()
		if !ok || err != nil || next == nil {
			return // shutting down or taken over: left to whoever has it
		}
		d = *next
	}
}

// ack acknowledges d, retrying while the store is unavailable; a delivery
// that cannot be acknowledged stays pending and is delivered again.
func (l *loop) ack(ctx context.Context, d engine.SinkDelivery, dead *engine.DeadLetter) (*engine.SinkDelivery, error) {
	for attempt := 0; ; attempt++ {
		next, err := l.r.o.Queue.AckSink(ctx, l.ws, l.sink.ID, l.r.o.Consumer, d, dead)
		if err == nil || ctx.Err() != nil || attempt >= 20 {
			if err != nil && ctx.Err() == nil {
				l.r.log.Warn("sink: acknowledging failed; the event will be delivered again", "workspace", l.ws,
					"sink", l.sink.ID, "event", d.Event.ID, "err", err)
			}
			return next, err
		}
		l.fail(ctx, "acknowledging", err)
	}
}

// replay delivers a replayed dead letter as a new delivery.
func (l *loop) replay(ctx context.Context, t engine.TakenLetter) {
	// A replay is a new delivery: max_retry_age counts from now.
	dead, ok := l.deliver(ctx, t.Letter.Event, time.Now())
	if !ok {
		return
	}
	if err := l.r.o.Queue.ReplayDone(ctx, l.ws, l.sink.ID, t, dead); err != nil && ctx.Err() == nil {
		l.r.log.Warn("sink: finishing a replayed dead letter failed; it is taken again when its lease ends", "workspace", l.ws,
			"sink", l.sink.ID, "event", t.Letter.Event.ID, "err", err)
	}
}

// deliver tries ev until it is delivered (nil, true), fails for good or
// for longer than the sink's max_retry_age since since (the dead letter,
// true), or ctx ends (false).
func (l *loop) deliver(ctx context.Context, ev engine.Event, since time.Time) (*engine.DeadLetter, bool) {
	produced := engine.EventTime(ev.ID)
	for attempt := 0; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, l.sink.AttemptTimeout())
		err := l.tgt.Deliver(actx, l.ws, ev)
		cancel()
		if ctx.Err() != nil {
			return nil, false
		}
		var perm *permanentError
		switch {
		case err == nil || errors.Is(err, errSkipped):
			result := "delivered"
			if err != nil {
				result = "skipped"
			}
			l.r.o.Metrics.SinkDelivered(l.ws, l.sink.ID, result, time.Since(produced))
			return nil, true
		case errors.As(err, &perm):
			l.note(ctx, err)
			l.r.o.Metrics.SinkDelivered(l.ws, l.sink.ID, "dead", 0)
			l.r.log.Warn("sink: event dead-lettered", "workspace", l.ws, "sink", l.sink.ID, "event", ev.ID, "kind", ev.Kind,
				"reason", err.Error())
			return &engine.DeadLetter{Event: ev, Reason: err.Error(), At: time.Now()}, true
		}
		l.note(ctx, err)
		if age := time.Since(since); age > l.sink.RetryAge() {
			l.r.o.Metrics.SinkDelivered(l.ws, l.sink.ID, "dead", 0)
			reason := fmt.Sprintf("gave up after %d attempts over %s (max_retry_age %s): %v", attempt+1, age.Round(time.Second),
				l.sink.RetryAge(), err)
			l.r.log.Warn("sink: event dead-lettered", "workspace", l.ws, "sink", l.sink.ID, "event", ev.ID, "reason", reason)
			return &engine.DeadLetter{Event: ev, Reason: reason, At: time.Now()}, true
		}
		l.r.o.Metrics.SinkDelivered(l.ws, l.sink.ID, "retry", 0)
		select {
		case <-ctx.Done():
			return nil, false
		case <-time.After(backoff(attempt, l.r.o.MaxBackoff)):
		}
	}
}

// note records a failed attempt as the sink's last error.
func (l *loop) note(ctx context.Context, err error) {
	_ = l.r.o.Queue.NoteSinkError(ctx, l.ws, l.sink.ID, err.Error(), time.Now())
}

// touch keeps id fresh in the group every third of TakeoverIdle until
// the returned stop is called. The context it returns ends when another
// consumer took id over (a stall longer than TakeoverIdle), so that two
// replicas never work on one event and its lead's order holds.
func (l *loop) touch(ctx context.Context, id string) (context.Context, func()) {
	dctx, cancelDelivery := context.WithCancel(ctx)
	tctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(l.r.o.TakeoverIdle / 3)
		defer t.Stop()
		for {
			select {
			case <-tctx.Done():
				return
			case <-t.C:
				n, err := l.r.o.Queue.TouchSink(tctx, l.ws, l.sink.ID, l.r.o.Consumer, []string{id})
				if err == nil && n == 0 && tctx.Err() == nil {
					l.r.log.Warn("sink: an event this replica was delivering was taken over; left to the other", "workspace", l.ws,
						"sink", l.sink.ID, "event", id)
					cancelDelivery()
					return
				}
			}
		}
	}()
	return dctx, func() { cancel(); <-done; cancelDelivery() }
}

// backoff is the wait before attempt+1: exponential from 1 s, capped, with
// full jitter over its upper half.
func backoff(attempt int, ceiling time.Duration) time.Duration {
	d := time.Second << min(attempt, 20)
	d = min(d, ceiling)
	return d/2 + rand.N(d/2+1)
}

// target is one sink's destination.
type target interface {
	// Deliver sends ev; an error is retried unless it is a
	// *permanentError; errSkipped means there was nothing to send.
	Deliver(ctx context.Context, ws string, ev engine.Event) error
	Close()
}

// permanentError is a delivery that can never succeed as it is: the
// event is dead-lettered with the reason.
type permanentError struct{ reason string }

func (e *permanentError) Error() string { return e.reason }

func permanent(format string, args ...any) error {
	return &permanentError{reason: fmt.Sprintf(format, args...)}
}

// errSkipped: the sink had nothing to send for the event (a Slack sink
// with no channel for the rep or pool).
var errSkipped = errors.New("nothing to send")

func newTarget(ctx context.Context, l *loop) (target, error) {
	switch l.sink.Kind {
	case engine.SinkWebhook:
		return newWebhook(&l.sink, l.r.o.AllowPrivate), nil
	case engine.SinkSlack:
		return newSlack(&l.sink, l.r.o.Engine, l.r.o.AllowPrivate), nil
	case engine.SinkPostgres:
		return newArchiveTarget(ctx, &l.sink, l.r.o.Engine)
	}
	return nil, fmt.Errorf("sink kind %q", l.sink.Kind)
}
