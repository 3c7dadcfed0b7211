-- timer_drop: remove a timer that can never do anything (its lead is gone,
-- or its kind is unknown), but only if it is still the deadline the caller
-- read: a timer set again meanwhile for a later deadline stays.
--
-- KEYS[1]  timers  ZSET
--
-- A (store/contract.go timerArgs): member, due (the due time the caller
-- read, unix ms)
--
-- Returns {OK, 1} when the timer was removed, else {OK, 0}.

local timers = KEYS[1]
local member = A.member
local due = A.due

if tonumber(redis.call('ZSCORE', timers, member) or '-1') == due then
  return { C.OK, redis.call('ZREM', timers, member) }
end
return { C.OK, 0 }
