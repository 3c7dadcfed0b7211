-- lead_reroute: take a lead from its rep and route it again, or warn.
--   timeout  the offer timer fired: withdraw the offer (exactly once), count
--            a missed offer (max_missed_offers sets the rep AWAY)
--   reject   the rep rejected the offer: withdraw it, cooldown for the rep
--   breach   the first-contact SLA timer fired without a contact: notify;
--            with on_breach REASSIGN also close the rep's assignment
--   warn     the SLA warning timer fired without a contact: notify only
--   requeue  an operator's call (AdminService.RequeueLead): a QUEUED,
--            UNROUTABLE, OFFERED or ASSIGNED lead is taken from where it
--            is (an offer withdrawn, an assignment's hold closed, a queue
--            place given up) and routed again over the targets
--   reassign an operator's call (AdminService.ReassignLead): the same, but
--            the lead is ASSIGNED at once to rep A.to in the one target's
--            pool, bypassing rules and eligibility
-- A withdrawn lead is offered to the next eligible rep of its targets, never
-- the same rep twice unless nobody else is eligible; after max_offers
-- withdrawn offers (or with nobody eligible) it is QUEUED with the reason.
--
-- KEYS[1..14]  the workspace keys (lib_workspace.lua)
-- KEYS[15]     lead    HASH
-- KEYS[16]     sticky  STRING (the lead key again when there is no email)
-- KEYS[17+5i..21+5i]  target i (from 0): pool, rank, owed, queue, away
--
-- KEYS[16+5n+i]       the rank ZSET of the rep's ranked pool i (from 1;
--                       after the n targets' keys)
-- KEYS[17+5n+r]       (requeue, reassign) the queue ZSET of A.pool when
--                       A.was is QUEUED, else the lead key again (after
--                       the r ranked keys)
--
-- A (store/contract.go rerouteArgs): cfg, now, and
--   lead     the lead's id
--   mode     timeout, reject, breach or warn
--   rep      the rep the caller expects to hold the lead
--   reason   (reject) the rep's reason
--   person   the lead's person hash ('' for no email); sticky: the sticky
--            window, ms
--   score    lead score (-1: unscored)
--   first    rule index of the first target (1-based)
--   queued   reason recorded when nobody is eligible
--   expire   queue expiry for the lead if it is queued, unix ms (0: none;
--            an existing expiry is kept)
--   targets  the rule's targets
--   policy   the policies of the pool the lead's placement followed
--   ranked   the strategy of each ranked pool's rank key
--   was, pool (requeue, reassign) the record's state and pool as the
--            caller read them (with rep, they chose the keys above)
--   to       (reassign) the rep who gets the lead
--
-- Returns:
--   {STALE}                  config id is not current
--   {CLAIMED, state}         the timer was fired already
--   {WRONG_STATE, state}     nothing to do: the offer was accepted, the
--                            contact was made...
--   {WRONG_REP, rep, state}  (reject) the lead is offered to another rep
--   {MOVED, state}           (requeue, reassign) the record changed since
--                            the caller read it: read it again, call again
--   {OK, state, backlog}     the lead's new state

local lead_key = KEYS[15]
local sticky_key = KEYS[16]
local lead_id = A.lead
local mode = A.mode
local rep = A.rep
local reason = A.reason
local person = A.person
local sticky_window = A.sticky
local score = A.score
local base_index = A.first
local queued_reason = A.queued
local expire_at = A.expire
local targets = read_targets(17, A.targets)
local policy = A.policy
local ranked = {}
for i, strategy in ipairs(A.ranked or {}) do
  ranked[i] = { key = KEYS[16 + TARGET_KEYS * #targets + i], strategy = strategy }
end
local operator = mode == 'requeue' or mode == 'reassign'

if not current() then
  return { C.STALE }
end
local state, holder, pool_id, contacted = unpack(redis.call('HMGET', lead_key, 'state', 'rep', 'pool', 'first_contact_at'))

-- Timers are claimed first, so each fires once whatever the record says.
if mode == 'timeout' or mode == 'breach' or mode == 'warn' then
  local member = ({ timeout = 'offer|', breach = 'sla|', warn = 'warn|' })[mode] .. lead_id
  if not claim_timer(member) then return { C.CLAIMED, state or '' } end
end
if mode == 'timeout' and (state ~= 'OFFERED' or holder ~= rep) then return { C.WRONG_STATE, state or '' } end
if mode == 'reject' then
  if state ~= 'OFFERED' then return { C.WRONG_STATE, state or '' } end
  if holder ~= rep then return { C.WRONG_REP, holder, state } end
end
if operator then
  if state ~= 'OFFERED' and state ~= 'ASSIGNED' and state ~= 'QUEUED' and state ~= 'UNROUTABLE' then
    return { C.WRONG_STATE, state or '' }
  end
  if state ~= A.was or (holder or '') ~= rep or (pool_id or '') ~= A.pool then
    return { C.MOVED, state }
  end
  if mode == 'reassign' and state == 'ASSIGNED' and holder == A.to then
    return { C.WRONG_STATE, state } -- the rep holds it already
  end
end
if mode == 'breach' or mode == 'warn' then
  if contacted or (state ~= 'ASSIGNED' and state ~= 'OFFERED') then return { C.WRONG_STATE, state or '' } end
  local kind = mode == 'warn' and 'sla_warning' or 'sla_breached'
  emit(kind, lead_id, holder, pool_id, note('no_contact'))
  add_history(lead_key, kind, holder, note('no_contact'))
  redis.call('HINCRBY', lead_key, 'breaches', mode == 'breach' and 1 or 0)
  if mode == 'warn' or state ~= 'ASSIGNED' or policy.breach ~= 'REASSIGN' then
    return { C.OK, state, 0 }
  end
end

-- Withdraw: the rep no longer holds the lead.
if operator then
  -- One history line per entry: a line break in the reason must not forge
  -- entries.
  local why = (string.gsub(reason, '%c', ' '))
  if state == 'OFFERED' then
    uncommit_rep(holder, redis.call('HGET', lead_key, 'counted')) -- the rep never had the lead
    redis.call('ZREM', K.timers, 'offer|' .. lead_id)
    emit('offer_withdrawn', lead_id, holder, pool_id, why)
  elseif state == 'ASSIGNED' then
    -- As for a breach: the rep keeps the day's count, not the lead.
    if tonumber(redis.call('HGET', K.open, holder) or '0') > 0 then redis.call('HINCRBY', K.open, holder, -1) end
    redis.call('HDEL', lead_key, 'accepted_at')
    emit('reassigned', lead_id, holder, pool_id, why)
  elseif state == 'QUEUED' then
    local queue_key = KEYS[17 + TARGET_KEYS * #targets + #ranked]
    redis.call('ZREM', queue_key, lead_id)
    if redis.call('ZCARD', queue_key) == 0 then redis.call('SREM', K.queued_pools, pool_id) end
    redis.call('ZREM', K.timers, 'escalate|' .. lead_id) -- the expiry stays: routing again does not reset it
  else
    redis.call('ZREM', K.timers, 'retain|' .. lead_id)
  end
  add_history(lead_key, mode == 'reassign' and 'moved' or 'requeued', holder or '', why)
elseif mode == 'breach' then
  -- The rep keeps the day's count (the assignment happened) but not the lead.
  if tonumber(redis.call('HGET', K.open, holder) or '0') > 0 then redis.call('HINCRBY', K.open, holder, -1) end
  -- The next rep has accepted nothing yet and gets a fresh SLA window from
  -- when it is given the lead (sla_restart, see place_stored); the
  -- breaching rep is remembered ("|a|b|") so that no later reroute or drain
  -- of this lead hands it back.
  redis.call('HDEL', lead_key, 'accepted_at')
  redis.call('HSET', lead_key, 'sla_restart', 1)
  redis.call('HSET', lead_key, 'breached_by', (redis.call('HGET', lead_key, 'breached_by') or '|') .. holder .. '|')
  add_history(lead_key, 'reassigned', holder, note('sla_reassign'))
  emit('reassigned', lead_id, holder, pool_id, note('sla_reassign'))
else
  uncommit_rep(holder, redis.call('HGET', lead_key, 'counted'))
  redis.call('ZREM', K.timers, 'offer|' .. lead_id)
  redis.call('HINCRBY', lead_key, 'withdrawn', 1)
  if mode == 'reject' then
    local cool = policy.cooldown
    if cool > 0 then redis.call('HSET', K.repstate, 'cool:' .. pool_id .. '/' .. holder, NOW + cool) end
    -- One history line per entry: a line break in the reason must not
    -- forge entries.
    add_history(lead_key, 'rejected', holder, (string.gsub(reason, '%c', ' ')))
    redis.call('HSET', lead_key, 'rejected_by', (redis.call('HGET', lead_key, 'rejected_by') or '|') .. holder .. '|')
    emit('offer_rejected', lead_id, holder, pool_id, reason)
  else
    add_history(lead_key, 'offer_expired', holder, '')
    emit('offer_withdrawn', lead_id, holder, pool_id, note('not_accepted'))
    local misses = redis.call('HINCRBY', K.repstate, 'miss:' .. holder, 1)
    local limit = policy.max_missed
    if limit > 0 and misses >= limit and redis.call('HGET', K.presence, holder) == 'AVAILABLE' then
      redis.call('HSET', K.presence, holder, 'AWAY')
      redis.call('HSET', K.status_changed, holder, NOW)
      redis.call('HDEL', K.repstate, 'miss:' .. holder)
      local why = note('missed_offers', misses)
      add_history(lead_key, 'auto_paused', holder, why)
      emit('auto_paused', '', holder, pool_id, why)
    end
  end
end
-- The rep's open count fell: so must its scores in its ranked pools, which
-- may lag below the truth but never above it (pick_ranked).
for _, r in ipairs(ranked) do
  if redis.call('ZSCORE', r.key, holder) then
    redis.call('ZADD', r.key, rank_score(r.strategy, holder), holder)
  end
end
local held = person ~= '' and redis.call('GET', sticky_key)
if held and select(3, string.match(held, '^([^|]*)|([^|]*)|(.*)|(%d+)$')) == lead_id then
  redis.call('DEL', sticky_key)
end

-- Route again, excluding every rep offered the lead so far.
local max_offers = policy.max_offers
local withdrawn = tonumber(redis.call('HGET', lead_key, 'withdrawn') or '0')
-- queue_here queues the lead on target index (the pool it was taken from
-- when the targets do not list it), with that target's escalation wait and
-- the lead's expiry.
local function queue_here(why, index, wait, lines)
  local target = index and targets[index]
  local pool = target and target.pool
  if not pool then
    for i, t in ipairs(targets) do
      if t.pool.id == pool_id then pool, index = t.pool, i end
    end
  end
  if not pool and targets[1] then pool, index = targets[1].pool, 1 end
  if not pool then
    redis.call('HSET', lead_key, 'state', 'UNROUTABLE', 'reason', why, 'decided_at', NOW, 'rep', '')
    count_state(state, 'UNROUTABLE')
    retain(lead_id)
    add_history(lead_key, 'unroutable', '', why)
    emit('unroutable', lead_id, '', '', why)
    return 'UNROUTABLE'
  end
  count_state(state, 'QUEUED')
  redis.call('HSET', lead_key, 'state', 'QUEUED', 'pool', pool.id, 'reason', why, 'decided_at', NOW,
    'queued_at', NOW, 'rep', '', 'target', base_index + index - 1, 'placed_cfgv', config_version())
  if lines and #lines > 0 then
    redis.call('HSET', lead_key, 'picks', table.concat(lines, '\n')) -- why nobody took it
  end
  enqueue(pool, lead_id, score, wait or 0, expire_at)
  add_history(lead_key, 'queued', '', why)
  emit('queued', lead_id, '', pool.id, why)
  return 'QUEUED'
end
if mode == 'reassign' then
  -- The operator's rep holds the lead at once, whatever the pool's offer
  -- policy and the rep's eligibility; the first-contact SLA runs on.
  local target = targets[1]
  local pool = { id = target.pool.id, policy = { accept = 0, sla = target.pool.policy.sla, warn = target.pool.policy.warn } }
  clear_timers(lead_id)
  redis.call('HSET', lead_key, 'counted', commit_rep(A.to, pool.id))
  local sla_from = tonumber(redis.call('HGET', lead_key, 'sla_from') or redis.call('HGET', lead_key, 'submitted_at') or NOW)
  local placed = place_stored(lead_key, pool, A.to, lead_id, sla_from,
    { 'target', 0, 'route', 'operator', 'picks', 'R\t' .. note('operator', (string.gsub(reason, '%c', ' '))) .. '\t' .. A.to .. '\nC\t' .. A.to .. '\t' })
  bind_sticky(sticky_key, person, sticky_window, A.to, pool.id, lead_id)
  return { C.OK, placed, 0 }
end
if max_offers > 0 and withdrawn >= max_offers and mode ~= 'breach' and not operator then
  return { C.OK, queue_here(note('max_offers', withdrawn, max_offers)), 0 }
end
local exclude = {}
for r in string.gmatch(redis.call('HGET', lead_key, 'offered') or '', '[^|]+') do exclude[r] = true end
-- A rep who breached the lead's SLA never gets it back, not even when
-- nobody else is eligible (this breach, or an earlier one followed by
-- offers that timed out).
EXCLUDE = {}
for r in string.gmatch(redis.call('HGET', lead_key, 'breached_by') or '', '[^|]+') do
  exclude[r] = true
  EXCLUDE[r] = true
end
if mode == 'reject' then
  EXCLUDE[holder] = true -- the rep just said no: not even as the last resort
end
local lines = {}
local outcome = route_targets(targets, lines, queued_reason, exclude)
EXCLUDE = {}
if not outcome or outcome.state ~= 'ASSIGNED' then
  local why = (outcome and outcome.reason) or queued_reason
  return { C.OK, queue_here(why, outcome and outcome.index, outcome and outcome.wait, lines), (outcome and outcome.backlog) and 1 or 0 }
end
local target = targets[outcome.index]
outcome.advance()
if operator then clear_timers(lead_id) end
redis.call('HSET', lead_key, 'counted', commit_rep(outcome.rep, target.pool.id))
-- The first-contact SLA runs from submission, or from the last breach
-- reassignment (a fresh window, kept by the offers that follow it).
local sla_from = tonumber(redis.call('HGET', lead_key, 'sla_from') or redis.call('HGET', lead_key, 'submitted_at') or NOW)
local placed = place_stored(lead_key, target.pool, outcome.rep, lead_id, sla_from,
  { 'target', base_index + outcome.index - 1, 'picks', table.concat(lines, '\n') })
bind_sticky(sticky_key, person, sticky_window, outcome.rep, target.pool.id, lead_id)
return { C.OK, placed, 0 }
