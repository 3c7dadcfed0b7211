-- config_lease: take over a config apply whose applier stopped (store/apply.go):
-- once its lease has run out, the caller holds it and carries on with the
-- plan from the step due. The plan is complete from config_begin on, so an
-- apply always finishes once begun.
--
-- KEYS[1]  config  HASH (config_begin.lua)
--
-- ARGV[1]  now, unix ms
-- ARGV[2]  lease ms
--
-- Returns:
--   {'NONE', id}              no apply under way
--   {'HELD', id, lease}       the applier holds it until lease (unix ms)
--   {'TAKEN', id, next, steps} the caller holds it now

local config = KEYS[1]
local now, lease = tonumber(ARGV[1]), tonumber(ARGV[2])
local v = redis.call('HMGET', config, 'id', 'lease', 'next', 'steps')
local id = v[1] or ''
if string.sub(id, 1, #'applying:') ~= 'applying:' then
  return { 'NONE', id }
end
if tonumber(v[2] or '0') > now then
  return { 'HELD', id, v[2] }
end
redis.call('HSET', config, 'lease', now + lease)
return { 'TAKEN', id, v[3] or '0', v[4] or '0' }
