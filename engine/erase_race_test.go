package engine_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/leadrouter/leadrouter/engine"
)

// TestEraseUnderLoad hammers one workspace from three engines (three
// replicas) and 24 goroutines: leads of five people arrive, are offered,
// accepted, released, queued and drained while their people and single
// leads are erased. Afterwards the counts agree with the records exactly:
// every rep's open count is the leads it holds, the record count and the
// per-state counts are the records, each queue is its QUEUED leads, the person index is the records
// with an email, and no timer or sticky binding names an erased lead.
func TestEraseUnderLoad(t *testing.T) {
	forEachBackend(t, func(t *testing.T, f *fixture) {
		f.apply(`
settings: {sticky_window: 1h}
reps: [{id: a, max_open: 2}, {id: b, max_open: 2}, {id: c, max_open: 2}]
pools:
  - {id: p, members: [{rep_id: a}, {rep_id: b}]}
  - {id: o, accept_within: 10m, first_contact_within: 1h, members: [{rep_id: b}, {rep_id: c}]}
rules:
  - {id: web, match: {sources: [web]}, targets: [{pool_id: p}]}
  - {id: ads, match: {sources: [ads]}, targets: [{pool_id: o}]}
`)
		engines := []*engine.Engine{f.eng, f.another(), f.another()}
		people := []string{"p0@example.org", "p1@example.org", "p2@example.org", "p3@example.org", "p4@example.org"}
		sources := []string{"web", "ads", "fax"}
		const workers, ops = 24, 60
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				eng := engines[w%len(engines)]
				r := rand.New(rand.NewPCG(uint64(w), 7))
				for i := 0; i < ops; i++ {
					id := fmt.Sprintf("w%d-%d", w, r.IntN(ops/2)) // ids repeat: erased ids route anew
					var err error
					switch n := r.IntN(10); {
					case n < 5:
						_, _, err = eng.AssignLead(f.ctx, f.ws, engine.Lead{ID: id, Source: sources[r.IntN(len(sources))],
							Email: people[r.IntN(len(people))]})
					case n < 7:
						var a *engine.Assignment
						if a, err = eng.GetAssignment(f.ctx, f.ws, id); err == nil {
							switch a.State {
							case engine.StateOffered:
								_, err = eng.AcceptOffer(f.ctx, f.ws, id, a.RepID)
							case engine.StateAssigned:
								_, err = eng.ReleaseAssignment(f.ctx, f.ws, id, "done")
							}
						}
					case n < 8:
						_, err = eng.EraseContact(f.ctx, f.ws, people[r.IntN(len(people))])
					default:
						_, err = eng.EraseLead(f.ctx, f.ws, id)
					}
					// What another worker did first: the lead erased, closed,
					// accepted or moved to another rep meanwhile.
					if err != nil && !errors.Is(err, engine.ErrNotFound) && !errors.Is(err, engine.ErrNotAssigned) &&
						!errors.Is(err, engine.ErrWrongCaller) {
						errs <- fmt.Errorf("worker %d op %d on %s: %w", w, i, id, err)
						return
					}
				}
			}(w)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		// Erase two people at the end, so some erasures surely found leads.
		for _, p := range people[:2] {
			if _, err := f.eng.EraseContact(f.ctx, f.ws, p); err != nil {
				t.Fatal(err)
			}
		}
		checkWorkspaceAgrees(t, f)
	})
}

// checkWorkspaceAgrees checks the workspace's counts, queues, index, timers
// and sticky bindings against its records.
func checkWorkspaceAgrees(t *testing.T, f *fixture) {
	t.Helper()
	c := f.st.Client()
	base := f.st.Prefix() + ":{" + f.ws + "}:"
	keys := f.keys(base + "lead:*")
	held := map[string]int64{}
	states := map[engine.State]int64{}
	queued := map[string][]string{}
	var index []string
	records := map[string]bool{}
	for _, k := range keys {
		id := strings.TrimPrefix(k, base+"lead:")
		records[id] = true
		v := c.HMGet(f.ctx, k, "state", "rep", "pool", "person").Val()
		state, _ := v[0].(string)
		rep, _ := v[1].(string)
		pool, _ := v[2].(string)
		states[engine.State(state)]++
		switch state {
		case "ASSIGNED", "OFFERED":
			held[rep]++
		case "QUEUED":
			queued[pool] = append(queued[pool], id)
		}
		if person, _ := v[3].(string); person != "" {
			index = append(index, person+"|"+id)
		}
	}
	for _, rep := range []string{"a", "b", "c"} {
		open, _ := strconv.ParseInt(c.HGet(f.ctx, base+"open", rep).Val(), 10, 64)
		if open != held[rep] {
			t.Errorf("rep %s: open count %d, holds %d leads", rep, open, held[rep])
		}
	}
	if got := storedCount(t, f); got != strconv.Itoa(len(keys)) {
		t.Errorf("record count %s, %d records", got, len(keys))
	}
	counted, err := f.eng.StoredLeads(f.ctx, f.ws)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range engine.States {
		if counted[st] != states[st] {
			t.Errorf("%s: counted %d records, %d stored", st, counted[st], states[st])
		}
	}
	for _, pool := range []string{"p", "o"} {
		members := c.ZRange(f.ctx, base+"queue:"+pool, 0, -1).Val()
		if fmt.Sprint(sorted(members)) != fmt.Sprint(sorted(queued[pool])) {
			t.Errorf("queue %s holds %v, QUEUED records %v", pool, members, queued[pool])
		}
	}
	if got := c.ZRange(f.ctx, base+"people", 0, -1).Val(); fmt.Sprint(sorted(got)) != fmt.Sprint(sorted(index)) {
		t.Errorf("person index %d entries, %d records with a person", len(got), len(index))
	}
	for _, m := range c.ZRange(f.ctx, base+"timers", 0, -1).Val() {
		if _, id, ok := strings.Cut(m, "|"); ok && !records[id] {
			t.Errorf("timer %s names a lead with no record", m)
		}
	}
	sticky := f.keys(base + "sticky:*")
	for _, k := range sticky {
		parts := strings.Split(c.Get(f.ctx, k).Val(), "|")
		if len(parts) != 4 || !records[parts[2]] {
			t.Errorf("sticky binding %s = %v names a lead with no record", k, parts)
		}
	}
	t.Logf("%d records, held %v, queued %d+%d, %d index entries, %d sticky bindings",
		len(keys), held, len(queued["p"]), len(queued["o"]), len(index), len(sticky))
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}
