package sinks

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/leadrouter/leadrouter/engine"
	"github.com/leadrouter/leadrouter/internal/stdwebhooks"
)

// webhook is a WEBHOOK sink: each event is POSTed as JSON, signed with
// the Standard Webhooks headers (webhook-id: the workspace and the
// event's stream position, stable across redeliveries, for receivers to
// dedupe; webhook-timestamp: the attempt's unix seconds;
// webhook-signature: v1,<base64 HMAC-SHA256 of id.timestamp.body>).
type webhook struct {
	sink   *engine.Sink
	client *http.Client
}

func newWebhook(s *engine.Sink, allowPrivate bool) *webhook {
	return &webhook{sink: s, client: newClient(allowPrivate)}
}

// WebhookEvent is the body a WEBHOOK sink posts (docs/sinks.md).
type WebhookEvent struct {
	// ID is webhook-id: "<workspace>:<event id>".
	ID        string    `json:"id"`
	Type      string    `json:"type"` // the event kind: assigned, offered, ...
	Workspace string    `json:"workspace"`
	EventID   string    `json:"event_id"` // the stream position, as WatchEvents gives it
	At        time.Time `json:"at"`
	LeadID    string    `json:"lead_id,omitempty"`
	RepID     string    `json:"rep_id,omitempty"`
	PoolID    string    `json:"pool_id,omitempty"`
	Detail    string    `json:"detail,omitempty"`
}

func (w *webhook) Deliver(ctx context.Context, ws string, ev engine.Event) error {
	secret, err := w.sink.Secret()
	if err != nil {
		return err // retried: the operator may set it
	}
	key, err := stdwebhooks.Key(secret)
	if err != nil {
		return err
	}
	msg := WebhookEvent{ID: ws + ":" + ev.ID, Type: string(ev.Kind), Workspace: ws, EventID: ev.ID, At: ev.At.UTC(),
		LeadID: ev.LeadID, RepID: ev.RepID, PoolID: ev.PoolID, Detail: ev.Detail}
	body, err := json.Marshal(msg)
	if err != nil {
		return permanent("encoding: %v", err)
	}
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	h := http.Header{}
	h.Set("webhook-id", msg.ID)
	h.Set("webhook-timestamp", ts)
	h.Set("webhook-signature", stdwebhooks.Signature(key, msg.ID, ts, body))
	return post(ctx, w.client, w.sink.URL, h, body)
}

func (w *webhook) Close() { w.client.CloseIdleConnections() }
