-- timer_retry: a timer that failed to fire tries again later, or, after too
-- many attempts, is parked: taken out of the due set into the parked set,
-- where it no longer costs the sweeper anything, and reported. Only the
-- deadline the caller claimed is moved: a timer fired or set again
-- meanwhile is left alone.
--
-- KEYS[1]  timers  ZSET
-- KEYS[2]  fails   HASH  member -> "<attempts>|<due>"
-- KEYS[3]  parked  ZSET  member -> the due it was parked at
--
-- A (store/contract.go retryArgs): member, due (the due claimed, unix ms),
-- attempts (failed so far, this one included), at (when to try again, unix
-- ms), park (true: park it instead), max_parked (the parked set's bound:
-- the oldest are dropped beyond it)
--
-- Returns {OK, 1} when the timer was moved, {OK, 0} when it had changed,
-- {OK, 1, dropped} when parking dropped that many of the oldest parked.

local timers, fails, parked = KEYS[1], KEYS[2], KEYS[3]
local member = A.member

if tonumber(redis.call('ZSCORE', timers, member) or '-1') ~= A.due then
  return { C.OK, 0 }
end
if A.park then
  redis.call('ZREM', timers, member)
  redis.call('HDEL', fails, member)
  redis.call('ZADD', parked, A.due, member)
  local over = redis.call('ZCARD', parked) - A.max_parked
  if over > 0 then
    redis.call('ZREMRANGEBYRANK', parked, 0, over - 1)
    return { C.OK, 1, over }
  end
  return { C.OK, 1 }
end
redis.call('ZADD', timers, 'XX', A.at, member)
redis.call('HSET', fails, member, string.format('%d|%d', A.attempts, A.at))
return { C.OK, 1 }
