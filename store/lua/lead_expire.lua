-- lead_expire: fire a queued lead's expiry timer exactly once: a lead that
-- waited longer than the workspace's max_queue_age becomes UNROUTABLE, with
-- the reason and an event. A lead no longer queued is left alone.
--
-- KEYS[1..14]  the workspace keys (lib_workspace.lua)
-- KEYS[15]     lead   HASH
-- KEYS[16]     queue  ZSET the lead waits on
--
-- A (store/contract.go expireArgs): now, and
--   lead    the lead's id
--   pool    the pool the lead waits on
--   reason  the reason to record
--
-- Returns:
--   {MOVED, pool}         the lead waits on another pool now: call again with it
--   {CLAIMED}             the timer was already fired
--   {WRONG_STATE, state}  the lead is placed
--   {OK}                  the lead is UNROUTABLE now

local lead_key = KEYS[15]
local queue = KEYS[16]
local lead_id = A.lead
local pool_id = A.pool
local reason = A.reason

local state, current_pool = unpack(redis.call('HMGET', lead_key, 'state', 'pool'))
if state == 'QUEUED' and current_pool ~= pool_id then
  return { C.MOVED, current_pool }
end
if not claim_timer('expire|' .. lead_id) then
  return { C.CLAIMED }
end
if state ~= 'QUEUED' then
  return { C.WRONG_STATE, state or '' }
end
redis.call('ZREM', queue, lead_id)
if redis.call('ZCARD', queue) == 0 then
  redis.call('SREM', K.queued_pools, pool_id)
end
clear_timers(lead_id)
observe_dequeue(lead_key, pool_id)
redis.call('HSET', lead_key, 'state', 'UNROUTABLE', 'reason', reason, 'decided_at', NOW)
count_state('QUEUED', 'UNROUTABLE')
retain(lead_id)
add_history(lead_key, 'unroutable', '', reason)
emit('unroutable', lead_id, '', pool_id, reason)
return { C.OK }
