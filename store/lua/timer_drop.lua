-- timer_drop: remove a timer that can never do anything (its lead is gone,
-- or its kind is unknown), but only if it is still the deadline the caller
-- read: a timer set again meanwhile for a later deadline stays.
--
-- KEYS[1]  timers  ZSET
--
-- ARGV[1]  member
-- ARGV[2]  the due time the caller read, unix ms
--
-- Returns 1 when the timer was removed, else 0.

local timers = KEYS[1]
local member = ARGV[1]
local due = ARGV[2]

if redis.call('ZSCORE', timers, member) == due then
  return redis.call('ZREM', timers, member)
end
return 0
