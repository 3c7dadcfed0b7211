package sinks

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/leadrouter/leadrouter/engine"
	"github.com/leadrouter/leadrouter/internal/redistest"
)

// slackReceiver stands in for Slack's incoming webhooks: one path per
// channel, each post checked for the payload's shape.
type slackReceiver struct {
	srv  *httptest.Server
	mu   sync.Mutex
	got  map[string][]SlackMessage // path -> messages
	bad  []string
	fail int // answer this many posts with 429 first
}

func newSlackReceiver(t *testing.T) *slackReceiver {
	r := &slackReceiver{got: map[string][]SlackMessage{}}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.fail > 0 {
			r.fail--
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		var raw map[string]json.RawMessage
		var m SlackMessage
		switch {
		case req.Header.Get("Content-Type") != "application/json":
			r.bad = append(r.bad, "content type "+req.Header.Get("Content-Type"))
		case json.Unmarshal(body, &raw) != nil || json.Unmarshal(body, &m) != nil:
			r.bad = append(r.bad, "not JSON: "+string(body))
		case len(raw) != 2 || raw["text"] == nil || raw["blocks"] == nil:
			r.bad = append(r.bad, "want exactly text and blocks: "+string(body))
		case m.Text == "" || len(m.Blocks) != 1 || m.Blocks[0].Type != "section" || m.Blocks[0].Text.Type != "mrkdwn" ||
			m.Blocks[0].Text.Text != m.Text:
			r.bad = append(r.bad, "blocks: "+string(body))
		case strings.Contains(string(body), "@"):
			r.bad = append(r.bad, "an address in a message: "+string(body))
		}
		r.got[req.URL.Path] = append(r.got[req.URL.Path], m)
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *slackReceiver) messages(path string) []SlackMessage {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]SlackMessage(nil), r.got[path]...)
}

// TestSlackSink: offers go to the rep's channel when it has one, else the
// pool's; the message names the lead (name and company, no email), the
// rep, the time left to accept and the link; a 429 is retried; SLA
// warnings and breaches go to the manager channel.
func TestSlackSink(t *testing.T) {
	b := redistest.Backends()[0]
	e := newSinkEnv(t, b)
	rcv := newSlackReceiver(t)
	rcv.fail = 2
	t.Setenv("LR_SINK_SLACK_POOL", rcv.srv.URL+"/pool")
	t.Setenv("LR_SINK_SLACK_R1", rcv.srv.URL+"/r1")
	t.Setenv("LR_SINK_SLACK_MGR", rcv.srv.URL+"/managers")
	e.apply(`  - id: team
    kind: SLACK
    slack:
      channels:
        - {pool: p, url_env: LR_SINK_SLACK_POOL}
        - {rep: r1, url_env: LR_SINK_SLACK_R1}
      manager: {url_env: LR_SINK_SLACK_MGR}
      link_template: "https://crm.example.com/{workspace}/leads/{lead_id}"
`)
	e.replica("a", Options{})
	e.leads(4) // r1..r4 get one offer each; two are accepted (assigned)
	waitFor(t, 20*time.Second, "the offers posted", func() bool {
		return len(rcv.messages("/r1")) >= 1 && len(rcv.messages("/pool")) >= 3
	})
	waitFor(t, 5*time.Second, "nothing pending", func() bool { st := e.state("team"); return st.Started && st.Pending == 0 })
	rcv.mu.Lock()
	bad := rcv.bad
	rcv.mu.Unlock()
	if len(bad) > 0 {
		t.Fatalf("payloads: %v", bad)
	}
	r1 := rcv.messages("/r1")[0].Text
	for _, want := range []string{"New lead offered to r1", "Jane, Acme (lead lead-1)", "<https://crm.example.com/" + e.ws + "/leads/lead-1|Open the lead>"} {
		if !strings.Contains(r1, want) {
			t.Errorf("r1's message %q lacks %q", r1, want)
		}
	}
	// lead-2's offer (to r2, through the pool's channel) is not accepted:
	// its message gives the time left, read from the record when posted.
	found := false
	for _, m := range rcv.messages("/pool") {
		if strings.Contains(m.Text, "to r1") {
			t.Errorf("the pool channel got r1's message: %q", m.Text)
		}
		found = found || strings.Contains(m.Text, "offered to r2: Jane, Acme (lead lead-2). Accept within ")
	}
	if !found {
		t.Errorf("no offer of lead-2 with its time to accept in %v", rcv.messages("/pool"))
	}
	if m := rcv.messages("/managers"); len(m) != 0 {
		t.Errorf("the manager channel got %v without an SLA event", m)
	}
}

// TestSlackMessage: each kind's wording, the personal data the sink's
// show allows and no more, and an erased lead named by id only.
func TestSlackMessage(t *testing.T) {
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	rec := &engine.Assignment{LeadID: "l1", Lead: engine.Lead{FirstName: "Jane", LastName: "Doe", Company: "Acme", Email: "jane@acme.com"},
		FirstContactDue: now.Add(4 * time.Minute), OfferExpiresAt: now.Add(90 * time.Second)}
	targets := &engine.SlackTargets{}
	cases := []struct {
		kind engine.EventKind
		show []string
		rec  *engine.Assignment
		want string
	}{
		{engine.EventOffered, nil, rec, "New lead offered to felix: Jane Doe, Acme (lead l1). Accept within 1m30s"},
		{engine.EventAssigned, nil, rec, "Lead assigned to felix: Jane Doe, Acme (lead l1). First contact due within 4m0s"},
		{engine.EventReassigned, []string{"company"}, rec, "Lead reassigned to felix: Acme (lead l1). First contact due within 4m0s"},
		{engine.EventSLAWarning, []string{"name"}, rec, ":warning: SLA warning: Jane Doe (lead l1), held by felix, has not been contacted; due within 4m0s"},
		{engine.EventSLABreached, nil, nil, ":rotating_light: SLA breached: Lead l1, held by felix"},
	}
	for _, c := range cases {
		targets.Show = c.show
		m := slackMessage(targets, "w", engine.Event{ID: "1-0", Kind: c.kind, LeadID: "l1", RepID: "felix"}, c.rec, now)
		if m.Text != c.want {
			t.Errorf("%s: %q\n want %q", c.kind, m.Text, c.want)
		}
		if strings.Contains(m.Text, "acme.com") {
			t.Errorf("%s: the email in %q", c.kind, m.Text)
		}
	}
}
