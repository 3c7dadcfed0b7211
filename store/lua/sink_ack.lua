-- sink_ack: a consumer is done with the head event of an ordering key:
-- delivered, or dead (A.dead: the reason; the event goes to the sink's
-- dead-letter list, at most A.max_dead kept, the oldest dropped and
-- counted). The event is acknowledged in the group, and the key's next
-- waiting event, if any, is claimed by this consumer and returned so that
-- it delivers it next: one lead's events go out one after another.
--
-- KEYS[1]  events  STREAM
-- KEYS[2]  heads   HASH
-- KEYS[3]  state   HASH    dead_dropped
-- KEYS[4]  dead    LIST    dead letters (JSON, store/sinks.go deadLetter)
--
-- A (store/contract.go sinkAckArgs): group, consumer, id, key, dead,
-- letter (the dead letter's JSON), max_dead
--
-- Returns {OK} (nothing waits), {OK, entry} (deliver it next: push_entry's
-- fields), or {CLAIMED} when the event is no longer this consumer's
-- (another took it over, or finished it already): nothing is changed.

local events, heads, state, dead = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
-- Only the consumer that holds the event finishes it: one another consumer
-- took over (a stall past the takeover idle time) is that one's to finish,
-- and its lead's next event with it.
local p = redis.call('XPENDING', events, A.group, A.id, A.id, 1)
if #p == 0 or p[1][2] ~= A.consumer then return { C.CLAIMED } end
redis.call('XACK', events, A.group, A.id)
if A.dead and A.dead ~= '' then
  push_dead(dead, state, A.letter, A.max_dead)
end
local cur = redis.call('HGET', heads, A.key)
if not cur then return { C.OK } end
local head, rest = first_word(cur)
if head ~= A.id then return { C.OK } end
-- The next waiting event; one retention removed is skipped.
while rest ~= '' do
  local nxt
  nxt, rest = first_word(rest)
  local claimed = redis.call('XCLAIM', events, A.group, A.consumer, 0, nxt)
  if #claimed > 0 and claimed[1][2] then
    if rest ~= '' then
      redis.call('HSET', heads, A.key, nxt .. ' ' .. rest)
    else
      redis.call('HSET', heads, A.key, nxt)
    end
    local out = { C.OK }
    push_entry(out, nxt, A.key, fields(claimed[1][2]))
    return out
  end
  redis.call('XACK', events, A.group, nxt)
end
redis.call('HDEL', heads, A.key)
return { C.OK }
