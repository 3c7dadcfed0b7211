-- timers_claim: claim up to a batch of a workspace's due timers for one
-- sweeper, so that each due timer is read and fired by about one replica.
-- A claim is an entry "<member>@<due>" of the claims set, scored by when it
-- expires: a replica that dies holding claims loses them after the lease,
-- and the timers are claimed again. A timer set again for a later deadline
-- has another due, so an old claim never hides it.
--
-- KEYS[1]  timers  ZSET  member -> due (unix ms)
-- KEYS[2]  claims  ZSET  "<member>@<due>" -> claim expiry (unix ms)
-- KEYS[3]  fails   HASH  member -> "<attempts>|<due>" of a timer that failed
--
-- A (store/contract.go claimArgs): now (unix ms), limit (timers to claim),
-- scan (due timers to look at: claimed ones are passed over), lease (ms)
--
-- Returns {OK, member, due, attempts, ...}: the claimed timers, oldest
-- first, with the attempts that failed before (0 for a timer's first). A
-- member that is not "<kind>|<lead>" can never fire and is removed.

local timers, claims, fails = KEYS[1], KEYS[2], KEYS[3]
local now = A.now

redis.call('ZREMRANGEBYSCORE', claims, '-inf', now)
local due = redis.call('ZRANGEBYSCORE', timers, '-inf', now, 'WITHSCORES', 'LIMIT', 0, A.scan)
local out = { C.OK }
for i = 1, #due, 2 do
  local member, at = due[i], string.format('%d', tonumber(due[i + 1]))
  local claim = member .. '@' .. at
  if not string.find(member, '^[^|]+|.') then
    redis.call('ZREM', timers, member) -- not "<kind>|<lead>": it can never do anything
  elseif not redis.call('ZSCORE', claims, claim) then
    redis.call('ZADD', claims, now + A.lease, claim)
    local attempts = 0
    local f = redis.call('HGET', fails, member)
    if f then
      local n, fdue = string.match(f, '^(%d+)|(%d+)$')
      if fdue == at then
        attempts = tonumber(n)
      else -- the timer was set again since it failed: a fresh start
        redis.call('HDEL', fails, member)
      end
    end
    out[#out + 1] = member
    out[#out + 1] = at
    out[#out + 1] = attempts
    if #out > 3 * A.limit then break end
  end
end
return out
