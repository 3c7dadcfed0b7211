-- lead_escalate: fire a queued lead's escalation timer exactly once: take
-- it off the queue it waits on and route it over the rule's next targets.
--
-- KEYS[1..14]  the workspace keys (lib_routing.lua)
-- KEYS[15]     lead    HASH
-- KEYS[16]     sticky  STRING (the lead key again when there is no email)
-- KEYS[17]     queue   ZSET the lead waits on
-- KEYS[18+5i..22+5i]   remaining target i (from 0): pool, rank, owed, queue, away
--
-- ARGV[1]  config id the caller holds
-- ARGV[2]  now, unix ms
-- ARGV[3]  lead id
-- ARGV[4]  pool id the lead waits on
-- ARGV[5]  lead score (-1: unscored)
-- ARGV[6]  email ('' for none); ARGV[7] sticky window ms
-- ARGV[8]  rule index of the first remaining target (1-based)
-- ARGV[9]  reason recorded when the lead is queued with nobody eligible
-- ARGV[10] number of remaining targets; then 3 per target as in lead_decide
--
-- Returns:
--   {'STALE'}      config id is not current
--   {'GONE'}       the timer was already fired, or the lead moved on
--   {'OK', backlog, state}  the lead's new state

local lead_key = KEYS[15]
local sticky_key = KEYS[16]
local old_queue = KEYS[17]
local lead_id = ARGV[3]
local old_pool = ARGV[4]
local score = tonumber(ARGV[5])
local email = ARGV[6]
local sticky_window = tonumber(ARGV[7])
local base_index = tonumber(ARGV[8])
local queued_reason = ARGV[9]
local targets = read_targets(18, 11, tonumber(ARGV[10]))

if redis.call('HGET', K.config, 'id') ~= CONFIG_ID then
  return { 'STALE' }
end
local state, pool_id = unpack(redis.call('HMGET', lead_key, 'state', 'pool'))
if state == 'QUEUED' and pool_id ~= old_pool then
  return { 'GONE' } -- the caller read an older record; the timer stays for the next sweep
end
if not claim_timer('escalate|' .. lead_id) or state ~= 'QUEUED' then
  return { 'GONE' }
end
local lines = { 'E\t' .. old_pool }
local outcome = route_targets(targets, lines, queued_reason)
if not outcome then
  return { 'OK', '0', 'QUEUED' } -- no target left: it keeps waiting where it is
end
redis.call('ZREM', old_queue, lead_id)
if redis.call('ZCARD', old_queue) == 0 then
  redis.call('SREM', K.queued_pools, old_pool)
end
local target = targets[outcome.index]
local fields = { 'target', base_index + outcome.index - 1, 'picks', table.concat(lines, '\n') }
emit('escalated', lead_id, '', target.pool.id, 'from ' .. old_pool)
add_history(lead_key, 'escalated', '', 'from ' .. old_pool .. ' to ' .. target.pool.id)
local state = outcome.state
if state == 'ASSIGNED' then
  outcome.advance()
  append_all(fields, { 'counted', commit_rep(outcome.rep, target.pool.id) })
  clear_timers(lead_id)
  local submitted = tonumber(redis.call('HGET', lead_key, 'submitted_at') or NOW)
  state = place_stored(lead_key, target.pool, outcome.rep, lead_id, submitted, fields)
  bind_sticky(sticky_key, email, sticky_window, outcome.rep, target.pool.id, lead_id)
else
  append_all(fields, { 'state', 'QUEUED', 'pool', target.pool.id, 'reason', outcome.reason or '', 'decided_at', NOW,
    'queued_at', NOW })
  redis.call('HSET', lead_key, unpack(fields))
  enqueue(target.pool, lead_id, score, outcome.wait, 0)
end
return { 'OK', outcome.backlog and '1' or '0', state }
