-- sink_replay: move up to A.limit of a sink's dead letters, oldest first,
-- to its replay set, ready at once (score 0); sink_replay_take.lua leases
-- them to a consumer, sink_replay_done.lua finishes each.
--
-- KEYS[1]  dead    LIST
-- KEYS[2]  replay  ZSET  dead letter JSON -> lease end, unix ms (0: ready)
--
-- A (store/contract.go sinkReplayArgs): limit
--
-- Returns {OK, n}: how many were moved.

local dead, replay = KEYS[1], KEYS[2]
local letters = redis.call('LRANGE', dead, 0, A.limit - 1)
for _, l in ipairs(letters) do
  redis.call('ZADD', replay, 0, l)
end
if #letters > 0 then redis.call('LTRIM', dead, #letters, -1) end
return { C.OK, #letters }
