package engine_test

import (
	"fmt"
	"math/rand"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/leadrouter/leadrouter/engine"
)

// The eligible-member index (lib_index.lua) keeps a pool's AVAILABLE
// members who are inside their working hours in rank and the others in
// away, and a pick walks rank only. These
// tests drive random presence, capacity and working-hours changes and check
// after every step that the index holds exactly what a full scan of the
// members would find, and that every decision is the one a full scan in the
// strategy's order makes.

// indexMembers: r00..r11. Even members have max_open 2; every third works
// weekdays 09:00-12:00 UTC only.
func indexConfig(strategy engine.Strategy, policy engine.AbsencePolicy) string {
	var b strings.Builder
	b.WriteString("reps:\n")
	for i := 0; i < 12; i++ {
		fmt.Fprintf(&b, "  - id: r%02d\n", i)
		if i%2 == 0 {
			b.WriteString("    max_open: 2\n")
		}
		if i%3 == 0 {
			b.WriteString("    working_hours: {monday: [\"09:00-12:00\"], tuesday: [\"09:00-12:00\"], wednesday: [\"09:00-12:00\"], thursday: [\"09:00-12:00\"], friday: [\"09:00-12:00\"]}\n")
		}
	}
	fmt.Fprintf(&b, "pools:\n  - id: p\n    strategy: %s\n", strategy)
	if policy != "" {
		fmt.Fprintf(&b, "    absence_policy: %s\n    catch_up_limit: 3\n", policy)
	}
	b.WriteString("    members:\n")
	for i := 0; i < 12; i++ {
		fmt.Fprintf(&b, "      - rep_id: r%02d\n", i)
		if strategy == engine.StrategyWeightedRoundRobin {
			fmt.Fprintf(&b, "        weight: %d\n", 1+i%3)
		}
	}
	b.WriteString("rules:\n  - id: all\n    targets: [{pool_id: p}]\n")
	return b.String()
}

func TestPoolIndexMatchesFullScan(t *testing.T) {
	for _, c := range everyStrategy {
		t.Run(fmt.Sprintf("%s/%s", c.strategy, c.policy), func(t *testing.T) {
			t.Parallel()
			forEachBackend(t, func(t *testing.T, f *fixture) {
				// The fixture's clock starts on Monday 2026-03-02 09:00 UTC:
				// inside the hourly members' hours.
				f.apply(indexConfig(c.strategy, c.policy))
				var members []string
				for i := 0; i < 12; i++ {
					members = append(members, fmt.Sprintf("r%02d", i))
				}
				rr := newRRModel(c.policy == engine.CatchUp, 3, members...)
				ranks := newRankModel()
				presence := map[string]engine.RepStatus{}
				for _, m := range members {
					presence[m] = engine.StatusAvailable
				}
				open := map[string]int{}
				var leads []string
				holder := map[string]string{}
				inHours := true
				eligible := func(rep string) bool {
					var n int
					fmt.Sscanf(rep, "r%d", &n)
					if presence[rep] != engine.StatusAvailable {
						return false
					}
					if n%2 == 0 && open[rep] >= 2 {
						return false
					}
					return n%3 != 0 || inHours
				}
				// ranked: where the index should file a member.
				ranked := func(rep string) bool {
					var n int
					fmt.Sscanf(rep, "r%d", &n)
					return presence[rep] == engine.StatusAvailable && (n%3 != 0 || inHours)
				}
				rng := rand.New(rand.NewSource(int64(len(c.strategy)*7 + len(c.policy))))
				decisions := 0
				for step := 0; step < 400; step++ {
					switch op := rng.Intn(20); {
					case op < 8:
						want := fullScan(t, f, c.strategy, members, eligible, presence, rr, ranks)
						if want == "" {
							continue // it would queue; queued leads drain out of the model's sight
						}
						id := fmt.Sprint("l", step)
						if p, _, err := f.eng.PreviewAssignment(f.ctx, f.ws, lead(id)); err != nil || p.RepID != want {
							t.Fatalf("step %d: preview chose %v (%v), a full scan %q", step, p, err, want)
						}
						a := f.assign(lead(id))
						if a.State != engine.StateAssigned || a.RepID != want {
							t.Fatalf("step %d: assigned %s to %q, a full scan chose %q (%s)", step, a.State, a.RepID, want, a.Trace.Summary)
						}
						if c.strategy == engine.StrategyRoundRobin {
							rr.pickAbsent(eligible, func(r string) bool { return presence[r] != engine.StatusAvailable })
						}
						ranks.assigned(want)
						open[want]++
						leads, holder[id] = append(leads, id), want
						decisions++
					case op < 11 && len(leads) > 0:
						k := rng.Intn(len(leads))
						f.stRelease(leads[k])
						open[holder[leads[k]]]--
						ranks.open[holder[leads[k]]]--
						leads = append(leads[:k], leads[k+1:]...)
					case op < 18:
						rep := members[rng.Intn(len(members))]
						st := []engine.RepStatus{engine.StatusAvailable, engine.StatusAvailable, engine.StatusAway, engine.StatusOffline}[rng.Intn(4)]
						f.status(rep, st)
						presence[rep] = st
					default:
						// Out of or into the hourly members' hours, always forward.
						if inHours {
							f.clock.Advance(3 * time.Hour) // 12:00
						} else {
							f.clock.Advance(21 * time.Hour) // 09:00 the next day
						}
						inHours = !inHours
						if wd := f.clock.Now().Weekday(); wd == time.Saturday || wd == time.Sunday {
							f.clock.Advance(48 * time.Hour)
						}
						// Any operation files the calendars' changes first; a
						// preview writes nothing else.
						if _, _, err := f.eng.PreviewAssignment(f.ctx, f.ws, lead("probe")); err != nil {
							t.Fatal(err)
						}
					}
					checkIndex(t, f, step, members, ranked)
				}
				if decisions < 100 {
					t.Fatalf("only %d decisions", decisions)
				}
			})
		})
	}
}

// fullScan is the decision a scan of every member makes. Round robin and
// the ranked strategies follow their reference models over the whole
// history; weighted round robin takes the eligible member with the lowest
// stored pass.
func fullScan(t *testing.T, f *fixture, strategy engine.Strategy, members []string, eligible func(string) bool,
	presence map[string]engine.RepStatus, rr *rrModel, ranks *rankModel) string {
	t.Helper()
	switch strategy {
	case engine.StrategyRoundRobin:
		// A copy: the model advances only when the lead is assigned.
		cp := *rr
		cp.owed = map[string]int{}
		for k, v := range rr.owed {
			cp.owed[k] = v
		}
		return cp.pickAbsent(eligible, func(r string) bool { return presence[r] != engine.StatusAvailable })
	case engine.StrategyWeightedRoundRobin:
		pass := map[string]float64{}
		for _, set := range []string{"rank", "away"} {
			zs, err := f.st.Client().ZRangeWithScores(f.ctx, f.st.Prefix()+":{"+f.ws+"}:"+set+":p", 0, -1).Result()
			if err != nil {
				t.Fatal(err)
			}
			for _, z := range zs {
				pass[z.Member.(string)] = z.Score
			}
		}
		best := ""
		for _, m := range members {
			if eligible(m) && (best == "" || pass[m] < pass[best] || pass[m] == pass[best] && m < best) {
				best = m
			}
		}
		return best
	default:
		return ranks.pick(strategy, members, eligible)
	}
}

// checkIndex asserts rank and away partition the pool's members: every
// ranked one (AVAILABLE, inside its hours) in rank, every other one in away.
func checkIndex(t *testing.T, f *fixture, step int, members []string, ranked func(string) bool) {
	t.Helper()
	read := func(set string) []string {
		out, err := f.st.Client().ZRange(f.ctx, f.st.Prefix()+":{"+f.ws+"}:"+set+":p", 0, -1).Result()
		if err != nil {
			t.Fatal(err)
		}
		sort.Strings(out)
		return out
	}
	var wantRank, wantAway []string
	for _, m := range members {
		if ranked(m) {
			wantRank = append(wantRank, m)
		} else {
			wantAway = append(wantAway, m)
		}
	}
	if got := read("rank"); fmt.Sprint(got) != fmt.Sprint(wantRank) {
		t.Fatalf("step %d: rank %v, want the AVAILABLE members in hours %v", step, got, wantRank)
	}
	if got := read("away"); fmt.Sprint(got) != fmt.Sprint(wantAway) {
		t.Fatalf("step %d: away %v, want the others %v", step, got, wantAway)
	}
}
