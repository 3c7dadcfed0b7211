package engine_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/leadrouter/leadrouter/engine"
	"github.com/leadrouter/leadrouter/internal/redistest"
	"github.com/leadrouter/leadrouter/store"
	"github.com/redis/go-redis/v9"
)

func TestMain(m *testing.M) { os.Exit(redistest.Main(m)) }

// fixture is one engine on one backend, in a workspace of its own.
type fixture struct {
	t     *testing.T
	ctx   context.Context
	st    *store.Redis
	eng   *engine.Engine
	clock *engine.ManualClock
	ws    string
}

// forEachBackend runs a conformance test against the embedded store and a
// real Redis: both must behave the same.
func forEachBackend(t *testing.T, test func(t *testing.T, f *fixture)) {
	for _, b := range redistest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			st := b.Open(t)
			clock := engine.NewManualClock(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
			f := &fixture{t: t, ctx: context.Background(), st: st, clock: clock, ws: redistest.Workspace(t),
				eng: engine.New(st, engine.WithClock(clock), engine.WithLogger(quiet))}
			test(t, f)
		})
	}
}

// another returns a second engine on the same store and workspace, as a
// second replica would be.
func (f *fixture) another() *engine.Engine {
	return engine.New(f.st, engine.WithClock(f.clock), engine.WithLogger(quiet))
}

var quiet = slog.New(slog.DiscardHandler)

// apply applies a YAML config. Pools that do not set accept_within get 0
// here (leads are assigned without an offer), so routing tests see the
// assignment at once; the lifecycle tests set it.
func (f *fixture) apply(yaml string) int64 {
	f.t.Helper()
	cfg, err := engine.ParseConfigYAML(strings.NewReader(yaml))
	if err != nil {
		f.t.Fatal(err)
	}
	noOffers(cfg)
	v, err := f.eng.ApplyConfig(f.ctx, f.ws, cfg, nil)
	if err != nil {
		f.t.Fatalf("apply: %v", err)
	}
	return v
}

func (f *fixture) assign(l engine.Lead) *engine.Assignment {
	f.t.Helper()
	a, _, err := f.eng.AssignLead(f.ctx, f.ws, l)
	if err != nil {
		f.t.Fatalf("assign %s: %v", l.ID, err)
	}
	f.clock.Advance(time.Millisecond)
	return a
}

func (f *fixture) status(rep string, st engine.RepStatus) {
	f.t.Helper()
	if _, err := f.eng.SetRepStatus(f.ctx, f.ws, rep, st); err != nil {
		f.t.Fatalf("set %s %s: %v", rep, st, err)
	}
}

// rawStatus sets presence through the store, bypassing the engine (and so
// the queue drain that SetRepStatus triggers). The store call also files
// the rep in its pools' eligible-member index, as every presence change
// must.
func (f *fixture) rawStatus(rep string, st engine.RepStatus) {
	f.t.Helper()
	sc, err := f.st.LoadConfig(f.ctx, f.ws)
	if err != nil {
		f.t.Fatal(err)
	}
	var pools []string
	for _, p := range sc.Config.Pools {
		for _, m := range p.Members {
			if m.RepID == rep {
				pools = append(pools, p.ID)
			}
		}
	}
	if _, err := f.st.SetRepStatus(f.ctx, f.ws, sc.ID, rep, st, pools, f.clock.Now()); err != nil {
		f.t.Fatal(err)
	}
}

// sweep fires due timers and drains queued pools, as every replica's
// sweeper does.
func (f *fixture) sweep() {
	f.t.Helper()
	if err := f.eng.Sweep(f.ctx, true); err != nil {
		f.t.Fatalf("sweep: %v", err)
	}
}

func (f *fixture) get(id string) *engine.Assignment {
	f.t.Helper()
	a, err := f.eng.GetAssignment(f.ctx, f.ws, id)
	if err != nil {
		f.t.Fatalf("get %s: %v", id, err)
	}
	return a
}

func lead(id string) engine.Lead { return engine.Lead{ID: id} }

func readFile(name string) (string, error) {
	b, err := os.ReadFile(name)
	return string(b), err
}

// onePool is a config with one round-robin pool of the given reps and a
// default rule.
func onePool(reps ...string) string {
	var b strings.Builder
	b.WriteString("reps:\n")
	for _, r := range reps {
		b.WriteString("  - id: " + r + "\n")
	}
	b.WriteString("pools:\n  - id: p\n    members:\n")
	for _, r := range reps {
		b.WriteString("      - rep_id: " + r + "\n")
	}
	b.WriteString("rules:\n  - id: all\n    targets: [{pool_id: p}]\n")
	return b.String()
}

// noOffers sets accept_within 0 on the pools that leave it unset.
func noOffers(cfg *engine.Config) {
	for i := range cfg.Pools {
		if cfg.Pools[i].AcceptWithin == nil {
			var zero engine.Duration
			cfg.Pools[i].AcceptWithin = &zero
		}
	}
}

// twoTargets is a rule with two target pools: first (a, b), then second (c).
const twoTargets = `
reps: [{id: a}, {id: b}, {id: c}]
pools:
  - {id: first, members: [{rep_id: a}, {rep_id: b}]}
  - {id: second, members: [{rep_id: c}]}
rules: [{id: all, targets: [{pool_id: first}, {pool_id: second}]}]
`

// violationFields returns the fields err's violations name; it fails the
// test when err is not a ValidationError.
func violationFields(t *testing.T, err error) map[string]bool {
	t.Helper()
	var ve *engine.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("err %v, want a ValidationError", err)
	}
	fields := map[string]bool{}
	for _, v := range ve.Violations {
		fields[v.Field] = true
	}
	return fields
}

func wantErr(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("err = %v, want %v", err, target)
	}
}

// keys lists the workspace's keys matching pattern. A workspace's keys share
// one hash tag, so on a cluster they all live on the master serving its slot:
// KEYS goes there, not to whichever node the client would pick.
func (f *fixture) keys(pattern string) []string {
	f.t.Helper()
	var c redis.Cmdable = f.st.Client()
	if cc, ok := f.st.Client().(*redis.ClusterClient); ok {
		m, err := cc.MasterForKey(f.ctx, "{"+f.ws+"}")
		if err != nil {
			f.t.Fatal(err)
		}
		c = m
	}
	keys, err := c.Keys(f.ctx, pattern).Result()
	if err != nil {
		f.t.Fatal(err)
	}
	return keys
}
