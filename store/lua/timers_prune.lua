-- timers_prune: forget failure counts of timers that are gone (fired,
-- or removed by the lead moving on while they waited to try again). One
-- HSCAN step per call, so a large hash is pruned in short steps.
--
-- KEYS[1]  timers  ZSET
-- KEYS[2]  fails   HASH  member -> "<attempts>|<due>"
--
-- A (store/contract.go pruneArgs): cursor (HSCAN's), count
--
-- Returns {OK, next cursor ("0": done), removed}.

local timers, fails = KEYS[1], KEYS[2]
local r = redis.call('HSCAN', fails, A.cursor, 'COUNT', A.count)
local removed = 0
local kv = r[2]
for i = 1, #kv, 2 do
  if not redis.call('ZSCORE', timers, kv[i]) then
    removed = removed + redis.call('HDEL', fails, kv[i])
  end
end
return { C.OK, r[1], removed }
