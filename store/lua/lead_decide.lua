-- lead_decide: the whole routing decision for one new lead, in one step:
-- idempotency, sticky owner, account owner, the rule's targets with each
-- pool's strategy and every rep's eligibility, the rotation state, the
-- record, and queueing with its timers.
--
-- KEYS[1..14]  the workspace keys (lib_workspace.lua)
-- KEYS[15]     lead    HASH  this lead's record (store/record.go)
-- KEYS[16]     sticky  STRING "rep|pool|lead|until_ms" of the open assignment
--                       of this person (the lead key again when there is
--                       no email); it counts until until_ms by the engine's
--                       clock, and Redis drops it a day later
-- KEYS[17]     people  ZSET  the person index, "<person>|<lead>" at score 0
-- KEYS[18]     recent  ZSET  lead id -> received ms of the newest A.recent
--                       records (AdminService.SimulateConfig replays them)
-- KEYS[19+5i..23+5i]   target i (from 0): pool HASH, rank ZSET, owed ZSET,
--                       queue ZSET, away ZSET
--
-- A (store/contract.go decideArgs): cfg, now, dry, and
--   lead        the lead's id
--   queued      reason recorded when the lead is queued with nobody eligible
--   unroutable  reason recorded when no rule matched
--   person      the person hash of the lead's email (engine.Person; '' for
--               no email); sticky: the sticky window, ms (0: off)
--   owner       account owner rep ('' for none); domain: the account's domain
--   score       lead score (-1: unscored), for queue priority
--   expire      queue expiry, unix ms (0: none)
--   submitted   the lead's submitted_at, unix ms (the first-contact SLA's start)
--   targets     the rule's targets
--   quota       the workspace's settings.max_stored_leads
--   retain      settings.retain_closed, ms (an UNROUTABLE lead's removal)
--   recent      how many of the newest records the recent index keeps
-- ARGV[2]  the record's part no script reads (a LeadRecord, protobuf),
--          stored as it is in field pb
--
-- A picked rep gets an offer or the assignment as the pool's accept_within
-- says (lib_place place); a sticky or account owner is placed under the
-- policy of the first target pool.
--
-- Returns:
--   {STALE}                     config id is not current (or, in a preview,
--                               a target pool has no index yet)
--   {DUPLICATE, field, value, ...}  lead already recorded: the record
--   {QUOTA, count}              the workspace holds A.quota records already
--   {OK, backlog, record}       the new record (written unless dry run)
--                               without pb, as "field\0value\0field..."; backlog
--                               1 when the lead was queued behind earlier
--                               leads on a pool that has an eligible member

local lead_key = KEYS[15]
local sticky_key = KEYS[16]
local lead_id = A.lead
local people_key = KEYS[17]
local person = A.person
local sticky_window = A.sticky
local owner = A.owner
local domain = A.domain
local recent_key = KEYS[18]
local targets = read_targets(19, A.targets)

if not current() then
  return { C.STALE }
end

local existing = redis.call('HGETALL', lead_key)
if #existing > 0 then
  local reply = { C.DUPLICATE }
  append_all(reply, existing)
  return reply
end
-- The workspace's records, counted in the config hash as they are written
-- and removed (lead_remove.lua), against its quota (settings.max_stored_leads).
local stored = tonumber(redis.call('HGET', K.config, 'stored') or '0')
if (A.quota or 0) > 0 and stored >= A.quota then
  return { C.QUOTA, stored }
end

local lines = {}
local state, rep, pool_id, reason, route = 'UNROUTABLE', '', '', A.unroutable, ''
local backlog, target_index = 0, 0

-- 1. The same person's open assignment, 2. the account's owner.
if person ~= '' and sticky_window > 0 then
  local held = redis.call('GET', sticky_key)
  local sticky_rep, sticky_pool, held_lead, until_ms = string.match(held or '', '^([^|]*)|([^|]*)|(.*)|(%d+)$')
  if sticky_rep and tonumber(until_ms) > NOW then
    if try_rep(sticky_rep, note('sticky_owner', held_lead), lines) then
      state, rep, pool_id, reason, route = 'ASSIGNED', sticky_rep, sticky_pool, '', 'sticky owner'
    end
  end
end
if state ~= 'ASSIGNED' and owner ~= '' then
  if try_rep(owner, note('account_owner', domain), lines) then
    state, rep, pool_id, reason, route = 'ASSIGNED', owner, '', '', 'account owner'
  end
end

-- 3. The rule's targets (or the account's fallback pool).
local outcome = nil
if state ~= 'ASSIGNED' then
  outcome = route_targets(targets, lines, A.queued)
  if outcome then
    local target = targets[outcome.index]
    state, pool_id, reason, route, target_index = outcome.state, target.pool.id, outcome.reason or '', 'rule', outcome.index
    if outcome.state == 'ASSIGNED' then rep = outcome.rep end
    if outcome.backlog then backlog = 1 end
  end
end

-- A preview writes nothing, so it cannot index a pool written before the
-- eligible-member index (pick sets UNINDEXED): STALE makes the engine load
-- the config again, which indexes its pools (pool_index.lua).
if UNINDEXED then
  return { C.STALE }
end

-- The record but pb, which the reply leaves out: the caller sent it.
-- Each field once: the reply repeats the record, and every field is a
-- string to build, send and read.
local record = {
  'route', route, 'target', target_index, 'person', person, 'picks', table.concat(lines, '\n'), 'submitted_at', A.submitted,
}
local history = history_line('received', '', A.received or '')
if state == 'QUEUED' or state == 'UNROUTABLE' then
  append_all(record, { 'decided_at', NOW, 'state', state, 'rep', rep, 'pool', pool_id, 'reason', reason })
  if state == 'QUEUED' then
    append_all(record, { 'queued_at', NOW })
    history = history .. history_line('queued', '', reason)
  else
    history = history .. history_line('unroutable', '', reason)
  end
else
  -- A rep was picked: an offer or the assignment, under the pool's policy.
  local policy = (outcome and targets[outcome.index] or targets[1] or {}).pool
  local placed, fields, line
  if policy then
    placed, fields, line = place(policy, rep, lead_id, A.submitted, '')
    -- The record's pool is the one the lead was routed by ('' for an
    -- account owner), not necessarily the pool whose policy applied.
    for i = 1, #fields, 2 do
      if fields[i] == 'pool' then fields[i + 1] = pool_id end
    end
  else
    placed, fields, line = 'ASSIGNED', { 'decided_at', NOW, 'state', 'ASSIGNED', 'rep', rep, 'pool', pool_id,
      'reason', reason, 'accepted_at', NOW, 'offered', '|' .. rep .. '|' }, history_line('assigned', rep, '')
    if not DRY then emit('assigned', lead_id, rep, pool_id, route) end
  end
  append_all(record, fields)
  append_all(record, { 'offers', placed == 'OFFERED' and 1 or 0 })
  state = placed
  history = history .. line
end
append_all(record, { 'history', history })

if not DRY then
  if state == 'ASSIGNED' or state == 'OFFERED' then
    if outcome then outcome.advance() end
    append_all(record, { 'counted', commit_rep(rep, outcome and pool_id or '') })
    -- A sticky lead leaves the key on the person's earlier open lead: that
    -- one still binds them to the rep when this one closes first.
    if route ~= 'sticky owner' then
      bind_sticky(sticky_key, person, sticky_window, rep, pool_id, lead_id)
    end
  elseif state == 'QUEUED' then
    enqueue(targets[target_index].pool, lead_id, A.score, outcome.wait, A.expire)
    emit('queued', lead_id, '', pool_id, reason)
  else
    emit('unroutable', lead_id, '', '', reason)
    retain(lead_id)
  end
  redis.call('HSET', lead_key, 'pb', ARGV[2], unpack(record))
  redis.call('HINCRBY', K.config, 'stored', 1)
  count_state(nil, state)
  if person ~= '' then
    redis.call('ZADD', people_key, 0, person .. '|' .. lead_id)
  end
  redis.call('ZADD', recent_key, NOW, lead_id)
  local kept = redis.call('ZCARD', recent_key)
  if kept > A.recent then
    redis.call('ZREMRANGEBYRANK', recent_key, 0, kept - A.recent - 1)
  end
end
-- The record goes back as one string, its fields and values separated by
-- NUL (no value has one: free text is stripped of control characters), so
-- that the caller reads one reply element, not fifty.
return { C.OK, backlog, table.concat(record, '\0') }
