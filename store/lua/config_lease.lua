-- config_lease: take over a config apply whose applier stopped (store/apply.go):
-- once its lease has run out, the caller holds it and carries on with the
-- plan from the step due. The plan is complete from config_begin on, so an
-- apply always finishes once begun.
--
-- KEYS[1]  config  HASH (config_begin.lua)
--
-- A (store/contract.go leaseArgs): now (unix ms by the wall clock), lease
-- (ms)
--
-- Returns:
--   {DONE, id}              no apply under way
--   {HELD, id, lease}       the applier holds it until lease (unix ms)
--   {OK, id, next, steps}   the caller holds it now

local config = KEYS[1]
local now, lease = A.now, A.lease
local v = redis.call('HMGET', config, 'id', 'lease', 'next', 'steps')
local id = v[1] or ''
if string.sub(id, 1, #'applying:') ~= 'applying:' then
  return { C.DONE, id }
end
if tonumber(v[2] or '0') > now then
  return { C.HELD, id, v[2] }
end
redis.call('HSET', config, 'lease', now + lease)
return { C.OK, id, v[3] or '0', v[4] or '0' }
