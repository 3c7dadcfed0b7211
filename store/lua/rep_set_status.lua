-- rep_set_status: set a rep's declared presence, and file the rep in the
-- eligible-member index of each of its pools (lib_routing.lua).
--
-- KEYS[1..14]  the workspace keys (lib_routing.lua)
-- KEYS[15+5i..19+5i]  pool i of the rep (from 0): pool, rank, owed, queue, away
--
-- ARGV[1]  config id the caller holds (the rep and its pools are in that config)
-- ARGV[2]  now, unix ms
-- ARGV[3]  rep id
-- ARGV[4]  new status: AVAILABLE, AWAY or OFFLINE
-- ARGV[5+i] pool i's id
--
-- Returns:
--   {'STALE'}               config id is not current
--   {'OK', previous status} ('' when the rep had none)

local rep = ARGV[3]
local status = ARGV[4]
local pools = {}
for i = 5, #ARGV do pools[#pools + 1] = pool_at(ARGV[i], 15 + TARGET_KEYS * (i - 5)) end

if redis.call('HGET', K.config, 'id') ~= CONFIG_ID then
  return { 'STALE' }
end
local previous = redis.call('HGET', K.presence, rep) or ''
if previous ~= status then
  redis.call('HSET', K.presence, rep, status)
  redis.call('HSET', K.status_changed, rep, NOW)
  redis.call('XADD', K.events, '*', 'kind', 'rep_status_changed', 'lead', '', 'rep', rep, 'pool', '',
    'at', NOW, 'detail', (previous ~= '' and previous or 'NONE') .. ' -> ' .. status)
end
index_presence(pools, rep)
return { 'OK', previous }
