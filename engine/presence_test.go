package engine_test

import (
	"strings"
	"testing"
	"time"

	"github.com/leadrouter/leadrouter/engine"
)

// TestPresenceFollowsConnection: with the policy on, a rep with no desktop
// stream for the grace period goes OFFLINE (leads stop going to a closed
// laptop) and gets its status back when the desktop connects again; a rep
// that was AWAY by its own choice stays AWAY.
func TestPresenceFollowsConnection(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		f.apply(`
settings: {presence_follows_connection: true, presence_grace: 60s}
reps: [{id: a}, {id: b}, {id: c, initial_status: away}]
pools: [{id: p, members: [{rep_id: a}, {rep_id: b}, {rep_id: c}]}]
rules: [{id: all, targets: [{pool_id: p}]}]
`)
		status := func(rep string) engine.RepStatus {
			r, err := f.eng.Rep(f.ctx, f.ws, rep)
			if err != nil {
				t.Fatal(err)
			}
			return r.Status
		}
		closeA, err := f.eng.RepConnected(f.ctx, f.ws, "a")
		if err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(59 * time.Second)
		f.sweep()
		if status("b") != engine.StatusAvailable {
			t.Fatal("b went offline inside the grace period")
		}
		f.clock.Advance(2 * time.Second)
		f.sweep()
		if status("a") != engine.StatusAvailable || status("b") != engine.StatusOffline || status("c") != engine.StatusAway {
			t.Fatalf("after the grace: a %s, b %s, c %s", status("a"), status("b"), status("c"))
		}
		if got := f.assign(lead("l1")).RepID; got != "a" {
			t.Fatalf("lead went to %s, want a (the only connected rep)", got)
		}
		// a's desktop closes: a stays available for the grace period.
		closeA()
		f.clock.Advance(30 * time.Second)
		f.sweep()
		if status("a") != engine.StatusAvailable {
			t.Fatal("a went offline before its grace period ran out")
		}
		f.clock.Advance(31 * time.Second)
		f.sweep()
		if status("a") != engine.StatusOffline {
			t.Fatalf("a is %s after its grace period without a desktop", status("a"))
		}
		// Reconnecting brings back what the engine took away, nothing more.
		for _, rep := range []string{"a", "c"} {
			if _, err := f.eng.RepConnected(f.ctx, f.ws, rep); err != nil {
				t.Fatal(err)
			}
		}
		if status("a") != engine.StatusAvailable || status("c") != engine.StatusAway {
			t.Fatalf("after reconnecting: a %s, c %s", status("a"), status("c"))
		}
		// The changes are events.
		events, err := f.st.EventsAfter(f.ctx, f.ws, "0-0", 100)
		if err != nil {
			t.Fatal(err)
		}
		var offline, back int
		for _, e := range events {
			if e.Kind == "rep_status_changed" && strings.Contains(e.Detail, "no desktop connection") {
				offline++
			}
			if e.Kind == "rep_status_changed" && strings.Contains(e.Detail, "desktop connected again") {
				back++
			}
		}
		if offline != 2 || back != 1 {
			t.Fatalf("%d offline and %d back events, want 2 and 1", offline, back)
		}
	})
}
