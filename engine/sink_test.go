package engine_test

import (
	"context"
	"strings"
	"testing"

	"github.com/leadrouter/leadrouter/engine"
	"github.com/leadrouter/leadrouter/store"
)

// TestSinkValidation: each malformed sink is refused at its field; a
// well-formed one gets its defaults.
func TestSinkValidation(t *testing.T) {
	cfg, err := engine.ParseConfigYAML(strings.NewReader(`
reps: [{id: a}]
pools: [{id: p, members: [{rep_id: a}]}]
rules: [{id: all, targets: [{pool_id: p}]}]
sinks:
  - {id: ok, kind: WEBHOOK, url: "https://crm.example.com/h", secret_env: LR_SINK_OK, kinds: [assigned]}
  - {id: ok, kind: WEBHOOK, url: "ftp://x/y", secret_env: HOME, kinds: [nonsense], concurrency: 65, timeout: 2m, max_retry_age: 10s}
  - {id: creds, kind: WEBHOOK, url: "https://user:pw@crm.example.com/h", secret_file: /s, secret_env: LR_SINK_X}
  - {id: nohost, kind: WEBHOOK, url: "https:///h"}
  - {id: pg, kind: POSTGRES, url: "https://x/", dsn_env: DATABASE_URL}
  - {id: pg2, kind: POSTGRES, dsn_env: LR_SINK_DSN}
  - {id: s, kind: SLACK, kinds: [queued], slack: {channels: [{pool: nope, url_env: LR_SINK_S}, {pool: p, rep: a, url_env: LR_SINK_S}], link_template: "ftp://{lead_id}", show: [email]}}
  - {id: s2, kind: SLACK}
  - {id: k, kind: KAFKA}
  - {id: old, kind: WEBHOOK, url: "https://x/", secret_env: LR_SINK_OK, max_retry_age: 720h}
`))
	if err != nil {
		t.Fatal(err)
	}
	err = cfg.Validate()
	got := violationFields(t, err)
	for _, want := range []string{"sinks[1].id", "sinks[1].url", "sinks[1].secret_env", "sinks[1].kinds[0]", "sinks[1].concurrency",
		"sinks[1].timeout", "sinks[1].max_retry_age", "sinks[2].url", "sinks[2].secret_file", "sinks[3].url", "sinks[3].secret_env",
		"sinks[4].dsn_env", "sinks[4].url", "sinks", "sinks[6].kinds[0]", "sinks[6].slack.channels[0].pool", "sinks[6].slack.channels[1]",
		"sinks[6].slack.link_template", "sinks[6].slack.show[0]", "sinks[7].slack", "sinks[8].kind", "sinks[9].max_retry_age"} {
		if !got[want] {
			t.Errorf("no violation at %s: %v", want, err)
		}
	}
	for f := range got {
		if strings.HasPrefix(f, "sinks[0]") || strings.HasPrefix(f, "sinks[5]") {
			t.Errorf("a violation at %s of a well-formed sink: %v", f, err)
		}
	}
	if s := cfg.Sinks[0]; s.Workers() != engine.DefaultSinkConcurrency || s.AttemptTimeout() != engine.DefaultSinkTimeout ||
		s.RetryAge() != engine.DefaultSinkMaxRetryAge {
		t.Errorf("defaults of %+v", s)
	}
}

// TestSinkDSNIsCheckedAtApply: the replica applying a config reads each
// POSTGRES sink's DSN: unset or malformed is INVALID_ARGUMENT at the
// field (the message never quotes the DSN); a DSN of a database that is
// not there is fine.
func TestSinkDSNIsCheckedAtApply(t *testing.T) {
	st, err := store.StartEmbedded()
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	eng := engine.New(st, engine.WithLogger(quiet))
	apply := func() error {
		cfg, err := engine.ParseConfigYAML(strings.NewReader(`
reps: [{id: a}]
pools: [{id: p, members: [{rep_id: a}]}]
rules: [{id: all, targets: [{pool_id: p}]}]
sinks: [{id: archive, kind: POSTGRES, dsn_env: LR_SINK_TEST_DSN}]
`))
		if err != nil {
			t.Fatal(err)
		}
		_, err = eng.ApplyConfig(context.Background(), "", cfg, nil)
		return err
	}
	if err := apply(); !violationFields(t, err)["config.sinks[0].dsn_env"] {
		t.Fatalf("unset DSN: %v", err)
	}
	t.Setenv("LR_SINK_TEST_DSN", "postgres://u:s3cret@host:notaport/db")
	err = apply()
	if !violationFields(t, err)["config.sinks[0].dsn_env"] || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("malformed DSN: %v", err)
	}
	t.Setenv("LR_SINK_TEST_DSN", "postgres://u:p@127.0.0.1:1/nowhere")
	if err := apply(); err != nil {
		t.Fatalf("unreachable DSN: %v", err)
	}
}
