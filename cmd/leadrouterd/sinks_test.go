package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/leadrouter/leadrouter/internal/redistest"
)

// TestSinkDeliveriesSurviveKill9: a leadrouterd delivering a webhook sink
// is killed (SIGKILL) while its deliveries hang at the receiver; another
// replica takes them over once they are idle and every event is delivered.
// Nothing a replica holds in flight is lost with it.
func TestSinkDeliveriesSurviveKill9(t *testing.T) {
	url := redistest.URL(t)
	ws := redistest.Workspace(t)
	var mu sync.Mutex
	got := map[string]bool{}
	hang := make(chan struct{})
	var hanging bool
	held := 0
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev struct {
			EventID string `json:"event_id"`
		}
		body, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(body, &ev)
		mu.Lock()
		h := hanging
		mu.Unlock()
		if h {
			mu.Lock()
			held++
			mu.Unlock()
			select {
			case <-hang:
			case <-r.Context().Done():
				return
			}
		}
		mu.Lock()
		got[ev.EventID] = true
		mu.Unlock()
	}))
	defer rcv.Close()
	sample, err := os.ReadFile("../../examples/routing.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "routing.yaml")
	sinks := fmt.Sprintf("\nsinks:\n  - {id: crm, kind: WEBHOOK, url: %q, secret_env: LR_SINK_E2E, kinds: [offered, assigned]}\n", rcv.URL)
	if err := os.WriteFile(cfg, append(sample, sinks...), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"LR_SINK_E2E=whsec_c2VjcmV0", "LEADROUTER_REDIS_URL=" + url}
	mu.Lock()
	hanging = true
	mu.Unlock()
	doomed := startDaemon(t, env, "--config", cfg, "--workspace", ws, "--allow-private-sinks")
	const leads = 12
	for i := 0; i < leads; i++ {
		doomed.assign(t, ws, fmt.Sprint("k9-", i))
	}
	// The doomed replica holds deliveries in flight (the receiver hangs).
	for end := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		mu.Lock()
		h := held
		mu.Unlock()
		if h > 0 {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("no delivery reached the receiver\n%s", doomed.log)
		}
	}
	if err := doomed.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	doomed.cmd.Wait()
	mu.Lock()
	hanging = false
	mu.Unlock()
	close(hang)
	killed := time.Now()
	survivor := startDaemon(t, env, "--allow-private-sinks")
	deadline := time.Now().Add(60 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n == leads {
			t.Logf("%d deliveries were in flight at the kill; all %d delivered %s after it", held, leads, time.Since(killed).Round(time.Millisecond))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d events delivered after the kill\n%s", n, leads, survivor.log)
		}
		time.Sleep(100 * time.Millisecond)
	}
	survivor.stop(t)
}
