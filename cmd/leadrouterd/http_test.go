package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/leadrouter/leadrouter/internal/redistest"
	"github.com/leadrouter/leadrouter/internal/testpki"
)

func httpDo(t *testing.T, c *http.Client, method, url, body string, headers ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestHTTPEdge: leadrouterd on a real Redis serves the HTTP edge on
// --http-listen: health, the OpenAPI document, a decision and its record,
// the sample config's intake, and the HTTP metrics.
func TestHTTPEdge(t *testing.T) {
	ws := redistest.Workspace(t)
	// The sample config, its demo secrets' paths made absolute (they are
	// relative to the repository, and the daemon runs here).
	sample, err := os.ReadFile("../../examples/routing.yaml")
	if err != nil {
		t.Fatal(err)
	}
	root, _ := filepath.Abs("../..")
	cfg := filepath.Join(t.TempDir(), "routing.yaml")
	if err := os.WriteFile(cfg, []byte(strings.ReplaceAll(string(sample), "secret_file: examples/", "secret_file: "+root+"/examples/")), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, nil, "--redis-url", redistest.URL(t), "--config", cfg, "--workspace", ws)
	base := "http://" + d.httpAddr(t)
	c := &http.Client{Timeout: 10 * time.Second}
	for path, want := range map[string]string{"/healthz": "ok", "/readyz": "serving", "/openapi.json": `"swagger": "2.0"`} {
		if code, body := httpDo(t, c, "GET", base+path, ""); code != http.StatusOK || !strings.Contains(body, want) {
			t.Fatalf("%s: %d %s", path, code, body)
		}
	}
	code, body := httpDo(t, c, "POST", base+"/v1/workspaces/"+ws+"/leads:assign",
		`{"lead": {"id": "h-1", "country": "DE", "language": "de"}, "view": "ASSIGNMENT_VIEW_BASIC"}`)
	if code != http.StatusOK || !strings.Contains(body, `"rep_id":"felix"`) && !strings.Contains(body, `"rep_id": "felix"`) {
		t.Fatalf("assign: %d %s", code, body)
	}
	if code, body := httpDo(t, c, "GET", base+"/v1/workspaces/"+ws+"/leads/h-1", ""); code != http.StatusOK || !strings.Contains(body, "dach-german") {
		t.Fatalf("get: %d %s", code, body)
	}
	// The rep's side, the operator's reads, and a stream, each over HTTP.
	lead := base + "/v1/workspaces/" + ws + "/leads/h-1"
	for _, step := range []struct{ method, url, body, want string }{
		{"POST", lead + ":accept", `{"rep_id": "felix"}`, "ASSIGNMENT_STATE_ASSIGNED"},
		{"POST", lead + ":contact", `{"rep_id": "felix", "channel": "call"}`, "first_contact_at"},
		{"POST", lead + ":dispose", `{"rep_id": "felix", "disposition": "DISPOSITION_QUALIFIED"}`, "ASSIGNMENT_STATE_CLOSED"},
		{"POST", base + "/v1/workspaces/" + ws + "/leads:preview", `{"lead": {"id": "h-2", "country": "DE", "language": "de"}}`, "dach-german"},
		{"GET", base + "/v1/workspaces/" + ws + "/config", "", "dach-german"},
		{"GET", base + "/v1/workspaces/" + ws + "/reps/felix", "", "REP_STATUS_AVAILABLE"},
		{"POST", base + "/v1/workspaces/" + ws + "/reps/kai/status", `{"status": "REP_STATUS_AVAILABLE"}`, "previous_status"},
	} {
		if code, body := httpDo(t, c, step.method, step.url, step.body); code != http.StatusOK || !strings.Contains(body, step.want) {
			t.Fatalf("%s %s: %d %s", step.method, step.url, code, body)
		}
	}
	resp, err := c.Get(base + "/v1/workspaces/" + ws + "/events:watch?resume_from.epoch=&resume_from.offset=0-0")
	if err != nil {
		t.Fatal(err)
	}
	line := make([]byte, 4096)
	n, _ := resp.Body.Read(line)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(line[:n]), `"result"`) {
		t.Fatalf("events:watch: %d %s", resp.StatusCode, line[:n])
	}
	if code, body := httpDo(t, c, "GET", base+"/v1/workspaces/"+ws+"/leads/h-404", ""); code != http.StatusNotFound || !strings.Contains(body, `"code":5`) &&
		!strings.Contains(body, `"code": 5`) {
		t.Fatalf("unknown lead: %d %s", code, body)
	}
	// The sample's contact-form intake: HMAC-SHA256 of the body, hex.
	form := "submission_id=cf-h1&email=sam%40example.com&country=US"
	secret, err := os.ReadFile("../../examples/intake/contact-form.secret")
	if err != nil {
		t.Fatal(err)
	}
	mac := hmac.New(sha256.New, []byte(strings.TrimSpace(string(secret))))
	mac.Write([]byte(form))
	intake := base + "/v1/intake/" + ws + "/contact-form"
	for i, want := range []string{`"lead_id"`, `"duplicate"`} {
		code, body := httpDo(t, c, "POST", intake, form, "Content-Type", "application/x-www-form-urlencoded", "X-Signature", hex.EncodeToString(mac.Sum(nil)))
		if code != http.StatusOK || !strings.Contains(body, want) {
			t.Fatalf("intake post %d: %d %s", i, code, body)
		}
	}
	if code, body := httpDo(t, c, "POST", intake, form, "Content-Type", "application/x-www-form-urlencoded", "X-Signature", "00"); code != http.StatusUnauthorized {
		t.Fatalf("intake with a bad signature: %d %s", code, body)
	}
	if code, body := httpDo(t, c, "GET", "http://"+d.metrics+"/metrics", ""); code != http.StatusOK ||
		!strings.Contains(body, `leadrouter_http_requests_total{code="200",route="POST /v1/workspaces/{workspace}/leads:assign"} 1`) {
		t.Fatalf("metrics: %d\n%s", code, grepLines(body, "leadrouter_http"))
	}
	d.stop(t)
}

func grepLines(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestHTTPEdgeTLS: with --tls-cert, --tls-key and --tls-client-ca the HTTP
// listener is HTTPS with the gRPC listener's certificate and requires a
// client certificate; the token file's tokens work in Authorization.
func TestHTTPEdgeTLS(t *testing.T) {
	pki := testpki.New(t)
	tokens := filepath.Join(t.TempDir(), "tokens.yaml")
	tok := writeTokens(t, tokens)
	d := launch(t, nil, tlsCreds(t, pki, true), "--tls-cert", pki.ServerCert, "--tls-key", pki.ServerKey,
		"--tls-client-ca", pki.CA, "--token-file", tokens, "--config", "../../examples/routing.yaml")
	client := func(withCert bool) *http.Client {
		return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: clientTLS(t, pki, withCert)}}
	}
	addr := d.httpAddr(t)
	assign := "https://" + addr + "/v1/workspaces/default/leads:assign"
	lead := `{"lead": {"id": "https-1", "country": "DE"}}`
	if code, body := httpDo(t, client(true), "POST", assign, lead, "Authorization", "Bearer "+tok); code != http.StatusOK {
		t.Fatalf("mTLS with a token: %d %s", code, body)
	}
	if code, body := httpDo(t, client(true), "POST", assign, lead); code != http.StatusUnauthorized {
		t.Fatalf("mTLS without a token: %d %s", code, body)
	}
	req, _ := http.NewRequest("POST", assign, strings.NewReader(lead))
	if resp, err := client(false).Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("served without a client certificate: %d", resp.StatusCode)
	}
	if resp, err := (&http.Client{Timeout: 5 * time.Second}).Post("http://"+addr+"/healthz", "text/plain", nil); err == nil {
		code := resp.StatusCode
		resp.Body.Close()
		if code == http.StatusOK {
			t.Fatal("plain HTTP served by the TLS listener")
		}
	}
}
