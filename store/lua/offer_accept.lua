-- offer_accept: a rep accepts the offer of a lead: OFFERED becomes
-- ASSIGNED, the offer timer is cancelled and the rep's missed-offer count is
-- reset. Accepting an accepted lead again changes nothing.
--
-- KEYS[1..14]  the workspace keys (lib_workspace.lua)
-- KEYS[15]     lead  HASH
--
-- A (store/contract.go leadRepArgs): now, lead (the lead's id), rep
--
-- An accept after the offer's deadline fails, even before the offer timer
-- has withdrawn it.
--
-- Returns:
--   {OK, field, value, ...}     the record
--   {WRONG_REP, rep, state}     the lead is offered to or held by rep
--                               (state: OFFERED or ASSIGNED)
--   {NOT_FOUND}                 no such lead
--   {EXPIRED, state, at}        the offer to this rep expired at unix ms at
--                               (from the history when it was withdrawn)
--   {WRONG_STATE, state}        no offer to accept: the lead is queued,
--                               unroutable or closed, or was never offered
--                               to this rep

local lead_key = KEYS[15]
local lead_id = A.lead
local rep = A.rep

local state, holder, expires = unpack(redis.call('HMGET', lead_key, 'state', 'rep', 'offer_expires'))
if not state then
  return { C.NOT_FOUND }
end
if state == 'OFFERED' and holder == rep and tonumber(expires or '0') < NOW then
  -- Past the deadline: the offer timer withdraws it (it may not have run
  -- yet); an accept comes too late either way.
  return { C.EXPIRED, state, expires }
end
if state == 'OFFERED' and holder == rep then
  redis.call('HSET', lead_key, 'state', 'ASSIGNED', 'accepted_at', NOW)
  count_state('OFFERED', 'ASSIGNED')
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
  if rep_kind == 'offer_expired' then return { C.EXPIRED, state, lost } end
  if (state == 'OFFERED' or state == 'ASSIGNED') and holder ~= rep then return { C.WRONG_REP, holder, state } end
  return { C.WRONG_STATE, state }
end
local reply = { C.OK }
append_all(reply, redis.call('HGETALL', lead_key))
return reply
