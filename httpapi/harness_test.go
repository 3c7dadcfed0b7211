package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/leadrouter/leadrouter/engine"
	"github.com/leadrouter/leadrouter/httpapi"
	"github.com/leadrouter/leadrouter/internal/redistest"
	"github.com/leadrouter/leadrouter/metrics"
	"github.com/leadrouter/leadrouter/server"
	"github.com/prometheus/client_golang/prometheus"
)

func TestMain(m *testing.M) { os.Exit(redistest.Main(m)) }

var quiet = slog.New(slog.DiscardHandler)

// edge is leadrouter's HTTP edge on a real HTTP server (httpapi.Server's
// limits) over one engine and gRPC server.
type edge struct {
	t   testing.TB
	url string
	reg *prometheus.Registry
	srv *server.Server
}

func startEdge(t testing.TB, st engine.Store, o server.Options) *edge {
	t.Helper()
	o.Logger, o.HealthInterval = quiet, 50*time.Millisecond
	reg := prometheus.NewRegistry()
	o.Metrics = metrics.New(reg, metrics.Options{})
	srv := server.New(engine.New(st, engine.WithLogger(quiet)), o)
	ctx, cancel := context.WithCancel(context.Background())
	go srv.WatchHealth(ctx)
	conn, err := srv.InProcess()
	if err != nil {
		t.Fatal(err)
	}
	h, err := httpapi.New(ctx, httpapi.Options{Conn: conn, Routing: srv.DirectRouting(), Admin: srv.DirectAdmin(), MaxBodyBytes: 1 << 20, Intakes: srv, Metrics: o.Metrics, Logger: quiet, Heartbeat: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(h)
	hs.Config = httpapi.Server(h, quiet)
	hs.Start()
	t.Cleanup(func() {
		hs.CloseClientConnections()
		hs.Close()
		conn.Close()
		cancel()
		srv.Stop()
	})
	return &edge{t: t, url: hs.URL, reg: reg, srv: srv}
}

// reply is an HTTP answer: its status, headers and body.
type reply struct {
	code   int
	header http.Header
	body   []byte
}

// json decodes the body into a map.
func (r reply) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body %q: %v", r.body, err)
	}
	return m
}

// do sends a request; body is JSON text ("" for none); headers are name,
// value pairs.
func (e *edge) do(method, path, body string, headers ...string) reply {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.url+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{code: resp.StatusCode, header: resp.Header, body: b}
}

// must sends a request that must answer 200 and returns its JSON.
func (e *edge) must(method, path, body string, headers ...string) map[string]any {
	e.t.Helper()
	r := e.do(method, path, body, headers...)
	if r.code != http.StatusOK {
		e.t.Fatalf("%s %s: %d %s", method, path, r.code, r.body)
	}
	return r.json(e.t)
}

// get walks a decoded JSON value by keys and indexes ("assignment.rep_id").
func get(v any, path string) any {
	for _, k := range strings.Split(path, ".") {
		switch x := v.(type) {
		case map[string]any:
			v = x[k]
		case []any:
			i := 0
			for _, c := range k {
				i = i*10 + int(c-'0')
			}
			if i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
	}
	return v
}

func str(v any, path string) string {
	s, _ := get(v, path).(string)
	return s
}

// yamlConfig turns a YAML routing config into the JSON body of PUT
// /config.
func yamlConfig(t testing.TB, yaml string) string {
	t.Helper()
	cfg, err := engine.ParseConfigYAML(strings.NewReader(yaml))
	if err != nil {
		t.Fatal(err)
	}
	b, err := protojsonMarshal(server.ConfigToProto(cfg))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	out.WriteString(`{"config":`)
	out.Write(b)
	out.WriteString(`}`)
	return out.String()
}
