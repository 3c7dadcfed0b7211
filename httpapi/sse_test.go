package httpapi_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/leadrouter/leadrouter/internal/redistest"
	"github.com/leadrouter/leadrouter/server"
)

// sseEvent is one Server-Sent Event: its id, its type ("" for message)
// and its data.
type sseEvent struct {
	id, kind string
	data     map[string]any
}

// sseStream reads an SSE response: events, and whether a heartbeat comment
// was seen.
type sseStream struct {
	t         *testing.T
	resp      *http.Response
	events    chan sseEvent
	heartbeat chan struct{}
}

func openSSE(t *testing.T, url string, headers ...string) *sseStream {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Accept", "text/event-stream")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	s := &sseStream{t: t, resp: resp, events: make(chan sseEvent, 100), heartbeat: make(chan struct{}, 100)}
	t.Cleanup(func() { resp.Body.Close() })
	go func() {
		sc := bufio.NewScanner(resp.Body)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.data != nil {
					s.events <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, ":"):
				s.heartbeat <- struct{}{}
			case strings.HasPrefix(line, "id: "):
				ev.id = strings.TrimPrefix(line, "id: ")
			case strings.HasPrefix(line, "event: "):
				ev.kind = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				_ = json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &ev.data)
			}
		}
		close(s.events)
	}()
	return s
}

func (s *sseStream) next() sseEvent {
	s.t.Helper()
	select {
	case ev, ok := <-s.events:
		if !ok {
			s.t.Fatal("stream ended")
		}
		return ev
	case <-time.After(10 * time.Second):
		s.t.Fatal("no event within 10s")
	}
	return sseEvent{}
}

// TestSSEResumesFromLastEventID: each SSE event's id is its position; a
// reconnect with Last-Event-ID gets exactly the events after it, a
// position of another epoch starts with RESET, and an idle stream gets
// heartbeats.
func TestSSEResumesFromLastEventID(t *testing.T) {
	e := startEdge(t, redistest.RealStore(t), server.Options{})
	ws := "/v1/workspaces/" + redistest.Workspace(t)
	e.must("PUT", ws+"/config", yamlConfig(t, routesConfig))
	events := openSSE(t, e.url+ws+"/events:watch?kinds=OFFERED")
	for i := 1; i <= 3; i++ {
		e.must("POST", ws+"/leads:assign", fmt.Sprintf(`{"lead": {"id": "s%d"}}`, i))
	}
	var ids []string
	for i := 1; i <= 3; i++ {
		ev := events.next()
		if str(ev.data, "lead_id") != fmt.Sprintf("s%d", i) || str(ev.data, "kind") != "EVENT_KIND_OFFERED" ||
			ev.id != str(ev.data, "position.epoch")+"/"+str(ev.data, "position.offset") {
			t.Fatalf("event %d: %+v", i, ev)
		}
		ids = append(ids, ev.id)
	}
	select {
	case <-events.heartbeat:
	case <-time.After(5 * time.Second):
		t.Fatal("no heartbeat on an idle stream")
	}
	events.resp.Body.Close()

	// Two more while nobody listens; the resume from the first id gets the
	// second and third, then those two.
	e.must("POST", ws+"/leads:assign", `{"lead": {"id": "s4"}}`)
	e.must("POST", ws+"/leads:assign", `{"lead": {"id": "s5"}}`)
	resumed := openSSE(t, e.url+ws+"/events:watch?kinds=OFFERED", "Last-Event-ID", ids[0])
	for _, want := range []string{"s2", "s3", "s4", "s5"} {
		if ev := resumed.next(); str(ev.data, "lead_id") != want {
			t.Fatalf("resumed: %+v, want %s", ev, want)
		}
	}

	// Another epoch's position: RESET first, then live events.
	epoch, offset, _ := strings.Cut(ids[0], "/")
	reset := openSSE(t, e.url+ws+"/events:watch", "Last-Event-ID", "x"+epoch+"/"+offset)
	if ev := reset.next(); str(ev.data, "kind") != "EVENT_KIND_RESET" || ev.id == "" {
		t.Fatalf("foreign epoch: %+v", ev)
	}

	// A Last-Event-ID this stream never sent is refused.
	if r := e.do("GET", ws+"/events:watch", "", "Accept", "text/event-stream", "Last-Event-ID", "garbage"); r.code != http.StatusBadRequest {
		t.Fatalf("bad Last-Event-ID: %d %s", r.code, r.body)
	}
	// An unknown rep's stream is refused with its code, before any event.
	if r := e.do("GET", ws+"/reps/zed/assignments:watch", "", "Accept", "text/event-stream"); r.code != http.StatusBadRequest &&
		r.code != http.StatusPreconditionFailed && r.code != http.StatusNotFound {
		t.Fatalf("unknown rep: %d %s", r.code, r.body)
	}
}

// TestSSERetryableRefusal: a stream refused for a passing reason (here the
// rep's stream limit) is a 200 stream that ends with an error event, which
// a browser's EventSource retries, not an HTTP error, which it would not.
func TestSSERetryableRefusal(t *testing.T) {
	e := startEdge(t, redistest.RealStore(t), server.Options{MaxStreamsPerRep: 1})
	ws := "/v1/workspaces/" + redistest.Workspace(t)
	e.must("PUT", ws+"/config", yamlConfig(t, routesConfig))
	first := openSSE(t, e.url+ws+"/reps/a/assignments:watch")
	second := openSSE(t, e.url+ws+"/reps/a/assignments:watch")
	ev := second.next()
	if ev.kind != "error" || get(ev.data, "code") != float64(8) {
		t.Fatalf("second stream: %+v", ev)
	}
	e.must("POST", ws+"/leads:assign", `{"lead": {"id": "r1"}}`)
	if ev := first.next(); str(ev.data, "rep_id") != "a" {
		t.Fatalf("first stream: %+v", ev)
	}
}
