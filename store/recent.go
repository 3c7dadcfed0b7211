package store

import (
	"context"
	"errors"

	"github.com/redis/go-redis/v9"

	"github.com/leadrouter/leadrouter/engine"
)

// recentBatch is how many records one pipelined read of RecentLeads asks
// for.
const recentBatch = 500

// recentFields are the record fields RecentLeads reads: the lead and its
// decision (both record formats, parseRecord), not its history or picks.
var recentFields = []string{"pb", "lead", "rule", "received_at", "cfgv", "placed_cfgv", "state", "rep", "pool", "route"}

// RecentLeads implements engine.Store: the recent index (keys.recent),
// newest first, and each lead's record, read in pipelined batches. A lead
// the index names whose record is gone (removed or erased between the two
// reads), or whose record does not parse, is left out.
func (s *Redis) RecentLeads(ctx context.Context, ws string, limit int) ([]*engine.Assignment, error) {
	if limit <= 0 {
		return nil, nil
	}
	k := s.keys(ws)
	ids, err := s.client.ZRevRange(ctx, k.recent(), 0, int64(limit-1)).Result()
	if err != nil {
		return nil, s.fail("recent_leads", err)
	}
	out := make([]*engine.Assignment, 0, len(ids))
	for start := 0; start < len(ids); start += recentBatch {
		batch := ids[start:min(start+recentBatch, len(ids))]
		pipe := s.client.Pipeline()
		cmds := make([]*redis.SliceCmd, len(batch))
		for i, id := range batch {
			cmds[i] = pipe.HMGet(ctx, k.lead(id), recentFields...)
		}
		if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			return nil, s.fail("recent_leads", err)
		}
		for i, id := range batch {
			f := make(map[string]string, len(recentFields))
			for j, v := range cmds[i].Val() {
				if sv, ok := v.(string); ok {
					f[recentFields[j]] = sv
				}
			}
			if f["state"] == "" {
				continue
			}
			a, err := parseRecord(id, f)
			if err != nil {
				continue // a record that does not parse is not replayed; GetAssignment reports it
			}
			out = append(out, a)
		}
	}
	return out, nil
}
