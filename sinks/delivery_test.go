package sinks

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/leadrouter/leadrouter/engine"
	"github.com/leadrouter/leadrouter/internal/redistest"
)

// TestWebhookAcrossReplicas: three replicas deliver a webhook sink while
// leads are routed, accepted and closed, and the receiver fails one
// request in five (500 or a dropped connection): every event is
// delivered, signed, and no lead's event arrives after a later one of the
// same lead, though the replicas deliver different leads in parallel.
func TestWebhookAcrossReplicas(t *testing.T) {
	for _, b := range redistest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			e := newSinkEnv(t, b)
			rcv := newReceiver(t)
			rcv.setAnswer(func(n int, _ WebhookEvent) int {
				switch n % 10 {
				case 3:
					return 500
				case 7:
					return 0
				}
				return 200
			})
			e.apply(webhookSink("crm", rcv.srv.URL+"/hook", ", concurrency: 4"))
			for i := 0; i < 3; i++ {
				e.replica(fmt.Sprintf("replica-%d", i), Options{})
			}
			done := make(chan struct{})
			go func() {
				defer close(done)
				e.leads(150)
			}()
			<-done
			ids := e.eventIDs()
			waitFor(t, 60*time.Second, "every event delivered", func() bool { return len(rcv.delivered(ids)) == 0 })
			if p := rcv.problems(); len(p) > 0 {
				t.Fatalf("%d problems, first: %v", len(p), p[:min(5, len(p))])
			}
			waitFor(t, 10*time.Second, "nothing pending", func() bool { st := e.state("crm"); return st.Started && st.Pending == 0 })
			rcv.mu.Lock()
			retried := 0
			for _, n := range rcv.tried {
				if n > 1 {
					retried++
				}
			}
			rcv.mu.Unlock()
			if retried == 0 {
				t.Fatalf("no event was retried: the failures did not happen")
			}
			t.Logf("%d events delivered, %d after a failed attempt", len(ids), retried)
		})
	}
}

// TestWebhookReceiverFaults: each fault loses nothing: a receiver that
// answers 500 for a while, one that hangs past the timeout, and one that
// is down (its connections dropped) for two minutes, then back, gets
// every event, in order per lead; a 410 and a redirect dead-letter the
// event with the reason, and a replay delivers the dead letters once the
// receiver is fixed.
func TestWebhookReceiverFaults(t *testing.T) {
	b := redistest.Backends()[len(redistest.Backends())-1] // the real Redis
	cases := []struct {
		name    string
		extra   string
		failFor time.Duration
		fail    int // status while failing; 0: dropped connection; -1: hang
	}{
		{"500 for a while", "", 5 * time.Second, 500},
		{"hangs past the timeout", ", timeout: 200ms", 3 * time.Second, -1},
		{"down for two minutes", "", 2 * time.Minute, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newSinkEnv(t, b)
			rcv := newReceiver(t)
			var failing atomic.Bool
			failing.Store(true)
			rcv.setAnswer(func(int, WebhookEvent) int {
				if !failing.Load() {
					return 200
				}
				if c.fail == -1 {
					time.Sleep(time.Second)
					return 200 // too late: the sink's attempt timed out
				}
				return c.fail
			})
			e.apply(webhookSink("crm", rcv.srv.URL, c.extra))
			e.replica("a", Options{MaxBackoff: 2 * time.Second})
			e.replica("b", Options{MaxBackoff: 2 * time.Second})
			e.leads(20)
			time.AfterFunc(c.failFor, func() { failing.Store(false) })
			ids := e.eventIDs()
			time.Sleep(c.failFor / 2)
			if st := e.state("crm"); st.Pending == 0 || st.LastError == "" {
				t.Fatalf("while failing: %+v; want events pending and the last error", st)
			}
			waitFor(t, c.failFor+60*time.Second, "every event delivered", func() bool { return len(rcv.delivered(ids)) == 0 })
			if p := rcv.problems(); len(p) > 0 {
				t.Fatalf("problems: %v", p)
			}
			if st := e.state("crm"); st.DeadLetters != 0 {
				t.Fatalf("dead letters %+v", st)
			}
		})
	}

	for _, c := range []struct {
		name, url, reason string
		code              int
		private           bool
	}{
		{"410 gone", "", "HTTP 410", 410, true},
		{"redirect not followed", "", `HTTP 302: redirect to "https://elsewhere.example/" not followed`, 302, true},
		{"metadata address refused", "http://169.254.169.254/latest/meta-data", "address 169.254.169.254 is link-local", 0, false},
		{"loopback refused", "", "is loopback: refused", 0, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newSinkEnv(t, b)
			rcv := newReceiver(t)
			var code atomic.Int64
			code.Store(int64(c.code))
			rcv.setAnswer(func(int, WebhookEvent) int { return int(code.Load()) })
			url := c.url
			if url == "" {
				url = rcv.srv.URL
			}
			e.apply(webhookSink("crm", url, ""))
			var stop func()
			if c.private {
				stop = e.replica("a", Options{})
			} else {
				stop = e.replicaWith("strict", Options{})
			}
			e.leads(3)
			ids := e.eventIDs()
			waitFor(t, 20*time.Second, "every event dead-lettered", func() bool {
				st := e.state("crm")
				return st.DeadLetters == int64(len(ids)) && st.Pending == 0
			})
			st := e.state("crm")
			if !strings.Contains(st.LastError, c.reason) {
				t.Fatalf("last error %q, want %q", st.LastError, c.reason)
			}
			if !c.private {
				return
			}
			// Fixed: a replay delivers every dead letter.
			code.Store(200)
			if n, err := e.st.ReplayDeadLetters(e.ctx, e.ws, "crm", 100); err != nil || n != len(ids) {
				t.Fatalf("replay: %d, %v; want %d", n, err, len(ids))
			}
			waitFor(t, 20*time.Second, "replayed letters delivered", func() bool { return len(rcv.delivered(ids)) == 0 })
			waitFor(t, 5*time.Second, "replay finished", func() bool {
				st := e.state("crm")
				return st.DeadLetters == 0 && st.Replaying == 0
			})
			stop()
		})
	}
}

// TestTakeoverOfAKilledReplica: a replica stops mid-delivery (its
// requests hang, then it is gone without acknowledging); the other takes
// its events over once they are idle, and every event is delivered.
func TestTakeoverOfAKilledReplica(t *testing.T) {
	for _, b := range redistest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			e := newSinkEnv(t, b)
			rcv := newReceiver(t)
			var blocking atomic.Bool
			blocking.Store(true)
			release := make(chan struct{})
			rcv.setAnswer(func(int, WebhookEvent) int {
				if blocking.Load() {
					<-release
					return 503
				}
				return 200
			})
			e.apply(webhookSink("crm", rcv.srv.URL, ", concurrency: 8, timeout: 30s"))
			doomed := e.replica("doomed", Options{TakeoverIdle: time.Second})
			e.leads(10)
			ids := e.eventIDs()
			waitFor(t, 10*time.Second, "the doomed replica holding deliveries", func() bool {
				rcv.mu.Lock()
				defer rcv.mu.Unlock()
				return rcv.n > 0
			})
			go doomed() // gone: its deliveries are abandoned unacknowledged
			blocking.Store(false)
			close(release)
			e.replica("survivor", Options{TakeoverIdle: time.Second})
			waitFor(t, 30*time.Second, "every event delivered", func() bool { return len(rcv.delivered(ids)) == 0 })
			if p := rcv.problems(); len(p) > 0 {
				t.Fatalf("problems: %v", p)
			}
			waitFor(t, 10*time.Second, "nothing pending", func() bool { st := e.state("crm"); return st.Started && st.Pending == 0 })
		})
	}
}

// TestSinkRemovedReleasesRetention: while a sink is configured and down,
// retention keeps the events it has not acknowledged; removed from the
// config, its group and state are deleted and retention trims again.
func TestSinkRemovedReleasesRetention(t *testing.T) {
	for _, b := range redistest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			e := newSinkEnv(t, b)
			rcv := newReceiver(t)
			rcv.setAnswer(func(int, WebhookEvent) int { return 503 })
			e.apply(webhookSink("crm", rcv.srv.URL, ""))
			e.replica("a", Options{})
			waitFor(t, 5*time.Second, "the group", func() bool {
				g, _ := e.st.SinkGroups(e.ctx, e.ws)
				return len(g) == 1
			})
			e.leads(10)
			n := int64(len(e.eventIDs()))
			if _, _, err := e.st.TrimEventsFor(e.ctx, e.ws, 2, 24*time.Hour, time.Now(), []string{"crm"}); err != nil {
				t.Fatal(err)
			}
			if got := int64(len(e.eventIDs())); got != n {
				t.Fatalf("retention trimmed to %d of %d events the sink had not acknowledged", got, n)
			}
			e.apply("")
			waitFor(t, 5*time.Second, "the group removed", func() bool {
				g, _ := e.st.SinkGroups(e.ctx, e.ws)
				return len(g) == 0
			})
			if _, _, err := e.st.TrimEventsFor(e.ctx, e.ws, 2, 24*time.Hour, time.Now(), nil); err != nil {
				t.Fatal(err)
			}
			if got := len(e.eventIDs()); got != 2 {
				t.Fatalf("%d events after the sink left, want 2", got)
			}
		})
	}
}

// TestKindsFilter: a sink gets only the kinds it asks for; the others are
// acknowledged without a request.
func TestKindsFilter(t *testing.T) {
	b := redistest.Backends()[0]
	e := newSinkEnv(t, b)
	rcv := newReceiver(t)
	e.apply(webhookSink("crm", rcv.srv.URL, ", kinds: [accepted]"))
	e.replica("a", Options{})
	e.leads(8)
	want := e.eventIDs(engine.EventAccepted)
	waitFor(t, 10*time.Second, "accepted events delivered", func() bool { return len(rcv.delivered(want)) == 0 })
	waitFor(t, 5*time.Second, "nothing pending", func() bool { st := e.state("crm"); return st.Started && st.Pending == 0 })
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	if len(rcv.tried) != len(want) {
		t.Fatalf("%d events posted, want the %d accepted ones", len(rcv.tried), len(want))
	}
}
