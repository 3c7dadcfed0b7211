package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
)

// What an apply changes (ConfigDiff) and what it does to the leads in
// flight (ConfigImpact), for a dry run and for the orphan check of a real
// apply.

// ConfigChange is one rep, pool, rule or account added, removed or changed
// by an apply, or the settings changed.
type ConfigChange struct {
	Section string   // reps, pools, rules, accounts or settings
	ID      string   // the element's id (a domain for accounts; "" for settings)
	Op      string   // added, removed or changed
	Fields  []string // changed: the top-level fields that differ, sorted
}

// ConfigDiff lists an apply's changes, section by section in config order.
type ConfigDiff struct {
	Changes []ConfigChange
}

// Summary is the diff in one line, e.g. "reps +1 -1, pools ~1".
func (d ConfigDiff) Summary() string {
	if len(d.Changes) == 0 {
		return "no changes"
	}
	type tally struct{ add, del, mod int }
	var order []string
	counts := map[string]*tally{}
	for _, c := range d.Changes {
		t := counts[c.Section]
		if t == nil {
			t = &tally{}
			counts[c.Section] = t
			order = append(order, c.Section)
		}
		switch c.Op {
		case "added":
			t.add++
		case "removed":
			t.del++
		default:
			t.mod++
		}
	}
	parts := make([]string, 0, len(order))
	for _, s := range order {
		t := counts[s]
		var p []string
		for _, x := range []struct {
			sign string
			n    int
		}{{"+", t.add}, {"-", t.del}, {"~", t.mod}} {
			if x.n > 0 {
				p = append(p, fmt.Sprintf("%s%d", x.sign, x.n))
			}
		}
		parts = append(parts, s+" "+strings.Join(p, " "))
	}
	return strings.Join(parts, ", ")
}

// DiffConfigs compares two configs (prev nil: none).
func DiffConfigs(prev, next *Config) ConfigDiff {
	if prev == nil {
		prev = &Config{}
	}
	var d ConfigDiff
	diffSection(&d, "reps", prev.Reps, next.Reps, func(r Rep) string { return r.ID })
	diffSection(&d, "pools", prev.Pools, next.Pools, func(p Pool) string { return p.ID })
	diffSection(&d, "rules", prev.Rules, next.Rules, func(r Rule) string { return r.ID })
	diffSection(&d, "accounts", prev.Accounts, next.Accounts, func(a Account) string { return a.Domain })
	diffSection(&d, "intakes", prev.Intakes, next.Intakes, func(in Intake) string { return in.ID })
	diffSection(&d, "sinks", prev.Sinks, next.Sinks, func(s Sink) string { return s.ID })
	if f := changedFields(prev.Settings, next.Settings); len(f) > 0 {
		d.Changes = append(d.Changes, ConfigChange{Section: "settings", Op: "changed", Fields: f})
	}
	return d
}

func diffSection[T any](d *ConfigDiff, section string, prev, next []T, id func(T) string) {
	old := make(map[string]T, len(prev))
	for _, x := range prev {
		old[id(x)] = x
	}
	seen := make(map[string]bool, len(next))
	for _, x := range next {
		k := id(x)
		seen[k] = true
		was, ok := old[k]
		switch {
		case !ok:
			d.Changes = append(d.Changes, ConfigChange{Section: section, ID: k, Op: "added"})
		default:
			if f := changedFields(was, x); len(f) > 0 {
				d.Changes = append(d.Changes, ConfigChange{Section: section, ID: k, Op: "changed", Fields: f})
			}
		}
	}
	for _, x := range prev {
		if k := id(x); !seen[k] {
			d.Changes = append(d.Changes, ConfigChange{Section: section, ID: k, Op: "removed"})
		}
	}
}

// changedFields names the top-level fields (as the config file spells
// them) whose values differ.
func changedFields(a, b any) []string {
	if reflect.DeepEqual(a, b) {
		return nil
	}
	var ma, mb map[string]json.RawMessage
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	_ = json.Unmarshal(ja, &ma)
	_ = json.Unmarshal(jb, &mb)
	var out []string
	for k, v := range ma {
		if w, ok := mb[k]; !ok || string(w) != string(v) {
			out = append(out, k)
		}
	}
	for k := range mb {
		if _, ok := ma[k]; !ok {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// MaxImpactLeads bounds the leads an impact lists (their counts are whole).
const MaxImpactLeads = 100

// HeldLead is a lead a rep holds (ASSIGNED) or is offered.
type HeldLead struct {
	LeadID, RepID string
	State         State
}

// QueuedLead is a lead queued on a pool.
type QueuedLead struct {
	LeadID, PoolID string
}

// PoolMember is a rep's membership of a pool.
type PoolMember struct {
	PoolID, RepID string
}

// ConfigImpact is what an apply would do to the leads in flight.
type ConfigImpact struct {
	// Held lists leads held or offered by reps the apply removes (at most
	// MaxImpactLeads; HeldTotal counts them all): orphans.
	Held      []HeldLead
	HeldTotal int
	// Queued lists leads queued on pools the apply removes (at most
	// MaxImpactLeads; QueuedTotal counts them all).
	Queued      []QueuedLead
	QueuedTotal int
	// Leaving lists members that leave a pool the apply keeps.
	Leaving []PoolMember
}

// Orphans reports whether the apply would leave leads with nobody to act
// on them.
func (i *ConfigImpact) Orphans() bool { return i.HeldTotal > 0 || i.QueuedTotal > 0 }

// removedReps lists the reps prev has and next lacks.
func removedReps(prev, next *Config) []string {
	keep := make(map[string]bool, len(next.Reps))
	for _, r := range next.Reps {
		keep[r.ID] = true
	}
	var gone []string
	for _, r := range prev.Reps {
		if !keep[r.ID] {
			gone = append(gone, r.ID)
		}
	}
	return gone
}

// impact works out what applying next over prev does to ws's leads. It
// reads the removed reps' open counts first and scans the workspace's
// records (Store.HeldLeads) only when one of them holds something.
func (e *Engine) impact(ctx context.Context, ws string, prev, next *Config) (*ConfigImpact, error) {
	out := &ConfigImpact{}
	if prev == nil {
		return out, nil
	}
	if gone := removedReps(prev, next); len(gone) > 0 {
		rt, err := e.store.RepRuntime(ctx, ws, gone, make([]int64, len(gone)))
		if err != nil {
			return nil, err
		}
		if slices.ContainsFunc(rt, func(r RepRuntime) bool { return r.Open > 0 }) {
			out.Held, out.HeldTotal, err = e.store.HeldLeads(ctx, ws, gone, MaxImpactLeads)
			if err != nil {
				return nil, err
			}
		}
	}
	nextPools := map[string]*Pool{}
	for i := range next.Pools {
		nextPools[next.Pools[i].ID] = &next.Pools[i]
	}
	var stats map[string]QueueStat // read once, and only when a pool goes
	for _, p := range prev.Pools {
		np := nextPools[p.ID]
		if np == nil {
			if stats == nil {
				var err error
				if stats, err = e.store.QueueStats(ctx, ws, 1); err != nil {
					return nil, err
				}
			}
			n := int(stats[p.ID].Queued)
			out.QueuedTotal += n
			if n > 0 && len(out.Queued) < MaxImpactLeads {
				ids, err := e.store.QueuedLeads(ctx, ws, p.ID, 0, MaxImpactLeads-len(out.Queued))
				if err != nil {
					return nil, err
				}
				for _, id := range ids {
					out.Queued = append(out.Queued, QueuedLead{LeadID: id, PoolID: p.ID})
				}
			}
			continue
		}
		stays := make(map[string]bool, len(np.Members)) // a set: pools have up to 10,000 members
		for _, m := range np.Members {
			stays[m.RepID] = true
		}
		for _, m := range p.Members {
			if !stays[m.RepID] {
				out.Leaving = append(out.Leaving, PoolMember{PoolID: p.ID, RepID: m.RepID})
			}
		}
	}
	return out, nil
}
