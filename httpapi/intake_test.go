package httpapi_test

import (
	"encoding/hex"
	"fmt"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/leadrouter/leadrouter/internal/redistest"
	"github.com/leadrouter/leadrouter/server"
)

const intakeConfig = `
reps: [{id: a}, {id: b}]
pools: [{id: p, accept_within: 0s, members: [{rep_id: a}, {rep_id: b}]}]
rules: [{id: all, targets: [{pool_id: p}]}]
intakes:
  - id: site
    secret_env: LR_INTAKE_TEST_SITE
    signature: {scheme: STANDARD_WEBHOOKS}
    lead_id: header:webhook-id
    mapping:
      email: form.answers[field.ref=email].email
      first_name: form.answers[field.ref=name].text
      employee_count: form.answers[field.ref=size].number
      country: form.hidden.country
    defaults: {source: site_form, country: FR}
    attributes: {campaign: form.hidden.utm}
  - id: contact
    secret_env: LR_INTAKE_TEST_CONTACT
    signature: {scheme: HMAC_SHA256, header: X-Signature}
    lead_id: submission_id
    mapping: {email: email, company: company}
  - id: b64
    secret_env: LR_INTAKE_TEST_CONTACT
    signature: {scheme: HMAC_SHA256, header: X-Hub-Signature, encoding: BASE64}
    lead_id: id
    mapping: {email: contact.email}
    rate_per_second: 0.01
    burst: 2
`

// openssl runs openssl with input and returns its output, trimmed: the
// signatures the tests send are computed by it, not by the code under
// test. opensslRaw returns the output as it is, for binary output (an
// HMAC or a key may start or end with a byte that trimming would drop).
func openssl(t *testing.T, input string, args ...string) string {
	t.Helper()
	return strings.TrimSpace(opensslRaw(t, input, args...))
}

func opensslRaw(t *testing.T, input string, args ...string) string {
	t.Helper()
	cmd := exec.Command("openssl", args...)
	cmd.Stdin = strings.NewReader(input)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("openssl %v: %v", args, err)
	}
	return string(out)
}

// standardSignature signs as Standard Webhooks does, with openssl: the key
// is the base64 after whsec_, the signature base64(HMAC-SHA256(key,
// id.timestamp.body)).
func standardSignature(t *testing.T, secret, id, ts, body string) string {
	key := opensslRaw(t, strings.TrimPrefix(secret, "whsec_"), "base64", "-d", "-A")
	mac := opensslRaw(t, id+"."+ts+"."+body, "dgst", "-sha256", "-mac", "HMAC", "-macopt", "hexkey:"+hex.EncodeToString([]byte(key)), "-binary")
	return "v1," + openssl(t, mac, "base64", "-A")
}

// TestWebhookIntake: each signature scheme against openssl's signatures;
// the mapping from nested JSON and from a form; every refusal with its
// status, writing nothing; idempotent repeats; the intake's rate bound.
func TestWebhookIntake(t *testing.T) {
	siteSecret := "whsec_" + openssl(t, "a shared secret of the site form", "base64", "-A")
	contactSecret := "contact-secret"
	t.Setenv("LR_INTAKE_TEST_SITE", siteSecret)
	t.Setenv("LR_INTAKE_TEST_CONTACT", contactSecret)
	e := startEdge(t, redistest.RealStore(t), server.Options{})
	wsName := redistest.Workspace(t)
	ws := "/v1/workspaces/" + wsName
	e.must("PUT", ws+"/config", yamlConfig(t, intakeConfig))
	site := "/v1/intake/" + wsName + "/site"

	body := `{"form": {"hidden": {"country": "DE", "utm": "winter"}, "answers": [
		{"field": {"ref": "name"}, "text": "Jana"},
		{"field": {"ref": "email"}, "email": "jana@example.de"},
		{"field": {"ref": "size"}, "number": 120}]}}`
	now := strconv.FormatInt(time.Now().Unix(), 10)
	signed := func(id, ts, b string) []string {
		return []string{"webhook-id", id, "webhook-timestamp", ts, "webhook-signature", standardSignature(t, siteSecret, id, ts, b)}
	}
	r := e.do("POST", site, body, signed("msg_1", now, body)...)
	if r.code != http.StatusOK || str(r.json(t), "assignment.rep_id") != "a" {
		t.Fatalf("site: %d %s", r.code, r.body)
	}
	lead := e.must("GET", ws+"/leads/msg_1", "")
	for path, want := range map[string]any{"assignment.lead.email": "jana@example.de", "assignment.lead.first_name": "Jana",
		"assignment.lead.country": "DE", "assignment.lead.employee_count": float64(120), "assignment.lead.source": "site_form",
		"assignment.lead.attributes.campaign": "winter"} {
		if got := get(lead, path); got != want {
			t.Errorf("%s = %v, want %v", path, got, want)
		}
	}
	// A repeat (a form tool retrying) is the same decision.
	if r := e.do("POST", site, body, signed("msg_1", now, body)...); r.code != http.StatusOK || get(r.json(t), "duplicate") != true {
		t.Fatalf("repeat: %d %s", r.code, r.body)
	}

	refused := func(name string, r reply, code int, msg string) {
		t.Helper()
		if r.code != code || !strings.Contains(string(r.body), msg) {
			t.Fatalf("%s: %d %s, want %d with %q", name, r.code, r.body, code, msg)
		}
	}
	notWritten := func(id string) {
		t.Helper()
		if r := e.do("GET", ws+"/leads/"+id, ""); r.code != http.StatusNotFound {
			t.Fatalf("lead %s was written: %d", id, r.code)
		}
	}
	h := signed("msg_2", now, body)
	h[5] = "v1," + openssl(t, "forged", "base64", "-A")
	refused("forged signature", e.do("POST", site, body, h...), http.StatusUnauthorized, "no v1 signature")
	notWritten("msg_2")
	tampered := strings.Replace(body, "Jana", "Eve", 1)
	refused("tampered body", e.do("POST", site, tampered, signed("msg_2", now, body)...), http.StatusUnauthorized, "matches")
	old := strconv.FormatInt(time.Now().Add(-6*time.Minute).Unix(), 10)
	refused("old timestamp", e.do("POST", site, body, signed("msg_2", old, body)...), http.StatusUnauthorized, "outside the tolerance of 5m0s")
	refused("no signature", e.do("POST", site, body), http.StatusUnauthorized, "missing webhook-id")
	notWritten("msg_2")

	// A body that does not map: the lead field and the body path named.
	bad := strings.Replace(body, `"number": 120`, `"number": {"value": 120}`, 1)
	refused("object for a count", e.do("POST", site, bad, signed("msg_3", now, bad)...), http.StatusBadRequest,
		"lead.employee_count")
	badEmail := strings.Replace(body, "jana@example.de", "not-an-address", 1)
	refused("invalid email", e.do("POST", site, badEmail, signed("msg_3", now, badEmail)...), http.StatusBadRequest,
		"from body path form.answers[field.ref=email].email")
	refused("invalid JSON", e.do("POST", site, `{"form": `, signed("msg_3", now, `{"form": `)...), http.StatusBadRequest, "invalid JSON at line 1")
	notWritten("msg_3")
	big := `{"pad": "` + strings.Repeat("x", 300<<10) + `"}`
	refused("too big", e.do("POST", site, big, signed("msg_4", now, big)...), http.StatusRequestEntityTooLarge, "262144 bytes")
	refused("unknown intake", e.do("POST", "/v1/intake/"+wsName+"/nope", body), http.StatusNotFound, "no intake")
	refused("wrong method", e.do("GET", site, ""), http.StatusMethodNotAllowed, "POST")

	// A form-encoded post, HMAC-SHA256 in hex (openssl dgst -hmac).
	form := "submission_id=cf-1&email=sam%40example.com&company=Example+Inc"
	sig := strings.Fields(openssl(t, form, "dgst", "-sha256", "-hmac", contactSecret, "-r"))[0]
	r = e.do("POST", "/v1/intake/"+wsName+"/contact", form, "Content-Type", "application/x-www-form-urlencoded", "X-Signature", sig)
	if r.code != http.StatusOK {
		t.Fatalf("contact: %d %s", r.code, r.body)
	}
	if got := e.must("GET", ws+"/leads/cf-1", ""); str(got, "assignment.lead.company") != "Example Inc" || str(got, "assignment.lead.email") != "sam@example.com" {
		t.Fatalf("contact lead: %v", got)
	}
	r = e.do("POST", "/v1/intake/"+wsName+"/contact", "submission_id=cf-2", "Content-Type", "application/x-www-form-urlencoded", "X-Signature", sig)
	refused("signature of another body", r, http.StatusUnauthorized, "does not match")
	notWritten("cf-2")
	r = e.do("POST", "/v1/intake/"+wsName+"/contact", "email=x%40y.io", "Content-Type", "application/x-www-form-urlencoded",
		"X-Signature", strings.Fields(openssl(t, "email=x%40y.io", "dgst", "-sha256", "-hmac", contactSecret, "-r"))[0])
	refused("no lead id", r, http.StatusBadRequest, "no lead id at body path submission_id")

	// Base64 with a sha256= prefix; the third request in a burst of two
	// is over the intake's rate.
	for i := 1; i <= 3; i++ {
		b := fmt.Sprintf(`{"id": "g%d", "contact": {"email": "g%d@example.com"}}`, i, i)
		mac := opensslRaw(t, b, "dgst", "-sha256", "-hmac", contactSecret, "-binary")
		r := e.do("POST", "/v1/intake/"+wsName+"/b64", b, "X-Hub-Signature", "sha256="+openssl(t, mac, "base64", "-A"))
		switch {
		case i <= 2 && r.code != http.StatusOK:
			t.Fatalf("b64 %d: %d %s", i, r.code, r.body)
		case i == 3:
			refused("over the rate", r, http.StatusTooManyRequests, "rate_per_second")
		}
	}
}
