-- offer_accept: a rep accepts the offer of a lead: OFFERED becomes
-- ASSIGNED, the offer timer is cancelled and the rep's missed-offer count is
-- reset. Accepting an accepted lead again changes nothing.
--
-- KEYS[1..14]  the workspace keys (lib_routing.lua)
-- KEYS[15]     lead  HASH
--
-- ARGV[1]  config id (unused; the layout is shared)
-- ARGV[2]  now, unix ms
-- ARGV[3]  lead id
-- ARGV[4]  rep id
--
-- Returns:
--   {'OK', field, value, ...}       the record
--   {'WRONG_REP', rep}              the lead is offered to or held by rep
--   {'GONE', state, detail}         no offer to accept: the offer to this rep
--                                   expired (detail: when) or the lead is
--                                   queued, unroutable or closed

local lead_key = KEYS[15]
local lead_id = ARGV[3]
local rep = ARGV[4]

local state, holder, expires = unpack(redis.call('HMGET', lead_key, 'state', 'rep', 'offer_expires'))
if not state then
  return { 'GONE', '', '' }
end
if state == 'OFFERED' and holder == rep then
  redis.call('HSET', lead_key, 'state', 'ASSIGNED', 'accepted_at', NOW)
  redis.call('ZREM', K.timers, 'offer|' .. lead_id)
  redis.call('HDEL', K.repstate, 'miss:' .. rep)
  add_history(lead_key, 'accepted', rep, '')
  emit('accepted', lead_id, rep, redis.call('HGET', lead_key, 'pool'), '')
elseif state == 'ASSIGNED' and holder == rep then
  -- accepted already: nothing to do
elseif (state == 'OFFERED' or state == 'ASSIGNED') and holder ~= rep then
  -- The offer may have been this rep's once and expired.
  local history = redis.call('HGET', lead_key, 'history') or ''
  local lost = string.match(history, '.*\n(%d+)\toffer_expired\t' .. rep:gsub('%p', '%%%0') .. '\t')
  if lost then return { 'GONE', state, lost } end
  return { 'WRONG_REP', holder }
else
  local lost = string.match(redis.call('HGET', lead_key, 'history') or '',
    '.*\n(%d+)\toffer_expired\t' .. rep:gsub('%p', '%%%0') .. '\t')
  return { 'GONE', state, lost or (expires or '') }
end
local reply = { 'OK' }
append_all(reply, redis.call('HGETALL', lead_key))
return reply
