package httpapi_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	_ "github.com/leadrouter/leadrouter/gen/leadrouter/v1"
	"github.com/leadrouter/leadrouter/httpapi"
	"github.com/leadrouter/leadrouter/internal/redistest"
	"github.com/leadrouter/leadrouter/server"
)

func protojsonMarshal(m proto.Message) ([]byte, error) {
	return protojson.MarshalOptions{UseProtoNames: true}.Marshal(m)
}

const routesConfig = `
reps: [{id: a, email: a@x.io}, {id: b}, {id: c}]
pools:
  - {id: p, accept_within: 30s, members: [{rep_id: a}, {rep_id: b}]}
  - {id: q, accept_within: 0s, members: [{rep_id: c}]}
rules:
  - {id: fr, match: {countries: [FR]}, targets: [{pool_id: q}]}
  - {id: all, targets: [{pool_id: p}]}
`

// TestEveryRouteOverHTTP: each route's happy path over real HTTP, on the
// embedded store and a real Redis, with the answers the gRPC calls give.
func TestEveryRouteOverHTTP(t *testing.T) {
	for _, b := range redistest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			e := startEdge(t, b.Open(t), server.Options{})
			ws := "/v1/workspaces/" + redistest.Workspace(t)

			applied := e.must("PUT", ws+"/config", yamlConfig(t, routesConfig))
			if str(applied, "version") != "1" {
				t.Fatalf("apply: %v", applied)
			}
			if got := e.must("GET", ws+"/config", ""); str(got, "config.rules.1.id") != "all" || str(got, "version") != "1" {
				t.Fatalf("get config: %v", got)
			}
			if got := e.must("GET", ws+"/config?version=1", ""); str(got, "version") != "1" {
				t.Fatalf("get config v1: %v", got)
			}
			if got := e.must("GET", ws+"/config/versions", ""); str(got, "versions.0.version") != "1" {
				t.Fatalf("versions: %v", got)
			}
			if got := e.must("GET", ws+"/reps", ""); str(got, "reps.2.rep.id") != "c" {
				t.Fatalf("reps: %v", got)
			}
			if got := e.must("GET", ws+"/reps/a", ""); str(got, "rep.status") != "REP_STATUS_AVAILABLE" {
				t.Fatalf("rep: %v", got)
			}

			preview := e.must("POST", ws+"/leads:preview", `{"lead": {"id": "l0"}}`)
			if str(preview, "assignment.rep_id") != "a" {
				t.Fatalf("preview: %v", preview)
			}
			as := e.must("POST", ws+"/leads:assign", `{"lead": {"id": "l1", "email": "jane@acme.com"}, "view": "ASSIGNMENT_VIEW_BASIC"}`)
			if str(as, "assignment.rep_id") != "a" || str(as, "assignment.state") != "ASSIGNMENT_STATE_OFFERED" {
				t.Fatalf("assign: %v", as)
			}
			if got := e.must("GET", ws+"/leads/l1", ""); str(got, "assignment.lead.email") != "jane@acme.com" {
				t.Fatalf("get lead: %v", got)
			}
			if got := e.must("POST", ws+"/leads/l1:accept", `{"rep_id": "a"}`); str(got, "assignment.state") != "ASSIGNMENT_STATE_ASSIGNED" {
				t.Fatalf("accept: %v", got)
			}
			if got := e.must("POST", ws+"/leads/l1:contact", `{"rep_id": "a", "channel": "call"}`); str(got, "assignment.first_contact_at") == "" {
				t.Fatalf("contact: %v", got)
			}
			if got := e.must("POST", ws+"/leads/l1:dispose", `{"rep_id": "a", "disposition": "DISPOSITION_QUALIFIED"}`); str(got, "assignment.state") != "ASSIGNMENT_STATE_CLOSED" {
				t.Fatalf("dispose: %v", got)
			}
			e.must("POST", ws+"/leads:assign", `{"lead": {"id": "l2"}}`) // offered to b
			if got := e.must("POST", ws+"/leads/l2:reject", `{"rep_id": "b", "reason": "busy"}`); str(got, "assignment.rep_id") != "a" {
				t.Fatalf("reject: %v", got)
			}
			if got := e.must("POST", ws+"/leads/l2:requeue", `{"reason": "again"}`); str(got, "assignment.lead_id") != "l2" {
				t.Fatalf("requeue: %v", got)
			}
			if got := e.must("POST", ws+"/leads/l2:reassign", `{"rep_id": "c", "reason": "vip"}`); str(got, "assignment.rep_id") != "c" {
				t.Fatalf("reassign: %v", got)
			}
			if got := e.must("POST", ws+"/leads/l2:release", `{"reason": "done"}`); str(got, "assignment.state") != "ASSIGNMENT_STATE_CLOSED" {
				t.Fatalf("release: %v", got)
			}
			if got := e.must("POST", ws+"/reps/b/status", `{"status": "REP_STATUS_AWAY"}`); str(got, "previous_status") != "REP_STATUS_AVAILABLE" {
				t.Fatalf("status: %v", got)
			}
			sim := e.must("POST", ws+"/config:simulate", yamlConfig(t, strings.Replace(routesConfig, "countries: [FR]", "countries: [FR, DE]", 1)))
			if get(sim, "replayed") != float64(2) {
				t.Fatalf("simulate: %v", sim)
			}
			if got := e.must("POST", ws+"/config/versions/1:rollback", `{"dry_run": true}`); get(got, "applied.dry_run") != true {
				t.Fatalf("rollback: %v", got)
			}
			if got := e.must("DELETE", ws+"/leads/l2", ""); str(got, "state") != "ASSIGNMENT_STATE_CLOSED" {
				t.Fatalf("erase lead: %v", got)
			}
			if got := e.must("POST", ws+"/contacts:erase", `{"email": "jane@acme.com"}`); str(got, "erased") != "1" {
				t.Fatalf("erase contact: %v", got)
			}

			// The streams as JSON lines: the history from the start.
			first := streamLine(t, e.url+ws+"/events:watch?resume_from.epoch=&resume_from.offset=0-0")
			if str(first, "result.event.kind") != "EVENT_KIND_RESET" && str(first, "result.event.kind") != "EVENT_KIND_OFFERED" {
				t.Fatalf("events:watch: %v", first)
			}
			e.must("POST", ws+"/leads:assign", `{"lead": {"id": "l3", "country": "FR"}}`) // assigned to c
			rep := streamLine(t, e.url+ws+"/reps/c/assignments:watch?resume_from.epoch=&resume_from.offset=0-0")
			if str(rep, "result.event.rep_id") != "c" && str(rep, "result.event.kind") != "EVENT_KIND_RESET" {
				t.Fatalf("assignments:watch: %v", rep)
			}
		})
	}
}

// streamLine reads the first line of a JSON-lines stream.
func streamLine(t *testing.T, url string) map[string]any {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d", url, resp.StatusCode)
	}
	line, err := bufio.NewReader(resp.Body).ReadBytes('\n')
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	var m map[string]any
	if err := json.Unmarshal(line, &m); err != nil {
		t.Fatalf("line %q: %v", line, err)
	}
	return m
}

// TestOpenAPIListsEveryRPC: the OpenAPI document served has an operation
// for every RPC of every leadrouter service.
func TestOpenAPIListsEveryRPC(t *testing.T) {
	e := startEdge(t, redistest.Backends()[0].Open(t), server.Options{})
	r := e.do("GET", "/openapi.json", "")
	if r.code != http.StatusOK || string(r.body) != string(httpapi.OpenAPI()) {
		t.Fatalf("/openapi.json: %d", r.code)
	}
	var doc struct {
		Paths map[string]map[string]struct {
			OperationID string `json:"operationId"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(r.body, &doc); err != nil {
		t.Fatal(err)
	}
	ops := map[string]bool{}
	for _, methods := range doc.Paths {
		for _, op := range methods {
			ops[op.OperationID] = true
		}
	}
	n := 0
	protoregistry.GlobalFiles.RangeFilesByPackage("leadrouter.v1", func(fd protoreflect.FileDescriptor) bool {
		for i := 0; i < fd.Services().Len(); i++ {
			sd := fd.Services().Get(i)
			for j := 0; j < sd.Methods().Len(); j++ {
				n++
				id := fmt.Sprintf("%s_%s", sd.Name(), sd.Methods().Get(j).Name())
				if !ops[id] {
					t.Errorf("the OpenAPI document has no operation %s", id)
				}
			}
		}
		return true
	})
	if n < 20 {
		t.Fatalf("found only %d RPCs", n)
	}
}
