-- lib_index: the eligible-member index of pools, and the ranked
-- strategies' scores it is ordered by. Needs lib_workspace.

local RANK_BASE = 1577836800000      -- 2020-01-01; idle ms are counted from here
local RANK_SHIFT = 2199023255552     -- 2^41: least-loaded score = open * 2^41 + idle ms
local STRIDE = 720720                -- weighted round robin: a member's pass grows by STRIDE / weight

-- rank_score is a member's true least-loaded or longest-idle score.
local function rank_score(strategy, rep)
  local last = tonumber(redis.call('HGET', K.last_assigned, rep) or '0')
  local idle = math.max(last - RANK_BASE, 0)
  if strategy == 'LEAST_LOADED' then
    return tonumber(redis.call('HGET', K.open, rep) or '0') * RANK_SHIFT + idle
  end
  return idle
end

-- TARGET_KEYS is how many keys a target pool has in KEYS: pool HASH, rank
-- ZSET, owed ZSET, queue ZSET, away ZSET (store/keys.go target).
local TARGET_KEYS = 5

-- pool_at binds the TARGET_KEYS keys of pool id from KEYS[at], with the
-- pool's offer and SLA policies from the request when the script places
-- leads (store/contract.go policyArg: accept, sla, warn, ... ms).
local function pool_at(id, at, policy)
  return { id = id, key = KEYS[at], rank = KEYS[at + 1], owed = KEYS[at + 2], queue = KEYS[at + 3], away = KEYS[at + 4],
    policy = policy }
end

-- The eligible-member index. A pool's members are split over two sorted
-- sets by presence: rank holds the members last seen AVAILABLE, away the
-- others, both scored in the strategy's order (the rotation position for
-- round robin, the pass for weighted round robin, the load or idle score
-- for the ranked strategies). A pick walks rank only, so it costs about
-- O(log n) plus the members it examines, however many are absent; the
-- absent members it passes over are counted in away (ZCOUNT) and the first
-- few named.
--
-- Every change of presence to AVAILABLE moves the rep from away to rank in
-- each of its pools (index_return, called by rep_set_status,
-- rep_connection and config_chunk), and a change away from it moves the
-- rep back (index_leave). A member of rank found not AVAILABLE during a
-- pick (a rep set AWAY for missed offers) is moved there by the pick.
--
-- What an absence owes or forfeits is settled when the rep returns:
--   round robin, CATCH_UP: one turn owed per time the rotation passed the
--     rep's position while it was away, at most limit. The pool keeps an
--     absolute cursor 'abs' (it only grows; abs mod n is the cursor), and
--     x:<rep> holds abs when the absence began, so the passes are
--     floor((abs - p) / n) - floor((x - p) / n) for position p.
--   weighted round robin: 'vt' is the pass of the member picked last. A
--     returning member forfeits the turns it missed, to at least vt
--     (KEEP_POSITION: max(pass + stride, vt) once vt is past its pass), or
--     keeps its pass but at most limit strides behind vt (CATCH_UP).
--   least loaded, longest idle: the exact score.
-- A pool applied before the index existed has no 'ix' field: the engine
-- builds its index when it loads the config (pool_index.lua), and failing
-- that the first pick does (build_index, once); a preview, which writes
-- nothing, answers STALE instead, so the engine loads the config again.


local function is_ranked(strategy)
  return strategy == 'LEAST_LOADED' or strategy == 'LONGEST_IDLE'
end

-- passes is how often an absolute cursor moving from x to abs crossed
-- position p of n.
local function passes(abs, x, p, n)
  return math.floor((abs - p) / n) - math.floor((x - p) / n)
end

local function pool_state(pool)
  local v = redis.call('HMGET', pool.key, 'strategy', 'n', 'cursor', 'abs', 'policy', 'limit', 'vt', 'ix', 'last')
  local st = { exists = v[1] ~= nil, strategy = v[1] or 'ROUND_ROBIN', n = tonumber(v[2] or '0'), cursor = tonumber(v[3] or '-1'),
    policy = v[5], limit = tonumber(v[6] or '0'), vt = tonumber(v[7] or ''), ix = v[8], last = v[9] }
  st.abs = tonumber(v[4] or '') or st.cursor
  return st
end

-- index_leave moves rep from rank to away. at: the absolute cursor its
-- absence counts from (round robin; default the pool's).
local function index_leave(pool, st, rep, at)
  local score = redis.call('ZSCORE', pool.rank, rep)
  if not score then return end
  redis.call('ZREM', pool.rank, rep)
  redis.call('ZADD', pool.away, score, rep)
  if st.strategy == 'ROUND_ROBIN' and st.policy == 'CATCH_UP' then
    redis.call('HSET', pool.key, 'x:' .. rep, at or st.abs)
  end
end

-- index_return moves rep from away to rank, settling its absence.
local function index_return(pool, st, rep)
  local score = redis.call('ZSCORE', pool.away, rep)
  if not score then return end
  local p = tonumber(score)
  redis.call('ZREM', pool.away, rep)
  if is_ranked(st.strategy) then
    p = rank_score(st.strategy, rep)
  elseif st.strategy == 'WEIGHTED_ROUND_ROBIN' then
    local stride = STRIDE / tonumber(redis.call('HGET', pool.key, 'w:' .. rep) or '1')
    if st.vt then
      if st.policy == 'CATCH_UP' then
        p = math.max(p, st.vt - st.limit * stride)
      elseif st.vt > p then
        p = math.max(p + stride, st.vt)
      end
    end
  else
    local x = tonumber(redis.call('HGET', pool.key, 'x:' .. rep) or '')
    if x then
      redis.call('HDEL', pool.key, 'x:' .. rep)
      local k = st.policy == 'CATCH_UP' and st.n > 0 and passes(st.abs, x, p, st.n) or 0
      if k > 0 then
        local owed = tonumber(redis.call('ZSCORE', pool.owed, rep) or '0')
        if owed < st.limit then redis.call('ZADD', pool.owed, math.min(st.limit, owed + k), rep) end
      end
    end
  end
  redis.call('ZADD', pool.rank, p, rep)
end

-- index_presence files rep in each of pools by its presence now.
local function index_presence(pools, rep)
  local available = redis.call('HGET', K.presence, rep) == 'AVAILABLE'
  for _, pool in ipairs(pools) do
    local st = pool_state(pool)
    if available then index_return(pool, st, rep) else index_leave(pool, st, rep) end
  end
end

-- build_index splits a pool's members over rank and away by presence, for
-- a pool written before the index existed (round robin kept no rank then;
-- the other strategies kept every member in it).
local function build_index(pool, st)
  if st.strategy == 'ROUND_ROBIN' then
    redis.call('DEL', pool.rank, pool.away)
    for i = 0, st.n - 1 do
      local rep = redis.call('HGET', pool.key, 'm' .. i)
      if rep then
        if redis.call('HGET', K.presence, rep) == 'AVAILABLE' then
          redis.call('ZADD', pool.rank, i, rep)
        else
          -- An absence that began before the index counts its passes from now.
          redis.call('ZADD', pool.away, i, rep)
          if st.policy == 'CATCH_UP' then redis.call('HSET', pool.key, 'x:' .. rep, st.abs) end
        end
      end
    end
  end
  for _, e in ipairs(redis.call('ZRANGE', pool.rank, 0, -1)) do
    if redis.call('HGET', K.presence, e) ~= 'AVAILABLE' then index_leave(pool, st, e) end
  end
  redis.call('HSET', pool.key, 'ix', '1', 'abs', st.abs)
  st.ix = '1'
end

-- skipped collects a pick's passed-over members with their order in the
