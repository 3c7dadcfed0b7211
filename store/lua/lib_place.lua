-- lib_place: giving a lead to a rep or a queue, and its timers. Needs
-- lib_workspace.

local PRIORITY_SHIFT = 1099511627776 -- 2^40: queue score = (100 - lead score) * 2^40 + arrival

-- bind_sticky binds a person (by person hash, engine.Person) to the rep
-- who has their lead, for
-- the sticky window by the engine's clock ("rep|pool|lead|until_ms");
-- Redis drops the key a day after.
local function bind_sticky(sticky_key, person, window, rep, pool_id, lead_id)
  if person ~= '' and window > 0 then
    redis.call('SET', sticky_key, rep .. '|' .. pool_id .. '|' .. lead_id .. '|' .. (NOW + window), 'PX', window + DAY_MS)
  end
end

-- observe_dequeue records how long a lead leaving a queue waited there.
local function observe_dequeue(lead_key, pool_id)
  local state, queued_at = unpack(redis.call('HMGET', lead_key, 'state', 'queued_at'))
  if state == 'QUEUED' and queued_at then
    observe('dequeued', pool_id, NOW - tonumber(queued_at))
  end
end

-- place gives the lead to a rep picked from pool: an offer, when the pool
-- asks reps to accept, else the assignment. It starts the offer timer and
-- the first-contact SLA timers (measured from sla_from, unix ms), emits the
-- event, and returns the new state and the record fields to write.
-- offered is the record's list of reps offered the lead so far.
-- sla_set is the SLA deadline the lead's timers were armed for already
-- (nil for none): the same window is never armed twice, so a warning or
-- breach that fired stays fired.
local function place(pool, rep, lead_id, sla_from, offered, sla_set)
  local policy = pool.policy or error('no policies for pool ' .. pool.id)
  local accept, sla, warn = policy.accept, policy.sla, policy.warn
  local fields = { 'rep', rep, 'pool', pool.id, 'policy_pool', pool.id, 'decided_at', NOW, 'reason', '',
    'offered', (offered ~= '' and offered or '|') .. rep .. '|' }
  if sla > 0 and sla_from + sla ~= sla_set then
    append_all(fields, { 'sla_due', sla_from + sla })
    if not DRY then
      if warn > 0 then
        redis.call('ZADD', K.timers, sla_from + sla, 'sla|' .. lead_id, sla_from + warn, 'warn|' .. lead_id)
      else
        redis.call('ZADD', K.timers, sla_from + sla, 'sla|' .. lead_id)
      end
    end
  end
  if accept > 0 then
    append_all(fields, { 'state', 'OFFERED', 'offer_expires', NOW + accept })
    if not DRY then
      redis.call('ZADD', K.timers, NOW + accept, 'offer|' .. lead_id)
      emit('offered', lead_id, rep, pool.id, note('accept_within', accept))
    end
    return 'OFFERED', fields, history_line('offered', rep, pool.id)
  end
  append_all(fields, { 'state', 'ASSIGNED', 'accepted_at', NOW })
  if not DRY then emit('assigned', lead_id, rep, pool.id, '') end
  return 'ASSIGNED', fields, history_line('assigned', rep, pool.id)
end

-- place_stored writes what place decided into a stored record (drains,
-- escalations, re-offers), and returns the new state.
-- After an SLA reassignment (sla_restart), the next rep's window starts when
-- it is given the lead, not when the breach happened.
local function place_stored(lead_key, pool, rep, lead_id, sla_from, extra)
  if redis.call('HGET', lead_key, 'sla_restart') then
    sla_from = NOW
    redis.call('HSET', lead_key, 'sla_from', NOW)
    redis.call('HDEL', lead_key, 'sla_restart')
  end
  observe_dequeue(lead_key, pool.id)
  local offered, sla_set, was = unpack(redis.call('HMGET', lead_key, 'offered', 'sla_due', 'state'))
  local state, fields, line = place(pool, rep, lead_id, sla_from, offered or '', tonumber(sla_set or ''))
  append_all(fields, extra or {})
  append_all(fields, { 'placed_cfgv', config_version() })
  redis.call('HSET', lead_key, unpack(fields))
  count_state(was, state)
  append_history(lead_key, line)
  if state == 'OFFERED' then redis.call('HINCRBY', lead_key, 'offers', 1) end
  return state
end

-- enqueue puts a lead on a pool's queue, ordered by lead score then arrival,
-- and sets its timers: escalation after wait_ms (0: none) and expiry at
-- expire_at (0: none; an existing expiry is kept).
local function enqueue(pool, lead_id, score, wait_ms, expire_at)
  local arrival = redis.call('INCR', K.seq)
  local priority = (100 - math.max(score, -1)) * PRIORITY_SHIFT + arrival
  redis.call('ZADD', pool.queue, priority, lead_id)
  redis.call('SADD', K.queued_pools, pool.id)
  if wait_ms > 0 then
    redis.call('ZADD', K.timers, NOW + wait_ms, 'escalate|' .. lead_id)
  end
  if expire_at > 0 then
    redis.call('ZADD', K.timers, 'NX', expire_at, 'expire|' .. lead_id)
  end
end

-- claim_timer removes a due timer and reports whether this call got it.
-- Only a timer due by NOW is claimed: a member can be set again for a later
-- deadline (the next offer of the same lead), and a replica acting on an
-- older reading of the due list must not take that one.
local function claim_timer(member)
  local due = redis.call('ZSCORE', K.timers, member)
  if not due or tonumber(due) > NOW then return false end
  return redis.call('ZREM', K.timers, member) == 1
end

-- clear_timers drops a lead's queue timers once it is placed for good.
local function clear_timers(lead_id)
  redis.call('ZREM', K.timers, 'escalate|' .. lead_id, 'expire|' .. lead_id)
end
