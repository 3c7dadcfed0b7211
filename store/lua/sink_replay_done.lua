-- sink_replay_done: a replayed dead letter was delivered (or is dead
-- again: A.letter, with its new reason, goes back on the dead-letter
-- list, bounded: lib_sink push_dead).
--
-- KEYS[1]  replay  ZSET
-- KEYS[2]  dead    LIST
-- KEYS[3]  state   HASH
--
-- A (store/contract.go sinkReplayDoneArgs): taken (the letter as leased),
-- letter ('' when delivered), max_dead
--
-- Returns {OK, n}: 1 when the letter was still leased (0: another
-- consumer finished it first).

local replay, dead, state = KEYS[1], KEYS[2], KEYS[3]
local n = redis.call('ZREM', replay, A.taken)
if n == 1 and A.letter ~= '' then
  push_dead(dead, state, A.letter, A.max_dead)
end
return { C.OK, n }
