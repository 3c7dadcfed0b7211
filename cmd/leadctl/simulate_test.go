package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSimulateCommand: `leadctl simulate -f` prints the replay as tables:
// counts per rule and pool, the leads that move with why, and the shares.
func TestSimulateCommand(t *testing.T) {
	addr := serve(t)
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	current := write("current.yaml", `
reps: [{id: ann}, {id: bob}, {id: cy}]
pools:
  - {id: east, accept_within: 0s, members: [{rep_id: ann}, {rep_id: bob}]}
  - {id: west, accept_within: 0s, members: [{rep_id: cy}]}
rules:
  - {id: us-east, match: {regions: [NY]}, targets: [{pool_id: east}]}
  - {id: us-west, match: {regions: [CA, WA]}, targets: [{pool_id: west}]}
`)
	proposed := write("proposed.yaml", `
reps: [{id: ann}, {id: bob}, {id: cy}]
pools:
  - {id: east, accept_within: 0s, members: [{rep_id: ann}, {rep_id: bob}]}
  - {id: west, accept_within: 0s, members: [{rep_id: cy}]}
rules:
  - {id: us-east, match: {regions: [NY, WA]}, targets: [{pool_id: east}]}
  - {id: us-west, match: {regions: [CA]}, targets: [{pool_id: west}]}
`)
	mustRun(t, addr, "apply", "-f", current)
	for _, l := range [][2]string{{"n1", "NY"}, {"c1", "CA"}, {"w1", "WA"}, {"w2", "WA"}, {"x1", "TX"}} {
		mustRun(t, addr, "assign", "--id", l[0], "--region", l[1])
	}
	out := mustRun(t, addr, "simulate", "-f", proposed)
	for _, want := range []string{
		"against 5 recent lead(s)",
		"not say which rep would take a lead",
		"us-east                1       3      +2",
		"us-west                3       1      -2",
		"(no rule: unroutable)  1       1      0\n",
		"unroutable: 1 before, 1 after (0 would become unroutable)",
		"2 lead(s) change rule or first pool:",
		"w2    us-west -> west  us-east -> east",
		"east  ROUND_ROBIN  ann  1       50.0%   1.5 of 3",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("simulate output lacks %q:\n%s", want, out)
		}
	}
	if _, err := leadctl(t, addr, "simulate", "-f", proposed, "--limit", "10001"); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Fatalf("--limit 10001: %v", err)
	}
}
