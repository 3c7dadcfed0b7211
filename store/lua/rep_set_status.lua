-- rep_set_status: set a rep's declared presence.
--
-- KEYS[1]  config          HASH  (id)
-- KEYS[2]  presence        HASH  rep id -> status
-- KEYS[3]  status_changed  HASH  rep id -> unix ms
-- KEYS[4]  events          STREAM
--
-- ARGV[1]  config id the caller holds (the rep is in that config)
-- ARGV[2]  rep id
-- ARGV[3]  new status: AVAILABLE, AWAY or OFFLINE
-- ARGV[4]  now, unix ms
--
-- Returns:
--   {'STALE'}               config id is not current
--   {'OK', previous status} ('' when the rep had none)

local config_key = KEYS[1]
local presence_key = KEYS[2]
local status_changed_key = KEYS[3]
local events_key = KEYS[4]

local config_id = ARGV[1]
local rep = ARGV[2]
local status = ARGV[3]
local now = ARGV[4]

if redis.call('HGET', config_key, 'id') ~= config_id then
  return { 'STALE' }
end
local previous = redis.call('HGET', presence_key, rep) or ''
if previous ~= status then
  redis.call('HSET', presence_key, rep, status)
  redis.call('HSET', status_changed_key, rep, now)
  redis.call('XADD', events_key, '*', 'kind', 'rep_status_changed', 'lead', '', 'rep', rep, 'pool', '',
    'at', now, 'detail', (previous ~= '' and previous or 'NONE') .. ' -> ' .. status)
end
return { 'OK', previous }
