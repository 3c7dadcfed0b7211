-- lead_contact: the rep records a contact with the lead. The first contact
-- stops the first-contact SLA timers and fixes speed to lead; later ones
-- are counted.
--
-- KEYS[1..14]  the workspace keys (lib_routing.lua)
-- KEYS[15]     lead  HASH
--
-- ARGV[1]  config id (unused; the layout is shared)
-- ARGV[2]  now, unix ms
-- ARGV[3]  lead id
-- ARGV[4]  rep id
-- ARGV[5]  channel
-- ARGV[6]  when the contact happened, unix ms
--
-- Returns:
--   {'OK', field, value, ...}   the record
--   {'WRONG_REP', rep, state}   the lead is held by another rep
--   {'BEFORE_SUBMISSION', ms}   the contact is dated before the submission
--   {'NOT_ASSIGNED', state}     the lead is offered (accept first), queued...

local lead_key = KEYS[15]
local lead_id = ARGV[3]
local rep = ARGV[4]
local channel = ARGV[5]
local at = ARGV[6]

local state, holder, first, submitted, due, breaches = unpack(redis.call('HMGET', lead_key,
  'state', 'rep', 'first_contact_at', 'submitted_at', 'sla_due', 'breaches'))
if state ~= 'ASSIGNED' and state ~= 'CLOSED' then
  return { 'NOT_ASSIGNED', state or '' }
end
if holder ~= rep then
  return { 'WRONG_REP', holder, state }
end
if tonumber(at) < tonumber(submitted or '0') then
  return { 'BEFORE_SUBMISSION', submitted }
end
if not first then
  redis.call('HSET', lead_key, 'first_contact_at', at, 'first_contact_channel', channel)
  redis.call('ZREM', K.timers, 'sla|' .. lead_id, 'warn|' .. lead_id)
  if due and tonumber(at) > tonumber(due) and tonumber(breaches or '0') == 0 then
    -- The SLA ran out before this contact, but its timer had not fired yet:
    -- the breach is recorded all the same.
    redis.call('HINCRBY', lead_key, 'breaches', 1)
    add_history(lead_key, 'sla_breached', rep, 'first contact after the SLA deadline')
    emit('sla_breached', lead_id, rep, redis.call('HGET', lead_key, 'pool'), 'first contact after the SLA deadline')
  end
  emit('first_contact', lead_id, rep, redis.call('HGET', lead_key, 'pool'), channel,
    submitted and tonumber(at) - tonumber(submitted))
end
redis.call('HINCRBY', lead_key, 'contacts', 1)
add_history(lead_key, 'contacted', rep, channel)
local reply = { 'OK' }
append_all(reply, redis.call('HGETALL', lead_key))
return reply
