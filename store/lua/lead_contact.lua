-- lead_contact: the rep records a contact with the lead. The first contact
-- stops the first-contact SLA timers and fixes speed to lead; later ones
-- are counted.
--
-- KEYS[1..14]  the workspace keys (lib_workspace.lua)
-- KEYS[15]     lead  HASH
--
-- A (store/contract.go contactArgs): now, lead (the lead's id), rep,
-- channel, at (when the contact happened, unix ms)
--
-- Returns:
--   {OK, field, value, ...}     the record
--   {WRONG_REP, rep, state}     the lead is held by another rep
--   {BEFORE_SUBMISSION, ms}     the contact is dated before the submission
--   {NOT_FOUND}                 no such lead
--   {WRONG_STATE, state}        the lead is offered (accept first), queued,
--                               unroutable or closed: a closed lead's record
--                               takes no more contacts

local lead_key = KEYS[15]
local lead_id = A.lead
local rep = A.rep
local channel = A.channel
local at = A.at

local state, holder, first, submitted, due, breaches = unpack(redis.call('HMGET', lead_key,
  'state', 'rep', 'first_contact_at', 'submitted_at', 'sla_due', 'breaches'))
if not state then
  return { C.NOT_FOUND }
end
if state ~= 'ASSIGNED' then
  return { C.WRONG_STATE, state }
end
if holder ~= rep then
  return { C.WRONG_REP, holder, state }
end
if at < tonumber(submitted or '0') then
  return { C.BEFORE_SUBMISSION, submitted }
end
if not first then
  redis.call('HSET', lead_key, 'first_contact_at', at, 'first_contact_channel', channel)
  redis.call('ZREM', K.timers, 'sla|' .. lead_id, 'warn|' .. lead_id)
  if due and tonumber(at) > tonumber(due) and tonumber(breaches or '0') == 0 then
    -- The SLA ran out before this contact, but its timer had not fired yet:
    -- the breach is recorded all the same.
    redis.call('HINCRBY', lead_key, 'breaches', 1)
    add_history(lead_key, 'sla_breached', rep, note('late_contact'))
    emit('sla_breached', lead_id, rep, redis.call('HGET', lead_key, 'pool'), note('late_contact'))
  end
  emit('first_contact', lead_id, rep, redis.call('HGET', lead_key, 'pool'), channel,
    submitted and tonumber(at) - tonumber(submitted))
end
redis.call('HINCRBY', lead_key, 'contacts', 1)
add_history(lead_key, 'contacted', rep, channel)
local reply = { C.OK }
append_all(reply, redis.call('HGETALL', lead_key))
return reply
