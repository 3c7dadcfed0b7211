-- queue_drain: assign leads queued on one pool, in queue order (lead score,
-- then arrival), while the pool has an eligible member.
--
-- KEYS[1..14]  the workspace keys (lib_workspace.lua)
-- KEYS[15..19] the pool: pool HASH, rank ZSET, owed ZSET, queue ZSET, away ZSET
-- KEYS[20+2i], KEYS[21+2i]  lead i (from 0): record HASH, sticky STRING
--
-- A (store/contract.go drainArgs): cfg, now, and
--   pool    the pool's id; policy: its offer and SLA policies
--   sticky  the sticky window, ms (0: off)
--   leads   [{id, person ('' for none)}, ...]: the head of the queue as the
--           caller read it
--
-- Returns:
--   {STALE}                         config id is not current
--   {OK, blocked, skipped, lead id, ...}
--                                   the leads assigned, in order; blocked 1
--                                   when the pool ran out of eligible members;
--                                   skipped counts leads left waiting because
--                                   every eligible member breached their SLA.
--                                   Leads no longer queued here (drained or
--                                   escalated elsewhere) are passed over.

local pool = pool_at(A.pool, 15, A.policy)
local first_lead_key = 15 + TARGET_KEYS
local sticky_window = A.sticky

if not current() then
  return { C.STALE }
end

local reply = { C.OK, 0, 0 }
for i = 0, #(A.leads or {}) - 1 do
  local lead_id = A.leads[i + 1].id
  local person = A.leads[i + 1].person
  local lead_key = KEYS[first_lead_key + 2 * i]
  local sticky_key = KEYS[first_lead_key + 2 * i + 1]
  if redis.call('ZSCORE', pool.queue, lead_id) then
    local lines = { 'D\t' .. (redis.call('HGET', lead_key, 'queued_at') or '') }
    -- Reps who breached this lead's SLA never get it back. Reps it was
    -- offered to past max_offers, and reps who rejected it, get it only
    -- when nobody else can.
    local offered, breached, rejected, withdrawn = unpack(redis.call('HMGET', lead_key, 'offered', 'breached_by', 'rejected_by', 'withdrawn'))
    local max_offers = A.policy.max_offers
    local never, rather_not = {}, {}
    for r in string.gmatch(breached or '', '[^|]+') do never[r] = true end
    for r in string.gmatch(rejected or '', '[^|]+') do rather_not[r] = true end
    if max_offers > 0 and tonumber(withdrawn or '0') >= max_offers then
      for r in string.gmatch(offered or '', '[^|]+') do rather_not[r] = true end
    end
    EXCLUDE = {}
    for r in pairs(never) do EXCLUDE[r] = true end
    for r in pairs(rather_not) do EXCLUDE[r] = true end
    local rep, advance = pick(pool, lines)
    if not rep and next(rather_not) then
      EXCLUDE = {}
      for r in pairs(never) do EXCLUDE[r] = true end
      lines = { lines[1] }
      rep, advance = pick(pool, lines)
    end
    EXCLUDE = {}
    local restricted = next(never) ~= nil
    if not rep and not restricted then
      reply[2] = 1
      break
    end
    if not rep then
      reply[3] = reply[3] + 1
    end
    -- A restricted lead with no rep it may go to waits; the rest need not.
    if rep then
      advance()
      redis.call('HSET', lead_key, 'counted', commit_rep(rep, pool.id))
      redis.call('ZREM', pool.queue, lead_id)
      clear_timers(lead_id)
      local sla_from = tonumber(redis.call('HGET', lead_key, 'sla_from') or redis.call('HGET', lead_key, 'submitted_at') or NOW)
      place_stored(lead_key, pool, rep, lead_id, sla_from, { 'picks', table.concat(lines, '\n') })
      bind_sticky(sticky_key, person, sticky_window, rep, pool.id, lead_id)
      reply[#reply + 1] = lead_id
    end
  end
end
if redis.call('ZCARD', pool.queue) == 0 then
  redis.call('SREM', K.queued_pools, pool.id)
end
return reply
