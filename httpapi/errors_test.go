package httpapi_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/leadrouter/leadrouter/auth"
	"github.com/leadrouter/leadrouter/httpapi"
	"github.com/leadrouter/leadrouter/internal/redistest"
	"github.com/leadrouter/leadrouter/server"
)

// TestBadRequestsOverHTTP: every class of bad request has its status and
// a google.rpc.Status body saying what is wrong.
func TestBadRequestsOverHTTP(t *testing.T) {
	e := startEdge(t, redistest.RealStore(t), server.Options{})
	ws := "/v1/workspaces/" + redistest.Workspace(t)
	e.must("PUT", ws+"/config", yamlConfig(t, routesConfig))

	check := func(name string, r reply, code int, message string) map[string]any {
		t.Helper()
		if r.code != code {
			t.Fatalf("%s: %d %s, want %d", name, r.code, r.body, code)
		}
		body := r.json(t)
		if !strings.Contains(str(body, "message"), message) {
			t.Fatalf("%s: message %q lacks %q", name, str(body, "message"), message)
		}
		return body
	}
	check("unknown route", e.do("GET", "/v2/nothing", ""), http.StatusNotFound, "no route GET /v2/nothing")
	check("wrong method", e.do("DELETE", ws+"/leads:assign", ""), http.StatusMethodNotAllowed, "method DELETE is not allowed")
	check("invalid JSON", e.do("POST", ws+"/leads:assign", "{\"lead\": {\"id\": \"x\",\n  \"country\": US}}"), http.StatusBadRequest,
		"invalid JSON at line 2, column 14 (byte 34)")
	check("cut-short JSON", e.do("POST", ws+"/leads:assign", `{"lead": {"id": `), http.StatusBadRequest, "invalid JSON at line 1, column 17 (byte 16)")
	check("unknown field", e.do("POST", ws+"/leads:assign", `{"lead": {"id": "x", "favourite_colour": "red"}}`), http.StatusBadRequest,
		`unknown field "favourite_colour"`)
	// Field violations survive as google.rpc.BadRequest details.
	body := check("invalid lead", e.do("POST", ws+"/leads:assign", `{"lead": {"id": "", "email": "nope"}}`), http.StatusBadRequest, "lead.id")
	if str(body, "details.0.@type") != "type.googleapis.com/google.rpc.BadRequest" || str(body, "details.0.field_violations.0.field") == "" {
		t.Fatalf("violations: %v", body)
	}
	check("unknown lead", e.do("GET", ws+"/leads/nope", ""), http.StatusNotFound, "nope")
	check("body too big", e.do("POST", ws+"/leads:assign", `{"lead": {"id": "`+strings.Repeat("x", 1<<20)+`"}}`),
		http.StatusRequestEntityTooLarge, "over the limit of 1048576 bytes")
	check("URL too long", e.do("GET", ws+"/leads/"+strings.Repeat("x", httpapi.MaxURLBytes), ""), http.StatusRequestURITooLong, "over 8192 bytes")

	// A POST with no body is the empty request, not invalid JSON.
	check("no body", e.do("POST", ws+"/leads/nope:release", ""), http.StatusNotFound, "nope")
	// A browser's cross-site write is refused; a same-origin one is not.
	check("cross-site POST", e.do("POST", ws+"/leads:assign", `{"lead": {"id": "cs"}}`, "Origin", "http://evil.example"),
		http.StatusForbidden, "cross-site POST")
	check("cross-site fetch", e.do("POST", ws+"/leads:assign", `{"lead": {"id": "cs"}}`, "Sec-Fetch-Site", "cross-site"),
		http.StatusForbidden, "cross-site POST")
	if r := e.do("POST", ws+"/leads:assign", `{"lead": {"id": "cs"}}`, "Origin", e.url); r.code != http.StatusOK {
		t.Fatalf("same-origin POST: %d %s", r.code, r.body)
	}

	// Headers over the limit: net/http answers 431 before any handler.
	r := e.do("GET", ws+"/leads/x", "", "X-Big", strings.Repeat("h", httpapi.MaxHeaderBytes+8192))
	if r.code != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("big header: %d", r.code)
	}

	// A client that never finishes its headers is cut off.
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
	start := time.Now()
	_ = conn.SetReadDeadline(time.Now().Add(3 * httpapi.ReadHeaderTimeout))
	if _, err := io.ReadAll(conn); err != nil {
		t.Fatalf("slow client was not cut off: %v", err)
	}
	if took := time.Since(start); took > 2*httpapi.ReadHeaderTimeout {
		t.Fatalf("slow client cut off after %v", took)
	}
}

// TestTokensOverHTTP: the bearer tokens of gRPC, in Authorization: none
// or an unknown one is 401, a role that may not call the route 403.
func TestTokensOverHTTP(t *testing.T) {
	ws := redistest.Workspace(t)
	var made []auth.Entry
	tokens := map[string]string{}
	for _, en := range []auth.Entry{{Name: "admin", Workspace: ws, Role: auth.RoleAdmin}, {Name: "intake", Workspace: ws, Role: auth.RoleIntake}} {
		tok, en, err := auth.NewToken(en)
		if err != nil {
			t.Fatal(err)
		}
		tokens[en.Name] = tok
		made = append(made, en)
	}
	var file strings.Builder
	file.WriteString("tokens:\n")
	for _, en := range made {
		fmt.Fprintf(&file, "  - {sha256: %s, name: %s, workspace: %q, role: %s}\n", en.SHA256, en.Name, en.Workspace, en.Role)
	}
	set, err := auth.ParseFile(strings.NewReader(file.String()))
	if err != nil {
		t.Fatal(err)
	}
	e := startEdge(t, redistest.RealStore(t), server.Options{Auth: server.NewAuth(set, server.AuthOptions{})})
	path := "/v1/workspaces/" + ws
	if r := e.do("PUT", path+"/config", yamlConfig(t, routesConfig), "Authorization", "Bearer "+tokens["admin"]); r.code != http.StatusOK {
		t.Fatalf("admin apply: %d %s", r.code, r.body)
	}
	if r := e.do("POST", path+"/leads:assign", `{"lead": {"id": "t1"}}`); r.code != http.StatusUnauthorized {
		t.Fatalf("no token: %d %s", r.code, r.body)
	}
	if r := e.do("POST", path+"/leads:assign", `{"lead": {"id": "t1"}}`, "Authorization", "Bearer nope"); r.code != http.StatusUnauthorized {
		t.Fatalf("unknown token: %d %s", r.code, r.body)
	}
	if r := e.do("POST", path+"/leads:assign", `{"lead": {"id": "t1"}}`, "Authorization", "Bearer "+tokens["intake"]); r.code != http.StatusOK {
		t.Fatalf("intake assigns: %d %s", r.code, r.body)
	}
	if r := e.do("GET", path+"/config", "", "Authorization", "Bearer "+tokens["intake"]); r.code != http.StatusForbidden {
		t.Fatalf("intake reads the config: %d %s", r.code, r.body)
	}
	// Streams too, as SSE.
	if r := e.do("GET", path+"/events:watch", "", "Accept", "text/event-stream", "Authorization", "Bearer "+tokens["intake"]); r.code != http.StatusForbidden {
		t.Fatalf("intake watches events: %d %s", r.code, r.body)
	}
	// Health needs no token.
	if r := e.do("GET", "/healthz", ""); r.code != http.StatusOK {
		t.Fatalf("healthz: %d", r.code)
	}
}
