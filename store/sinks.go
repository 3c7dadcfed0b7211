package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/leadrouter/leadrouter/engine"
)

// The sink side of the store (engine.SinkQueue): one consumer group per
// sink on the workspace's event stream, and its heads HASH that keeps one
// lead's deliveries in order across replicas (lib_sink.lua).

var _ engine.SinkQueue = (*Redis)(nil)

// sinkEntryWidth is how many reply values one entry takes (lib_sink.lua
// push_entry): id, key, kind, lead, rep, pool, at, detail.
const sinkEntryWidth = 8

func sinkEntries(vals []string) []engine.SinkDelivery {
	out := make([]engine.SinkDelivery, 0, len(vals)/sinkEntryWidth)
	for i := 0; i+sinkEntryWidth <= len(vals); i += sinkEntryWidth {
		v := vals[i:]
		out = append(out, engine.SinkDelivery{Key: v[1], Event: engine.Event{ID: v[0], Kind: engine.EventKind(v[2]),
			LeadID: v[3], RepID: v[4], PoolID: v[5], At: msTime(v[6]), Detail: engine.RenderNote(v[7])}})
	}
	return out
}

// ReadSink implements engine.SinkQueue with sink_read.lua.
func (s *Redis) ReadSink(ctx context.Context, ws, sinkID, consumer string, kinds []engine.EventKind, start string, n int) ([]engine.SinkDelivery, int, error) {
	k := s.keys(ws)
	want := make(map[string]bool, len(kinds))
	for _, kd := range kinds {
		want[string(kd)] = true
	}
	r, err := s.call(ctx, ws, sinkRead, []string{k.events(), k.sinkHeads(sinkID), k.sinkState(sinkID)},
		sinkReadArgs{Group: sinkGroup(sinkID), Consumer: consumer, Count: n, Kinds: want, Start: start})
	if err != nil {
		return nil, 0, err
	}
	if r.code != codeOK {
		return nil, 0, r.unexpected(sinkRead)
	}
	return sinkEntries(r.vals[1:]), count(r.val(0)), nil
}

// AckSink implements engine.SinkQueue with sink_ack.lua.
func (s *Redis) AckSink(ctx context.Context, ws, sinkID, consumer string, d engine.SinkDelivery, dead *engine.DeadLetter) (*engine.SinkDelivery, error) {
	k := s.keys(ws)
	args := sinkAckArgs{Group: sinkGroup(sinkID), Consumer: consumer, ID: d.Event.ID, Key: d.Key, MaxDead: engine.MaxDeadLetters}
	if dead != nil {
		b, err := json.Marshal(dead)
		if err != nil {
			return nil, err
		}
		args.Dead, args.Letter = dead.Reason, string(b)
		if args.Dead == "" {
			args.Dead = "dead"
		}
	}
	r, err := s.call(ctx, ws, sinkAck, []string{k.events(), k.sinkHeads(sinkID), k.sinkState(sinkID), k.sinkDead(sinkID)}, args)
	if err != nil {
		return nil, err
	}
	switch r.code {
	case codeClaimed:
		return nil, nil
	case codeOK:
		if next := sinkEntries(r.vals); len(next) > 0 {
			return &next[0], nil
		}
		return nil, nil
	}
	return nil, r.unexpected(sinkAck)
}

// ClaimSink implements engine.SinkQueue with sink_claim.lua.
func (s *Redis) ClaimSink(ctx context.Context, ws, sinkID, consumer string, minIdle time.Duration, start string, n int) ([]engine.SinkDelivery, string, error) {
	k := s.keys(ws)
	if start == "" {
		start = "0-0"
	}
	r, err := s.call(ctx, ws, sinkClaim, []string{k.events(), k.sinkHeads(sinkID)},
		sinkClaimArgs{Group: sinkGroup(sinkID), Consumer: consumer, MinIdle: minIdle.Milliseconds(), Count: n, Start: start})
	if err != nil {
		return nil, "", err
	}
	if r.code != codeOK {
		return nil, "", r.unexpected(sinkClaim)
	}
	return sinkEntries(r.vals[1:]), r.val(0), nil
}

// TouchSink implements engine.SinkQueue with sink_touch.lua.
func (s *Redis) TouchSink(ctx context.Context, ws, sinkID, consumer string, ids []string) (int, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	r, err := s.call(ctx, ws, sinkTouch, []string{s.keys(ws).events()},
		sinkTouchArgs{Group: sinkGroup(sinkID), Consumer: consumer, IDs: ids})
	if err != nil {
		return 0, err
	}
	return count(r.val(0)), nil
}

// NoteSinkError implements engine.SinkQueue.
func (s *Redis) NoteSinkError(ctx context.Context, ws, sinkID, msg string, at time.Time) error {
	if len(msg) > 512 {
		msg = msg[:512]
	}
	err := s.client.HSet(ctx, s.keys(ws).sinkState(sinkID), "last_error", msg, "last_error_at", at.UnixMilli()).Err()
	return s.fail("sink_error", err)
}

// sinkUnreadCap bounds how many unread events SinkState counts (the
// count is "at least" past it).
const sinkUnreadCap = 10_000

// SinkState implements engine.SinkQueue: the group's progress
// (sink_status.lua), the sink's state, its dead letters and replays.
func (s *Redis) SinkState(ctx context.Context, ws, sinkID string) (*engine.SinkState, error) {
	k := s.keys(ws)
	r, err := s.call(ctx, ws, sinkStatus, []string{k.events(), k.sinkState(sinkID)},
		sinkStatusArgs{Group: sinkGroup(sinkID), Cap: sinkUnreadCap})
	if err != nil {
		return nil, err
	}
	if r.code != codeOK {
		return nil, r.unexpected(sinkStatus)
	}
	pipe := s.client.Pipeline()
	st := pipe.HGetAll(ctx, k.sinkState(sinkID))
	dead := pipe.LLen(ctx, k.sinkDead(sinkID))
	replay := pipe.ZCard(ctx, k.sinkReplay(sinkID))
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, s.fail("sink_state", err)
	}
	out := &engine.SinkState{Pending: int64(count(r.val(0)) + count(r.val(2))), Started: r.val(4) == "1"}
	for _, id := range []string{r.val(1), r.val(3)} {
		if id != "" {
			out.Oldest = engine.EventTime(id)
			break
		}
	}
	m := st.Val()
	out.LastError = m["last_error"]
	out.LastErrorAt = msTime(m["last_error_at"])
	out.Lost, _ = strconv.ParseInt(m["lost"], 10, 64)
	out.LaggingSince = msTime(m["lagging_since"])
	out.DeadDropped, _ = strconv.ParseInt(m["dead_dropped"], 10, 64)
	out.DeadLetters = dead.Val()
	out.Replaying = replay.Val()
	return out, nil
}

func isNoGroup(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "NOGROUP") || strings.Contains(err.Error(), "no such key"))
}

// ReplayDeadLetters implements engine.SinkQueue with sink_replay.lua.
func (s *Redis) ReplayDeadLetters(ctx context.Context, ws, sinkID string, limit int) (int, error) {
	k := s.keys(ws)
	r, err := s.call(ctx, ws, sinkReplay, []string{k.sinkDead(sinkID), k.sinkReplay(sinkID)}, sinkReplayArgs{Limit: limit})
	if err != nil {
		return 0, err
	}
	if r.code != codeOK {
		return 0, r.unexpected(sinkReplay)
	}
	return count(r.val(0)), nil
}

// TakeReplays implements engine.SinkQueue with sink_replay_take.lua.
func (s *Redis) TakeReplays(ctx context.Context, ws, sinkID string, now time.Time, lease time.Duration, n int) ([]engine.TakenLetter, error) {
	r, err := s.call(ctx, ws, sinkReplayTake, []string{s.keys(ws).sinkReplay(sinkID)},
		sinkReplayTakeArgs{Now: now.UnixMilli(), LeaseEnd: now.Add(lease).UnixMilli(), Count: n})
	if err != nil {
		return nil, err
	}
	if r.code != codeOK {
		return nil, r.unexpected(sinkReplayTake)
	}
	out := make([]engine.TakenLetter, 0, len(r.vals))
	for _, raw := range r.vals {
		t := engine.TakenLetter{Raw: raw}
		if err := json.Unmarshal([]byte(raw), &t.Letter); err != nil {
			return nil, fmt.Errorf("store sink_replay_take: a dead letter that does not parse: %w", err)
		}
		out = append(out, t)
	}
	return out, nil
}

// ReplayDone implements engine.SinkQueue with sink_replay_done.lua.
func (s *Redis) ReplayDone(ctx context.Context, ws, sinkID string, t engine.TakenLetter, dead *engine.DeadLetter) error {
	k := s.keys(ws)
	args := sinkReplayDoneArgs{Taken: t.Raw, MaxDead: engine.MaxDeadLetters}
	if dead != nil {
		b, err := json.Marshal(dead)
		if err != nil {
			return err
		}
		args.Letter = string(b)
	}
	_, err := s.call(ctx, ws, sinkReplayDone, []string{k.sinkReplay(sinkID), k.sinkDead(sinkID), k.sinkState(sinkID)}, args)
	return err
}

// SinkGroups implements engine.SinkQueue with XINFO GROUPS.
func (s *Redis) SinkGroups(ctx context.Context, ws string) ([]string, error) {
	gs, err := s.client.XInfoGroups(ctx, s.keys(ws).events()).Result()
	if err != nil {
		if isNoGroup(err) || errors.Is(err, redis.Nil) {
			return nil, nil
		}
		return nil, s.fail("sink_groups", err)
	}
	var out []string
	for _, g := range gs {
		if id, ok := strings.CutPrefix(g.Name, "sink:"); ok {
			out = append(out, id)
		}
	}
	return out, nil
}

// RemoveSink implements engine.SinkQueue with sink_remove.lua.
func (s *Redis) RemoveSink(ctx context.Context, ws, sinkID string) error {
	k := s.keys(ws)
	_, err := s.call(ctx, ws, sinkRemove, []string{k.events(), k.sinkHeads(sinkID), k.sinkState(sinkID), k.sinkDead(sinkID),
		k.sinkReplay(sinkID)}, sinkRemoveArgs{Group: sinkGroup(sinkID)})
	return err
}

// PruneSinkConsumers implements engine.SinkQueue: a consumer with nothing
// pending, idle past idle, is a replica gone (each process consumes
// under its own name); XGROUP DELCONSUMER forgets it. A consumer with
// pending entries is kept for the takeover (sink_claim.lua) to empty.
func (s *Redis) PruneSinkConsumers(ctx context.Context, ws, sinkID string, idle time.Duration) (int, error) {
	k := s.keys(ws)
	cs, err := s.client.XInfoConsumers(ctx, k.events(), sinkGroup(sinkID)).Result()
	if err != nil {
		if isNoGroup(err) {
			return 0, nil
		}
		return 0, s.fail("sink_consumers", err)
	}
	n := 0
	for _, c := range cs {
		if c.Pending == 0 && c.Idle > idle {
			if err := s.client.XGroupDelConsumer(ctx, k.events(), sinkGroup(sinkID), c.Name).Err(); err != nil {
				return n, s.fail("sink_consumers", err)
			}
			n++
		}
	}
	return n, nil
}

// TrimEventsFor implements engine.Store: TrimEvents held back by the
// sinks' groups (events_trim.lua), reporting what the age limit removed
// before a sink delivered it.
func (s *Redis) TrimEventsFor(ctx context.Context, ws string, maxLen int64, maxAge time.Duration, now time.Time, sinks []string) (int64, []engine.SinkLoss, error) {
	k := s.keys(ws)
	cutoff := now.Add(-maxAge).UnixMilli()
	if cutoff < 0 {
		cutoff = 0
	}
	// Every group there is holds retention back, not only those of the
	// caller's config (which may be a moment old: a sink just added).
	existing, err := s.SinkGroups(ctx, ws)
	if err != nil {
		return 0, nil, err
	}
	for _, id := range existing {
		if !slices.Contains(sinks, id) {
			sinks = append(sinks, id)
		}
	}
	keys := []string{k.events(), k.eventsTrimmed()}
	groups := make([]string, 0, len(sinks))
	for _, id := range sinks {
		keys = append(keys, k.sinkHeads(id), k.sinkState(id))
		groups = append(groups, sinkGroup(id))
	}
	var total int64
	var losses []engine.SinkLoss
	for {
		r, err := s.call(ctx, ws, eventsTrim, keys,
			trimArgs{MaxLen: maxLen, Cutoff: cutoff, Limit: trimBatch, Groups: groups, Now: now.UnixMilli()})
		if err != nil {
			return total, losses, err
		}
		t := decodeTrim(r)
		if t.code != codeOK {
			return total, losses, r.unexpected(eventsTrim)
		}
		for i := 2; i+1 < len(r.vals); i += 2 {
			losses = append(losses, engine.SinkLoss{SinkID: strings.TrimPrefix(r.vals[i], "sink:"), Lost: int64(count(r.vals[i+1]))})
		}
		total += int64(t.n)
		if !t.more || t.n == 0 {
			return total, losses, nil
		}
	}
}
