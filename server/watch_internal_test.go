package server

import (
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

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

// TestEveryMethodHasAClass: every RPC of the API has a cost class, so
// none escapes the per-token rate limits, and a role list.
func TestEveryMethodHasAClass(t *testing.T) {
	n := 0
	protoregistry.GlobalFiles.RangeFiles(func(fd protoreflect.FileDescriptor) bool {
		if fd.Package() != "leadrouter.v1" {
			return true
		}
		for i := 0; i < fd.Services().Len(); i++ {
			sd := fd.Services().Get(i)
			for j := 0; j < sd.Methods().Len(); j++ {
				m := "/" + string(sd.FullName()) + "/" + string(sd.Methods().Get(j).Name())
				n++
				if _, ok := methodClasses[m]; !ok {
					t.Errorf("%s has no cost class", m)
				}
			}
		}
		return true
	})
	if n == 0 || n != len(methodClasses) {
		t.Fatalf("%d methods in the API, %d with a class", n, len(methodClasses))
	}
}
