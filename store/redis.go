package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/leadrouter/leadrouter/engine"
)

// DefaultPrefix starts every key the store writes.
const DefaultPrefix = "lr"

// Redis is engine.Store on Redis (a server, a cluster, or the embedded
// miniredis).
type Redis struct {
	client redis.UniversalClient
	prefix string
}

var _ engine.Store = (*Redis)(nil)

// New returns a store on an existing client. prefix "" means DefaultPrefix.
func New(client redis.UniversalClient, prefix string) *Redis {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	return &Redis{client: client, prefix: prefix}
}

// Open connects to the Redis at a redis:// or rediss:// URL and checks that
// it answers.
func Open(ctx context.Context, url string) (*Redis, error) {
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("redis url: %w", err)
	}
	s := New(redis.NewClient(opts), "")
	if err := s.Ping(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Client returns the underlying client (tests seed and inspect keys with it).
func (s *Redis) Client() redis.UniversalClient { return s.client }

// Close closes the client.
func (s *Redis) Close() error { return s.client.Close() }

func (s *Redis) keys(ws string) keys { return keysFor(s.prefix, ws) }

// Ping reports whether Redis answers.
func (s *Redis) Ping(ctx context.Context) error {
	return s.fail("ping", s.client.Ping(ctx).Err())
}

// LoadConfig implements engine.Store.
func (s *Redis) LoadConfig(ctx context.Context, ws string) (*engine.StoredConfig, error) {
	vals, err := s.client.HMGet(ctx, s.keys(ws).config(), "version", "body", "applied_at").Result()
	if err != nil {
		return nil, s.fail("load config", err)
	}
	if vals[0] == nil {
		return nil, fmt.Errorf("workspace %q: %w", ws, engine.ErrNoConfig)
	}
	sc := &engine.StoredConfig{Config: &engine.Config{}}
	sc.Version, _ = strconv.ParseInt(vals[0].(string), 10, 64)
	body, _ := vals[1].(string)
	if err := json.Unmarshal([]byte(body), sc.Config); err != nil {
		return nil, fmt.Errorf("workspace %q: corrupt config: %w", ws, err)
	}
	applied, _ := vals[2].(string)
	sc.AppliedAt = msTime(applied)
	return sc, nil
}

// ApplyConfig implements engine.Store with config_apply.lua.
func (s *Redis) ApplyConfig(ctx context.Context, ws string, base int64, prev, next *engine.Config, now time.Time) (int64, error) {
	k := s.keys(ws)
	body, err := json.Marshal(next)
	if err != nil {
		return 0, err
	}
	inNext := make(map[string]bool, len(next.Pools))
	keys := []string{k.config(), k.presence(), k.statusChanged()}
	poolArgs := []any{}
	for _, p := range next.Pools {
		inNext[p.ID] = true
		keys = append(keys, k.pool(p.ID))
		poolArgs = append(poolArgs, len(p.Members))
		for _, m := range p.Members {
			poolArgs = append(poolArgs, m.RepID)
		}
	}
	removedPools := 0
	repInNext := make(map[string]bool, len(next.Reps))
	for _, r := range next.Reps {
		repInNext[r.ID] = true
	}
	var removedReps []any
	if prev != nil {
		for _, p := range prev.Pools {
			if !inNext[p.ID] {
				keys = append(keys, k.pool(p.ID))
				removedPools++
			}
		}
		for _, r := range prev.Reps {
			if !repInNext[r.ID] {
				removedReps = append(removedReps, r.ID)
			}
		}
	}
	args := []any{base, body, ms(now), len(next.Pools), removedPools}
	args = append(args, poolArgs...)
	args = append(args, len(next.Reps))
	for _, r := range next.Reps {
		args = append(args, r.ID, string(r.InitialStatus))
	}
	args = append(args, len(removedReps))
	args = append(args, removedReps...)

	reply, err := s.run(ctx, "apply config", configApply, keys, args...)
	if err != nil {
		return 0, err
	}
	if reply[0] == "CONFLICT" {
		return 0, fmt.Errorf("%w: base version %d, current %s", engine.ErrVersionConflict, base, reply[1])
	}
	return strconv.ParseInt(reply[1], 10, 64)
}

// Decide implements engine.Store with lead_decide.lua: one round trip.
func (s *Redis) Decide(ctx context.Context, d *engine.Decision) (*engine.Outcome, error) {
	k := s.keys(d.Workspace)
	leadJSON, err := json.Marshal(d.Lead)
	if err != nil {
		return nil, err
	}
	rulesJSON, err := json.Marshal(d.Rules)
	if err != nil {
		return nil, err
	}
	keys := make([]string, 0, 6+2*len(d.Targets))
	keys = append(keys, k.config(), k.lead(d.Lead.ID), k.presence(), k.assigned(), k.lastAssigned(), k.seq())
	args := make([]any, 0, 10+len(d.Targets))
	dry := "0"
	if d.DryRun {
		dry = "1"
	}
	args = append(args, d.ConfigVersion, ms(d.ReceivedAt), dry, leadJSON, ms(d.ReceivedAt),
		d.RuleID, rulesJSON, d.QueuedReason, d.UnroutableReason, d.Lead.ID)
	for _, p := range d.Targets {
		keys = append(keys, k.pool(p), k.queue(p))
		args = append(args, p)
	}
	reply, err := s.run(ctx, "decide", leadDecide, keys, args...)
	if err != nil {
		return nil, err
	}
	if reply[0] == "STALE" {
		return nil, engine.ErrStaleConfig
	}
	a, err := parseRecord(d.Lead.ID, pairs(reply[2:]))
	if err != nil {
		return nil, err
	}
	return &engine.Outcome{Assignment: a, Duplicate: reply[0] == "DUP", Backlog: reply[1] == "1"}, nil
}

// Assignment implements engine.Store.
func (s *Redis) Assignment(ctx context.Context, ws, leadID string) (*engine.Assignment, error) {
	f, err := s.client.HGetAll(ctx, s.keys(ws).lead(leadID)).Result()
	if err != nil {
		return nil, s.fail("get assignment", err)
	}
	if len(f) == 0 {
		return nil, fmt.Errorf("lead %q: %w", leadID, engine.ErrNotFound)
	}
	return parseRecord(leadID, f)
}

// SetRepStatus implements engine.Store with rep_set_status.lua.
func (s *Redis) SetRepStatus(ctx context.Context, ws string, version int64, repID string, st engine.RepStatus, now time.Time) (engine.RepStatus, error) {
	k := s.keys(ws)
	reply, err := s.run(ctx, "set rep status", repSetStatus,
		[]string{k.config(), k.presence(), k.statusChanged()}, version, repID, string(st), ms(now))
	if err != nil {
		return "", err
	}
	if reply[0] == "STALE" {
		return "", engine.ErrStaleConfig
	}
	return engine.RepStatus(reply[1]), nil
}

// RepRuntime implements engine.Store in one pipelined round trip.
func (s *Redis) RepRuntime(ctx context.Context, ws string, repIDs []string) ([]engine.RepRuntime, error) {
	out := make([]engine.RepRuntime, len(repIDs))
	if len(repIDs) == 0 {
		return out, nil
	}
	k := s.keys(ws)
	pipe := s.client.Pipeline()
	presence := pipe.HMGet(ctx, k.presence(), repIDs...)
	changed := pipe.HMGet(ctx, k.statusChanged(), repIDs...)
	assigned := pipe.HMGet(ctx, k.assigned(), repIDs...)
	last := pipe.HMGet(ctx, k.lastAssigned(), repIDs...)
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, s.fail("rep runtime", err)
	}
	str := func(v any) string { s, _ := v.(string); return s }
	for i, id := range repIDs {
		out[i] = engine.RepRuntime{
			RepID:           id,
			Status:          engine.RepStatus(str(presence.Val()[i])),
			StatusChangedAt: msTime(str(changed.Val()[i])),
			LastAssignedAt:  msTime(str(last.Val()[i])),
		}
		out[i].AssignedTotal, _ = strconv.ParseInt(str(assigned.Val()[i]), 10, 64)
	}
	return out, nil
}

// QueuedLeads implements engine.Store.
func (s *Redis) QueuedLeads(ctx context.Context, ws, poolID string, limit int) ([]string, error) {
	ids, err := s.client.ZRange(ctx, s.keys(ws).queue(poolID), 0, int64(limit)-1).Result()
	return ids, s.fail("queued leads", err)
}

// DrainQueue implements engine.Store with queue_drain.lua.
func (s *Redis) DrainQueue(ctx context.Context, ws string, version int64, poolID string, leadIDs []string, now time.Time) (*engine.DrainResult, error) {
	k := s.keys(ws)
	keys := []string{k.config(), k.pool(poolID), k.queue(poolID), k.presence(), k.assigned(), k.lastAssigned()}
	args := []any{version, ms(now), poolID}
	for _, id := range leadIDs {
		keys = append(keys, k.lead(id))
		args = append(args, id)
	}
	reply, err := s.run(ctx, "drain queue", queueDrain, keys, args...)
	if err != nil {
		return nil, err
	}
	if reply[0] == "STALE" {
		return nil, engine.ErrStaleConfig
	}
	return &engine.DrainResult{Blocked: reply[1] == "1", Assigned: reply[2:]}, nil
}

// run executes a script (EVALSHA, falling back to EVAL on NOSCRIPT) and
// returns its reply as strings.
func (s *Redis) run(ctx context.Context, op string, script *redis.Script, keys []string, args ...any) ([]string, error) {
	v, err := script.Run(ctx, s.client, keys, args...).Result()
	if err != nil {
		return nil, s.fail(op, err)
	}
	list, ok := v.([]any)
	if !ok || len(list) == 0 {
		return nil, fmt.Errorf("store %s: unexpected script reply %v", op, v)
	}
	out := make([]string, len(list))
	for i, e := range list {
		switch e := e.(type) {
		case string:
			out[i] = e
		case int64:
			out[i] = strconv.FormatInt(e, 10)
		default:
			return nil, fmt.Errorf("store %s: unexpected element %T in script reply", op, e)
		}
	}
	return out, nil
}

// fail classifies a Redis error: the caller's cancellation passes through;
// a reply error that says the server is busy, loading or failing over, and
// every transport error, is engine.ErrUnavailable (retry); any other reply
// error is a bug and is returned as it is.
func (s *Redis) fail(op string, err error) error {
	if err == nil || errors.Is(err, redis.Nil) {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var rerr redis.Error
	if errors.As(err, &rerr) && !retryable(rerr.Error()) {
		return fmt.Errorf("store %s: %w", op, err)
	}
	return fmt.Errorf("%w: %s: %v", engine.ErrUnavailable, op, err)
}

func retryable(msg string) bool {
	for _, p := range []string{"LOADING", "READONLY", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN", "MOVED", "ASK", "BUSY"} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}
