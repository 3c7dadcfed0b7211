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
--   {'WRONG_REP', rep}          the lead is held by another rep
--   {'NOT_ASSIGNED', state}     the lead is offered (accept first), queued...

local lead_key = KEYS[15]
local lead_id = ARGV[3]
local rep = ARGV[4]
local channel = ARGV[5]
local at = ARGV[6]

local state, holder, first = unpack(redis.call('HMGET', lead_key, 'state', 'rep', 'first_contact_at'))
if state ~= 'ASSIGNED' and state ~= 'CLOSED' then
  return { 'NOT_ASSIGNED', state or '' }
end
if holder ~= rep then
  return { 'WRONG_REP', holder }
end
if not first then
  redis.call('HSET', lead_key, 'first_contact_at', at, 'first_contact_channel', channel)
  redis.call('ZREM', K.timers, 'sla|' .. lead_id, 'warn|' .. lead_id)
  emit('first_contact', lead_id, rep, redis.call('HGET', lead_key, 'pool'), channel)
end
redis.call('HINCRBY', lead_key, 'contacts', 1)
add_history(lead_key, 'contacted', rep, channel)
local reply = { 'OK' }
append_all(reply, redis.call('HGETALL', lead_key))
return reply
