package engine

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"
)

// Watching the event history. Each replica runs one reader per workspace
// that has watchers (a blocking read of the workspace's stream), and fans
// every event out to in-process subscribers through bounded buffers: ten
// thousand desktops cost one Redis connection, not ten thousand.
//
// Resuming is seamless: a subscriber is registered at the feed's head under
// the feed's lock, its backlog is read from the store up to that head, and
// the feed delivers only events after it. Nothing between is lost and
// nothing is sent twice.

var (
	// ErrSlowConsumer ends a subscription whose buffer overflowed; the
	// client resumes from the last position it received.
	ErrSlowConsumer = errors.New("subscriber read too slowly")
	// ErrShutdown ends every subscription when the server stops; clients
	// resume on another replica.
	ErrShutdown = errors.New("server shutting down")
)

const (
	// DefaultWatchBuffer is the buffer, in events, of a workspace-wide
	// subscriber (dashboards); a rep's subscriber gets a sixteenth of it
	// (desktops see a few events a minute, and ten thousand idle buffers
	// must stay small).
	DefaultWatchBuffer = 1024
	feedBlock          = time.Second
	feedBatch          = 512
	backlogPage        = 1000
)

// Watcher fans workspace events out to subscribers.
type Watcher struct {
	store  Store
	log    *slog.Logger
	buffer int

	mu     sync.Mutex
	feeds  map[string]*feed
	closed bool
}

type feed struct {
	ws    string
	last  string // the newest event dispatched
	subs  map[*Subscription]struct{}
	byRep map[string]map[*Subscription]struct{} // rep streams, by rep: an event reaches only its rep's
	all   map[*Subscription]struct{}            // workspace streams: every event is checked
	stop  context.CancelFunc
}

// WatchFilter selects a subscriber's events. RepID, when set, promises that
// Match accepts only events of that rep, which lets the feed skip every
// other subscriber for an event.
type WatchFilter struct {
	RepID string
	Match func(*Event) bool
}

// NewWatcher returns a watcher reading from store; buffer <= 0 means
// DefaultWatchBuffer.
func NewWatcher(store Store, log *slog.Logger, buffer int) *Watcher {
	if buffer <= 0 {
		buffer = DefaultWatchBuffer
	}
	if log == nil {
		log = slog.Default()
	}
	return &Watcher{store: store, log: log, buffer: buffer, feeds: map[string]*feed{}}
}

// Subscription receives live events until Done is closed.
type Subscription struct {
	ch     chan Event
	done   chan struct{}
	err    error
	once   sync.Once
	filter WatchFilter
	w      *Watcher
	feed   *feed
}

// Events delivers live events, in order.
func (s *Subscription) Events() <-chan Event { return s.ch }

// Done is closed when the subscription ends; Err says why.
func (s *Subscription) Done() <-chan struct{} { return s.done }

// Err is ErrSlowConsumer or ErrShutdown once Done is closed.
func (s *Subscription) Err() error {
	<-s.done
	return s.err
}

func (s *Subscription) end(err error) {
	s.once.Do(func() {
		s.err = err
		close(s.done)
	})
}

// Close ends the subscription (the client went away).
func (s *Subscription) Close() {
	s.w.mu.Lock()
	s.w.remove(s)
	s.w.mu.Unlock()
	s.end(context.Canceled)
}

// Watch is a started subscription with what precedes its live events.
type Watch struct {
	Epoch string
	Head  string // the position the live events follow
	// Reset: the history since the resume position is gone; the client
	// resyncs, and live events follow.
	Reset   bool
	Backlog []Event // events after the resume position up to Head
	*Subscription
}

// Watch subscribes to a workspace's events that pass filter, from resume
// (nil: live only).
func (w *Watcher) Watch(ctx context.Context, ws string, resume *Position, filter WatchFilter) (*Watch, error) {
	epoch, err := w.store.EventsEpoch(ctx, ws)
	if err != nil {
		return nil, err
	}
	buffer := w.buffer
	if filter.RepID != "" {
		buffer = max(w.buffer/16, 16)
	}
	sub := &Subscription{ch: make(chan Event, buffer), done: make(chan struct{}), filter: filter, w: w}
	head, err := w.add(ctx, ws, sub)
	if err != nil {
		return nil, err
	}
	wt := &Watch{Epoch: epoch, Head: head, Subscription: sub}
	if resume == nil {
		return wt, nil
	}
	trimmed, err := w.store.TrimmedThrough(ctx, ws)
	if err != nil {
		sub.Close()
		return nil, err
	}
	if resume.Epoch != epoch || EventIDLess(resume.Offset, trimmed) {
		wt.Reset = true
		return wt, nil
	}
	for from := resume.Offset; EventIDLess(from, head); {
		page, err := w.store.EventsAfter(ctx, ws, from, backlogPage, 0)
		if err != nil {
			sub.Close()
			return nil, err
		}
		if len(page) == 0 {
			break
		}
		for i := range page {
			if EventIDLess(head, page[i].ID) {
				return wt, nil
			}
			if filter.Match(&page[i]) {
				wt.Backlog = append(wt.Backlog, page[i])
			}
		}
		from = page[len(page)-1].ID
	}
	return wt, nil
}

// add registers sub on the workspace's feed, starting the feed's reader if
// needed, and returns the feed's head at that instant.
func (w *Watcher) add(ctx context.Context, ws string, sub *Subscription) (string, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return "", ErrShutdown
	}
	f := w.feeds[ws]
	if f == nil {
		last, err := w.store.LastEventID(ctx, ws)
		if err != nil {
			return "", err
		}
		rctx, stop := context.WithCancel(context.Background())
		f = &feed{ws: ws, last: last, subs: map[*Subscription]struct{}{}, stop: stop,
			byRep: map[string]map[*Subscription]struct{}{}, all: map[*Subscription]struct{}{}}
		w.feeds[ws] = f
		go w.read(rctx, f)
	}
	f.subs[sub] = struct{}{}
	if rep := sub.filter.RepID; rep != "" {
		if f.byRep[rep] == nil {
			f.byRep[rep] = map[*Subscription]struct{}{}
		}
		f.byRep[rep][sub] = struct{}{}
	} else {
		f.all[sub] = struct{}{}
	}
	sub.feed = f
	return f.last, nil
}

// remove unregisters sub; the last one stops the feed. w.mu is held.
func (w *Watcher) remove(sub *Subscription) {
	f := sub.feed
	if f == nil {
		return
	}
	delete(f.subs, sub)
	delete(f.all, sub)
	if rep := sub.filter.RepID; rep != "" {
		delete(f.byRep[rep], sub)
		if len(f.byRep[rep]) == 0 {
			delete(f.byRep, rep)
		}
	}
	if len(f.subs) == 0 && w.feeds[f.ws] == f {
		f.stop()
		delete(w.feeds, f.ws)
	}
}

// read is a workspace's reader: it blocks on the stream after the feed's
// head and dispatches what arrives.
func (w *Watcher) read(ctx context.Context, f *feed) {
	for ctx.Err() == nil {
		w.mu.Lock()
		after := f.last
		w.mu.Unlock()
		events, err := w.store.EventsAfter(ctx, f.ws, after, feedBatch, feedBlock)
		if err != nil {
			if ctx.Err() == nil {
				w.log.Warn("event feed read failed; retrying", "workspace", f.ws, "err", err)
				time.Sleep(100 * time.Millisecond)
			}
			continue
		}
		w.mu.Lock()
		for i := range events {
			e := events[i]
			if !EventIDLess(f.last, e.ID) {
				continue
			}
			f.last = e.ID
			w.dispatch(f, f.byRep[e.RepID], &e)
			w.dispatch(f, f.all, &e)
		}
		w.mu.Unlock()
	}
}

// dispatch offers an event to subscribers; one whose buffer is full is
// ended with ErrSlowConsumer. w.mu is held.
func (w *Watcher) dispatch(f *feed, subs map[*Subscription]struct{}, e *Event) {
	for sub := range subs {
		if !sub.filter.Match(e) {
			continue
		}
		select {
		case sub.ch <- *e:
		default:
			w.remove(sub)
			sub.end(ErrSlowConsumer)
		}
	}
}

// Subscribers returns how many subscriptions are open on this replica.
func (w *Watcher) Subscribers() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, f := range w.feeds {
		n += len(f.subs)
	}
	return n
}

// Close ends every subscription with ErrShutdown and refuses new ones.
func (w *Watcher) Close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	for ws, f := range w.feeds {
		f.stop()
		for sub := range f.subs {
			sub.end(ErrShutdown)
		}
		delete(w.feeds, ws)
	}
}
