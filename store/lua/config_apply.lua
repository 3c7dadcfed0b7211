-- config_apply: replace a workspace's routing config in one step, keeping
-- rotation positions and presence.
--
-- KEYS[1..14]  the workspace keys (lib_routing.lua)
-- KEYS[15+4i..18+4i]  pool i of the new config (from 0): pool HASH, rank
--                     ZSET, owed ZSET, away ZSET
-- then 5 keys for each pool the new config removes: pool HASH, rank ZSET,
-- owed ZSET, queue ZSET, away ZSET
--
-- ARGV[1]  base config id: apply only if this is current ('': none yet)
-- ARGV[2]  now, unix ms
-- ARGV[3]  the new config, JSON
-- ARGV[4]  a random nonce: the new id is "<version>:<nonce>"
-- ARGV[5]  P, pools in the new config; ARGV[6] R, removed pools
-- then per pool: id, strategy, absence policy, catch-up limit, accept_within
--          ms, reject_cooldown ms, max_missed_offers, max_offers,
--          first_contact_within ms, warn_at ms, on_breach, member count m,
--          then m triples: rep id, weight, daily cap
-- then N, the number of reps, and N triples: rep id, initial status,
--          profile ("max_open|daily_cap|zone|week|ooo")
-- then Z, the number of zones, and Z pairs: zone, offsets
-- then M, the number of removed reps, and M rep ids
--
-- A pool whose member list is unchanged keeps its cursor; a changed pool
-- continues after the member picked last if that rep is still a member.
-- Weighted pools keep their members' passes (new members join half a
-- stride after the pass of the member picked last); least-loaded and longest-idle pools get exact
-- scores. A rep with no presence gets its initial status; removed reps lose
-- theirs and their profile. Every pool's members are filed in its index by
-- presence (rank or away, see lib_routing.lua); round-robin turns owed for
-- an absence so far are settled first.
--
-- Nothing is written before every check passed, and large hashes are
-- written in chunks, so an apply either happens whole or not at all.
--
-- Returns:
--   {'CONFLICT', current id}
--   {'QUEUED_POOL', i}   removed pool i (from 0) still has queued leads
--   {'OK', new version, new id}

local first_pool_key = 15
local POOL_KEYS = 4
local base = ARGV[1]
local body = ARGV[3]
local nonce = ARGV[4]
local pools = tonumber(ARGV[5])
local removed_pools = tonumber(ARGV[6])
local first_removed_key = first_pool_key + POOL_KEYS * pools
local REMOVED_KEYS = 5

local current = redis.call('HGET', K.config, 'id') or ''
if current ~= base then
  return { 'CONFLICT', current }
end
for p = 0, removed_pools - 1 do
  local b = first_removed_key + REMOVED_KEYS * p
  if redis.call('ZCARD', KEYS[b + 3]) > 0 then
    return { 'QUEUED_POOL', tostring(p) }
  end
end

-- hset writes a field list in chunks (unpack has a limit).
local function hset(key, fields)
  for i = 1, #fields, 2000 do
    redis.call('HSET', key, unpack(fields, i, math.min(i + 1999, #fields)))
  end
end

-- Presence first: the pools' indexes file members by it.
local a = 7
for p = 0, pools - 1 do a = a + 12 + 3 * tonumber(ARGV[a + 11]) end
local reps = tonumber(ARGV[a])
for j = 0, reps - 1 do
  local rep, initial, prof = ARGV[a + 1 + 3 * j], ARGV[a + 2 + 3 * j], ARGV[a + 3 + 3 * j]
  if redis.call('HSETNX', K.presence, rep, initial) == 1 then
    redis.call('HSET', K.status_changed, rep, NOW)
  end
  redis.call('HSET', K.profile, rep, prof)
end
local after_reps = a + 1 + 3 * reps

a = 7
for p = 0, pools - 1 do
  local b = first_pool_key + POOL_KEYS * p
  local pool = { id = ARGV[a], key = KEYS[b], rank = KEYS[b + 1], owed = KEYS[b + 2], away = KEYS[b + 3] }
  local key, rank, owed, away = pool.key, pool.rank, pool.owed, pool.away
  local strategy, policy, limit = ARGV[a + 1], ARGV[a + 2], ARGV[a + 3]
  local offers = { 'accept', ARGV[a + 4], 'cooldown', ARGV[a + 5], 'max_missed', ARGV[a + 6],
    'max_offers', ARGV[a + 7], 'sla', ARGV[a + 8], 'warn', ARGV[a + 9], 'breach', ARGV[a + 10] }
  local m = tonumber(ARGV[a + 11])
  local members, weight, cap, is_member = {}, {}, {}, {}
  for j = 1, m do
    local b = a + 11 + 3 * (j - 1)
    members[j] = ARGV[b + 1]
    weight[members[j]], cap[members[j]] = ARGV[b + 2], ARGV[b + 3]
    is_member[members[j]] = true
  end
  a = a + 12 + 3 * m

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
    if present[j] == 'AVAILABLE' then
      redis.call('ZADD', rank, score[members[j]], members[j])
    else
      redis.call('ZADD', away, score[members[j]], members[j])
      if strategy == 'ROUND_ROBIN' and policy == 'CATCH_UP' then redis.call('HSET', key, 'x:' .. members[j], abs) end
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

for p = 0, removed_pools - 1 do
  local b = first_removed_key + REMOVED_KEYS * p
  redis.call('DEL', KEYS[b], KEYS[b + 1], KEYS[b + 2], KEYS[b + 4])
end

a = after_reps
local zone_count = tonumber(ARGV[a])
redis.call('DEL', K.zones)
for j = 0, zone_count - 1 do
  redis.call('HSET', K.zones, ARGV[a + 1 + 2 * j], ARGV[a + 2 + 2 * j])
end
a = a + 1 + 2 * zone_count

local removed_reps = tonumber(ARGV[a])
for j = 1, removed_reps do
  local rep = ARGV[a + j]
  redis.call('HDEL', K.presence, rep)
  redis.call('HDEL', K.status_changed, rep)
  redis.call('HDEL', K.profile, rep)
end

local version = tostring(tonumber(redis.call('HGET', K.config, 'version') or '0') + 1)
local id = version .. ':' .. nonce
redis.call('HSET', K.config, 'version', version, 'id', id, 'body', body, 'applied_at', NOW)
return { 'OK', version, id }
