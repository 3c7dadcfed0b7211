package store

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Records written before retention existed have no retain timer and are
// not in the workspace's record count (the config hash's "stored", which
// lead_decide and lead_remove keep from then on). BackfillRetention gives
// them both, once per workspace: the config hash's "retention" field marks
// it done.

// retentionMark is the config hash field set once a workspace's records
// have retain timers and a count.
const retentionMark = "retention"

// BackfillRetention scans ws's records, once: each CLOSED or UNROUTABLE
// one without a retain timer gets one, due retain after it got there, and
// the record count becomes at least the number found. Several replicas may
// run it at once (the timers are added only where none is, the count only
// grows to what was found). It returns the timers added; done reports a
// workspace finished before.
func (s *Redis) BackfillRetention(ctx context.Context, ws string, retain time.Duration) (added int, done bool, err error) {
	k := s.keys(ws)
	marked, err := s.client.HExists(ctx, k.config(), retentionMark).Result()
	if err != nil || marked {
		return 0, marked, s.fail("backfill_retention", err)
	}
	node, err := s.masterOf(ctx, []string{k.config()})
	if err != nil {
		return 0, false, err
	}
	prefix := k.lead("")
	found := 0
	err = scanRecords(ctx, node, k, []string{"state", "closed_at", "decided_at"}, func(batch []string, vals [][]any) error {
		var timers []redis.Z
		for i, v := range vals {
			state, _ := v[0].(string)
			if state == "" {
				continue // removed meanwhile
			}
			found++
			if state != "CLOSED" && state != "UNROUTABLE" {
				continue
			}
			at, _ := v[1].(string)
			if at == "" {
				at, _ = v[2].(string)
			}
			ms, _ := strconv.ParseInt(at, 10, 64)
			timers = append(timers, redis.Z{Score: float64(ms + retain.Milliseconds()),
				Member: "retain|" + strings.TrimPrefix(batch[i], prefix)})
		}
		if len(timers) > 0 {
			n, err := node.ZAddNX(ctx, k.timers(), timers...).Result()
			if err != nil {
				return err
			}
			added += int(n)
		}
		return nil
	})
	if err != nil {
		return added, false, s.fail("backfill_retention", err)
	}
	// The count grows to what was found: records written during the scan
	// counted themselves, and may be counted twice, once.
	r, err := s.call(ctx, ws, recordsCounted, []string{k.config()}, countedArgs{Found: found})
	if err != nil {
		return added, false, err
	}
	if r.code != codeOK {
		return added, false, r.unexpected(recordsCounted)
	}
	return added, false, nil
}

// scanRecords reads fields of every record of k's workspace on node, a page
// (scanPage records) at a time: fn gets the page's keys and each one's
// values (nil where a record went meanwhile).
func scanRecords(ctx context.Context, node redis.Cmdable, k keys, fields []string, fn func(keys []string, vals [][]any) error) error {
	it := node.ScanType(ctx, 0, globEscape(k.lead(""))+"*", scanPage, "hash").Iterator()
	var batch []string
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		cmds, err := node.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, key := range batch {
				p.HMGet(ctx, key, fields...)
			}
			return nil
		})
		if err != nil {
			return err
		}
		vals := make([][]any, len(cmds))
		for i, c := range cmds {
			vals[i] = c.(*redis.SliceCmd).Val()
		}
		err = fn(batch, vals)
		batch = batch[:0]
		return err
	}
	for it.Next(ctx) {
		batch = append(batch, it.Val())
		if len(batch) == scanPage {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := it.Err(); err != nil {
		return err
	}
	return flush()
}
