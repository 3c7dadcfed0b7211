package main

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// stallThreshold is the Redis command duration a fixed-rate step reports:
// the decision-time target. Redis runs one command at a time, so every
// decision that reaches it during a longer command waits for it.
const stallThreshold = time.Millisecond

// stalls are the Redis commands of one step that took stallThreshold or
// longer (Redis's slow log). A command that does little (an HGET inside a
// script) taking that long means Redis was not running meanwhile:
// descheduled, or the machine stalled.
type stalls struct {
	n       int
	longest time.Duration
	byCmd   map[string]int
}

// watchStalls points the slow log at stallThreshold and empties it; the
// returned function reads what the slow log holds then.
func watchStalls(ctx context.Context, rdb *redis.Client) (func(context.Context) (*stalls, error), error) {
	for _, kv := range [][2]string{
		{"slowlog-log-slower-than", fmt.Sprint(stallThreshold.Microseconds())},
		{"slowlog-max-len", "100000"},
	} {
		if err := rdb.ConfigSet(ctx, kv[0], kv[1]).Err(); err != nil {
			return nil, fmt.Errorf("redis config set %s: %w", kv[0], err)
		}
	}
	if err := rdb.Do(ctx, "SLOWLOG", "RESET").Err(); err != nil {
		return nil, fmt.Errorf("redis slowlog reset: %w", err)
	}
	return func(ctx context.Context) (*stalls, error) {
		logs, err := rdb.SlowLogGet(ctx, -1).Result()
		if err != nil {
			return nil, fmt.Errorf("redis slowlog get: %w", err)
		}
		s := &stalls{byCmd: map[string]int{}}
		for _, l := range logs {
			if len(l.Args) == 0 || strings.EqualFold(l.Args[0], "slowlog") {
				continue
			}
			s.n++
			s.longest = max(s.longest, l.Duration)
			s.byCmd[strings.ToUpper(l.Args[0])]++
		}
		return s, nil
	}, nil
}

// String is "n, longest d (CMD n, ...)", the commands most often slow first.
func (s *stalls) String() string {
	if s.n == 0 {
		return "none"
	}
	cmds := make([]string, 0, len(s.byCmd))
	for c := range s.byCmd {
		cmds = append(cmds, c)
	}
	slices.SortFunc(cmds, func(a, b string) int {
		return cmp.Or(cmp.Compare(s.byCmd[b], s.byCmd[a]), cmp.Compare(a, b))
	})
	parts := make([]string, len(cmds))
	for i, c := range cmds {
		parts[i] = fmt.Sprintf("%s %d", c, s.byCmd[c])
	}
	return fmt.Sprintf("%d, longest %s (%s)", s.n, fmtDur(s.longest), strings.Join(parts, ", "))
}
