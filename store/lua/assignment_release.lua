-- assignment_release: close an ASSIGNED lead: the rep's open count falls,
-- the record becomes CLOSED (keeping its history), the person's sticky
-- owner is forgotten, and the rep's least-loaded scores are corrected.
--
-- KEYS[1..14]  the workspace keys (lib_routing.lua)
-- KEYS[15]     lead    HASH
-- KEYS[16]     sticky  STRING (the lead key again when there is no email)
-- KEYS[17+i]   rank ZSET of each ranked pool the rep belongs to
--
-- ARGV[1]  config id the caller holds
-- ARGV[2]  now, unix ms
-- ARGV[3]  lead id
-- ARGV[4]  the rep the caller read from the record
-- ARGV[5]  reason
-- ARGV[6+i] strategy of rank key i (LEAST_LOADED or LONGEST_IDLE)
--
-- Returns:
--   {'STALE'}                       config id is not current
--   {'MOVED'}                       the record's rep is not ARGV[4]: read again
--   {'NOT_ASSIGNED', state}         the lead is queued or unroutable
--   {'OK', field, value, ...}       the closed record (also when it was
--                                   closed already: nothing changes then)

local lead_key = KEYS[15]
local sticky_key = KEYS[16]
local first_rank_key = 17
local lead_id = ARGV[3]
local expected_rep = ARGV[4]
local reason = ARGV[5]
local first_strategy = 6

if redis.call('HGET', K.config, 'id') ~= CONFIG_ID then
  return { 'STALE' }
end
local state, rep = unpack(redis.call('HMGET', lead_key, 'state', 'rep'))
if state == 'ASSIGNED' then
  if rep ~= expected_rep then
    return { 'MOVED' }
  end
  if tonumber(redis.call('HGET', K.open, rep) or '0') > 0 then
    redis.call('HINCRBY', K.open, rep, -1)
  end
  redis.call('HSET', lead_key, 'state', 'CLOSED', 'closed_at', NOW, 'close_reason', reason)
  local held = (redis.call('HGET', lead_key, 'email') or '') ~= '' and redis.call('GET', sticky_key)
  if held and select(3, string.match(held, '^([^|]*)|([^|]*)|(.*)|(%d+)$')) == lead_id then
    redis.call('DEL', sticky_key)
  end
  for i = 0, #ARGV - first_strategy do
    local rank = KEYS[first_rank_key + i]
    if redis.call('ZSCORE', rank, rep) then
      redis.call('ZADD', rank, rank_score(ARGV[first_strategy + i], rep), rep)
    end
  end
  emit('released', lead_id, rep, '', reason)
elseif state ~= 'CLOSED' then
  return { 'NOT_ASSIGNED', state or '' }
end
local reply = { 'OK' }
append_all(reply, redis.call('HGETALL', lead_key))
return reply
