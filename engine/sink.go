package engine

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// A sink is a destination that the workspace's events leave the system
// for (package sinks delivers them): a signed webhook, Slack channels, or
// a PostgreSQL archive. Each sink reads the event history through its own
// Redis Streams consumer group, at least once, in order per lead.
type Sink struct {
	ID   string   `json:"id" yaml:"id"`
	Kind SinkKind `json:"kind" yaml:"kind"`
	// Kinds are the event kinds delivered (empty: every kind; SLACK: the
	// kinds it has a message for).
	Kinds []EventKind `json:"kinds,omitempty" yaml:"kinds,omitempty"`
	// URL is a WEBHOOK's target (http or https).
	URL string `json:"url,omitempty" yaml:"url,omitempty"`
	// The WEBHOOK's Standard Webhooks secret ("whsec_" + base64 key, or
	// raw bytes), from the environment or a file: exactly one.
	SecretEnv  string `json:"secret_env,omitempty" yaml:"secret_env,omitempty"`
	SecretFile string `json:"secret_file,omitempty" yaml:"secret_file,omitempty"`
	// The POSTGRES sink's DSN (a postgres:// URL or key=value string),
	// from the environment or a file: exactly one.
	DSNEnv  string `json:"dsn_env,omitempty" yaml:"dsn_env,omitempty"`
	DSNFile string `json:"dsn_file,omitempty" yaml:"dsn_file,omitempty"`
	// Slack is a SLACK sink's channels.
	Slack *SlackTargets `json:"slack,omitempty" yaml:"slack,omitempty"`
	// Concurrency is how many leads' deliveries run at once on each
	// replica (default DefaultSinkConcurrency).
	Concurrency int32 `json:"concurrency,omitempty" yaml:"concurrency,omitempty"`
	// Timeout bounds one delivery attempt (default DefaultSinkTimeout).
	Timeout Duration `json:"timeout,omitempty" yaml:"timeout,omitempty"`
	// MaxRetryAge is how long after its event a failing delivery is
	// retried before it is dead-lettered (default DefaultSinkMaxRetryAge).
	MaxRetryAge Duration `json:"max_retry_age,omitempty" yaml:"max_retry_age,omitempty"`
}

// SinkKind is a sink's destination type.
type SinkKind string

const (
	SinkWebhook  SinkKind = "WEBHOOK"
	SinkSlack    SinkKind = "SLACK"
	SinkPostgres SinkKind = "POSTGRES"
)

// SlackTargets are a SLACK sink's incoming-webhook URLs, each a secret
// (anyone holding one may post to its channel) given by environment
// variable or file.
type SlackTargets struct {
	// Channels receive offers and assignments: a rep's own channel when
	// it has one, else its pool's.
	Channels []SlackChannel `json:"channels,omitempty" yaml:"channels,omitempty"`
	// Manager receives SLA warnings and breaches.
	Manager *SlackChannel `json:"manager,omitempty" yaml:"manager,omitempty"`
	// LinkTemplate links each message to the lead, with {lead_id} and
	// {workspace} replaced (for example
	// "https://crm.example.com/leads/{lead_id}").
	LinkTemplate string `json:"link_template,omitempty" yaml:"link_template,omitempty"`
	// Show lists the lead fields a message may carry: name (first and
	// last), company (default: name and company). Nothing else personal
	// is ever posted.
	Show []string `json:"show,omitempty" yaml:"show,omitempty"`
}

// SlackChannel is one incoming-webhook URL: for a pool or a rep (Manager:
// neither).
type SlackChannel struct {
	Pool    string `json:"pool,omitempty" yaml:"pool,omitempty"`
	Rep     string `json:"rep,omitempty" yaml:"rep,omitempty"`
	URLEnv  string `json:"url_env,omitempty" yaml:"url_env,omitempty"`
	URLFile string `json:"url_file,omitempty" yaml:"url_file,omitempty"`
}

// Sink defaults and bounds.
const (
	MaxSinks               = 20
	MaxSlackChannels       = 500
	DefaultSinkConcurrency = 8
	MaxSinkConcurrency     = 64
	DefaultSinkTimeout     = 10 * time.Second
	MaxSinkTimeout         = time.Minute
	DefaultSinkMaxRetryAge = 24 * time.Hour
	MinSinkMaxRetryAge     = time.Minute
	MaxSinkIDBytes         = 64
	MaxSinkURLBytes        = 2048
)

// SinkEnvPrefix starts the name of every environment variable a sink may
// read a secret, DSN or Slack URL from (see SecretEnvPrefix).
const SinkEnvPrefix = "LR_SINK_"

// SlackKinds are the event kinds a SLACK sink has a message for.
var SlackKinds = []EventKind{EventOffered, EventAssigned, EventReassigned, EventSLAWarning, EventSLABreached}

// SlackShowFields are the lead fields a Slack message may carry.
var SlackShowFields = []string{"name", "company"}

// WantedKinds are the kinds the sink delivers.
func (s *Sink) WantedKinds() []EventKind {
	switch {
	case len(s.Kinds) > 0:
		return s.Kinds
	case s.Kind == SinkSlack:
		return SlackKinds
	}
	return EventKinds
}

// Workers is the sink's per-replica concurrency.
func (s *Sink) Workers() int {
	if s.Concurrency <= 0 {
		return DefaultSinkConcurrency
	}
	return int(s.Concurrency)
}

// AttemptTimeout bounds one delivery attempt.
func (s *Sink) AttemptTimeout() time.Duration {
	if s.Timeout <= 0 {
		return DefaultSinkTimeout
	}
	return time.Duration(s.Timeout)
}

// RetryAge is how long after its event a delivery is retried.
func (s *Sink) RetryAge() time.Duration {
	if s.MaxRetryAge <= 0 {
		return DefaultSinkMaxRetryAge
	}
	return time.Duration(s.MaxRetryAge)
}

// Secret reads a WEBHOOK's signing secret now (a file may be rotated).
func (s *Sink) Secret() ([]byte, error) {
	v, err := readSecret(s.SecretEnv, s.SecretFile)
	if err != nil {
		return nil, fmt.Errorf("sink %s: %w", s.ID, err)
	}
	return []byte(v), nil
}

// DSN reads a POSTGRES sink's DSN now.
func (s *Sink) DSN() (string, error) {
	v, err := readSecret(s.DSNEnv, s.DSNFile)
	if err != nil {
		return "", fmt.Errorf("sink %s: %w", s.ID, err)
	}
	return v, nil
}

// URL reads the channel's incoming-webhook URL now.
func (c *SlackChannel) URL() (string, error) {
	return readSecret(c.URLEnv, c.URLFile)
}

// Sink returns the config's sink by id, nil when it has none.
func (c *Config) Sink(id string) *Sink {
	for i := range c.Sinks {
		if c.Sinks[i].ID == id {
			return &c.Sinks[i]
		}
	}
	return nil
}

// Archive returns the config's POSTGRES sink, nil when it has none: the
// retention of closed records waits for it (lead_remove.lua).
func (c *Config) Archive() *Sink {
	for i := range c.Sinks {
		if c.Sinks[i].Kind == SinkPostgres {
			return &c.Sinks[i]
		}
	}
	return nil
}

// readSecret reads a secret from the environment variable env or, when
// env is empty, the file (a regular file of at most MaxSecretBytes),
// trimmed of surrounding white space.
func readSecret(env, file string) (string, error) {
	var s string
	switch {
	case env != "":
		v, ok := os.LookupEnv(env)
		if !ok {
			return "", fmt.Errorf("environment variable %s is not set", env)
		}
		s = v
	case file != "":
		f, err := os.Open(file)
		if err != nil {
			return "", fmt.Errorf("secret file: %w", err)
		}
		defer f.Close()
		if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() || st.Size() > MaxSecretBytes {
			return "", fmt.Errorf("secret file %s: want a regular file of at most %d bytes", file, MaxSecretBytes)
		}
		b, err := io.ReadAll(io.LimitReader(f, MaxSecretBytes))
		if err != nil {
			return "", fmt.Errorf("secret file: %w", err)
		}
		s = string(b)
	default:
		return "", fmt.Errorf("no secret source")
	}
	if s = strings.TrimSpace(s); s == "" {
		return "", fmt.Errorf("the secret is empty")
	}
	return s, nil
}

// checkSecretSource validates a secret given by environment variable or
// file: exactly one, and the variable under prefix.
func checkSecretSource(v *violations, p, envField, fileField, env, file, prefix, what string) {
	switch {
	case env == "" && file == "":
		v.add(p+"."+envField, "required: the environment variable (or %s: the file) holding %s; never inline", fileField, what)
	case env != "" && file != "":
		v.add(p+"."+fileField, "give %s or %s, not both", envField, fileField)
	case env != "" && !strings.HasPrefix(env, prefix):
		v.add(p+"."+envField, "%q: the variable must start with %s", env, prefix)
	}
}

// checkSinks validates the sinks (their shape; checkSinkTargets reads
// their DSNs) against the config's pools and reps.
func checkSinks(v *violations, c *Config) {
	if len(c.Sinks) > MaxSinks {
		v.add("sinks", "%d entries, at most %d allowed", len(c.Sinks), MaxSinks)
		return
	}
	seen := map[string]bool{}
	for i := range c.Sinks {
		s := &c.Sinks[i]
		p := fmt.Sprintf("sinks[%d]", i)
		checkID(v, p+".id", s.ID, seen, "sink")
		if len(s.ID) > MaxSinkIDBytes {
			v.add(p+".id", "%d bytes, at most %d allowed for a sink", len(s.ID), MaxSinkIDBytes)
		}
		for j, k := range s.Kinds {
			switch {
			case !slices.Contains(EventKinds, k):
				v.add(fmt.Sprintf("%s.kinds[%d]", p, j), "%q is not an event kind", k)
			case s.Kind == SinkSlack && !slices.Contains(SlackKinds, k):
				v.add(fmt.Sprintf("%s.kinds[%d]", p, j), "%q: Slack has messages for %s only", k, kindList(SlackKinds))
			}
		}
		if c := s.Concurrency; c < 0 || c > MaxSinkConcurrency {
			v.add(p+".concurrency", "%d is outside 1 to %d (0: the default %d)", c, MaxSinkConcurrency, DefaultSinkConcurrency)
		}
		if t := time.Duration(s.Timeout); t < 0 || t > MaxSinkTimeout {
			v.add(p+".timeout", "%s is outside 0 to %s", t, MaxSinkTimeout)
		}
		if a := time.Duration(s.MaxRetryAge); a != 0 && a < MinSinkMaxRetryAge {
			v.add(p+".max_retry_age", "%s is shorter than %s", a, MinSinkMaxRetryAge)
		} else if _, age := c.Settings.Retention(); s.RetryAge() > age {
			v.add(p+".max_retry_age", "%s (0: the default) is longer than settings.events_max_age (%s): the event would be gone while it is retried",
				s.RetryAge(), age)
		}
		webhookOnly := s.URL != "" || s.SecretEnv != "" || s.SecretFile != ""
		switch s.Kind {
		case SinkWebhook:
			checkSinkURL(v, p+".url", s.URL)
			checkSecretSource(v, p, "secret_env", "secret_file", s.SecretEnv, s.SecretFile, SinkEnvPrefix, "the signing secret")
		case SinkPostgres:
			checkSecretSource(v, p, "dsn_env", "dsn_file", s.DSNEnv, s.DSNFile, SinkEnvPrefix, "the DSN")
		case SinkSlack:
			checkSlack(v, p+".slack", s.Slack, c)
		case "":
			v.add(p+".kind", "required: WEBHOOK, SLACK or POSTGRES")
		default:
			v.add(p+".kind", "%q is not one of WEBHOOK, SLACK, POSTGRES", s.Kind)
		}
		if s.Kind != SinkWebhook && webhookOnly {
			v.add(p+".url", "url, secret_env and secret_file are for WEBHOOK sinks")
		}
		if s.Kind != SinkPostgres && (s.DSNEnv != "" || s.DSNFile != "") {
			v.add(p+".dsn_env", "dsn_env and dsn_file are for POSTGRES sinks")
		}
		if s.Kind != SinkSlack && s.Slack != nil {
			v.add(p+".slack", "for SLACK sinks")
		}
	}
	if n := len(slices.DeleteFunc(slices.Clone(c.Sinks), func(s Sink) bool { return s.Kind != SinkPostgres })); n > 1 {
		v.add("sinks", "%d POSTGRES sinks: at most one archive, which record retention waits for", n)
	}
}

func kindList(kinds []EventKind) string {
	s := make([]string, len(kinds))
	for i, k := range kinds {
		s[i] = string(k)
	}
	return strings.Join(s, ", ")
}

// checkSinkURL checks a webhook URL's shape: an absolute http or https
// URL with a host and no credentials. Where it points is checked when it
// is dialled (sinks: private and metadata addresses are refused unless
// leadrouterd --allow-private-sinks).
func checkSinkURL(v *violations, p, raw string) {
	if raw == "" {
		v.add(p, "required: the http or https URL events are posted to")
		return
	}
	if len(raw) > MaxSinkURLBytes {
		v.add(p, "%d bytes, at most %d allowed", len(raw), MaxSinkURLBytes)
		return
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		v.add(p, "%q is not a URL: %v", raw, err)
	case u.Scheme != "http" && u.Scheme != "https":
		v.add(p, "%q: the scheme must be http or https", raw)
	case u.Host == "" || u.Hostname() == "":
		v.add(p, "%q has no host", raw)
	case u.User != nil:
		v.add(p, "%q carries credentials: sign with secret_env instead", raw)
	case u.Fragment != "":
		v.add(p, "%q has a fragment, which is never sent", raw)
	}
}

func checkSlack(v *violations, p string, t *SlackTargets, c *Config) {
	if t == nil || (len(t.Channels) == 0 && t.Manager == nil) {
		v.add(p, "required: channels (per pool or rep) or a manager channel")
		return
	}
	if len(t.Channels) > MaxSlackChannels {
		v.add(p+".channels", "%d entries, at most %d allowed", len(t.Channels), MaxSlackChannels)
		return
	}
	seen := map[string]bool{}
	for j, ch := range t.Channels {
		cp := fmt.Sprintf("%s.channels[%d]", p, j)
		switch {
		case (ch.Pool == "") == (ch.Rep == ""):
			v.add(cp, "give pool or rep, exactly one")
		case ch.Pool != "" && !slices.ContainsFunc(c.Pools, func(x Pool) bool { return x.ID == ch.Pool }):
			v.add(cp+".pool", "%q is not a pool of the config", ch.Pool)
		case ch.Rep != "" && !slices.ContainsFunc(c.Reps, func(x Rep) bool { return x.ID == ch.Rep }):
			v.add(cp+".rep", "%q is not a rep of the config", ch.Rep)
		case seen["pool:"+ch.Pool+"|rep:"+ch.Rep]:
			v.add(cp, "a second channel for the same pool or rep")
		}
		seen["pool:"+ch.Pool+"|rep:"+ch.Rep] = true
		checkSecretSource(v, cp, "url_env", "url_file", ch.URLEnv, ch.URLFile, SinkEnvPrefix, "the incoming-webhook URL")
	}
	if m := t.Manager; m != nil {
		if m.Pool != "" || m.Rep != "" {
			v.add(p+".manager", "the manager channel has no pool or rep")
		}
		checkSecretSource(v, p+".manager", "url_env", "url_file", m.URLEnv, m.URLFile, SinkEnvPrefix, "the incoming-webhook URL")
	}
	if t.LinkTemplate != "" {
		if u, err := url.Parse(strings.NewReplacer("{lead_id}", "x", "{workspace}", "x").Replace(t.LinkTemplate)); err != nil || (u.Scheme != "http" && u.Scheme != "https") {
			v.add(p+".link_template", "%q is not an http or https URL template", t.LinkTemplate)
		}
	}
	for j, f := range t.Show {
		if !slices.Contains(SlackShowFields, f) {
			v.add(fmt.Sprintf("%s.show[%d]", p, j), "%q is not one of %s", f, strings.Join(SlackShowFields, ", "))
		}
	}
}

// checkSinkTargets reads each POSTGRES sink's DSN (on the replica that
// applies the config) and checks that it parses: a malformed DSN is an
// apply error, an unreachable database is not.
func checkSinkTargets(c *Config) error {
	var v violations
	for i := range c.Sinks {
		s := &c.Sinks[i]
		if s.Kind != SinkPostgres {
			continue
		}
		field := fmt.Sprintf("sinks[%d].dsn_env", i)
		if s.DSNEnv == "" {
			field = fmt.Sprintf("sinks[%d].dsn_file", i)
		}
		dsn, err := readSecret(s.DSNEnv, s.DSNFile)
		if err != nil {
			v.add(field, "%v (on the replica that applied the config)", err)
			continue
		}
		if _, err := pgconn.ParseConfig(dsn); err != nil {
			// pgconn's error can quote the DSN, password and all.
			v.add(field, "the DSN does not parse as a postgres:// URL or key=value string")
		}
	}
	return v.err()
}

// MaxDeadLetters bounds a sink's dead-letter list; past it the oldest are
// dropped and counted (SinkState.DeadDropped).
const MaxDeadLetters = 10_000

// SinkDelivery is one event a sink's consumer delivers: the head of its
// ordering key (the lead, else the rep), which no later event of the
// same key overtakes.
type SinkDelivery struct {
	Event Event
	Key   string
}

// DeadLetter is an event a sink gave up on, with the reason.
type DeadLetter struct {
	Event  Event     `json:"event"`
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
}

// TakenLetter is a replayed dead letter leased to a consumer; Raw is how
// the store holds it (to finish it with).
type TakenLetter struct {
	Letter DeadLetter
	Raw    string
}

// SinkLoss is what retention removed before a sink delivered it.
type SinkLoss struct {
	SinkID string
	Lost   int64
}

// SinkState is a sink's delivery state.
type SinkState struct {
	// Started: the sink's consumer group exists (a replica has read for
	// it); until then nothing is known pending.
	Started bool
	// Pending: events handed out and not acknowledged, plus those not
	// handed out yet; Oldest is the oldest of them (zero: none).
	Pending      int64
	Oldest       time.Time
	DeadLetters  int64
	DeadDropped  int64
	Replaying    int64
	LastError    string
	LastErrorAt  time.Time
	Lost         int64
	LaggingSince time.Time
}

// SinkQueue is the store side of delivery (package sinks): each sink's
// consumer group on the workspace's event stream, its per-lead order, its
// dead letters. store.Redis implements it.
type SinkQueue interface {
	// ReadSink hands up to n new events to consumer and returns those to
	// deliver now, and how many it read (the others were unwanted, or wait
	// behind an earlier event of their lead); the group is created at
	// start (an event id) when missing. kinds: the kinds wanted (nil: all).
	ReadSink(ctx context.Context, ws, sinkID, consumer string, kinds []EventKind, start string, n int) ([]SinkDelivery, int, error)
	// AckSink finishes a delivery (dead non-nil: dead-lettered) and
	// returns the next event of its key, now the consumer's, if any.
	AckSink(ctx context.Context, ws, sinkID, consumer string, d SinkDelivery, dead *DeadLetter) (*SinkDelivery, error)
	// ClaimSink takes over events pending longer than minIdle from start
	// (an XAUTOCLAIM cursor) and returns those to deliver and the cursor.
	ClaimSink(ctx context.Context, ws, sinkID, consumer string, minIdle time.Duration, start string, n int) ([]SinkDelivery, string, error)
	// TouchSink resets the idle time of events consumer still works on,
	// and returns how many are still consumer's (the others were taken
	// over).
	TouchSink(ctx context.Context, ws, sinkID, consumer string, ids []string) (int, error)
	// NoteSinkError records a sink's last failed attempt.
	NoteSinkError(ctx context.Context, ws, sinkID, msg string, at time.Time) error
	// SinkState reports a sink's delivery state.
	SinkState(ctx context.Context, ws, sinkID string) (*SinkState, error)
	// ReplayDeadLetters moves up to limit dead letters to the replay set.
	ReplayDeadLetters(ctx context.Context, ws, sinkID string, limit int) (int, error)
	// TakeReplays leases up to n replayed dead letters to a consumer.
	TakeReplays(ctx context.Context, ws, sinkID string, now time.Time, lease time.Duration, n int) ([]TakenLetter, error)
	// ReplayDone finishes a replayed dead letter (dead non-nil: dead again).
	ReplayDone(ctx context.Context, ws, sinkID string, t TakenLetter, dead *DeadLetter) error
	// SinkGroups lists the sinks that have a consumer group in ws.
	SinkGroups(ctx context.Context, ws string) ([]string, error)
	// RemoveSink destroys a sink's group and deletes its state.
	RemoveSink(ctx context.Context, ws, sinkID string) error
	// PruneSinkConsumers deletes the group's consumers that hold nothing
	// and have been idle longer than idle (replicas gone), returning how
	// many.
	PruneSinkConsumers(ctx context.Context, ws, sinkID string, idle time.Duration) (int, error)
}

// ArchiveHold makes a record's removal wait for the archive sink
// (Store.RemoveLead): SinkID is the POSTGRES sink, Retain the workspace's
// retain_closed.
type ArchiveHold struct {
	SinkID string
	Retain time.Duration
}

// SinkReport is one sink of the config with its delivery state.
type SinkReport struct {
	Sink  Sink
	State SinkState
}

// SinkStatus reports the workspace's sinks (or the one named; ErrNotFound
// when the config lacks it).
func (e *Engine) SinkStatus(ctx context.Context, ws, sinkID string) ([]SinkReport, error) {
	sinks, err := e.sinksOf(ctx, ws, sinkID)
	if err != nil {
		return nil, err
	}
	ws, _ = NormalizeWorkspace(ws)
	out := make([]SinkReport, 0, len(sinks))
	for _, s := range sinks {
		st, err := e.store.SinkState(ctx, ws, s.ID)
		if err != nil {
			return nil, err
		}
		out = append(out, SinkReport{Sink: s, State: *st})
	}
	return out, nil
}

// ReplayDeadLetters puts up to limit (0: MaxDeadLetters) of a sink's dead
// letters back for delivery, oldest first, and returns how many.
func (e *Engine) ReplayDeadLetters(ctx context.Context, ws, sinkID string, limit int) (int, error) {
	var v violations
	if sinkID == "" {
		v.add("sink_id", "required")
	}
	if limit < 0 || limit > MaxDeadLetters {
		v.add("limit", "%d is outside 0 to %d (0: all, up to %d)", limit, MaxDeadLetters, MaxDeadLetters)
	}
	if err := v.err(); err != nil {
		return 0, err
	}
	if limit == 0 {
		limit = MaxDeadLetters
	}
	if _, err := e.sinksOf(ctx, ws, sinkID); err != nil {
		return 0, err
	}
	ws, _ = NormalizeWorkspace(ws)
	return e.store.ReplayDeadLetters(ctx, ws, sinkID, limit)
}

// sinksOf returns the config's sinks, or the one named.
func (e *Engine) sinksOf(ctx context.Context, ws, sinkID string) ([]Sink, error) {
	sc, err := e.Config(ctx, ws)
	if err != nil {
		return nil, err
	}
	if sinkID == "" {
		return sc.Config.Sinks, nil
	}
	if s := sc.Config.Sink(sinkID); s != nil {
		return []Sink{*s}, nil
	}
	return nil, fmt.Errorf("%w: workspace %s has no sink %q", ErrNotFound, ws, sinkID)
}
