package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/leadrouter/leadrouter/engine"
	"github.com/redis/go-redis/v9"
)

// Acknowledged writes (--ack-replicas). Redis replicates asynchronously: a
// master that answers a script has its writes in memory, and in its AOF
// within a second under appendfsync everysec, but a replica may not have
// them yet. WAIT n blocks the connection until n replicas have every write
// that connection made, or its timeout passes, and answers how many did.
// docs/deployment.md has what each setting can lose.

// ackWaitDefault is WAIT's timeout for a call without a deadline.
const ackWaitDefault = time.Second

// evalAcked runs sc and WAIT in one pipeline on the master of keys.
func (s *Redis) evalAcked(ctx context.Context, sc *script, keys []string, args []any) (any, error) {
	node, err := s.masterOf(ctx, keys)
	if err != nil {
		return nil, err
	}
	wait := ackWaitDefault
	if dl, ok := ctx.Deadline(); ok {
		// WAIT must answer before the connection's read deadline (the
		// call's). Redis checks its timeout at its timer's resolution
		// (1/hz: 100 ms at the default hz 10), so it gets half the time
		// left, and at least 120 ms of the rest stay for its answer.
		left := time.Until(dl)
		wait = min(left/2, left-120*time.Millisecond)
	}
	ms := max(wait.Milliseconds(), 1)
	var ev, ack *redis.Cmd
	send := func(load bool) {
		_, _ = node.Pipelined(ctx, func(p redis.Pipeliner) error {
			if load { // NOSCRIPT: the server does not have it yet
				ev = p.Eval(ctx, sc.body, keys, args...)
			} else {
				ev = p.EvalSha(ctx, sc.Hash(), keys, args...)
			}
			ack = p.Do(ctx, "WAIT", s.ackReplicas, ms)
			return nil
		})
	}
	send(false)
	if redis.HasErrorPrefix(ev.Err(), "NOSCRIPT") {
		send(true)
	}
	v, err := ev.Result()
	if err != nil {
		return nil, err
	}
	n, werr := ack.Int64()
	if werr != nil {
		return nil, fmt.Errorf("%w: the write may or may not persist: waiting for %d replica(s) failed (%v); retrying with the same lead id is safe",
			engine.ErrUnavailable, s.ackReplicas, werr)
	}
	if int(n) < s.ackReplicas {
		return nil, fmt.Errorf("%w: the write may or may not persist: %d of the %d replica(s) --ack-replicas asks for confirmed it within %s; retrying with the same lead id is safe",
			engine.ErrUnavailable, n, s.ackReplicas, time.Duration(ms)*time.Millisecond)
	}
	return v, nil
}

// masterOf is the client of the master that holds keys: the store's own
// client on one server (or Sentinel's), the slot's master on a cluster.
func (s *Redis) masterOf(ctx context.Context, keys []string) (redis.Cmdable, error) {
	c, ok := s.client.(*redis.ClusterClient)
	if !ok {
		return s.client, nil
	}
	if len(keys) == 0 {
		return nil, errors.New("store: an acknowledged write without keys")
	}
	node, err := c.MasterForKey(ctx, keys[0])
	if err != nil {
		return nil, s.fail("ack_master", err)
	}
	return node, nil
}
