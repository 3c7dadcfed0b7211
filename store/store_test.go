package store_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/leadrouter/leadrouter/engine"
	"github.com/leadrouter/leadrouter/internal/redisproc"
	"github.com/leadrouter/leadrouter/internal/redistest"
	"github.com/leadrouter/leadrouter/store"
)

func TestMain(m *testing.M) { os.Exit(redistest.Main(m)) }

// TestScriptsSurviveScriptFlush: after a failover the new master has no
// scripts loaded and answers NOSCRIPT; the store falls back to EVAL.
func TestScriptsSurviveScriptFlush(t *testing.T) {
	st := redistest.RealStore(t)
	ctx := context.Background()
	ws := redistest.Workspace(t)
	eng := engine.New(st)
	cfg, _ := engine.ParseConfigYAML(strings.NewReader(`
reps: [{id: a}, {id: b}]
pools: [{id: p, members: [{rep_id: a}, {rep_id: b}]}]
rules: [{id: all, targets: [{pool_id: p}]}]
`))
	if _, err := eng.ApplyConfig(ctx, ws, cfg, nil); err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"a", "b", "a"} {
		if err := st.Client().ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		a, _, err := eng.AssignLead(ctx, ws, engine.Lead{ID: string(rune('x' + i))})
		if err != nil || a.RepID != want {
			t.Fatalf("after SCRIPT FLUSH: %v %+v", err, a)
		}
	}
}

// TestUnreachableRedisIsUnavailable: a store whose Redis is gone reports
// engine.ErrUnavailable promptly, which callers may retry.
func TestUnreachableRedisIsUnavailable(t *testing.T) {
	port, err := redisproc.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = store.Open(ctx, fmt.Sprintf("redis://127.0.0.1:%d/0", port), store.OpenOptions{})
	if !errors.Is(err, engine.ErrUnavailable) {
		t.Fatalf("open on a closed port: %v", err)
	}
}
