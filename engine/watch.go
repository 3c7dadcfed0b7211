package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Watching the event history. Each replica reads the streams of the
// workspaces that have watchers with one blocking read per feed group
// (Store.FeedGroup: all of them on one Redis server, those of one hash slot
// on a cluster), on the store's reader connections, and fans every event
// out to in-process subscribers through bounded buffers: ten thousand
// desktops in two hundred workspaces cost one Redis connection, and never
// one that requests need.
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
	// ErrFutureResume: a resume position past the history's head whose
	// time is later than the store's clock (plus resumeSkew): no history
	// ever had it, so it is a forged or corrupted position, not one a
	// store that lost writes left behind (those are answered RESET).
	ErrFutureResume = errors.New("resume position is beyond the stream's head")
	// ErrBacklogGone: retention removed events of a backlog while it was
	// being sent; the client resyncs (RESET), and live events follow.
	ErrBacklogGone = errors.New("history removed while the backlog was sent")
	// ErrHistoryLost ends every subscription of a workspace whose history
	// lost events this replica had sent (Redis came back from an older
	// copy, or a failover lost writes): the client resumes from the last
	// position it received, and is answered RESET when that position is
	// among the events lost.
	ErrHistoryLost = errors.New("the event history lost events it had sent")
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
	// groupReaders bounds the blocking reads in flight per feed group. A
	// read cannot be interrupted (go-redis does not cancel a blocked read),
	// so a feed that joins a group whose read is blocked starts a new read
	// that includes it, and the older one ends once it returns; past this
	// many, the new feed waits for the next read (at most feedBlock).
	groupReaders = 4
	// verifyEvery is how often a group's reader checks each feed's events
	// against its history's count of appends (and at once after a failed
	// read): a Redis restored from an older copy keeps appending after its
	// older head, with ids past the feed's, so only the count tells.
	verifyEvery = 5 * time.Second
)

// Watcher fans workspace events out to subscribers.
type Watcher struct {
	store  Store
	log    *slog.Logger
	obs    Observer
	buffer int

	mu     sync.Mutex
	feeds  map[string]*feed
	groups map[string]*group
	closed bool
}

type feed struct {
	ws   string
	last string // the newest event dispatched
	// base is the history's tally at a verify that found the feed caught
	// up with it (based says there is one), and since counts the events
	// dispatched after base.Last: a history that holds them all has
	// appended at least that many since.
	base  EventTally
	based bool
	since int64
	subs  map[*Subscription]struct{}
	byRep map[string]map[*Subscription]struct{} // rep streams, by rep: an event reaches only its rep's
	all   map[*Subscription]struct{}            // workspace streams: every event is checked
	group *group
}

// group is the feeds one blocking read waits on together.
type group struct {
	name    string
	feeds   map[string]*feed
	ctx     context.Context
	stop    context.CancelFunc
	gen     int // the newest read's generation; older ones end after their read
	readers int // reads in flight
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
	return &Watcher{store: store, log: log, obs: Nop{}, buffer: buffer, feeds: map[string]*feed{}, groups: map[string]*group{}}
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

// lost reports whether the history no longer holds the event at offset, a
// position a client received, though retention did not remove it. An
// error counts as not lost: the resume goes on.
func (w *Watcher) lost(ctx context.Context, ws, offset, trimmed string) bool {
	if offset == "0-0" || offset == trimmed {
		return false // the start, or the newest event retention removed
	}
	kept, err := w.store.HasEvent(ctx, ws, offset)
	return err == nil && !kept
}

// resumeSkew is how far a resume position's time may be ahead of the
// store's clock (a replica's clock in a failover) before it is
// ErrFutureResume.
const resumeSkew = time.Minute

// Observe makes the watcher report to o (StoreRegressed).
func (w *Watcher) Observe(o Observer) { w.obs = o }

// Watch is a started subscription with what precedes its live events.
type Watch struct {
	Epoch string
	Head  string // the position the live events follow
	// Reset: the history since the resume position is gone; the client
	// resyncs, and live events follow.
	Reset bool
	*Subscription

	store  Store
	ws     string
	resume string // the resume position; "" for none (live only, or Reset)
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
	wt := &Watch{Epoch: epoch, Head: head, Subscription: sub, store: w.store, ws: ws}
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
	if EventIDLess(head, resume.Offset) {
		now, err := w.store.Time(ctx)
		if err != nil {
			sub.Close()
			return nil, err
		}
		if ms, _ := splitEventID(resume.Offset); ms > uint64(now.Add(resumeSkew).UnixMilli()) {
			sub.Close()
			return nil, fmt.Errorf("%w: %s is after the head %s and later than the store's time %s",
				ErrFutureResume, resume.Offset, head, now.UTC().Format(time.RFC3339))
		}
	}
	if w.lost(ctx, ws, resume.Offset, trimmed) {
		// The client saw an event this history does not have, and
		// retention did not remove it: Redis came back with less than it
		// had (an older AOF or RDB, a failover that lost writes) but kept
		// its epoch. Events appended since may have ids past the client's,
		// so the head alone cannot tell.
		w.log.Warn("a stream resumed from a position the event history no longer holds: the store lost writes (restored from an older copy, or a failover lost them); the client resyncs",
			"workspace", ws, "resume_from", resume.Offset, "history_ends", head)
		w.obs.StoreRegressed(ws)
		wt.Reset = true
		return wt, nil
	}
	wt.resume = resume.Offset
	return wt, nil
}

// SendBacklog sends the events after the resume position up to Head that
// pass the filter, oldest first, reading them a page (backlogPage) at a
// time: what a resume holds in memory is one page, however long the
// backlog. Live events meanwhile wait in the subscription's buffer. A
// backlog sent slowly can outlive its history: when retention has removed
// events after the last one sent, it ends with ErrBacklogGone.
func (wt *Watch) SendBacklog(ctx context.Context, send func(*Event) error) error {
	if wt.resume == "" {
		return nil
	}
	for from := wt.resume; EventIDLess(from, wt.Head); {
		if from != wt.resume {
			trimmed, err := wt.store.TrimmedThrough(ctx, wt.ws)
			if err != nil {
				return err
			}
			if EventIDLess(from, trimmed) {
				return ErrBacklogGone
			}
		}
		page, err := wt.store.EventsAfter(ctx, wt.ws, from, backlogPage)
		if err != nil {
			return err
		}
		if len(page) == 0 {
			return nil
		}
		for i := range page {
			if EventIDLess(wt.Head, page[i].ID) {
				return nil
			}
			if wt.filter.Match(&page[i]) {
				if err := send(&page[i]); err != nil {
					return err
				}
			}
		}
		from = page[len(page)-1].ID
	}
	return nil
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
	var last string
	if f == nil {
		// Read outside the lock: a slow Redis (a cluster master that is
		// down) must not hold up every other feed's dispatch. A feed
		// another subscriber created meanwhile is used instead.
		w.mu.Unlock()
		id, err := w.store.LastEventID(ctx, ws)
		w.mu.Lock()
		if err != nil {
			return "", err
		}
		if w.closed {
			return "", ErrShutdown
		}
		f, last = w.feeds[ws], id
	}
	if f == nil {
		f = &feed{ws: ws, last: last, subs: map[*Subscription]struct{}{},
			byRep: map[string]map[*Subscription]struct{}{}, all: map[*Subscription]struct{}{}}
		w.feeds[ws] = f
		w.join(f)
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
		delete(w.feeds, f.ws)
		g := f.group
		delete(g.feeds, f.ws)
		if len(g.feeds) == 0 {
			g.stop()
			delete(w.groups, g.name)
		}
	}
}

// join adds a new feed to its group, starting a read that includes it.
// w.mu is held.
func (w *Watcher) join(f *feed) {
	name := w.store.FeedGroup(f.ws)
	g := w.groups[name]
	if g == nil {
		ctx, stop := context.WithCancel(context.Background())
		g = &group{name: name, feeds: map[string]*feed{}, ctx: ctx, stop: stop}
		w.groups[name] = g
	}
	g.feeds[f.ws] = f
	f.group = g
	if g.readers < groupReaders {
		g.gen++
		g.readers++
		go w.read(g, g.gen)
	}
}

// read is a group's reader: it blocks on the streams of the group's
// feeds after each feed's head and dispatches what arrives, until the
// group stops or a newer read of its group has started. Two reads of a
// group may overlap (join); each returns a contiguous run of each stream,
// and an event at or before its feed's head is skipped, so nothing is
// dispatched twice or out of order.
func (w *Watcher) read(g *group, gen int) {
	defer func() {
		w.mu.Lock()
		g.readers--
		w.mu.Unlock()
	}()
	var verified time.Time // at once: a new feed takes its base
	for {
		if time.Since(verified) >= verifyEvery {
			w.verify(g)
			verified = time.Now()
		}
		w.mu.Lock()
		if g.ctx.Err() != nil || gen != g.gen {
			w.mu.Unlock()
			return
		}
		after := make(map[string]string, len(g.feeds))
		for ws, f := range g.feeds {
			after[ws] = f.last
		}
		w.mu.Unlock()
		got, err := w.store.ReadFeeds(g.ctx, after, feedBatch, feedBlock)
		if err != nil {
			if g.ctx.Err() == nil {
				w.log.Warn("event feed read failed; retrying", "group", g.name, "workspaces", len(after), "err", err)
				time.Sleep(100 * time.Millisecond)
				verified = time.Time{} // Redis may be back with less
			}
			continue
		}
		w.mu.Lock()
		for ws, events := range got {
			f := g.feeds[ws]
			if f == nil {
				continue
			}
			for i := range events {
				e := events[i]
				if !EventIDLess(f.last, e.ID) {
					continue
				}
				f.last = e.ID
				if f.based && EventIDLess(f.base.Last, e.ID) {
					f.since++
				}
				w.dispatch(f, f.byRep[e.RepID], &e)
				w.dispatch(f, f.all, &e)
			}
		}
		w.mu.Unlock()
	}
}

// verify ends the subscriptions of each of g's feeds whose history
// appended fewer events since the feed's base than the feed dispatched
// after it (ErrHistoryLost), with a warning and StoreRegressed: the store
// lost events this replica sent (Redis came back from an older copy, or a
// failover lost writes). Their clients resume, and those that received a
// lost event get RESET. A feed that has dispatched past the tally (events
// appended after it was read) is checked at the next verify, and a feed
// caught up with a sound tally takes it as its base.
func (w *Watcher) verify(g *group) {
	w.mu.Lock()
	wss := make([]string, 0, len(g.feeds))
	for ws := range g.feeds {
		wss = append(wss, ws)
	}
	w.mu.Unlock()
	tallies, err := w.store.EventTallies(g.ctx, wss)
	if err != nil {
		return // the next read fails too, and verifies again after it
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for ws, t := range tallies {
		f := g.feeds[ws]
		if f == nil || EventIDLess(t.Last, f.last) {
			continue
		}
		if f.based && t.Added-f.base.Added < f.since {
			w.log.Warn("the event history lost events this replica had sent (Redis came back from an older copy, or a failover lost writes); the workspace's streams end and their clients resync",
				"workspace", ws, "sent", f.since, "appended", t.Added-f.base.Added, "since", f.base.Last, "streams", len(f.subs))
			w.obs.StoreRegressed(ws)
			for sub := range f.subs {
				w.remove(sub)
				sub.end(ErrHistoryLost)
			}
			continue
		}
		f.base, f.based, f.since = t, true, 0
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
		for sub := range f.subs {
			sub.end(ErrShutdown)
		}
		delete(w.feeds, ws)
	}
	for name, g := range w.groups {
		g.stop()
		delete(w.groups, name)
	}
}
