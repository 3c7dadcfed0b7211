package engine_test

import (
	"errors"
	"fmt"
	"math"
	"math/rand"
	"sort"
	"strings"
	"testing"

	"github.com/leadrouter/leadrouter/engine"
)

// Tests of the four pool strategies and the two absence policies, each
// decision compared with a reference model of the strategy's definition.

// --- config builders ---

// stMember names a pool member with its weight (0: unset, 1).
type stMember struct {
	rep    string
	weight int
}

// strategyPool is a config with one pool p of the given strategy, absence
// policy (empty: default) and catch-up limit (0: default), and a rule that
// sends every lead to it.
func strategyPool(strategy engine.Strategy, policy engine.AbsencePolicy, limit int, members ...stMember) string {
	var b strings.Builder
	b.WriteString("reps:\n")
	for _, m := range members {
		b.WriteString("  - id: " + m.rep + "\n")
	}
	b.WriteString("pools:\n")
	writePool(&b, "p", strategy, policy, limit, members)
	b.WriteString("rules:\n  - id: all\n    targets: [{pool_id: p}]\n")
	return b.String()
}

func writePool(b *strings.Builder, id string, strategy engine.Strategy, policy engine.AbsencePolicy, limit int, members []stMember) {
	fmt.Fprintf(b, "  - id: %s\n    strategy: %s\n", id, strategy)
	if policy != "" {
		fmt.Fprintf(b, "    absence_policy: %s\n", policy)
	}
	if limit > 0 {
		fmt.Fprintf(b, "    catch_up_limit: %d\n", limit)
	}
	b.WriteString("    members:\n")
	for _, m := range members {
		fmt.Fprintf(b, "      - rep_id: %s\n", m.rep)
		if m.weight > 0 {
			fmt.Fprintf(b, "        weight: %d\n", m.weight)
		}
	}
}

func stPlain(reps ...string) []stMember {
	out := make([]stMember, len(reps))
	for i, r := range reps {
		out[i] = stMember{rep: r}
	}
	return out
}

// --- reference models ---

// rrModel is ROUND_ROBIN by definition: the next available member after the
// one picked last. With CATCH_UP, every time the rotation passes over an
// absent member that member is owed one more turn (at most limit), and owed
// turns are served before the rotation, most owed first.
type rrModel struct {
	members []string
	cursor  int
	catchUp bool
	limit   int
	owed    map[string]int
}

func newRRModel(catchUp bool, limit int, members ...string) *rrModel {
	return &rrModel{members: members, cursor: -1, catchUp: catchUp, limit: limit, owed: map[string]int{}}
}

func (m *rrModel) pick(available func(string) bool) string {
	return m.pickAbsent(available, func(r string) bool { return !available(r) })
}

// pickAbsent is pick where only the members absent says (away, offline)
// are owed turns for being passed, not those ineligible otherwise.
func (m *rrModel) pickAbsent(available, absent func(string) bool) string {
	if m.catchUp {
		var owed []string
		for r, n := range m.owed {
			if n > 0 {
				owed = append(owed, r)
			}
		}
		// ZREVRANGE: most owed first, equal counts in reverse name order.
		sort.Slice(owed, func(i, j int) bool {
			if m.owed[owed[i]] != m.owed[owed[j]] {
				return m.owed[owed[i]] > m.owed[owed[j]]
			}
			return owed[i] > owed[j]
		})
		for _, r := range owed {
			if available(r) {
				m.owed[r]--
				return r
			}
		}
	}
	var passed []string
	for k := 1; k <= len(m.members); k++ {
		idx := (m.cursor + k) % len(m.members)
		r := m.members[idx]
		if available(r) {
			m.cursor = idx
			if m.catchUp {
				for _, s := range passed {
					if m.owed[s] < m.limit {
						m.owed[s]++
					}
				}
			}
			return r
		}
		if absent(r) {
			passed = append(passed, r)
		}
	}
	return ""
}

// strideUnit is lib_index.lua's STRIDE: a member's pass grows by
// strideUnit / weight per turn.
const strideUnit = 720720

// wrrModel is WEIGHTED_ROUND_ROBIN as stride scheduling: the available
// member with the lowest pass (then the lowest id) goes next and its pass
// grows by strideUnit/weight; members start half a stride in. A passed-over
// member forfeits its turn: its pass grows by its stride, and to at least
// the chosen member's pass. An absent member of a CATCH_UP pool keeps its
// pass instead, but never more than limit of its strides behind the chosen
// pass.
type wrrModel struct {
	weight  map[string]float64
	pass    map[string]float64
	catchUp bool
	limit   float64
}

func newWRRModel(catchUp bool, limit int, members ...stMember) *wrrModel {
	m := &wrrModel{weight: map[string]float64{}, pass: map[string]float64{}, catchUp: catchUp, limit: float64(limit)}
	for _, w := range members {
		m.weight[w.rep] = float64(max(w.weight, 1))
		// config_apply: a member of a new weighted pool joins half its
		// stride in, so the heavier members go first.
		m.pass[w.rep] = strideUnit / m.weight[w.rep] / 2
	}
	return m
}

func (m *wrrModel) pick(available func(string) bool) string {
	order := make([]string, 0, len(m.pass))
	for r := range m.pass {
		order = append(order, r)
	}
	sort.Slice(order, func(i, j int) bool {
		if m.pass[order[i]] != m.pass[order[j]] {
			return m.pass[order[i]] < m.pass[order[j]]
		}
		return order[i] < order[j]
	})
	var passed []string
	for _, r := range order {
		if !available(r) {
			passed = append(passed, r)
			continue
		}
		chosen := m.pass[r]
		m.pass[r] += strideUnit / m.weight[r]
		for _, s := range passed {
			stride := strideUnit / m.weight[s]
			if m.catchUp {
				m.pass[s] = math.Max(m.pass[s], chosen-m.limit*stride)
			} else {
				m.pass[s] = math.Max(m.pass[s]+stride, chosen)
			}
		}
		return r
	}
	return ""
}

// rankModel is LEAST_LOADED (fewest open assignments, then the oldest last
// assignment) and LONGEST_IDLE (the oldest last assignment), ties by rep id.
// last is the sequence number of the rep's last assignment, 0 for never.
type rankModel struct {
	open map[string]int
	last map[string]int
	seq  int
}

func newRankModel() *rankModel { return &rankModel{open: map[string]int{}, last: map[string]int{}} }

func (m *rankModel) pick(strategy engine.Strategy, members []string, available func(string) bool) string {
	best := ""
	for _, r := range members {
		if !available(r) {
			continue
		}
		if best == "" || m.less(strategy, r, best) {
			best = r
		}
	}
	return best
}

func (m *rankModel) less(strategy engine.Strategy, a, b string) bool {
	if strategy == engine.StrategyLeastLoaded && m.open[a] != m.open[b] {
		return m.open[a] < m.open[b]
	}
	if m.last[a] != m.last[b] {
		return m.last[a] < m.last[b]
	}
	return a < b
}

// assigned records an assignment to rep from any pool.
func (m *rankModel) assigned(rep string) {
	m.seq++
	m.open[rep]++
	m.last[rep] = m.seq
}

func stEveryone(string) bool { return true }

// stPresence tracks who is available, and sets it through the engine.
type stPresence map[string]bool

func (p stPresence) available(rep string) bool { return !p[rep] }

func (p stPresence) set(f *fixture, rep string, away bool) {
	f.t.Helper()
	p[rep] = away
	st := engine.StatusAvailable
	if away {
		st = engine.StatusAway
	}
	f.status(rep, st)
}

// stAssign assigns a lead and fails unless it was assigned.
func (f *fixture) stAssign(l engine.Lead) string {
	f.t.Helper()
	a := f.assign(l)
	if a.State != engine.StateAssigned {
		f.t.Fatalf("lead %s: state %s (%s)", l.ID, a.State, a.Reason)
	}
	return a.RepID
}

func (f *fixture) stRelease(leadID string) {
	f.t.Helper()
	if _, err := f.eng.ReleaseAssignment(f.ctx, f.ws, leadID, "done"); err != nil {
		f.t.Fatalf("release %s: %v", leadID, err)
	}
}

func stCount(seq []string) map[string]int {
	n := map[string]int{}
	for _, r := range seq {
		n[r]++
	}
	return n
}

// --- 1. weighted round robin ---

// TestWeightedRoundRobinFairness routes 10,000 leads with constant
// eligibility: every decision matches stride scheduling, each member's share
// is within one percentage point of its weight share overall and in every
// window of 1,000 consecutive decisions, and 3:1 is smoothly interleaved.
func TestWeightedRoundRobinFairness(t *testing.T) {
	cases := []struct {
		name    string
		members []stMember
	}{
		{"3:1", []stMember{{"a", 3}, {"b", 1}}},
		{"5:3:2", []stMember{{"a", 5}, {"b", 3}, {"c", 2}}},
	}
	const leads, window = 10000, 1000
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			forEachBackend(t, func(t *testing.T, f *fixture) {
				f.apply(strategyPool(engine.StrategyWeightedRoundRobin, "", 0, c.members...))
				model := newWRRModel(false, 0, c.members...)
				total := 0
				share := map[string]float64{}
				for _, m := range c.members {
					total += m.weight
				}
				for _, m := range c.members {
					share[m.rep] = float64(m.weight) / float64(total)
				}
				seq := make([]string, leads)
				for i := range seq {
					seq[i] = f.stAssign(lead(fmt.Sprint("w", i)))
					if want := model.pick(stEveryone); seq[i] != want {
						t.Fatalf("decision %d: got %s, want %s (stride scheduling); so far %v", i, seq[i], want, seq[max(0, i-12):i])
					}
				}
				got := stCount(seq)
				for _, m := range c.members {
					if s := float64(got[m.rep]) / leads; math.Abs(s-share[m.rep]) > 0.01 {
						t.Errorf("%s: %d of %d leads (%.4f), weight share %.4f", m.rep, got[m.rep], leads, s, share[m.rep])
					}
				}
				// Every window of 1,000 consecutive decisions, by a sliding count.
				win := stCount(seq[:window])
				for start := 0; ; start++ {
					for _, m := range c.members {
						if s := float64(win[m.rep]) / window; math.Abs(s-share[m.rep]) > 0.01 {
							t.Fatalf("window [%d,%d): %s has %d (%.3f), weight share %.3f", start, start+window, m.rep, win[m.rep], s, share[m.rep])
						}
					}
					if start+window == leads {
						break
					}
					win[seq[start]]--
					win[seq[start+window]]++
				}
				if c.name != "3:1" {
					return
				}
				// Smooth: never the light member twice in a row, never more
				// than 3 of the heavy one in a row, the light one in every
				// window of 4.
				run := 0
				for i, r := range seq {
					if r == "a" {
						run++
					} else {
						run = 0
					}
					if run > 3 {
						t.Fatalf("decisions %d-%d: %d of a in a row: %v", i-run+1, i, run, seq[i-run+1:i+1])
					}
					if i > 0 && r == "b" && seq[i-1] == "b" {
						t.Fatalf("decisions %d-%d: b twice in a row", i-1, i)
					}
					if i >= 3 && stCount(seq[i-3 : i+1])["b"] != 1 {
						t.Fatalf("decisions %d-%d: %v, want exactly one b", i-3, i, seq[i-3:i+1])
					}
				}
				// The first 8 decisions are one 4-pattern twice, and the
				// pattern is an interleave, not a block of a then b.
				first, second := strings.Join(seq[:4], " "), strings.Join(seq[4:8], " ")
				if first != second || first == "a a a b" {
					t.Fatalf("first 8 decisions %v, want an interleave such as a a b a repeated", seq[:8])
				}
			})
		})
	}
}

// --- 2, 3. least loaded and longest idle ---

// rankedWithSide is a config with pool p of the given strategy (members
// pMembers) and a round-robin pool side (members sideMembers) that takes the
// leads whose source is "side": reps in both pools get leads from outside p.
func rankedWithSide(strategy engine.Strategy, pMembers, sideMembers []string, awayAtStart ...string) string {
	var b strings.Builder
	seen := map[string]bool{}
	away := map[string]bool{}
	for _, r := range awayAtStart {
		away[r] = true
	}
	b.WriteString("reps:\n")
	for _, r := range append(append([]string{}, pMembers...), sideMembers...) {
		if seen[r] {
			continue
		}
		seen[r] = true
		b.WriteString("  - id: " + r + "\n")
		if away[r] {
			b.WriteString("    initial_status: AWAY\n")
		}
	}
	b.WriteString("pools:\n")
	writePool(&b, "p", strategy, "", 0, stPlain(pMembers...))
	writePool(&b, "side", engine.StrategyRoundRobin, "", 0, stPlain(sideMembers...))
	b.WriteString(`rules:
  - id: side
    match: {sources: [side]}
    targets: [{pool_id: side}]
  - id: all
    targets: [{pool_id: p}]
`)
	return b.String()
}

func sideLead(id string) engine.Lead { return engine.Lead{ID: id, Source: "side"} }

// TestLeastLoadedExactOrder: the member with the fewest open assignments,
// ties to the one idle longest; open counts raised through another pool
// count too, although p's stored score for that rep is not updated then.
func TestLeastLoadedExactOrder(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		f.apply(rankedWithSide(engine.StrategyLeastLoaded, []string{"a", "b", "c"}, []string{"b"}))
		type step struct {
			release []string // leads released before the decision
			side    bool     // route through pool side (always b)
			id      string
			want    string
			why     string
		}
		steps := []step{
			{id: "p1", want: "a", why: "nobody has a lead: a, b, c tie at 0 open, never assigned"},
			{id: "p2", want: "b", why: "b and c have 0 open"},
			{id: "p3", want: "c", why: "c has 0 open"},
			{id: "p4", want: "a", why: "1 open each: a idle longest"},
			{id: "p5", want: "b", why: "b (1 open, p2) idle longer than c (p3)"},
			{release: []string{"p1"}, id: "p6", want: "c", why: "a and c have 1 open; c (p3) idle longer than a (p4), though a sorts first"},
			{id: "p7", want: "a", why: "a has 1 open, b and c 2"},
			{release: []string{"p2", "p5"}, id: "p8", want: "b", why: "b has 0 open"},
			// b (1 open) is the least loaded in p; two leads through side
			// raise it to 3 without touching p's score for b.
			{side: true, id: "s1", want: "b"},
			{side: true, id: "s2", want: "b"},
			{id: "p9", want: "c", why: "b has 3 open through side; a and c have 2, c idle longer (p6 before p7)"},
			{id: "p10", want: "a", why: "a has 2 open, b and c 3"},
			{id: "p11", want: "b", why: "3 open each: b's last lead (s2) is older than c's (p9) and a's (p10)"},
			{release: []string{"s1", "s2", "p8"}, id: "p12", want: "b", why: "releasing s1, s2 (assigned through side) and p8 lowers b to 1 open"},
			{release: []string{"p9"}, id: "p13", want: "c", why: "b and c have 2 open, a 3; c's last lead (p9, released since) is older than b's (p12)"},
		}
		for _, s := range steps {
			for _, id := range s.release {
				f.stRelease(id)
			}
			l := lead(s.id)
			if s.side {
				l = sideLead(s.id)
			}
			if got := f.stAssign(l); got != s.want {
				t.Fatalf("%s: got %s, want %s: %s", s.id, got, s.want, s.why)
			}
		}
	})
}

// TestLongestIdleExactOrder: the member whose last assignment is oldest; one
// that never had a lead goes first; a lead from another pool sends a rep to
// the back; open counts do not matter.
func TestLongestIdleExactOrder(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		f.apply(rankedWithSide(engine.StrategyLongestIdle, []string{"a", "b", "c", "d"}, []string{"c"}, "d"))
		type step struct {
			back, release []string
			side          bool
			id, want, why string
		}
		steps := []step{
			{id: "p1", want: "a", why: "nobody had a lead (d is away)"},
			{id: "p2", want: "b"},
			{id: "p3", want: "c"},
			{id: "p4", want: "a", why: "a's last lead is the oldest"},
			{id: "p5", want: "b"},
			{back: []string{"d"}, id: "p6", want: "d", why: "d never had a lead, though c (p3) is idle longest of the others"},
			{side: true, id: "s1", want: "c"},
			{release: []string{"p2", "p5", "p6"}, id: "p7", want: "a", why: "c went to the back (s1); a (p4) is oldest; b's and d's releases do not matter"},
			{id: "p8", want: "b", why: "b (p5)"},
			{id: "p9", want: "d", why: "d (p6)"},
			{id: "p10", want: "c", why: "c (s1)"},
			{id: "p11", want: "a"},
		}
		for _, s := range steps {
			for _, r := range s.back {
				f.status(r, engine.StatusAvailable)
			}
			for _, id := range s.release {
				f.stRelease(id)
			}
			l := lead(s.id)
			if s.side {
				l = sideLead(s.id)
			}
			if got := f.stAssign(l); got != s.want {
				t.Fatalf("%s: got %s, want %s: %s", s.id, got, s.want, s.why)
			}
		}
	})
}

// TestRankedStrategiesMatchModel mixes decisions in p, leads through
// another pool to reps of p, releases and presence changes at random, and
// compares every decision with the model.
func TestRankedStrategiesMatchModel(t *testing.T) {
	for _, strategy := range []engine.Strategy{engine.StrategyLeastLoaded, engine.StrategyLongestIdle} {
		t.Run(string(strategy), func(t *testing.T) {
			t.Parallel()
			forEachBackend(t, func(t *testing.T, f *fixture) {
				pMembers, sideMembers := []string{"a", "b", "c", "d"}, []string{"c", "d", "x"}
				f.apply(rankedWithSide(strategy, pMembers, sideMembers))
				ranks, side := newRankModel(), newRRModel(false, 0, sideMembers...)
				away := stPresence{}
				anyone := func(members []string) bool {
					for _, r := range members {
						if away.available(r) {
							return true
						}
					}
					return false
				}
				var open []string // ids of assigned leads
				holder := map[string]string{}
				rng := rand.New(rand.NewSource(11))
				decisions := 0
				for i := 0; decisions < 300; i++ {
					id := fmt.Sprint("r", i)
					switch op := rng.Intn(20); {
					case op < 9 && anyone(pMembers):
						want := ranks.pick(strategy, pMembers, away.available)
						got := f.stAssign(lead(id))
						if got != want {
							t.Fatalf("step %d: p chose %s, want %s (open %v, last %v, away %v)", i, got, want, ranks.open, ranks.last, away)
						}
						ranks.assigned(got)
						open, holder[id] = append(open, id), got
						decisions++
					case op < 13 && anyone(sideMembers):
						want := side.pick(away.available)
						if got := f.stAssign(sideLead(id)); got != want {
							t.Fatalf("step %d: side chose %s, want %s", i, got, want)
						}
						ranks.assigned(want)
						open, holder[id] = append(open, id), want
					case op < 18 && len(open) > 0:
						k := rng.Intn(len(open))
						f.stRelease(open[k])
						ranks.open[holder[open[k]]]--
						open = append(open[:k], open[k+1:]...)
					default:
						r := append(pMembers, "x")[rng.Intn(5)]
						away.set(f, r, !away[r])
					}
				}
			})
		})
	}
}

// --- 4, 5. absence policies ---

// absenceRun routes pre leads, then sets e AWAY for exactly away decisions,
// brings it back and routes after more: the sequence of decisions, each
// checked against pick (the model) as it goes.
func absenceRun(t *testing.T, f *fixture, pre, away, after int, pick func(available func(string) bool) string) []string {
	t.Helper()
	absent := stPresence{}
	var seq []string
	route := func(n int) {
		for i := 0; i < n; i++ {
			want := pick(absent.available)
			got := f.stAssign(lead(fmt.Sprint("l", len(seq))))
			seq = append(seq, got)
			if got != want {
				t.Fatalf("decision %d: got %s, want %s; sequence %v", len(seq)-1, got, want, seq)
			}
		}
	}
	route(pre)
	absent.set(f, "e", true)
	route(away)
	absent.set(f, "e", false)
	route(after)
	return seq
}

// TestRoundRobinAbsencePolicies: pool a..e, e AWAY for exactly 50 decisions.
// KEEP_POSITION: e is skipped while away and takes its normal turn after,
// no burst. CATCH_UP: every time the rotation passes e while it is away, e
// is owed a turn (at most catch_up_limit); on return it takes them first,
// then the rotation continues where it stood.
func TestRoundRobinAbsencePolicies(t *testing.T) {
	reps := []string{"a", "b", "c", "d", "e"}
	// a b c, then e away for 50: the rotation d a b c repeats and passes e
	// on every d -> a, 13 times (decisions 4, 8, ..., 52): the last of
	// the 50 is a (decision 52), so the rotation resumes at b.
	const pre, away, after = 3, 50, 17
	rotation := func(start string, n int) []string {
		i := strings.Index("abcde", start)
		out := make([]string, n)
		for k := range out {
			out[k] = reps[(i+k)%5]
		}
		return out
	}
	awaySeq := strings.Repeat("d a b c ", 12) + "d a"
	cases := []struct {
		name   string
		policy engine.AbsencePolicy
		limit  int
		burst  int // catch-up turns e gets on return
	}{
		{"KEEP_POSITION", engine.KeepPosition, 0, 0},
		{"CATCH_UP limit 3", engine.CatchUp, 3, 3},
		// All 13 turns the rotation passed e by, not 50/5 = 10: with e
		// away a round is 4 decisions long (see lib_index.lua's
		// pick_round_robin, which counts the passes).
		{"CATCH_UP limit 20", engine.CatchUp, 20, 13},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			forEachBackend(t, func(t *testing.T, f *fixture) {
				f.apply(strategyPool(engine.StrategyRoundRobin, c.policy, c.limit, stPlain(reps...)...))
				model := newRRModel(c.policy == engine.CatchUp, c.limit, reps...)
				seq := absenceRun(t, f, pre, away, after, model.pick)
				// The same, written out.
				want := append([]string{"a", "b", "c"}, strings.Fields(awaySeq)...)
				for range c.burst {
					want = append(want, "e")
				}
				want = append(want, rotation("b", after-c.burst)...)
				if fmt.Sprint(seq) != fmt.Sprint(want) {
					t.Fatalf("sequence\n got %v\nwant %v", seq, want)
				}
				back := seq[pre+away:]
				run := 0
				for run < len(back) && back[run] == "e" {
					run++
				}
				if run != c.burst {
					t.Fatalf("e took %d leads in a row on return, want %d: %v", run, c.burst, back)
				}
				if n := stCount(back)["e"]; n != c.burst+stCount(rotation("b", after-c.burst))["e"] {
					t.Fatalf("e took %d of the %d leads after its return", n, after)
				}
			})
		})
	}
}

// TestWeightedAbsencePolicies: e AWAY for 43 decisions in a weighted pool.
// KEEP_POSITION: e forfeits its turns while away and gets no burst on
// return: its share of the next 40 decisions, and of the first 10, is its
// weight share (plus one at most). That holds too when e outweighs all the
// others together ("heavy"), so that its pass grows more slowly than the
// pool's while it is skipped. CATCH_UP with limit L: e keeps its pass while
// away, at most L turns behind; on return it gets L turns in a row (L+1
// when its own turn is next anyway), about L more than its weight share of
// the turns the others get.
func TestWeightedAbsencePolicies(t *testing.T) {
	light := []stMember{{"a", 3}, {"b", 2}, {"c", 1}, {"e", 2}}
	heavy := []stMember{{"a", 1}, {"b", 1}, {"c", 1}, {"e", 4}}
	const pre, away, after = 5, 43, 40
	cases := []struct {
		name    string
		members []stMember
		policy  engine.AbsencePolicy
		limit   int
	}{
		{"KEEP_POSITION", light, engine.KeepPosition, 0},
		{"KEEP_POSITION heavy", heavy, engine.KeepPosition, 0},
		{"CATCH_UP 3", light, engine.CatchUp, 3},
		{"CATCH_UP 6", light, engine.CatchUp, 6},
		{"CATCH_UP 3 heavy", heavy, engine.CatchUp, 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			forEachBackend(t, func(t *testing.T, f *fixture) {
				f.apply(strategyPool(engine.StrategyWeightedRoundRobin, c.policy, c.limit, c.members...))
				var we, wOthers float64
				for _, m := range c.members {
					if m.rep == "e" {
						we = float64(m.weight)
					} else {
						wOthers += float64(m.weight)
					}
				}
				share := we / (we + wOthers)
				model := newWRRModel(c.policy == engine.CatchUp, c.limit, c.members...)
				seq := absenceRun(t, f, pre, away, after, model.pick)
				if n := stCount(seq[pre : pre+away])["e"]; n != 0 {
					t.Fatalf("e took %d leads while away", n)
				}
				back := seq[pre+away:]
				e := stCount(back)["e"]
				run := 0
				for run < len(back) && back[run] == "e" {
					run++
				}
				if c.policy == engine.KeepPosition {
					if math.Abs(float64(e)-share*after) > 1 {
						t.Fatalf("e took %d of %d leads after its return, weight share %.1f: %v", e, after, share*after, back)
					}
					if n := stCount(back[:10])["e"]; float64(n) > share*10+1 {
						t.Fatalf("burst on return: e took %d of the first 10 leads, weight share %.1f: %v", n, share*10, back)
					}
					return
				}
				if run < c.limit || run > c.limit+1 {
					t.Fatalf("e took %d leads in a row on return, want %d (+1 for its own turn): %v", run, c.limit, back)
				}
				if c.members[3].weight > 2 {
					return // e's own turns come in runs of 4: too coarse for the count below
				}
				// e's turns beyond its weight share of the others' turns.
				extra := float64(e) - float64(after-e)*we/wOthers
				if L := float64(c.limit); extra < L-1 || extra > L+1 {
					t.Fatalf("e took %d of %d leads after its return: %.2f extra turns, want %d±1: %v", e, after, extra, c.limit, back)
				}
			})
		})
	}
}

// --- 6. preview ---

// stSnapshot reads every routing key of the workspace: what a preview must
// leave as it was.
func (f *fixture) stSnapshot(pools ...string) string {
	f.t.Helper()
	c := f.st.Client()
	base := f.st.Prefix() + ":{" + f.ws + "}:"
	var b strings.Builder
	names := []string{"presence", "open", "daily", "assigned", "last_assigned", "seq", "timers", "queued_pools", "status_changed"}
	for _, p := range pools {
		names = append(names, "pool:"+p, "rank:"+p, "owed:"+p, "queue:"+p)
	}
	for _, n := range names {
		key := base + n
		typ, err := c.Type(f.ctx, key).Result()
		if err != nil {
			f.t.Fatal(err)
		}
		var v any
		switch typ {
		case "hash":
			v, err = c.HGetAll(f.ctx, key).Result()
		case "zset":
			v, err = c.ZRangeWithScores(f.ctx, key, 0, -1).Result()
		case "set":
			var m []string
			m, err = c.SMembers(f.ctx, key).Result()
			sort.Strings(m)
			v = m
		case "string":
			v, err = c.Get(f.ctx, key).Result()
		}
		if err != nil {
			f.t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s %s %v\n", n, typ, v)
	}
	n, err := c.XLen(f.ctx, base+"events").Result()
	if err != nil {
		f.t.Fatal(err)
	}
	fmt.Fprintf(&b, "events %d\n", n)
	return b.String()
}

func stCandidates(a *engine.Assignment) string {
	var b strings.Builder
	for _, t := range a.Trace.Targets {
		fmt.Fprintf(&b, "[%s %s prev=%s:", t.PoolID, t.Strategy, t.PreviousRepID)
		for _, c := range t.Candidates {
			fmt.Fprintf(&b, " %s/%v/%s", c.RepID, c.Chosen, c.SkipReason)
		}
		b.WriteString("]")
	}
	return b.String()
}

// everyStrategy is each strategy with each absence policy it has.
var everyStrategy = []struct {
	strategy engine.Strategy
	policy   engine.AbsencePolicy
}{
	{engine.StrategyRoundRobin, engine.KeepPosition},
	{engine.StrategyRoundRobin, engine.CatchUp},
	{engine.StrategyWeightedRoundRobin, engine.KeepPosition},
	{engine.StrategyWeightedRoundRobin, engine.CatchUp},
	{engine.StrategyLeastLoaded, ""},
	{engine.StrategyLongestIdle, ""},
}

// TestPreviewMatchesAssignEveryStrategy: before every decision, with
// absences, releases and leads through another pool mixed in, a preview
// names the rep the assignment then takes, with the same trace, and
// changes nothing: a second preview agrees and every routing key is as it
// was.
func TestPreviewMatchesAssignEveryStrategy(t *testing.T) {
	for _, c := range everyStrategy {
		t.Run(strings.TrimSpace(string(c.strategy)+" "+string(c.policy)), func(t *testing.T) {
			t.Parallel()
			forEachBackend(t, func(t *testing.T, f *fixture) {
				members := []stMember{{"a", 3}, {"b", 2}, {"c", 1}, {"d", 1}}
				var b strings.Builder
				b.WriteString("reps: [{id: a}, {id: b}, {id: c}, {id: d}]\npools:\n")
				writePool(&b, "p", c.strategy, c.policy, 2, members)
				writePool(&b, "side", engine.StrategyRoundRobin, "", 0, stPlain("c"))
				b.WriteString("rules:\n  - {id: side, match: {sources: [side]}, targets: [{pool_id: side}]}\n  - {id: all, targets: [{pool_id: p}]}\n")
				f.apply(b.String())
				var assigned []string
				for i := 0; i < 40; i++ {
					switch i {
					case 5:
						f.status("d", engine.StatusAway)
					case 8, 20:
						f.stAssign(sideLead(fmt.Sprint("side", i))) // c gets a lead outside p
					case 12:
						f.status("b", engine.StatusOffline)
					case 16:
						f.status("d", engine.StatusAvailable)
					case 22:
						f.status("b", engine.StatusAvailable)
						f.stRelease(assigned[0])
						f.stRelease(assigned[3])
					case 30:
						f.stRelease(assigned[10])
					}
					id := fmt.Sprint("l", i)
					before := f.stSnapshot("p", "side")
					p1, _, err := f.eng.PreviewAssignment(f.ctx, f.ws, lead(id))
					if err != nil {
						t.Fatal(err)
					}
					if after := f.stSnapshot("p", "side"); after != before {
						t.Fatalf("decision %d: the preview changed state:\nbefore\n%s\nafter\n%s", i, before, after)
					}
					p2, _, err := f.eng.PreviewAssignment(f.ctx, f.ws, lead(id))
					if err != nil {
						t.Fatal(err)
					}
					if _, err := f.eng.GetAssignment(f.ctx, f.ws, id); !errors.Is(err, engine.ErrNotFound) {
						t.Fatalf("decision %d: lead recorded by a preview: %v", i, err)
					}
					a := f.assign(lead(id))
					if a.State != engine.StateAssigned || p1.State != engine.StateAssigned {
						t.Fatalf("decision %d: preview %s, assign %s", i, p1.State, a.State)
					}
					if p1.RepID != a.RepID || p2.RepID != a.RepID {
						t.Fatalf("decision %d: previews %s, %s; assigned %s", i, p1.RepID, p2.RepID, a.RepID)
					}
					if stCandidates(p1) != stCandidates(a) {
						t.Fatalf("decision %d: preview trace %s, assignment trace %s", i, stCandidates(p1), stCandidates(a))
					}
					assigned = append(assigned, id)
				}
			})
		})
	}
}

// --- 7. changing a pool's strategy ---

// TestStrategyChangeByReapply re-applies the config with the pool's
// strategy changed, ROUND_ROBIN -> WEIGHTED_ROUND_ROBIN -> LEAST_LOADED ->
// ROUND_ROBIN, and checks that each strategy routes by its definition from
// the first lead after the apply.
func TestStrategyChangeByReapply(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		members := []stMember{{"a", 2}, {"b", 1}, {"c", 1}}
		reps := []string{"a", "b", "c"}
		n := 0
		route := func(k int) []string {
			var seq []string
			for range k {
				seq = append(seq, f.stAssign(lead(fmt.Sprint("l", n))))
				n++
			}
			return seq
		}
		// ROUND_ROBIN (weights ignored): a b c a.
		f.apply(strategyPool(engine.StrategyRoundRobin, "", 0, members...))
		if got := fmt.Sprint(route(4)); got != "[a b c a]" {
			t.Fatalf("round robin: %s", got)
		}
		// WEIGHTED_ROUND_ROBIN: the pool starts afresh (the rank set is
		// rebuilt), then stride scheduling, 2:1:1.
		f.apply(strategyPool(engine.StrategyWeightedRoundRobin, "", 0, members...))
		model := newWRRModel(false, 0, members...)
		seq := route(400)
		for i, got := range seq {
			if want := model.pick(stEveryone); got != want {
				t.Fatalf("stMember decision %d: got %s, want %s: %v", i, got, want, seq[:i+1])
			}
		}
		if c := stCount(seq); c["a"] != 200 || c["b"] != 100 || c["c"] != 100 {
			t.Fatalf("stMember 2:1:1 over 400: %v", c)
		}
		// Open now: a 202, b 101, c 101 (nothing released).
		open := map[string]int{"a": 202, "b": 101, "c": 101}
		for _, r := range reps {
			st, err := f.eng.Rep(f.ctx, f.ws, r)
			if err != nil {
				t.Fatal(err)
			}
			if st.Open != int64(open[r]) {
				t.Fatalf("%s: %d open, want %d", r, st.Open, open[r])
			}
		}
		// LEAST_LOADED: b and c alternate (by idle time) until they have
		// 202 open like a, then a, idle longest, goes first.
		f.apply(strategyPool(engine.StrategyLeastLoaded, "", 0, members...))
		ranks := newRankModel()
		for _, r := range reps {
			ranks.open[r] = open[r]
		}
		// Last assignments so far, oldest first, from the weighted run.
		lastSeen := map[string]int{}
		for i, r := range seq {
			lastSeen[r] = i
		}
		byLast := append([]string{}, reps...)
		sort.Slice(byLast, func(i, j int) bool { return lastSeen[byLast[i]] < lastSeen[byLast[j]] })
		for _, r := range byLast {
			ranks.assigned(r)
			ranks.open[r]--
		}
		seq = route(203)
		for i, got := range seq {
			want := ranks.pick(engine.StrategyLeastLoaded, reps, stEveryone)
			if got != want {
				t.Fatalf("least loaded decision %d: got %s, want %s: %v", i, got, want, seq[:i+1])
			}
			ranks.assigned(got)
		}
		c := stCount(seq)
		if c["a"] != 1 || c["b"] != 101 || c["c"] != 101 || seq[202] != "a" {
			t.Fatalf("least loaded over 203 from open a 202, b 101, c 101: %v", c)
		}
		// Back to ROUND_ROBIN: the rotation continues (all three in turn).
		f.apply(strategyPool(engine.StrategyRoundRobin, "", 0, members...))
		seq = route(9)
		if c := stCount(seq); c["a"] != 3 || c["b"] != 3 || c["c"] != 3 || seq[0] == seq[1] || seq[1] == seq[2] {
			t.Fatalf("round robin again: %v", seq)
		}
		for i := 3; i < len(seq); i++ {
			if seq[i] != seq[i-3] {
				t.Fatalf("round robin again: %v", seq)
			}
		}
	})
}
