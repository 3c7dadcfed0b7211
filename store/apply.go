package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/leadrouter/leadrouter/engine"
	"github.com/redis/go-redis/v9"
)

// A config apply runs as a plan of small steps, so that no single script
// call of a large apply (10,000 reps, 10,000 rules) holds Redis for long and
// every other workspace's calls are served between the steps:
//
//  1. The plan (one JSON step a list element) and the new body are written
//     to keys of the apply's own, expiring; config_begin checks the apply
//     is based on the current config, keeps them, and sets the config's id
//     to "applying:<nonce>". No caller holds that id, so
//     every routing script of the workspace answers STALE, and the engine,
//     loading the config again, waits for the apply (LoadConfig).
//  2. config_chunk carries out one step after another: the reps' presence
//     and profiles, the time zones, the pools (merged with their rotation
//     state and filed in their index), the removed pools and reps.
//  3. config_commit sets the new version and id, and renames the body into
//     place, at once.
//
// So an apply is all or nothing as callers see it: they route on the old
// config until the commit and on the new one after it. The plan is complete
// from the first call on, so an apply always finishes: when its applier
// stops, the lease it renews at each step runs out and the next replica
// that loads the config carries on from the step due (finishApply).

// applyLease is how long an applier may take for its next step before
// another replica carries on with the plan (a variable for tests).
var applyLease = 5 * time.Second

const (
	applyingPrefix = "applying:"
	// Step sizes: a step's script call stays well under 10 ms.
	applyRepsPerStep    = 500
	applyMembersPerStep = 250
	applyPoolsPerStep   = 100
)

// A caller waiting for an apply looks again after applyWait, doubling up
// to applyWaitMax: one read of the config hash each time.
const (
	applyWait    = 2 * time.Millisecond
	applyWaitMax = 32 * time.Millisecond
)

// applyStaging is how long a staged plan and body live before config_begin
// keeps them (an applier that stops in between leaves nothing behind).
const applyStaging = 10 * time.Minute

// applyStep is one step of a plan, as config_chunk.lua reads it.
type applyStep struct {
	Kind      string      `json:"k"`
	Reps      [][3]any    `json:"reps,omitempty"`
	Zones     [][2]string `json:"zones,omitempty"`
	Pools     []applyPool `json:"pools,omitempty"`
	GonePools []string    `json:"gone_pools,omitempty"`
	GoneReps  []string    `json:"gone_reps,omitempty"`
}

// applyPool is one pool of a pools step.
type applyPool struct {
	ID       string `json:"id"`
	Strategy string `json:"strategy"`
	Policy   string `json:"policy"`
	Limit    int32  `json:"limit"`
	policyArg
	Members [][3]any `json:"members"`
}

// keys are the script keys of a step after the common ones and the plan:
// each pool's, laid out as a routing target's.
func (st *applyStep) keys(k keys, dst []string) []string {
	for _, p := range st.Pools {
		dst = k.target(dst, p.ID)
	}
	for _, id := range st.GonePools {
		dst = k.target(dst, id)
	}
	return dst
}

// planApply returns the steps that turn prev (nil: none) into next, in the
// order they must run: presence before the pools that file members by it,
// removals last.
func planApply(prev, next *engine.Config, now time.Time) []*applyStep {
	var steps []*applyStep
	profiles, zones := engine.Profiles(next, now)
	for i := 0; i == 0 || i < len(next.Reps); i += applyRepsPerStep {
		st := &applyStep{Kind: "reps"}
		for j := i; j < min(i+applyRepsPerStep, len(next.Reps)); j++ {
			r := next.Reps[j]
			st.Reps = append(st.Reps, [3]any{r.ID, string(r.InitialStatus), encodeProfile(&profiles[j])})
		}
		steps = append(steps, st)
	}
	zs := &applyStep{Kind: "zones"}
	for _, z := range zones {
		zs.Zones = append(zs.Zones, [2]string{z.Zone, encodeOffsets(&z)})
	}
	steps = append(steps, zs)
	var cur *applyStep
	members := 0
	for _, p := range next.Pools {
		if cur == nil || len(cur.Pools) >= applyPoolsPerStep || members+len(p.Members) > applyMembersPerStep && len(cur.Pools) > 0 {
			cur, members = &applyStep{Kind: "pools"}, 0
			steps = append(steps, cur)
		}
		ap := applyPool{ID: p.ID, Strategy: string(p.Strategy), Policy: string(p.AbsencePolicy), Limit: p.CatchUpLimit,
			policyArg: policyOf(&p), Members: make([][3]any, 0, len(p.Members))}
		for _, m := range p.Members {
			ap.Members = append(ap.Members, [3]any{m.RepID, m.EffectiveWeight(), m.DailyCap})
		}
		cur.Pools = append(cur.Pools, ap)
		members += len(p.Members)
	}
	if prev != nil {
		inNext := make(map[string]bool, len(next.Pools))
		for _, p := range next.Pools {
			inNext[p.ID] = true
		}
		repInNext := make(map[string]bool, len(next.Reps))
		for _, r := range next.Reps {
			repInNext[r.ID] = true
		}
		gone := &applyStep{Kind: "removed"}
		for _, p := range prev.Pools {
			if !inNext[p.ID] {
				gone.GonePools = append(gone.GonePools, p.ID)
			}
		}
		for _, r := range prev.Reps {
			if !repInNext[r.ID] {
				gone.GoneReps = append(gone.GoneReps, r.ID)
			}
		}
		if len(gone.GonePools)+len(gone.GoneReps) > 0 {
			steps = append(steps, gone)
		}
	}
	return steps
}

// ApplyConfig implements engine.Store: config_begin, one config_chunk per
// step, config_commit (see the top of this file).
func (s *Redis) ApplyConfig(ctx context.Context, ws string, base string, prev, next *engine.Config, now time.Time, moveQueued bool) (*engine.StoredConfig, error) {
	k := s.keys(ws)
	body, err := json.Marshal(next)
	if err != nil {
		return nil, err
	}
	steps := planApply(prev, next, now)
	n := nonce()
	// The plan and body go in as plain commands, expiring until
	// config_begin keeps them: no script copies megabytes.
	staged := make([]any, 0, len(steps))
	for _, st := range steps {
		b, err := json.Marshal(st)
		if err != nil {
			return nil, err
		}
		staged = append(staged, b)
	}
	if _, err := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, k.applyBody(n), body, applyStaging)
		p.RPush(ctx, k.applyPlan(n), staged...)
		p.PExpire(ctx, k.applyPlan(n), applyStaging)
		return nil
	}); err != nil {
		return nil, s.fail("stage_config", err)
	}
	keys := []string{k.config(), k.applyPlan(n), k.applyBody(n)}
	var removed []string
	if len(steps) > 0 && steps[len(steps)-1].Kind == "removed" && !moveQueued {
		removed = steps[len(steps)-1].GonePools
		for _, id := range removed {
			keys = append(keys, k.queue(id))
		}
	}
	if s.cluster() {
		// The workspace list is in another slot than the config: the
		// workspace is registered before its apply begins (an apply that
		// cannot register does not begin; a registered workspace whose
		// apply then fails has no config, and the sweeper skips it).
		if err := s.register(ctx, ws); err != nil {
			return nil, err
		}
	}
	r, err := s.call(ctx, ws, configBegin, keys, beginArgs{Base: base, Nonce: n, Lease: leaseUntil()})
	if err != nil {
		return nil, err
	}
	begun := decodeBegin(r)
	switch begun.code {
	case codeOK:
	case codeConflict:
		return nil, fmt.Errorf("%w: based on %q, current is %q", engine.ErrVersionConflict, base, begun.id)
	case codeQueuedPool:
		return nil, fmt.Errorf("pool %q: %w: assign, release or requeue them first", removed[begun.pool], engine.ErrPoolHasQueue)
	default:
		return nil, r.unexpected(configBegin)
	}
	applying := begun.id
	// From here on the apply finishes whatever happens to this call: it
	// runs on without the caller's cancellation, and another replica
	// carries it on should this one stop.
	actx := context.WithoutCancel(ctx)
	sc, err := s.runSteps(actx, ws, applying, steps, 0, now)
	if err != nil {
		return nil, err
	}
	if sc == nil { // another replica carried the apply on and committed it
		if sc, err = s.LoadConfig(actx, ws); err != nil {
			return nil, err
		}
		if !strings.HasSuffix(sc.ID, ":"+n) {
			return nil, fmt.Errorf("%w: config %q replaced the apply", engine.ErrVersionConflict, sc.ID)
		}
	}
	sc.Config = next
	return sc, nil
}

// applyStopAfter, when set (tests), makes runSteps fail after that many
// steps, as an applier that died would.
var applyStopAfter = -1

// leaseUntil is a lease taken or renewed now: unix ms by the wall clock,
// whatever clock the engine runs on, since other replicas judge it by
// theirs.
func leaseUntil() int64 { return time.Now().Add(applyLease).UnixMilli() }

// errApplyStopped is runSteps' error at applyStopAfter.
var errApplyStopped = errors.New("store: config apply stopped (test)")

// runSteps carries out steps from index from, then commits, and returns
// the committed version and id (its Config unset). A step another replica
// carried out already ends this call's part with nil: that replica holds
// the apply now, and LoadConfig waits for it.
//
// now is the apply's time (the engine's clock): the new reps' status
// change and the config's applied_at. The lease is wall time (leaseUntil).
func (s *Redis) runSteps(ctx context.Context, ws, applying string, steps []*applyStep, from int, now time.Time) (*engine.StoredConfig, error) {
	k := s.keys(ws)
	n := strings.TrimPrefix(applying, applyingPrefix)
	for i := from; i < len(steps); i++ {
		if applyStopAfter >= 0 && i >= applyStopAfter {
			return nil, errApplyStopped
		}
		keys := steps[i].keys(k, append(k.common(), k.applyPlan(n)))
		r, err := s.call(ctx, ws, configChunk, keys, chunkArgs{base: at(applying, now.UnixMilli()), Step: i, Lease: leaseUntil()})
		if err != nil {
			return nil, err
		}
		switch r.code {
		case codeOK:
		case codeStale, codeDone:
			return nil, nil // committed, or another replica is on it
		default:
			return nil, r.unexpected(configChunk)
		}
	}
	keys := []string{k.config(), k.applyPlan(n), k.applyBody(n), k.configBody()}
	req := commitArgs{base: at(applying, now.UnixMilli()), PersonKey: newPersonKey()}
	if !s.cluster() { // the registration commits with the config
		keys, req.WS = append(keys, workspacesKey(s.prefix)), ws
	}
	r, err := s.call(ctx, ws, configCommit, keys, req)
	if err != nil {
		return nil, err
	}
	c := decodeCommit(r)
	switch c.code {
	case codeOK:
	case codeIncomplete:
		return nil, fmt.Errorf("store: config apply %s: commit with step %d due", applying, c.next)
	case codeStale:
		return nil, nil // committed by another replica
	default:
		return nil, r.unexpected(configCommit)
	}
	version, err := strconv.ParseInt(c.version, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("store: config apply %s: version %q: %w", applying, c.version, err)
	}
	return &engine.StoredConfig{Version: version, ID: c.id, AppliedAt: now.Truncate(time.Millisecond), PersonKey: c.person}, nil
}

// finishApply carries on the config apply under way in ws once its
// applier's lease has run out (config_lease makes sure one replica does).
func (s *Redis) finishApply(ctx context.Context, ws string) error {
	k := s.keys(ws)
	r, err := s.call(ctx, ws, configLease, []string{k.config()}, leaseArgs{Now: time.Now().UnixMilli(), Lease: applyLease.Milliseconds()})
	if err != nil {
		return err
	}
	l := decodeLease(r)
	switch l.code {
	case codeOK:
	case codeDone, codeHeld: // finished meanwhile, or someone took it first
		return nil
	default:
		return r.unexpected(configLease)
	}
	applying, next := l.id, l.next
	raw, err := s.client.LRange(ctx, k.applyPlan(strings.TrimPrefix(applying, applyingPrefix)), 0, -1).Result()
	if err != nil {
		return s.fail("load_apply_plan", err)
	}
	steps := make([]*applyStep, len(raw))
	for i, r := range raw {
		steps[i] = &applyStep{}
		if err := json.Unmarshal([]byte(r), steps[i]); err != nil {
			return fmt.Errorf("store: config apply %s: step %d: %w", applying, i, err)
		}
	}
	_, err = s.runSteps(context.WithoutCancel(ctx), ws, applying, steps, next, time.Now())
	return err
}

// ConfigSource implements engine.Store: the config hash's file_hash and
// file_version fields.
func (s *Redis) ConfigSource(ctx context.Context, ws string) (string, int64, error) {
	v, err := s.client.HMGet(ctx, s.keys(ws).config(), "file_hash", "file_version").Result()
	if err != nil {
		return "", 0, s.fail("config_source", err)
	}
	hash, _ := v[0].(string)
	version, _ := v[1].(string)
	n, _ := strconv.ParseInt(version, 10, 64)
	return hash, n, nil
}

// SetConfigSource implements engine.Store.
func (s *Redis) SetConfigSource(ctx context.Context, ws, hash string, version int64) error {
	if err := s.client.HSet(ctx, s.keys(ws).config(), "file_hash", hash, "file_version", version).Err(); err != nil {
		return s.fail("config_source", err)
	}
	return nil
}

// HeldLeads implements engine.Store with one scan of ws's records.
func (s *Redis) HeldLeads(ctx context.Context, ws string, reps []string, limit int) ([]engine.HeldLead, int, error) {
	k := s.keys(ws)
	node, err := s.masterOf(ctx, []string{k.config()})
	if err != nil {
		return nil, 0, err
	}
	want := make(map[string]bool, len(reps))
	for _, r := range reps {
		want[r] = true
	}
	prefix := k.lead("")
	var out []engine.HeldLead
	total := 0
	err = scanRecords(ctx, node, k, []string{"state", "rep"}, func(batch []string, vals [][]any) error {
		for i, key := range batch {
			if len(vals[i]) < 2 {
				continue
			}
			state, _ := vals[i][0].(string)
			rep, _ := vals[i][1].(string)
			if (state == string(engine.StateAssigned) || state == string(engine.StateOffered)) && want[rep] {
				total++
				if len(out) < limit {
					out = append(out, engine.HeldLead{LeadID: strings.TrimPrefix(key, prefix), RepID: rep, State: engine.State(state)})
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, 0, s.fail("held_leads", err)
	}
	return out, total, nil
}

// A workspace's config history: configHistory is a ZSET of the versions
// kept, scored by version, each member "<version>|<applied ms>|<by>|<summary>";
// configAt(v) is version v's body as JSON. RecordConfigVersion keeps the
// newest keep of them.

// RecordConfigVersion implements engine.Store in one MULTI: the body and
// the entry are written, and the oldest past keep removed.
func (s *Redis) RecordConfigVersion(ctx context.Context, ws string, v engine.ConfigVersion, cfg *engine.Config, keep int) error {
	k := s.keys(ws)
	body, err := json.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("store: config history: %w", err)
	}
	old, err := s.client.ZRange(ctx, k.configHistory(), 0, -int64(keep)).Result()
	if err != nil {
		return s.fail("config_history", err)
	}
	member := strings.Join([]string{strconv.FormatInt(v.Version, 10), strconv.FormatInt(v.AppliedAt.UnixMilli(), 10),
		oneLine(v.By), oneLine(v.Summary)}, "|")
	_, err = s.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, k.configAt(v.Version), body, 0)
		p.ZAdd(ctx, k.configHistory(), redis.Z{Score: float64(v.Version), Member: member})
		for _, m := range old {
			ver, _, _ := strings.Cut(m, "|")
			n, _ := strconv.ParseInt(ver, 10, 64)
			p.Del(ctx, k.configAt(n))
			p.ZRem(ctx, k.configHistory(), m)
		}
		return nil
	})
	return s.fail("config_history", err)
}

// oneLine makes a history field safe for the member's format.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '|' || r < ' ' {
			return ' '
		}
		return r
	}, s)
}

// ConfigVersions implements engine.Store, newest first.
func (s *Redis) ConfigVersions(ctx context.Context, ws string) ([]engine.ConfigVersion, error) {
	ms, err := s.client.ZRevRange(ctx, s.keys(ws).configHistory(), 0, -1).Result()
	if err != nil {
		return nil, s.fail("config_history", err)
	}
	out := make([]engine.ConfigVersion, 0, len(ms))
	for _, m := range ms {
		f := strings.SplitN(m, "|", 4)
		if len(f) < 4 {
			continue
		}
		v, _ := strconv.ParseInt(f[0], 10, 64)
		out = append(out, engine.ConfigVersion{Version: v, AppliedAt: msTime(f[1]), By: f[2], Summary: f[3]})
	}
	return out, nil
}

// ConfigAt implements engine.Store.
func (s *Redis) ConfigAt(ctx context.Context, ws string, version int64) (*engine.Config, error) {
	body, err := s.client.Get(ctx, s.keys(ws).configAt(version)).Result()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("config version %d: %w", version, engine.ErrNotFound)
	}
	if err != nil {
		return nil, s.fail("config_history", err)
	}
	var cfg engine.Config
	if err := json.Unmarshal([]byte(body), &cfg); err != nil {
		return nil, fmt.Errorf("store: config version %d: corrupt: %w", version, err)
	}
	return &cfg, nil
}
