package server_test

import (
	"fmt"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/leadrouter/leadrouter/engine"
	pb "github.com/leadrouter/leadrouter/gen/leadrouter/v1"
	"github.com/leadrouter/leadrouter/internal/redistest"
	"github.com/leadrouter/leadrouter/server"
)

// TestSimulateConfigOverGRPC: SimulateConfig answers the replay of the
// recent leads; an invalid config and a limit over 10,000 are
// INVALID_ARGUMENT with every problem.
func TestSimulateConfigOverGRPC(t *testing.T) {
	for _, b := range redistest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			in := start(t, b.Open(t))
			ws := redistest.Workspace(t)
			in.applyYAML(t, ws, `
reps: [{id: a}, {id: b}, {id: c}]
pools:
  - {id: east, members: [{rep_id: a}, {rep_id: b}]}
  - {id: west, strategy: WEIGHTED_ROUND_ROBIN, members: [{rep_id: b, weight: 1}, {rep_id: c, weight: 3}]}
rules:
  - {id: ny, match: {regions: [NY]}, targets: [{pool_id: east}]}
  - {id: rest, targets: [{pool_id: west}]}
`)
			for i, region := range []string{"NY", "NY", "CA", "WA"} {
				if _, err := in.routing.AssignLead(ctxT(t), &pb.AssignLeadRequest{Workspace: ws,
					Lead: &pb.Lead{Id: fmt.Sprintf("l%d", i), Region: region}}); err != nil {
					t.Fatal(err)
				}
			}
			proposed, err := engine.ParseConfigYAML(strings.NewReader(`
reps: [{id: a}, {id: b}, {id: c}]
pools:
  - {id: east, members: [{rep_id: a}, {rep_id: b}]}
  - {id: west, strategy: WEIGHTED_ROUND_ROBIN, members: [{rep_id: b, weight: 1}, {rep_id: c, weight: 3}]}
rules:
  - {id: ny, match: {regions: [NY, WA]}, targets: [{pool_id: east}]}
  - {id: rest, targets: [{pool_id: west}]}
`))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := in.admin.SimulateConfig(ctxT(t), &pb.SimulateConfigRequest{Workspace: ws, Config: server.ConfigToProto(proposed)})
			if err != nil {
				t.Fatal(err)
			}
			if resp.GetReplayed() != 4 || resp.GetChangedTotal() != 1 || resp.GetChanged()[0].GetLeadId() != "l3" ||
				resp.GetChanged()[0].GetBefore().GetRuleId() != "rest" || resp.GetChanged()[0].GetAfter().GetPoolId() != "east" ||
				len(resp.GetChanged()[0].GetAfter().GetRules()) == 0 || resp.GetNote() == "" || !resp.GetNewest().IsValid() {
				t.Fatalf("simulation %v", resp)
			}
			var rows []string
			for _, r := range resp.GetRules() {
				rows = append(rows, fmt.Sprintf("%s %d>%d", r.GetId(), r.GetBefore(), r.GetAfter()))
			}
			if got := strings.Join(rows, ", "); got != "ny 2>3, rest 2>1" {
				t.Fatalf("rules %s", got)
			}
			west := resp.GetShares()[1]
			if west.GetPoolId() != "west" || west.GetStrategy() != pb.Strategy_STRATEGY_WEIGHTED_ROUND_ROBIN || west.GetLeads() != 1 ||
				west.GetMembers()[1].GetShare() != 0.75 || west.GetMembers()[1].GetExpected() != 0.75 {
				t.Fatalf("west share %v", west)
			}

			_, err = in.admin.SimulateConfig(ctxT(t), &pb.SimulateConfigRequest{Workspace: ws})
			if v := violations(wantCode(t, err, codes.InvalidArgument)); v["config"] == "" {
				t.Fatalf("no config: %v", v)
			}
			bad := server.ConfigToProto(proposed)
			bad.Rules[0].Targets[0].PoolId = "nowhere"
			bad.Pools[1].Members[0].RepId = "ghost"
			_, err = in.admin.SimulateConfig(ctxT(t), &pb.SimulateConfigRequest{Workspace: ws, Config: bad, Limit: 10_001})
			v := violations(wantCode(t, err, codes.InvalidArgument))
			for _, f := range []string{"limit", "config.rules[0].targets[0].pool_id", "config.pools[1].members[0].rep_id"} {
				if v[f] == "" {
					t.Errorf("no violation at %s: %v", f, v)
				}
			}
		})
	}
}
