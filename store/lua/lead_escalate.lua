-- lead_escalate: fire a queued lead's escalation timer exactly once: take
-- it off the queue it waits on and route it over the rule's next targets.
--
-- KEYS[1..14]  the workspace keys (lib_workspace.lua)
-- KEYS[15]     lead    HASH
-- KEYS[16]     sticky  STRING (the lead key again when there is no email)
-- KEYS[17]     queue   ZSET the lead waits on
-- KEYS[18+5i..22+5i]   remaining target i (from 0): pool, rank, owed, queue, away
--
-- A (store/contract.go escalateArgs): cfg, now, and
--   lead     the lead's id
--   pool     the pool the lead waits on
--   score    lead score (-1: unscored)
--   person   the lead's person hash ('' for no email); sticky: the sticky
--            window, ms
--   first    rule index of the first remaining target (1-based)
--   queued   reason recorded when the lead is queued with nobody eligible
--   targets  the remaining targets
--
-- Returns:
--   {STALE}               config id is not current
--   {MOVED, pool}         the lead waits on another pool than the caller
--                         read; the timer stays for the next sweep
--   {CLAIMED}             the timer was already fired
--   {WRONG_STATE, state}  the lead is no longer queued
--   {OK, backlog, state}  the lead's new state

local lead_key = KEYS[15]
local sticky_key = KEYS[16]
local old_queue = KEYS[17]
local lead_id = A.lead
local old_pool = A.pool
local score = A.score
local person = A.person
local sticky_window = A.sticky
local base_index = A.first
local queued_reason = A.queued
local targets = read_targets(18, A.targets)

if not current() then
  return { C.STALE }
end
local state, pool_id = unpack(redis.call('HMGET', lead_key, 'state', 'pool'))
if state == 'QUEUED' and pool_id ~= old_pool then
  return { C.MOVED, pool_id }
end
if not claim_timer('escalate|' .. lead_id) then
  return { C.CLAIMED }
end
if state ~= 'QUEUED' then
  return { C.WRONG_STATE, state or '' }
end
local lines = { 'E\t' .. old_pool }
local outcome = route_targets(targets, lines, queued_reason)
if not outcome then
  return { C.OK, 0, 'QUEUED' } -- no target left: it keeps waiting where it is
end
redis.call('ZREM', old_queue, lead_id)
if redis.call('ZCARD', old_queue) == 0 then
  redis.call('SREM', K.queued_pools, old_pool)
end
local target = targets[outcome.index]
local fields = { 'target', base_index + outcome.index - 1, 'picks', table.concat(lines, '\n') }
emit('escalated', lead_id, '', target.pool.id, note('from', old_pool))
add_history(lead_key, 'escalated', '', note('escalated', old_pool, target.pool.id))
local state = outcome.state
if state == 'ASSIGNED' then
  outcome.advance()
  append_all(fields, { 'counted', commit_rep(outcome.rep, target.pool.id) })
  clear_timers(lead_id)
  local submitted = tonumber(redis.call('HGET', lead_key, 'submitted_at') or NOW)
  state = place_stored(lead_key, target.pool, outcome.rep, lead_id, submitted, fields)
  bind_sticky(sticky_key, person, sticky_window, outcome.rep, target.pool.id, lead_id)
else
  append_all(fields, { 'state', 'QUEUED', 'pool', target.pool.id, 'reason', outcome.reason or '', 'decided_at', NOW,
    'queued_at', NOW })
  redis.call('HSET', lead_key, unpack(fields))
  enqueue(target.pool, lead_id, score, outcome.wait, 0)
end
return { C.OK, outcome.backlog and 1 or 0, state }
