package sinks

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/leadrouter/leadrouter/engine"
	"github.com/leadrouter/leadrouter/internal/pgtest"
	"github.com/leadrouter/leadrouter/internal/redistest"
	"github.com/leadrouter/leadrouter/internal/stdwebhooks"
	"github.com/leadrouter/leadrouter/store"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// receiver is a webhook receiver that checks every request's Standard
// Webhooks signature and per-lead order: no event of a lead arrives after
// a later event of the same lead did. answer decides each request's fate.
type receiver struct {
	t      *testing.T
	srv    *httptest.Server
	key    []byte
	mu     sync.Mutex
	answer func(n int, ev WebhookEvent) int // status to answer (0: drop the connection); n counts requests
	n      int
	got    map[string]int    // event id -> deliveries answered 2xx
	tried  map[string]int    // event id -> requests
	newest map[string]string // lead -> newest event id that arrived
	bad    []string
}

const testSecret = "whsec_c2VjcmV0LWtleS1mb3ItdGVzdHM=" // base64("secret-key-for-tests")

func newReceiver(t *testing.T) *receiver {
	key, _ := stdwebhooks.Key([]byte(testSecret))
	r := &receiver{t: t, key: key, got: map[string]int{}, tried: map[string]int{}, newest: map[string]string{},
		answer: func(int, WebhookEvent) int { return 200 }}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	var ev WebhookEvent
	err := json.Unmarshal(body, &ev)
	r.mu.Lock()
	r.n++
	n := r.n
	switch {
	case err != nil:
		r.bad = append(r.bad, "body: "+err.Error())
	case !stdwebhooks.Verify(r.key, req.Header.Get("webhook-signature"), req.Header.Get("webhook-id"), req.Header.Get("webhook-timestamp"), body):
		r.bad = append(r.bad, "signature does not verify for "+ev.ID)
	case req.Header.Get("webhook-id") != ev.ID || ev.ID != ev.Workspace+":"+ev.EventID:
		r.bad = append(r.bad, fmt.Sprintf("webhook-id %q, body id %q, event %q", req.Header.Get("webhook-id"), ev.ID, ev.EventID))
	}
	if ev.LeadID != "" {
		if prev := r.newest[ev.LeadID]; prev != "" && engine.EventIDLess(ev.EventID, prev) {
			r.bad = append(r.bad, fmt.Sprintf("lead %s: event %s arrived after %s", ev.LeadID, ev.EventID, prev))
		} else {
			r.newest[ev.LeadID] = ev.EventID
		}
	}
	r.tried[ev.EventID]++
	answer := r.answer
	r.mu.Unlock()
	code := answer(n, ev)
	if req.Context().Err() != nil {
		return // the sink gave up on this attempt (its timeout): not delivered
	}
	if code == 0 {
		hj, _ := w.(http.Hijacker)
		conn, _, _ := hj.Hijack()
		conn.Close()
		return
	}
	if code >= 200 && code < 300 {
		r.mu.Lock()
		r.got[ev.EventID]++
		r.mu.Unlock()
	}
	if code >= 300 && code < 400 {
		w.Header().Set("Location", "https://elsewhere.example/")
	}
	w.WriteHeader(code)
}

func (r *receiver) setAnswer(f func(n int, ev WebhookEvent) int) {
	r.mu.Lock()
	r.answer = f
	r.mu.Unlock()
}

// delivered reports whether every id was answered 2xx at least once.
func (r *receiver) delivered(ids []string) (missing []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, id := range ids {
		if r.got[id] == 0 {
			missing = append(missing, id)
		}
	}
	return missing
}

func (r *receiver) problems() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.bad...)
}

// sinkEnv is one workspace on one store with a routing config, and
// replicas: an engine and a sink runner each.
type sinkEnv struct {
	t     testing.TB
	ctx   context.Context
	st    *store.Redis
	ws    string
	eng   *engine.Engine
	count int
}

// TestMain starts the package's PostgreSQL (the archive's tests) and
// Redis servers, and sets the webhook sinks' secret (tests that run in
// parallel cannot set variables).
func TestMain(m *testing.M) {
	os.Setenv("LR_SINK_TEST", testSecret)
	os.Exit(pgtest.Run(func() int { return redistest.Main(m) }))
}

func newSinkEnv(t *testing.T, b redistest.Backend) *sinkEnv {
	return &sinkEnv{t: t, ctx: context.Background(), st: b.Open(t), ws: redistest.Workspace(t)}
}

// apply applies a config of reps r1..r4 in one round-robin pool, offers
// accepted by hand, with the sinks given (YAML list items).
func (e *sinkEnv) apply(sinks string) {
	e.t.Helper()
	yaml := `
reps:
  - {id: r1, max_open: 10000}
  - {id: r2, max_open: 10000}
  - {id: r3, max_open: 10000}
  - {id: r4, max_open: 10000}
pools:
  - id: p
    strategy: round_robin
    members: [{rep_id: r1}, {rep_id: r2}, {rep_id: r3}, {rep_id: r4}]
    accept_within: 1h
rules:
  - {id: all, targets: [{pool_id: p}]}
settings: {retain_closed: 1h}
`
	if sinks != "" {
		yaml += "sinks:\n" + sinks
	}
	cfg, err := engine.ParseConfigYAML(strings.NewReader(yaml))
	if err != nil {
		e.t.Fatal(err)
	}
	if e.eng == nil {
		e.eng = engine.New(e.st, engine.WithLogger(quiet))
	}
	if _, err := e.eng.ApplyConfig(e.ctx, e.ws, cfg, nil); err != nil {
		e.t.Fatal(err)
	}
	for _, r := range []string{"r1", "r2", "r3", "r4"} {
		if _, err := e.eng.SetRepStatus(e.ctx, e.ws, r, engine.StatusAvailable); err != nil {
			e.t.Fatal(err)
		}
	}
}

// replica starts a runner (with an engine of its own) until the returned
// stop; it stops at the test's end at the latest.
func (e *sinkEnv) replica(name string, o Options) (stop func()) {
	o.AllowPrivate = true // the receivers are on loopback
	return e.replicaWith(name, o)
}

// replicaWith is replica with o.AllowPrivate as given.
func (e *sinkEnv) replicaWith(name string, o Options) (stop func()) {
	ctx, cancel := context.WithCancel(e.ctx)
	o.Engine = engine.New(e.st, engine.WithLogger(quiet))
	o.Queue, o.Consumer, o.Log = e.st, name, quiet
	if o.Reconcile == 0 {
		o.Reconcile = 50 * time.Millisecond
	}
	if o.MaxBackoff == 0 {
		o.MaxBackoff = 50 * time.Millisecond
	}
	done := make(chan struct{})
	go func() { New(o).Run(ctx); close(done) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	e.t.Cleanup(stop)
	return stop
}

// leads routes n leads, accepts every second one's offer and closes every
// fourth with a disposition: one to four events per lead.
func (e *sinkEnv) leads(n int) {
	e.t.Helper()
	for i := 0; i < n; i++ {
		e.count++
		id := fmt.Sprintf("lead-%d", e.count)
		a, _, err := e.eng.AssignLead(e.ctx, e.ws, engine.Lead{ID: id, Email: id + "@example.com", Company: "Acme",
			FirstName: "Jane", SubmittedAt: time.Now()})
		if err != nil {
			e.t.Fatal(err)
		}
		if i%2 == 0 {
			if _, err := e.eng.AcceptOffer(e.ctx, e.ws, id, a.RepID); err != nil {
				e.t.Fatal(err)
			}
			if i%4 == 0 {
				if _, err := e.eng.SetDisposition(e.ctx, e.ws, id, a.RepID, engine.Qualified, ""); err != nil {
					e.t.Fatal(err)
				}
			}
		}
	}
}

// eventIDs lists the stream's events of the wanted kinds (nil: all).
func (e *sinkEnv) eventIDs(kinds ...engine.EventKind) []string {
	e.t.Helper()
	evs, err := e.st.EventsAfter(e.ctx, e.ws, "0-0", 1_000_000)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, ev := range evs {
		if len(kinds) == 0 || containsKind(kinds, ev.Kind) {
			out = append(out, ev.ID)
		}
	}
	sort.Slice(out, func(i, j int) bool { return engine.EventIDLess(out[i], out[j]) })
	return out
}

func containsKind(kinds []engine.EventKind, k engine.EventKind) bool {
	for _, x := range kinds {
		if x == k {
			return true
		}
	}
	return false
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// state reads the sink's delivery state.
func (e *sinkEnv) state(sink string) *engine.SinkState {
	e.t.Helper()
	st, err := e.st.SinkState(e.ctx, e.ws, sink)
	if err != nil {
		e.t.Fatal(err)
	}
	return st
}

func webhookSink(id, url string, extra string) string {
	return fmt.Sprintf("  - {id: %s, kind: WEBHOOK, url: %q, secret_env: LR_SINK_TEST%s}\n", id, url, extra)
}
