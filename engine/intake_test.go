package engine_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/leadrouter/leadrouter/engine"
)

// TestIntakeValidation: every problem of an intake is reported at its
// path, and defaults are filled in.
func TestIntakeValidation(t *testing.T) {
	cfg, err := engine.ParseConfigYAML(strings.NewReader(`
reps: [{id: a}]
pools: [{id: p, members: [{rep_id: a}]}]
rules: [{id: all, targets: [{pool_id: p}]}]
intakes:
  - id: ok
    secret_env: LR_INTAKE_S
    signature: {scheme: STANDARD_WEBHOOKS}
    lead_id: header:webhook-id
  - id: ok
    secret_env: S
    secret_file: /run/s
    signature: {scheme: HMAC_SHA256, encoding: HEXX, tolerance: 1m}
    lead_id: "data.answers[x]"
    mapping: {favourite: a.b, email: "a..b"}
    defaults: {colour: red}
  - id: none
    signature: {scheme: MD5}
  - id: unsigned-id
    secret_env: HOME
    signature: {scheme: HMAC_SHA256, header: X-Sig}
    lead_id: header:x-request-id
    rate_per_second: .nan
`))
	if err != nil {
		t.Fatal(err)
	}
	err = cfg.Validate()
	got := violationFields(t, err)
	for _, want := range []string{"intakes[1].id", "intakes[1].secret_file", "intakes[1].signature.header", "intakes[1].signature.encoding",
		"intakes[1].lead_id", "intakes[1].mapping.favourite", "intakes[1].mapping.email", "intakes[1].defaults.colour",
		"intakes[2].secret_env", "intakes[2].signature.scheme", "intakes[2].lead_id", "intakes[1].signature.tolerance",
		"intakes[3].secret_env", "intakes[3].lead_id", "intakes[3].rate_per_second"} {
		if !got[want] {
			t.Errorf("no violation at %s: %v", want, err)
		}
	}
	if got["intakes[0].id"] || got["intakes[0].secret_env"] || got["intakes[0].lead_id"] || cfg.Intakes[0].Signature.Tolerance == 0 {
		t.Errorf("intake 0: %+v, violations %v", cfg.Intakes[0], err)
	}
}

// TestBodyPaths: dotted keys, indexes and [path=value] selectors.
func TestBodyPaths(t *testing.T) {
	var doc any
	dec := json.NewDecoder(strings.NewReader(`{"data": {"answers": [{"field": {"ref": "name"}, "text": "Jana"}, {"field": {"ref": "email"}, "email": "j@x.de"}], "n": 3}}`))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]any{
		"data.answers[0].text":                   "Jana",
		"data.answers[field.ref=email].email":    "j@x.de",
		"data.n":                                 json.Number("3"),
		"data.answers[5].text":                   nil,
		"data.answers[field.ref=phone].text":     nil,
		"data.missing":                           nil,
		"data.answers[field.ref=name].field.ref": "name",
	} {
		steps, err := engine.ParseBodyPath(path)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		got, found := engine.Lookup(doc, steps)
		if want == nil && found || want != nil && got != want {
			t.Errorf("%s = %v (found %v), want %v", path, got, found, want)
		}
	}
	for _, bad := range []string{"", "a.", "a[", "a[x]", "a[-1]", ".a"} {
		if err := engine.CheckBodyPath(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// FuzzBodyPath: any path either parses or is refused, and a parsed one
// looks up in any JSON document without a panic.
func FuzzBodyPath(f *testing.F) {
	for _, seed := range []string{"a.b[0].c", "x[k.j=v][2]", "a[[b=c]=d]", "[0]", "a.[1]", "a[=]", "a[b=]"} {
		f.Add(seed, `{"a": {"b": [{"c": 1}]}, "x": [[0, 1, 2]]}`)
	}
	f.Fuzz(func(t *testing.T, path, doc string) {
		steps, err := engine.ParseBodyPath(path)
		if err != nil {
			return
		}
		var v any
		dec := json.NewDecoder(strings.NewReader(doc))
		dec.UseNumber()
		if dec.Decode(&v) != nil {
			return
		}
		engine.Lookup(v, steps)
	})
}
