package server

import (
	"testing"

	"github.com/leadrouter/leadrouter/engine"
	pb "github.com/leadrouter/leadrouter/gen/leadrouter/v1"
)

// TestEveryEventKindOnTheWire: each kind the engine knows has its wire
// kind, and no two share one.
func TestEveryEventKindOnTheWire(t *testing.T) {
	seen := map[pb.EventKind]engine.EventKind{}
	for _, k := range engine.EventKinds {
		w := eventKinds[k]
		if w == pb.EventKind_EVENT_KIND_UNSPECIFIED {
			t.Errorf("event kind %s has no wire kind", k)
		}
		if other, dup := seen[w]; dup {
			t.Errorf("%s and %s both become %s", k, other, w)
		}
		seen[w] = k
	}
	if len(eventKinds) != len(engine.EventKinds) {
		t.Errorf("%d wire kinds for %d engine kinds", len(eventKinds), len(engine.EventKinds))
	}
}
