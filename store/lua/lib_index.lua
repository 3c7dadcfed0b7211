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
-- sets: rank holds the members last seen AVAILABLE and inside their
-- calendar (working hours, not out of office), away the others, both scored in the strategy's order (the rotation position for
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
-- The engine files reps at the changes of their calendars (rep_shift.lua,
-- index_off): a follow-the-sun pool with most reps off shift costs a pick
-- what a pool of its on-shift members costs. A pick still checks hours
-- and days off (ineligible): a rep whose shift ended moments ago, before
-- the engine filed it, is passed over, not offered.
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

-- off_shift is 'hours' or 'ooo' while the engine has filed rep as outside
-- its calendar (rep_shift.lua), else nil. The engine files each rep at its
-- calendar's changes, computed in Go (engine/shifts.go); the field is
-- repstate "shift:<rep>" = "<unix ms>|<on, hours or ooo>".
local function off_shift(rep)
  local v = redis.call('HGET', K.repstate, 'shift:' .. rep)
  local code = v and string.match(v, '|(%a+)$')
  if code == 'hours' or code == 'ooo' then return code end
  return nil
end

-- An absence from a pool's rank is either a presence absence (the rep was
-- not AVAILABLE) or a shift absence (AVAILABLE, outside its calendar). A
-- presence absence is settled by the absence policy on return; a shift
-- absence forfeits, as a present member passed over does. The pool hash
-- marks them: x:<rep> a presence absence of a round-robin CATCH_UP pool
-- (the absolute cursor it began at), o:<rep> a shift absence of a weighted
-- round-robin CATCH_UP pool (the only strategy and policy where the two
-- would otherwise settle alike).
local function wrr_catch_up(st)
  return st.strategy == 'WEIGHTED_ROUND_ROBIN' and st.policy == 'CATCH_UP'
end

-- index_leave moves rep from rank to away for a presence absence. at: the
-- absolute cursor its absence counts from (round robin; default the
-- pool's). A rep away already for its shift starts counting too.
local function index_leave(pool, st, rep, at)
  local score = redis.call('ZSCORE', pool.rank, rep)
  local rr_catch_up = st.strategy == 'ROUND_ROBIN' and st.policy == 'CATCH_UP'
  if not score then
    if rr_catch_up and redis.call('HEXISTS', pool.key, 'x:' .. rep) == 0 and redis.call('ZSCORE', pool.away, rep) then
      redis.call('HSET', pool.key, 'x:' .. rep, at or st.abs)
    end
    return 0
  end
  redis.call('ZREM', pool.rank, rep)
  redis.call('ZADD', pool.away, score, rep)
  if rr_catch_up then redis.call('HSET', pool.key, 'x:' .. rep, at or st.abs) end
  if wrr_catch_up(st) then redis.call('HDEL', pool.key, 'o:' .. rep) end
  return 1
end

-- settle ends rep's absence from pool, given its away score p, and returns
-- the score it returns with: a round-robin CATCH_UP presence absence is
-- owed the turns the rotation passed it.
local function settle(pool, st, rep, p)
  if is_ranked(st.strategy) then
    return rank_score(st.strategy, rep)
  elseif st.strategy == 'WEIGHTED_ROUND_ROBIN' then
    local stride = STRIDE / tonumber(redis.call('HGET', pool.key, 'w:' .. rep) or '1')
    local forfeit = st.policy ~= 'CATCH_UP' or redis.call('HDEL', pool.key, 'o:' .. rep) == 1
    if st.vt then
      if not forfeit then
        p = math.max(p, st.vt - st.limit * stride)
      elseif st.vt > p then
        p = math.max(p + stride, st.vt)
      end
    end
    return p
  end
  local x = tonumber(redis.call('HGET', pool.key, 'x:' .. rep) or '')
  if x then
    redis.call('HDEL', pool.key, 'x:' .. rep)
    local k = st.policy == 'CATCH_UP' and st.n > 0 and passes(st.abs, x, p, st.n) or 0
    if k > 0 then
      local owed = tonumber(redis.call('ZSCORE', pool.owed, rep) or '0')
      if owed < st.limit then redis.call('ZADD', pool.owed, math.min(st.limit, owed + k), rep) end
    end
  end
  return p
end

-- index_return moves rep from away to rank, settling its absence.
local function index_return(pool, st, rep)
  local score = redis.call('ZSCORE', pool.away, rep)
  if not score then return 0 end
  local p = settle(pool, st, rep, tonumber(score))
  redis.call('ZREM', pool.away, rep)
  redis.call('ZADD', pool.rank, p, rep)
  return 1
end

-- index_off files an AVAILABLE rep outside its calendar: out of rank (a
-- shift absence), and a presence absence it was away for is settled now
-- (the rep is back; its calendar, not its presence, keeps it out).
local function index_off(pool, st, rep)
  local score = redis.call('ZSCORE', pool.rank, rep)
  if score then
    redis.call('ZREM', pool.rank, rep)
    redis.call('ZADD', pool.away, score, rep)
    if wrr_catch_up(st) then redis.call('HSET', pool.key, 'o:' .. rep, '1') end
    return 1
  end
  score = redis.call('ZSCORE', pool.away, rep)
  if score and (st.strategy == 'ROUND_ROBIN' or wrr_catch_up(st)) then
    local p = settle(pool, st, rep, tonumber(score))
    redis.call('ZADD', pool.away, p, rep)
    if wrr_catch_up(st) then redis.call('HSET', pool.key, 'o:' .. rep, '1') end
  end
  return 0
end

-- index_presence files rep in each of pools by its presence and shift now,
-- and returns how many pools' rank it entered or left.
local function index_presence(pools, rep)
  local available = redis.call('HGET', K.presence, rep) == 'AVAILABLE'
  local off = available and off_shift(rep)
  local moved = 0
  for _, pool in ipairs(pools) do
    local st = pool_state(pool)
    if off then
      moved = moved + index_off(pool, st, rep)
    elseif available then
      moved = moved + index_return(pool, st, rep)
    else
      moved = moved + index_leave(pool, st, rep)
    end
  end
  return moved
end

-- listed is whether rep belongs in a pool's rank: AVAILABLE, and not
-- outside its calendar.
local function listed(rep)
  return redis.call('HGET', K.presence, rep) == 'AVAILABLE' and not off_shift(rep)
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
        if listed(rep) then
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
    if not listed(e) then
      if redis.call('HGET', K.presence, e) == 'AVAILABLE' then index_off(pool, st, e) else index_leave(pool, st, e) end
    end
  end
  redis.call('HSET', pool.key, 'ix', '1', 'abs', st.abs)
  st.ix = '1'
end

