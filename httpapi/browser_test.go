package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/leadrouter/leadrouter/internal/redistest"
	"github.com/leadrouter/leadrouter/server"
)

// page is what the browser runs: an EventSource on the workspace's
// offers, reporting each message (its lastEventId and lead) and each
// (re)open to the test.
const page = `<!doctype html><title>leadrouter SSE</title><script>
const es = new EventSource(%q);
let seq = 0; // the order of arrival: the reports' fetches may overtake each other
const report = (kind, body) => fetch('/report?kind=' + kind, {method: 'POST', body: JSON.stringify(body)});
es.onopen = () => report('open', {});
es.onmessage = (m) => report('message', {seq: seq++, id: m.lastEventId, lead: JSON.parse(m.data).lead_id});
es.onerror = () => report('error', {readyState: es.readyState});
</script>`

// browserSite serves the page and reports, and proxies /v1/ to the edge
// on the same origin; it can cut the stream the browser holds, and holds
// a reconnect until released.
type browserSite struct {
	mu       sync.Mutex
	opens    int
	messages []map[string]string
	resumes  []string // the Last-Event-ID of each stream request
	cut      context.CancelFunc
	gate     chan struct{} // closed: stream requests pass
	changed  chan struct{}
}

func (s *browserSite) notify() {
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// TestEventSourceInChromium: a real browser's EventSource receives the
// offers, loses its connection, reconnects with Last-Event-ID, and gets
// exactly the events it missed, in order, none twice.
func TestEventSourceInChromium(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("chromium is not installed (.ci/run installs Debian's chromium)")
		}
		t.Skip("chromium is not installed (apt-get install chromium); CI runs this test")
	}
	e := startEdge(t, redistest.RealStore(t), server.Options{})
	ws := "/v1/workspaces/" + redistest.Workspace(t)
	e.must("PUT", ws+"/config", yamlConfig(t, routesConfig))

	edgeURL, _ := url.Parse(e.url)
	proxy := httputil.NewSingleHostReverseProxy(edgeURL)
	proxy.FlushInterval = -1
	site := &browserSite{gate: make(chan struct{}), changed: make(chan struct{}, 1)}
	close(site.gate)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, page, ws+"/events:watch?kinds=OFFERED")
	})
	mux.HandleFunc("POST /report", func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		_ = json.NewDecoder(r.Body).Decode(&body)
		site.mu.Lock()
		switch r.URL.Query().Get("kind") {
		case "open":
			site.opens++
		case "message":
			site.messages = append(site.messages, map[string]string{"seq": fmt.Sprintf("%03v", body["seq"]), "id": fmt.Sprint(body["id"]), "lead": fmt.Sprint(body["lead"])})
		}
		site.mu.Unlock()
		site.notify()
	})
	mux.HandleFunc("/v1/", func(w http.ResponseWriter, r *http.Request) {
		site.mu.Lock()
		gate := site.gate
		site.resumes = append(site.resumes, r.Header.Get("Last-Event-ID"))
		site.mu.Unlock()
		<-gate
		ctx, cancel := context.WithCancel(r.Context())
		site.mu.Lock()
		site.cut = cancel
		site.mu.Unlock()
		proxy.ServeHTTP(w, r.WithContext(ctx))
	})
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)

	// The profile is removed once every chromium process is gone (its
	// helpers write to it until then), not by t.TempDir.
	profile, err := os.MkdirTemp("", "leadrouter-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-extensions",
		"--user-data-dir="+profile, hs.URL+"/")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // chromium and its helpers
		_ = cmd.Wait()
		_ = os.RemoveAll(profile)
	})

	wait := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.After(60 * time.Second)
		for {
			site.mu.Lock()
			done := ok()
			site.mu.Unlock()
			if done {
				return
			}
			select {
			case <-site.changed:
			case <-time.After(100 * time.Millisecond):
			case <-deadline:
				site.mu.Lock()
				defer site.mu.Unlock()
				t.Fatalf("waiting for %s: opens %d, messages %v, resumes %q", what, site.opens, site.messages, site.resumes)
			}
		}
	}
	wait("the EventSource to open", func() bool { return site.opens >= 1 })
	for i := 1; i <= 3; i++ {
		e.must("POST", ws+"/leads:assign", fmt.Sprintf(`{"lead": {"id": "b%d"}}`, i))
	}
	wait("three offers", func() bool { return len(site.messages) >= 3 })

	// Cut the stream and hold the browser's reconnect while two more
	// offers are made: it must get them from the history.
	site.mu.Lock()
	site.gate = make(chan struct{})
	gate := site.gate
	site.cut()
	site.mu.Unlock()
	wait("the reconnect", func() bool { return len(site.resumes) >= 2 })
	for i := 4; i <= 5; i++ {
		e.must("POST", ws+"/leads:assign", fmt.Sprintf(`{"lead": {"id": "b%d"}}`, i))
	}
	close(gate)
	wait("five offers", func() bool { return len(site.messages) >= 5 })
	time.Sleep(500 * time.Millisecond) // a duplicate would arrive by now

	site.mu.Lock()
	defer site.mu.Unlock()
	slices.SortFunc(site.messages, func(a, b map[string]string) int { return strings.Compare(a["seq"], b["seq"]) })
	var leads []string
	for _, m := range site.messages {
		leads = append(leads, m["lead"])
	}
	if got := strings.Join(leads, " "); got != "b1 b2 b3 b4 b5" {
		t.Fatalf("the browser got %q, want b1 b2 b3 b4 b5 once each", got)
	}
	if site.resumes[0] != "" || site.resumes[1] != site.messages[2]["id"] {
		t.Fatalf("Last-Event-ID of the requests %q, want \"\" then %q", site.resumes, site.messages[2]["id"])
	}
	if site.opens != 2 {
		t.Fatalf("opened %d times, want 2", site.opens)
	}
}
