package engine_test

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"testing"

	"github.com/leadrouter/leadrouter/engine"
	"github.com/redis/go-redis/v9"
)

// store/testdata/v1/records.json holds records and pool state exactly as the
// store wrote them before skip codes and the eligible-member index: three
// records (their pick traces carry reasons as text) and two pools with no
// index ('ix'), a round-robin pool with no rank and a weighted pool with
// every member in rank. It was written by this config, on Monday
// 2026-03-02 09:00 UTC.
const v1Config = `
reps:
  - {id: a, max_open: 1}
  - {id: b}
  - {id: c, initial_status: AWAY}
  - {id: d, working_hours: {saturday: ["09:00-10:00"]}}
pools:
  - {id: p, members: [{rep_id: c}, {rep_id: d}, {rep_id: a}, {rep_id: b}]}
  - {id: w, strategy: WEIGHTED_ROUND_ROBIN, members: [{rep_id: c, weight: 2}, {rep_id: a}, {rep_id: b}]}
rules:
  - {id: web, match: {sources: [web]}, targets: [{pool_id: w}]}
  - {id: all, targets: [{pool_id: p}]}
`

// loadV1 applies v1Config and writes the fixture's keys (hashes, and the
// rank sets as member -> score) over what the apply wrote.
func loadV1(t *testing.T, f *fixture, only ...string) {
	t.Helper()
	f.apply(v1Config)
	raw, err := os.ReadFile("../store/testdata/v1/records.json")
	if err != nil {
		t.Fatal(err)
	}
	var keys map[string]map[string]string
	if err := json.Unmarshal(raw, &keys); err != nil {
		t.Fatal(err)
	}
	c := f.st.Client()
	for _, name := range only {
		key := f.st.Prefix() + ":{" + f.ws + "}:" + name
		if err := c.Del(f.ctx, key).Err(); err != nil {
			t.Fatal(err)
		}
		for field, v := range keys[name] {
			if name[:5] == "rank:" {
				var score float64
				if err := json.Unmarshal([]byte(v), &score); err != nil {
					t.Fatal(err)
				}
				err = c.ZAdd(f.ctx, key, redis.Z{Score: score, Member: field}).Err()
			} else {
				err = c.HSet(f.ctx, key, field, v).Err()
			}
			if err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestV1RecordsReadable: records written before skip codes read back whole,
// their text reasons kept (and the calendar's "back at" added as for new
// ones).
func TestV1RecordsReadable(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		loadV1(t, f, "lead:first", "lead:second", "lead:weighted")
		first := f.get("first")
		if first.State != engine.StateAssigned || first.RepID != "a" || first.PoolID != "p" || first.Lead.Email != "jane@acme.com" {
			t.Fatalf("first: %+v", first)
		}
		if got := candidates(first.Trace.Targets[0]); got != "c (away), d (outside working hours, back Sat 09:00 UTC), a (chosen)" {
			t.Fatalf("first's trace: %s", got)
		}
		if w := f.get("weighted"); candidates(w.Trace.Targets[0]) != "c (away), a (at capacity 1/1), b (chosen)" || w.RuleID != "web" {
			t.Fatalf("weighted's trace: %s (rule %s)", candidates(w.Trace.Targets[0]), w.RuleID)
		}
		second := f.get("second")
		if second.State != engine.StateClosed || second.CloseReason != "done" || len(second.History) != 3 || second.History[2].Kind != "released" {
			t.Fatalf("second: %s %q %+v", second.State, second.CloseReason, second.History)
		}
	})
}

// TestV1PoolsIndexedOnFirstPick: a pool applied before the index existed is
// indexed by its first pick, which decides as before.
func TestV1PoolsIndexedOnFirstPick(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		loadV1(t, f, "pool:p", "pool:w", "rank:p", "rank:w", "away:p", "away:w")
		// p's cursor is at b (index 3): c is away, d outside hours, a next.
		if a := f.assign(lead("n1")); a.RepID != "a" {
			t.Fatalf("p chose %q: %s", a.RepID, a.Trace.Summary)
		}
		// w: c (lowest pass) is away; a and b tie, a is at capacity now.
		if a := f.assign(engine.Lead{ID: "n2", Source: "web"}); a.RepID != "b" {
			t.Fatalf("w chose %q: %s", a.RepID, a.Trace.Summary)
		}
		// d, AVAILABLE but outside its hours, is filed away with c.
		for set, want := range map[string]string{"rank:p": "[a b]", "away:p": "[c d]", "rank:w": "[a b]", "away:w": "[c]"} {
			got, err := f.st.Client().ZRange(f.ctx, f.st.Prefix()+":{"+f.ws+"}:"+set, 0, -1).Result()
			if err != nil {
				t.Fatal(err)
			}
			sort.Strings(got)
			if fmt.Sprint(got) != want {
				t.Errorf("%s: %v, want %s", set, got, want)
			}
		}
	})
}

func candidates(te engine.TargetEvaluation) string {
	s := ""
	for i, c := range te.Candidates {
		if i > 0 {
			s += ", "
		}
		if c.Chosen {
			s += c.RepID + " (chosen)"
		} else {
			s += c.RepID + " (" + c.SkipReason + ")"
		}
	}
	return s
}

// TestV1PreviewOnUnindexedPool: a preview, which writes nothing, finds a
// pool written before the index; the engine loads the config again, which
// indexes it, and the preview answers what the assignment then does.
func TestV1PreviewOnUnindexedPool(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		loadV1(t, f, "pool:p", "pool:w", "rank:p", "rank:w", "away:p", "away:w")
		p, _, err := f.eng.PreviewAssignment(f.ctx, f.ws, lead("n1"))
		if err != nil || p.RepID != "a" {
			t.Fatalf("preview: %v %v", p, err)
		}
		if ix, _ := f.st.Client().HGet(f.ctx, f.st.Prefix()+":{"+f.ws+"}:pool:p", "ix").Result(); ix != "1" {
			t.Fatalf("pool p not indexed by the config load: ix %q", ix)
		}
		if a := f.assign(lead("n1")); a.RepID != "a" {
			t.Fatalf("assign chose %q after the preview chose a", a.RepID)
		}
	})
}

// TestCatchUpAcrossTheIndex: a CATCH_UP member away when its pool is
// indexed is owed the turns the rotation passes it from then on.
func TestCatchUpAcrossTheIndex(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		f.apply(strategyPool(engine.StrategyRoundRobin, engine.CatchUp, 3, stPlain("a", "b", "c")...))
		base := f.st.Prefix() + ":{" + f.ws + "}:"
		c := f.st.Client()
		// The pool as a version before the index left it, with c away.
		if err := c.HDel(f.ctx, base+"pool:p", "ix", "abs").Err(); err != nil {
			t.Fatal(err)
		}
		if err := c.Del(f.ctx, base+"rank:p", base+"away:p").Err(); err != nil {
			t.Fatal(err)
		}
		if err := c.HSet(f.ctx, base+"presence", "c", "AWAY").Err(); err != nil {
			t.Fatal(err)
		}
		var seq []string
		for i := 0; i < 4; i++ {
			seq = append(seq, f.stAssign(lead(fmt.Sprint("l", i))))
		}
		f.status("c", engine.StatusAvailable)
		seq = append(seq, f.stAssign(lead("back")))
		// a b (c passed) a b; c is owed the one pass and goes first.
		if fmt.Sprint(seq) != "[a b a b c]" {
			t.Fatalf("sequence %v, want [a b a b c]", seq)
		}
	})
}

// TestRepairIndexes: presence set by something that does not keep the
// index (a replica of an older version) leaves an AVAILABLE rep in away;
// the sweeper's repair files it in rank again.
func TestRepairIndexes(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		f.apply(onePool("a", "b"))
		f.status("b", engine.StatusAway)
		key := f.st.Prefix() + ":{" + f.ws + "}:presence"
		if err := f.st.Client().HSet(f.ctx, key, "b", "AVAILABLE").Err(); err != nil {
			t.Fatal(err)
		}
		if got := f.stAssign(lead("l1")) + f.stAssign(lead("l2")); got != "aa" {
			t.Fatalf("before the repair: %s, want aa (b is in away)", got)
		}
		if err := f.eng.RepairIndexes(f.ctx); err != nil {
			t.Fatal(err)
		}
		if got := f.stAssign(lead("l3")); got != "b" {
			t.Fatalf("after the repair: %s, want b", got)
		}
	})
}
