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
-- An accept after the offer's deadline fails, even before the offer timer
-- has withdrawn it.
--
-- Returns:
--   {'OK', field, value, ...}       the record
--   {'WRONG_REP', rep, state}       the lead is offered to or held by rep
--                                   (state: OFFERED or ASSIGNED)
--   {'GONE', state, detail}         no offer to accept: the offer to this rep
--                                   expired (detail: when, from the history;
--                                   '' when this rep's last offer did not
--                                   expire) or the lead is queued,
--                                   unroutable or closed

local lead_key = KEYS[15]
local lead_id = ARGV[3]
local rep = ARGV[4]

local state, holder, expires = unpack(redis.call('HMGET', lead_key, 'state', 'rep', 'offer_expires'))
if not state then
  return { 'GONE', '', '' }
end
if state == 'OFFERED' and holder == rep and tonumber(expires or '0') < NOW then
  -- Past the deadline: the offer timer withdraws it (it may not have run
  -- yet); an accept comes too late either way.
  return { 'GONE', state, expires }
end
if state == 'OFFERED' and holder == rep then
  redis.call('HSET', lead_key, 'state', 'ASSIGNED', 'accepted_at', NOW)
  redis.call('ZREM', K.timers, 'offer|' .. lead_id)
  redis.call('HDEL', K.repstate, 'miss:' .. rep)
  add_history(lead_key, 'accepted', rep, '')
  local pool_id, offered_at = unpack(redis.call('HMGET', lead_key, 'pool', 'decided_at'))
  emit('accepted', lead_id, rep, pool_id, '', offered_at and NOW - tonumber(offered_at))
elseif state == 'ASSIGNED' and holder == rep then
  -- accepted already: nothing to do
else
  -- No offer of this rep's to accept. Say when its offer expired if the
  -- last thing that happened to this rep with the lead is that expiry
  -- (not an expiry followed by a new offer it accepted, nor the deadline
  -- of another rep's offer).
  local lost, rep_kind = nil, nil
  for at, kind, who in string.gmatch(redis.call('HGET', lead_key, 'history') or '', '(%d+)\t([^\t\n]*)\t([^\t\n]*)\t[^\n]*\n') do
    if who == rep and (kind == 'offered' or kind == 'offer_expired' or kind == 'rejected' or kind == 'accepted'
        or kind == 'assigned' or kind == 'reassigned') then
      rep_kind, lost = kind, at
    end
  end
  if rep_kind == 'offer_expired' then return { 'GONE', state, lost } end
  if (state == 'OFFERED' or state == 'ASSIGNED') and holder ~= rep then return { 'WRONG_REP', holder, state } end
  return { 'GONE', state, '' }
end
local reply = { 'OK' }
append_all(reply, redis.call('HGETALL', lead_key))
return reply
