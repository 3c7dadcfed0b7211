package sinks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/leadrouter/leadrouter/engine"
)

// slack is a SLACK sink: offers, assignments and reassignments go to the
// rep's incoming-webhook channel, else the pool's; SLA warnings and
// breaches to the manager channel. A message says who the lead is (only
// the fields the sink's show allows: name, company), which rep, how long
// they have, and links to the lead when the sink has a link template.
type slack struct {
	sink   *engine.Sink
	eng    *engine.Engine
	client *http.Client
}

func newSlack(s *engine.Sink, eng *engine.Engine, allowPrivate bool) *slack {
	return &slack{sink: s, eng: eng, client: newClient(allowPrivate)}
}

// SlackMessage is what a SLACK sink posts: Slack's incoming-webhook
// payload (text is the notification's fallback; blocks the message).
type SlackMessage struct {
	Text   string       `json:"text"`
	Blocks []SlackBlock `json:"blocks"`
}

// SlackBlock is a section block with mrkdwn text.
type SlackBlock struct {
	Type string    `json:"type"`
	Text SlackText `json:"text"`
}

// SlackText is a block's text object.
type SlackText struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

func (s *slack) Deliver(ctx context.Context, ws string, ev engine.Event) error {
	t := s.sink.Slack
	var ch *engine.SlackChannel
	switch ev.Kind {
	case engine.EventSLAWarning, engine.EventSLABreached:
		ch = t.Manager
	default:
		for i := range t.Channels {
			if c := &t.Channels[i]; c.Rep != "" && c.Rep == ev.RepID {
				ch = c
			}
		}
		for i := range t.Channels {
			if c := &t.Channels[i]; ch == nil && c.Pool != "" && c.Pool == ev.PoolID {
				ch = c
			}
		}
	}
	if ch == nil {
		return errSkipped
	}
	url, err := ch.URL()
	if err != nil {
		return err
	}
	var rec *engine.Assignment
	if ev.LeadID != "" {
		rec, err = s.eng.GetAssignment(ctx, ws, ev.LeadID)
		if err != nil && !errors.Is(err, engine.ErrNotFound) {
			return err
		}
	}
	msg := slackMessage(s.sink.Slack, ws, ev, rec, time.Now())
	body, err := json.Marshal(msg)
	if err != nil {
		return permanent("encoding: %v", err)
	}
	return post(ctx, s.client, url, http.Header{}, body)
}

func (s *slack) Close() { s.client.CloseIdleConnections() }

// slackMessage renders one event for Slack. rec is the lead's record as it
// is now (nil when it is gone: erased or removed); only the shown fields
// of the lead are used.
func slackMessage(t *engine.SlackTargets, ws string, ev engine.Event, rec *engine.Assignment, now time.Time) SlackMessage {
	show := t.Show
	if len(show) == 0 {
		show = engine.SlackShowFields
	}
	who := "Lead " + ev.LeadID
	if rec != nil {
		var parts []string
		if slices.Contains(show, "name") {
			if n := strings.TrimSpace(rec.Lead.FirstName + " " + rec.Lead.LastName); n != "" {
				parts = append(parts, n)
			}
		}
		if slices.Contains(show, "company") && rec.Lead.Company != "" {
			parts = append(parts, rec.Lead.Company)
		}
		if len(parts) > 0 {
			who = strings.Join(parts, ", ") + " (lead " + ev.LeadID + ")"
		}
	}
	rep := ev.RepID
	if rep == "" {
		rep = "no rep"
	}
	var text string
	switch ev.Kind {
	case engine.EventOffered:
		text = fmt.Sprintf("New lead offered to %s: %s", rep, who)
		if rec != nil && !rec.OfferExpiresAt.IsZero() {
			text += fmt.Sprintf(". Accept within %s", until(rec.OfferExpiresAt, now))
		}
	case engine.EventAssigned, engine.EventReassigned:
		verb := "assigned"
		if ev.Kind == engine.EventReassigned {
			verb = "reassigned"
		}
		text = fmt.Sprintf("Lead %s to %s: %s", verb, rep, who)
		if rec != nil && !rec.FirstContactDue.IsZero() && rec.FirstContactAt.IsZero() {
			text += fmt.Sprintf(". First contact due within %s", until(rec.FirstContactDue, now))
		}
	case engine.EventSLAWarning:
		text = fmt.Sprintf(":warning: SLA warning: %s, held by %s, has not been contacted", who, rep)
		if rec != nil && !rec.FirstContactDue.IsZero() {
			text += fmt.Sprintf("; due within %s", until(rec.FirstContactDue, now))
		}
	case engine.EventSLABreached:
		text = fmt.Sprintf(":rotating_light: SLA breached: %s, held by %s", who, rep)
	default:
		text = fmt.Sprintf("%s: %s (%s)", ev.Kind, who, rep)
	}
	if t.LinkTemplate != "" && ev.LeadID != "" {
		link := strings.NewReplacer("{lead_id}", ev.LeadID, "{workspace}", ws).Replace(t.LinkTemplate)
		text += fmt.Sprintf(". <%s|Open the lead>", link)
	}
	return SlackMessage{Text: text, Blocks: []SlackBlock{{Type: "section", Text: SlackText{Type: "mrkdwn", Text: text}}}}
}

// until renders the time left before deadline, at least "0s".
func until(deadline, now time.Time) time.Duration {
	return max(0, deadline.Sub(now)).Round(time.Second)
}
