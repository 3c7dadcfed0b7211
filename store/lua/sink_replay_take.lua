-- sink_replay_take: lease up to A.count replayed dead letters whose lease
-- (if any) has ended to a consumer until A.lease_end; a consumer that dies
-- with one leased leaves it to the next taker.
--
-- KEYS[1]  replay  ZSET
--
-- A (store/contract.go sinkReplayTakeArgs): now, lease_end, count
--
-- Returns {OK, letter...}.

local replay = KEYS[1]
local due = redis.call('ZRANGEBYSCORE', replay, '-inf', A.now, 'LIMIT', 0, A.count)
local out = { C.OK }
for _, l in ipairs(due) do
  redis.call('ZADD', replay, A.lease_end, l)
  out[#out + 1] = l
end
return out
