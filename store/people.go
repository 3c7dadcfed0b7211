package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/leadrouter/leadrouter/engine"
)

// People: what the store keeps of a person is named by their person hash
// (engine.Person), never by their address: the sticky binding (keys.sticky)
// and the person index (keys.people), which finds a person's records for
// erasure. Records and sticky keys written before that existed are
// converted once per workspace by BackfillPeople, which also counts the
// records per state (the config hash's "n:<STATE>" fields, kept by every
// script from then on); the config hash's "people" field marks it done.

// peopleMark is the config hash field set once a workspace's records and
// sticky keys are named by person hashes.
const peopleMark = "people"

// BackfillPeople converts ws's records and sticky keys from before person
// hashes, once: a record with an address and no person hash gets one and
// its index entry (people_backfill.lua), and a sticky key named by an
// address is renamed to its person hash (kept as it was when one by that
// name exists already), and the per-state record counts are set to what
// the scan found (off by the transitions made during the scan, once).
// Several replicas may run it at once. It returns
// the records and keys converted; done reports a workspace finished
// before. Records a replica of an older version writes after the mark are
// not converted: upgrade every replica before the first one starts again.
func (s *Redis) BackfillPeople(ctx context.Context, ws, personKey string) (converted int, done bool, err error) {
	k := s.keys(ws)
	marked, err := s.client.HExists(ctx, k.config(), peopleMark).Result()
	if err != nil || marked {
		return 0, marked, s.fail("backfill_people", err)
	}
	node, err := s.masterOf(ctx, []string{k.config()})
	if err != nil {
		return 0, false, err
	}
	prefix := k.lead("")
	states := map[string]int{}
	err = scanRecords(ctx, node, k, []string{"email", "person", "state"}, func(batch []string, vals [][]any) error {
		keys := []string{k.people()}
		var req backfillArgs
		for i, v := range vals {
			if state, _ := v[2].(string); state != "" {
				states[state]++
			}
			email, _ := v[0].(string)
			if person, _ := v[1].(string); email == "" || person != "" {
				continue
			}
			keys = append(keys, batch[i])
			req.Leads = append(req.Leads, strings.TrimPrefix(batch[i], prefix))
			req.Persons = append(req.Persons, engine.Person(personKey, email))
		}
		if len(req.Leads) == 0 {
			return nil
		}
		r, err := s.call(ctx, ws, peopleBackfill, keys, req)
		if err != nil {
			return err
		}
		if r.code != codeOK {
			return r.unexpected(peopleBackfill)
		}
		converted += count(r.val(0))
		return nil
	})
	if err != nil {
		return converted, false, s.fail("backfill_people", err)
	}
	// Sticky keys named by an address (a person hash has no '@').
	base := k.sticky("")
	it := node.ScanType(ctx, 0, globEscape(base)+"*@*", scanPage, "string").Iterator()
	for it.Next(ctx) {
		old := it.Val()
		renamed, err := node.RenameNX(ctx, old, k.sticky(engine.Person(personKey, strings.TrimPrefix(old, base)))).Result()
		if err != nil {
			continue // expired since the scan saw it
		}
		if !renamed {
			node.Del(ctx, old) // the person has a newer binding
		}
		converted++
	}
	if err := it.Err(); err != nil {
		return converted, false, s.fail("backfill_people", err)
	}
	mark := []any{peopleMark, "1"}
	for _, st := range engine.States {
		mark = append(mark, stateCountField+string(st), states[string(st)])
	}
	return converted, false, s.fail("backfill_people", s.client.HSet(ctx, k.config(), mark...).Err())
}

// stateCountField starts the config hash fields counting records per
// state (lib_workspace.lua count_state).
const stateCountField = "n:"

// StoredLeads implements engine.Store: the per-state record counts.
func (s *Redis) StoredLeads(ctx context.Context, ws string) (map[engine.State]int64, error) {
	fields := make([]string, len(engine.States))
	for i, st := range engine.States {
		fields[i] = stateCountField + string(st)
	}
	vals, err := s.client.HMGet(ctx, s.keys(ws).config(), fields...).Result()
	if err != nil {
		return nil, s.fail("stored_leads", err)
	}
	out := make(map[engine.State]int64, len(vals))
	for i, v := range vals {
		str, _ := v.(string)
		out[engine.States[i]] = int64(count(str))
	}
	return out, nil
}

// PersonLeads implements engine.Store: a range of the person index.
func (s *Redis) PersonLeads(ctx context.Context, ws, person string, limit int) ([]string, error) {
	if person == "" {
		return nil, nil
	}
	entries, err := s.client.ZRangeByLex(ctx, s.keys(ws).people(), &redis.ZRangeBy{
		Min: "[" + person + "|", Max: "(" + person + "}", Count: int64(limit)}).Result()
	if err != nil {
		return nil, s.fail("person_leads", err)
	}
	ids := make([]string, len(entries))
	for i, e := range entries {
		ids[i] = strings.TrimPrefix(e, person+"|")
	}
	return ids, nil
}

// EraseLead implements engine.Store with lead_erase.lua.
func (s *Redis) EraseLead(ctx context.Context, ws, configID string, e *engine.Erasure, now time.Time) (bool, error) {
	k := s.keys(ws)
	a := e.Assignment
	leadKey := k.lead(a.LeadID)
	queue := leadKey
	if a.State == engine.StateQueued {
		queue = k.queue(a.PoolID)
	}
	keys := append(k.common(), leadKey, k.stickyOr(a.Person, leadKey), k.people(), k.recent(), queue)
	for _, p := range e.Ranked {
		keys = append(keys, k.rank(p.ID))
	}
	r, err := s.call(ctx, ws, leadErase, keys, eraseArgs{base: base{Cfg: configID, Now: now.UnixMilli()},
		Lead: a.LeadID, State: string(a.State), Rep: a.RepID, Pool: a.PoolID, Person: e.Person, Ranked: rankedArgs(e.Ranked)})
	if err != nil {
		return false, err
	}
	switch r.code {
	case codeOK:
		return false, nil
	case codeMoved:
		return true, nil
	case codeStale:
		return false, engine.ErrStaleConfig
	case codeNotFound:
		return false, fmt.Errorf("lead %q: %w", a.LeadID, engine.ErrNotFound)
	}
	return false, r.unexpected(leadErase)
}

// ForgetPerson implements engine.Store.
func (s *Redis) ForgetPerson(ctx context.Context, ws, person string) error {
	if person == "" {
		return nil
	}
	return s.fail("forget_person", s.client.Del(ctx, s.keys(ws).sticky(person)).Err())
}
