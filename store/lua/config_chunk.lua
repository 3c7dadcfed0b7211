-- config_chunk: one step of a config apply (store/apply.go). config_begin
-- stored the apply's plan as a list of steps; each call carries out the next
-- one, so that no single call of a large apply holds Redis for long, while
-- every routing script sees the old config or, after config_commit, the new
-- one: during the apply the config's id is "applying:<nonce>", which no
-- caller holds, so they wait (STALE, then the engine loads the config again,
-- which waits for the commit).
--
-- KEYS[1..14]  the workspace keys (lib_workspace.lua)
-- KEYS[15]     plan  LIST  the steps, JSON (store/apply.go applyStep)
-- then TARGET_KEYS per pool of the step (lib_index.lua pool_at: pool,
--   rank, owed, queue, away): a pools step's pools, or a removed step's
--
-- A (store/contract.go chunkArgs):
--   cfg    "applying:<nonce>": the apply this step belongs to
--   now    unix ms
--   step   the step's index in the plan (from 0)
--   lease  the applier's lease renewed: until when, unix ms by the wall
--          clock, it may take for the next step before another replica
--          carries on with the plan
--
-- The steps, in plan order (each a JSON object, field k its kind):
--   reps     {reps: [[id, initial status, profile], ...]}: presence for reps
--            that have none, and every rep's profile
--   zones    {zones: [[zone, offsets], ...]}: the time zones, replaced
--   pools    {pools: [{id, strategy, policy, limit, accept, cooldown,
--            max_missed, max_offers, sla, warn, breach, members: [[rep,
--            weight, daily cap], ...]}, ...]}
--   removed  {gone_pools: [id, ...], gone_reps: [id, ...]}: pools and reps
--            the new config drops
--
-- A pool whose member list is unchanged keeps its cursor; a changed pool
-- continues after the member picked last if that rep is still a member.
-- Weighted pools keep their members' passes (new members join half a
-- stride after the pass of the member picked last); least-loaded and
-- longest-idle pools get exact scores. A rep with no presence gets its
-- initial status. Every pool's members are filed in its index by presence
-- (rank or away, see lib_index.lua); round-robin turns owed for an
-- absence so far are settled first.
--
-- Returns:
--   {STALE}        the config is not being applied under this id
--   {DONE, next}   this step was carried out already (next: the step due)
--   {OK, next}     carried out; next is the step due now

local plan = KEYS[15]
local step = A.step
local lease = A.lease

if not current() then
  return { C.STALE }
end
local due = tonumber(redis.call('HGET', K.config, 'next') or '0')
if due ~= step then
  return { C.DONE, due }
end
local s = cjson.decode(redis.call('LINDEX', plan, step))

-- hset writes a field list in chunks (unpack has a limit).
local function hset(key, fields)
  for i = 1, #fields, 2000 do
    redis.call('HSET', key, unpack(fields, i, math.min(i + 1999, #fields)))
  end
end

local function apply_pool(p, b)
  local pool = pool_at(p.id, b)
  local key, rank, owed, away = pool.key, pool.rank, pool.owed, pool.away
  local strategy, policy, limit = p.strategy, p.policy, p.limit
  local offers = { 'accept', p.accept, 'cooldown', p.cooldown, 'max_missed', p.max_missed,
    'max_offers', p.max_offers, 'sla', p.sla, 'warn', p.warn, 'breach', p.breach }
  local m = #p.members
  local members, weight, cap, is_member = {}, {}, {}, {}
  for j = 1, m do
    members[j] = p.members[j][1]
    weight[members[j]], cap[members[j]] = p.members[j][2], p.members[j][3]
    is_member[members[j]] = true
  end

  local old = pool_state(pool)
  local old_strategy = redis.call('HGET', key, 'strategy')
  if old.ix ~= '1' and old_strategy then build_index(pool, old) end
  -- Turns a round-robin CATCH_UP pool owes its absent members so far, under
  -- the old positions.
  if old.strategy == 'ROUND_ROBIN' and old.policy == 'CATCH_UP' and old.n > 0 then
    for _, e in ipairs(redis.call('ZRANGE', away, 0, -1)) do
      index_return(pool, old, e)
    end
  end

  local same = old.n == m
  for j = 1, m do
    if not same then break end
    same = redis.call('HGET', key, 'm' .. (j - 1)) == members[j]
  end
  if not same then
    local cursor = old.cursor
    local last_rep = (cursor >= 0) and redis.call('HGET', key, 'm' .. cursor)
    local last, vt = unpack(redis.call('HMGET', key, 'last', 'vt'))
    cursor = -1
    for j = 1, m do
      if members[j] == last_rep then cursor = j - 1 end
    end
    redis.call('DEL', key)
    local fields = { 'n', m, 'cursor', cursor, 'abs', cursor }
    for j = 1, m do
      append_all(fields, { 'm' .. (j - 1), members[j] })
    end
    if last and is_member[last] then append_all(fields, { 'last', last }) end
    if vt then append_all(fields, { 'vt', vt }) end
    hset(key, fields)
  end
  if old_strategy ~= strategy then redis.call('HDEL', key, 'vt') end
  local fields = { 'strategy', strategy, 'policy', policy, 'limit', limit, 'ix', '1' }
  append_all(fields, offers)
  for j = 1, m do
    append_all(fields, { 'w:' .. members[j], weight[members[j]], 'cap:' .. members[j], cap[members[j]] })
  end
  hset(key, fields)

  -- Each member's order in the strategy; then the index by presence.
  local score = {}
  if strategy == 'WEIGHTED_ROUND_ROBIN' then
    if old_strategy == strategy then
      for _, set in ipairs({ rank, away }) do
        local e = redis.call('ZRANGE', set, 0, -1, 'WITHSCORES')
        for i = 1, #e, 2 do
          if is_member[e[i]] then score[e[i]] = tonumber(e[i + 1]) end
        end
      end
    end
    -- New members join where the rotation stands: at the pass of the member
    -- picked last (an absent member's lower pass would hand them its debt),
    -- else the lowest pass.
    local last = redis.call('HGET', key, 'last')
    local joining = last and score[last]
    if not joining then
      for _, s in pairs(score) do joining = math.min(joining or s, s) end
    end
    joining = joining or 0
    for j = 1, m do
      -- A member joins half a stride after it, so heavier members of a new
      -- pool go first.
      score[members[j]] = score[members[j]] or joining + STRIDE / tonumber(weight[members[j]]) / 2
    end
  elseif is_ranked(strategy) then
    for j = 1, m do score[members[j]] = rank_score(strategy, members[j]) end
  else
    for j = 1, m do score[members[j]] = j - 1 end
  end
  redis.call('DEL', rank, away)
  local abs = tonumber(redis.call('HGET', key, 'abs') or '') or tonumber(redis.call('HGET', key, 'cursor') or '-1')
  local present = m > 0 and redis.call('HMGET', K.presence, unpack(members)) or {}
  for j = 1, m do
    local rep = members[j]
    if policy == 'CATCH_UP' then redis.call('HDEL', key, 'x:' .. rep, 'o:' .. rep) end
    if present[j] ~= 'AVAILABLE' then
      redis.call('ZADD', away, score[rep], rep)
      if strategy == 'ROUND_ROBIN' and policy == 'CATCH_UP' then redis.call('HSET', key, 'x:' .. rep, abs) end
    elseif off_shift(rep) then
      -- Outside its calendar (as last filed: the engine files it again
      -- under this config once it is current).
      redis.call('ZADD', away, score[rep], rep)
      if strategy == 'WEIGHTED_ROUND_ROBIN' and policy == 'CATCH_UP' then redis.call('HSET', key, 'o:' .. rep, '1') end
    else
      redis.call('ZADD', rank, score[rep], rep)
    end
  end
  redis.call('HSET', key, 'abs', abs)
  if policy ~= 'CATCH_UP' then
    redis.call('DEL', owed)
  else
    for _, rep in ipairs(redis.call('ZRANGE', owed, 0, -1)) do
      if not is_member[rep] then redis.call('ZREM', owed, rep) end
    end
  end
end

if s.k == 'reps' then
  for _, r in ipairs(s.reps or {}) do
    if redis.call('HSETNX', K.presence, r[1], r[2]) == 1 then
      redis.call('HSET', K.status_changed, r[1], NOW)
    end
    redis.call('HSET', K.profile, r[1], r[3])
  end
elseif s.k == 'zones' then
  redis.call('DEL', K.zones)
  for _, z in ipairs(s.zones or {}) do redis.call('HSET', K.zones, z[1], z[2]) end
elseif s.k == 'pools' then
  for i, p in ipairs(s.pools) do apply_pool(p, 16 + TARGET_KEYS * (i - 1)) end
elseif s.k == 'removed' then
  for i, id in ipairs(s.gone_pools or {}) do
    local pool = pool_at(id, 16 + TARGET_KEYS * (i - 1))
    redis.call('DEL', pool.key, pool.rank, pool.owed, pool.away)
  end
  for _, rep in ipairs(s.gone_reps or {}) do
    redis.call('HDEL', K.presence, rep)
    redis.call('HDEL', K.status_changed, rep)
    redis.call('HDEL', K.profile, rep)
    redis.call('HDEL', K.repstate, 'shift:' .. rep)
  end
end
redis.call('HSET', K.config, 'next', step + 1, 'lease', lease)
return { C.OK, step + 1 }
