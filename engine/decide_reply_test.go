package engine_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/leadrouter/leadrouter/engine"
)

// TestDecisionMatchesRecord: the assignment AssignLead returns for a new
// lead is the one GetAssignment reads back from the record, field for
// field, whatever the route and outcome (the store builds the first from
// what it sent, the second from what it stored).
func TestDecisionMatchesRecord(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		f.apply(`
reps: [{id: owner}, {id: a}, {id: b}, {id: z}]
pools:
  - {id: team, members: [{rep_id: a}, {rep_id: b}]}
  - {id: nobody, members: [{rep_id: z}]}
rules:
  - {id: de, match: {countries: [DE]}, targets: [{pool_id: nobody}]}
  - {id: us, match: {countries: [US], industries: [software]}, targets: [{pool_id: team}]}
accounts: [{domain: acme.com, owner_rep_id: owner}]
settings: {sticky_window: 1h}
`)
		f.status("z", engine.StatusAway)
		score := int32(70)
		leads := []struct {
			engine.Lead
			state engine.State
			route string
		}{
			{engine.Lead{ID: "rule", Email: "Jane@Example.com", FirstName: "Jane", Country: "us", Industry: "Software",
				EmployeeCount: 250, Score: &score, Attributes: map[string]string{"utm_source": "ads"},
				SubmittedAt: time.Date(2026, 3, 2, 8, 59, 0, 0, time.FixedZone("CET", 3600))},
				engine.StateAssigned, engine.RouteRule},
			{engine.Lead{ID: "sticky", Email: "jane@example.com", Country: "US", Industry: "software"},
				engine.StateAssigned, engine.RouteStickyOwner},
			{engine.Lead{ID: "owner", Email: "joe@acme.com", Attributes: map[string]string{}},
				engine.StateAssigned, engine.RouteAccountOwner},
			{engine.Lead{ID: "queued", Email: "hans@example.de", Country: "DE"}, engine.StateQueued, engine.RouteRule},
			{engine.Lead{ID: "unroutable", Country: "FR"}, engine.StateUnroutable, ""},
		}
		for _, l := range leads {
			got := f.assign(l.Lead)
			if got.State != l.state || got.Route != l.route {
				t.Errorf("%s: %s by %q, want %s by %q", l.ID, got.State, got.Route, l.state, l.route)
			}
			want := f.get(l.ID)
			g, _ := json.Marshal(got)
			w, _ := json.Marshal(want)
			if string(g) != string(w) {
				t.Errorf("%s: AssignLead returned\n%s\nthe record reads\n%s", l.ID, g, w)
			}
		}
	})
}
