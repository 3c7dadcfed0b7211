-- Shared routing functions, prepended to every script that places a lead
-- (lead_decide, lead_escalate, queue_drain). Nothing here builds a key name.
--
-- Every routing script starts its KEYS with the same fourteen workspace
-- keys, bound here to K:
--   KEYS[1]  config         HASH  version, id, body, applied_at
--   KEYS[2]  presence       HASH  rep -> AVAILABLE / AWAY / OFFLINE
--   KEYS[3]  open           HASH  rep -> open assignments
--   KEYS[4]  daily          HASH  rep, or pool/rep -> "day:count"
--   KEYS[5]  profile        HASH  rep -> "max_open|daily_cap|zone|week|ooo"
--   KEYS[6]  zones          HASH  zone -> "from_ms:offset_s,..."
--   KEYS[7]  assigned       HASH  rep -> assignments ever
--   KEYS[8]  last_assigned  HASH  rep -> unix ms
--   KEYS[9]  seq            STRING arrival counter
--   KEYS[10] timers         ZSET  "escalate|lead", "expire|lead" -> due ms
--   KEYS[11] events         STREAM
--   KEYS[12] queued_pools   SET   pools with queued leads
--   KEYS[13] repstate       HASH  "miss:<rep>" -> consecutive missed offers,
--                                 "cool:<pool>/<rep>" -> cooldown end ms
--   KEYS[14] status_changed HASH  rep -> unix ms of the last presence change
-- and its ARGV with:
--   ARGV[1]  config id the caller holds (version:nonce; see store/apply.go)
--   ARGV[2]  now, unix ms
--
-- The script also sets DRY (true for a preview: decide, write nothing).
local K = {
  config = KEYS[1], presence = KEYS[2], open = KEYS[3], daily = KEYS[4], profile = KEYS[5], zones = KEYS[6],
  assigned = KEYS[7], last_assigned = KEYS[8], seq = KEYS[9], timers = KEYS[10], events = KEYS[11],
  queued_pools = KEYS[12], repstate = KEYS[13], status_changed = KEYS[14],
}
local COMMON_KEYS = 14
local CONFIG_ID = ARGV[1]
local NOW = tonumber(ARGV[2])
local DRY = false
--
-- Trace lines (parsed by store/record.go), one per step:
--   P <tab> pool <tab> strategy <tab> member picked last
--   R <tab> label <tab> rep               a single-rep target (sticky, owner)
--   S <tab> rep <tab> code [<tab> n [<tab> m]]   a member passed over (ineligible)
--   N <tab> code <tab> count              more members passed over, not named
--   C <tab> rep <tab> note                the chosen member
--   B <tab> n                             eligible, but n leads queued first
--   D <tab> queued-at ms                  assigned from a queue
-- A pick names at most MAX_NAMED skipped members, so a trace has at most
-- MAX_NAMED + 12 lines per pool.

local DAY_MS = 86400000
local PRIORITY_SHIFT = 1099511627776 -- 2^40: queue score = (100 - lead score) * 2^40 + arrival
local RANK_BASE = 1577836800000      -- 2020-01-01; idle ms are counted from here
local RANK_SHIFT = 2199023255552     -- 2^41: least-loaded score = open * 2^41 + idle ms
local STRIDE = 720720                -- weighted round robin: a member's pass grows by STRIDE / weight

local profiles, zones = {}, {}

-- profile returns a rep's limits and calendar (written by config_chunk).
local function profile(rep)
  local p = profiles[rep]
  if p then return p end
  p = { max_open = 0, daily_cap = 0, zone = 'UTC', week = {}, ooo = {} }
  local raw = redis.call('HGET', K.profile, rep)
  if raw then
    local max_open, daily_cap, zone, week, ooo = string.match(raw, '^([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)$')
    p.max_open, p.daily_cap, p.zone = tonumber(max_open) or 0, tonumber(daily_cap) or 0, zone
    for s, e in string.gmatch(week, '(%d+)-(%d+)') do p.week[#p.week + 1] = { tonumber(s), tonumber(e) } end
    for a, b in string.gmatch(ooo, '(%d+)-(%d+)') do p.ooo[#p.ooo + 1] = { tonumber(a), tonumber(b) } end
  end
  profiles[rep] = p
  return p
end

-- local_time returns the local day number and minute of the week (Monday
-- 00:00 = 0) at NOW in a zone, from the zone's compiled offsets.
local function local_time(zone)
  local z = zones[zone]
  if not z then
    z = {}
    for from, off in string.gmatch(redis.call('HGET', K.zones, zone) or '0:0', '(%d+):(%-?%d+)') do
      z[#z + 1] = { tonumber(from), tonumber(off) * 1000 }
    end
    zones[zone] = z
  end
  local off = 0
  for i = 1, #z do
    if z[i][1] <= NOW then off = z[i][2] else break end
  end
  local t = NOW + off
  local day = math.floor(t / DAY_MS)
  return day, ((day + 3) % 7) * 1440 + math.floor((t - day * DAY_MS) / 60000)
end

-- day_count returns a daily counter's value ("day:count", or nil) for a
-- local day.
local function day_count(raw, day)
  if not raw then return 0 end
  local d, c = string.match(raw, '^(%d+):(%d+)$')
  if tonumber(d) ~= day then return 0 end
  return tonumber(c)
end

-- daily_count returns a daily counter's value for a local day.
local function daily_count(field, day)
  return day_count(redis.call('HGET', K.daily, field), day)
end

-- ineligible returns nil when rep may take a lead now (from pool_key, when
-- given), else a skip code with up to two numbers, and whether the rep is
-- absent (not AVAILABLE). Codes, not text, go into the trace; Go renders
-- them (engine.Skip):
--   offered             offered this lead already
--   away, offline, unknown   the rep's presence
--   capacity open max   at max_open
--   ooo, hours          out of office, outside working hours
--   daily n cap         at the rep's daily cap
--   cooldown until_ms   in a reject cooldown in this pool
--   poolcap n cap       at the membership's daily cap in this pool
local EXCLUDE = {} -- reps this lead was offered to already (see route_targets)

local function ineligible(rep, pool_key, pool_id)
  if EXCLUDE[rep] then return 'offered' end
  local status = redis.call('HGET', K.presence, rep)
  if status ~= 'AVAILABLE' then
    return string.lower(status or 'unknown'), nil, nil, true
  end
  local p = profile(rep)
  if p.max_open > 0 then
    local open = tonumber(redis.call('HGET', K.open, rep) or '0')
    if open >= p.max_open then return 'capacity', open, p.max_open end
  end
  local day, minute = local_time(p.zone)
  for i = 1, #p.ooo do
    if day >= p.ooo[i][1] and day <= p.ooo[i][2] then return 'ooo' end
  end
  if #p.week > 0 then
    local working = false
    for i = 1, #p.week do
      if minute >= p.week[i][1] and minute < p.week[i][2] then
        working = true
        break
      end
    end
    if not working then return 'hours' end
  end
  if p.daily_cap > 0 then
    local n = daily_count(rep, day)
    if n >= p.daily_cap then return 'daily', n, p.daily_cap end
  end
  if pool_key then
    local cool = tonumber(redis.call('HGET', K.repstate, 'cool:' .. pool_id .. '/' .. rep) or '0')
    if cool > NOW then return 'cooldown', cool end
    local cap = tonumber(redis.call('HGET', pool_key, 'cap:' .. rep) or '0')
    if cap > 0 then
      local n = daily_count(pool_id .. '/' .. rep, day)
      if n >= cap then return 'poolcap', n, cap end
    end
  end
  return nil
end

local function bump_daily(field, day)
  redis.call('HSET', K.daily, field, day .. ':' .. (daily_count(field, day) + 1))
end

-- rank_score is a member's true least-loaded or longest-idle score.
local function rank_score(strategy, rep)
  local last = tonumber(redis.call('HGET', K.last_assigned, rep) or '0')
  local idle = math.max(last - RANK_BASE, 0)
  if strategy == 'LEAST_LOADED' then
    return tonumber(redis.call('HGET', K.open, rep) or '0') * RANK_SHIFT + idle
  end
  return idle
end

-- Ranked pools whose chosen member gets its exact score once commit_rep
-- has counted the assignment: a pick's advance runs before commit_rep, when
-- the rep's open count and last assignment do not include this lead yet.
local rank_refresh = {}

-- commit_rep counts an assignment to rep (from pool_id, '' for none). It
-- returns what it counted, "<day>|<pool>", for the lead's record: a
-- withdrawal takes back exactly that (uncommit_rep).
local function commit_rep(rep, pool_id)
  redis.call('HINCRBY', K.open, rep, 1)
  redis.call('HINCRBY', K.assigned, rep, 1)
  redis.call('HSET', K.last_assigned, rep, NOW)
  for i = #rank_refresh, 1, -1 do
    local r = rank_refresh[i]
    if r.rep == rep then
      redis.call('ZADD', r.rank, rank_score(r.strategy, rep), rep)
      table.remove(rank_refresh, i)
    end
  end
  local day = local_time(profile(rep).zone)
  if pool_id ~= '' then
    local in_pool = pool_id .. '/' .. rep
    local v = redis.call('HMGET', K.daily, rep, in_pool)
    redis.call('HSET', K.daily, rep, day .. ':' .. (day_count(v[1], day) + 1),
      in_pool, day .. ':' .. (day_count(v[2], day) + 1))
  else
    bump_daily(rep, day)
  end
  return day .. '|' .. pool_id
end

local function append_all(dst, src)
  for i = 1, #src do dst[#dst + 1] = src[i] end
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

local MAX_NAMED = 10 -- skipped members named per pick; the rest are counted by code
local UNINDEXED = false -- a preview's pick found a pool with no index (see pick)

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
-- strategy (lower first).
local function skip(skips, order, rep, code, a, b)
  skips[#skips + 1] = { order = order, rep = rep, code = code, a = a, b = b }
end

-- absent_in counts away's members in score ranges ({min, max} pairs, in
-- the strategy's order) and returns the first MAX_NAMED with their order
-- (order_of(score)), and the count.
local function absent_in(pool, ranges, order_of)
  local named, total = {}, 0
  for _, r in ipairs(ranges) do
    local n = redis.call('ZCOUNT', pool.away, r[1], r[2])
    total = total + n
    if n > 0 and #named < MAX_NAMED then
      local e = redis.call('ZRANGEBYSCORE', pool.away, r[1], r[2], 'WITHSCORES', 'LIMIT', 0, MAX_NAMED - #named)
      for i = 1, #e, 2 do named[#named + 1] = { rep = e[i], order = order_of(tonumber(e[i + 1])) } end
    end
  end
  return named, total
end

-- trace_skips writes a pick's skipped members: the first MAX_NAMED in the
-- strategy's order by name ('S' lines, with the absent ones' presence), the
-- rest as a count per code ('N' lines; 'absent' for away members not named).
local function trace_skips(lines, skips, named, absent_total)
  local all = {}
  append_all(all, skips)
  if #named > 0 then
    local ids = {}
    for i = 1, #named do ids[i] = named[i].rep end
    local status = redis.call('HMGET', K.presence, unpack(ids))
    for i = 1, #named do
      all[#all + 1] = { order = named[i].order, rep = named[i].rep, code = string.lower(status[i] or 'unknown') }
    end
  end
  table.sort(all, function(x, y)
    if x.order ~= y.order then return x.order < y.order end
    return x.rep < y.rep
  end)
  local counts, codes = {}, {}
  for i, s in ipairs(all) do
    if i <= MAX_NAMED then
      local line = 'S\t' .. s.rep .. '\t' .. s.code
      if s.a then line = line .. '\t' .. s.a end
      if s.b then line = line .. '\t' .. s.b end
      lines[#lines + 1] = line
    else
      if not counts[s.code] then codes[#codes + 1] = s.code end
      counts[s.code] = (counts[s.code] or 0) + 1
    end
  end
  if absent_total > #named then
    if not counts.absent then codes[#codes + 1] = 'absent' end
    counts.absent = (counts.absent or 0) + absent_total - #named
  end
  for _, code in ipairs(codes) do lines[#lines + 1] = 'N\t' .. code .. '\t' .. counts[code] end
end

-- move_stale moves members a pick found in rank but not AVAILABLE to away
-- (not in a preview, which writes nothing).
local function move_stale(pool, st, stale)
  if DRY then return end
  for _, s in ipairs(stale) do index_leave(pool, st, s.rep, s.at) end
end

-- Each pick_* walks a pool's index in its strategy's order and returns the
-- first eligible member (nil when none), a function that records the pick
-- in the pool's rotation state, and a note for the trace. It traces what it
-- skipped (trace_skips).

local function pick_round_robin(pool, st, lines)
  local n, cursor, abs = st.n, st.cursor, st.abs
  local skips, stale = {}, {}
  if st.policy == 'CATCH_UP' then
    -- Members owed turns from an absence get them first, most owed first.
    local owed = redis.call('ZREVRANGE', pool.owed, 0, -1)
    for i = 1, #owed do
      local rep = owed[i]
      local code, a, b = ineligible(rep, pool.key, pool.id)
      if not code then
        trace_skips(lines, skips, {}, 0)
        return rep, function()
          if tonumber(redis.call('ZINCRBY', pool.owed, -1, rep)) <= 0 then redis.call('ZREM', pool.owed, rep) end
        end, 'catching up a turn missed while away'
      end
      skip(skips, i - #owed - 1, rep, code, a, b)
    end
  end
  -- The rotation from the member after the cursor, through rank in
  -- position order: (cursor, +inf), then [0, cursor].
  local chosen, chosen_idx, chosen_abs
  local function distance(idx)
    local k = (idx - cursor) % n
    if k == 0 then k = n end
    return k
  end
  local function walk(min, max)
    while true do
      local e = redis.call('ZRANGEBYSCORE', pool.rank, min, max, 'WITHSCORES', 'LIMIT', 0, 8)
      for i = 1, #e, 2 do
        local rep, idx = e[i], tonumber(e[i + 1])
        local k = distance(idx)
        local code, a, b, absent = ineligible(rep, pool.key, pool.id)
        if not code then
          chosen, chosen_idx, chosen_abs = rep, idx, abs + k
          return true
        end
        skip(skips, k, rep, code, a, b)
        if absent then stale[#stale + 1] = { rep = rep, at = abs + k - 1 } end
        min = '(' .. e[i + 1]
      end
      if #e < 16 then return false end
    end
  end
  if n > 0 and not walk('(' .. cursor, '+inf') and cursor >= 0 then walk('-inf', cursor) end
  -- Absent members the rotation passed: strictly between the cursor and
  -- the chosen member (all of them when nobody was chosen).
  local ranges
  if not chosen then
    ranges = { { '(' .. cursor, '+inf' }, { '-inf', cursor } }
  elseif chosen_idx > cursor then
    ranges = { { '(' .. cursor, '(' .. chosen_idx } }
  else
    ranges = { { '(' .. cursor, '+inf' }, { '-inf', '(' .. chosen_idx } }
  end
  local named, absent_total = absent_in(pool, ranges, distance)
  trace_skips(lines, skips, named, absent_total)
  move_stale(pool, st, stale)
  if not chosen then return nil end
  return chosen, function()
    redis.call('HSET', pool.key, 'cursor', chosen_idx, 'abs', chosen_abs, 'last', chosen)
    return true
  end
end

-- Weighted round robin is stride scheduling: the member with the smallest
-- pass goes next and its pass grows by STRIDE / weight. A member skipped
-- while present forfeits its turn: its pass grows too, and never stays
-- below the chosen member's pass. What an absent member forfeits (or, in a
-- CATCH_UP pool, keeps: at most limit turns) is settled on its return
-- (index_return).
local function pick_weighted(pool, st, lines)
  local skips, skipped, stale = {}, {}, {}
  local chosen, chosen_pass, chosen_stride, bound
  local i = 0
  while true do
    local e = redis.call('ZRANGE', pool.rank, i, i, 'WITHSCORES')
    if #e == 0 then break end
    local rep, pass = e[1], tonumber(e[2])
    local code, a, b, absent = ineligible(rep, pool.key, pool.id)
    local stride = STRIDE / tonumber(redis.call('HGET', pool.key, 'w:' .. rep) or '1')
    if not code then
      -- The bound keeps the score as Redis wrote it: Lua prints numbers
      -- with 14 digits, fewer than a score has.
      chosen, chosen_pass, chosen_stride, bound = rep, pass, stride, '(' .. e[2]
      break
    end
    skip(skips, pass, rep, code, a, b)
    if absent then
      stale[#stale + 1] = { rep = rep }
    else
      skipped[#skipped + 1] = { rep = rep, pass = pass, stride = stride }
    end
    i = i + 1
  end
  local named, absent_total = absent_in(pool, { { '-inf', bound or '+inf' } }, function(score) return score end)
  trace_skips(lines, skips, named, absent_total)
  move_stale(pool, st, stale)
  if not chosen then return nil end
  return chosen, function()
    redis.call('ZADD', pool.rank, chosen_pass + chosen_stride, chosen)
    for j = 1, #skipped do
      local s = skipped[j]
      redis.call('ZADD', pool.rank, math.max(s.pass + s.stride, chosen_pass), s.rep)
    end
    redis.call('HSET', pool.key, 'vt', chosen_pass)
  end
end

-- Least loaded and longest idle keep members in a sorted set by score. A
-- score only ever lags behind the truth from below (an assignment from
-- another pool raises it; releases and config applies set it exactly), so
-- the scan corrects a lagging entry, starts again, and the first entry that
-- is current and eligible is the answer. A preview, which may not write,
-- sorts the present members itself.
local function pick_ranked(pool, st, lines)
  local strategy = st.strategy
  local fixes = 0
  local order, score
  if DRY then
    order = redis.call('ZRANGE', pool.rank, 0, -1)
    score = {}
    for j = 1, #order do score[order[j]] = rank_score(strategy, order[j]) end
    table.sort(order, function(a, b)
      if score[a] ~= score[b] then return score[a] < score[b] end
      return a < b
    end)
  end
  local skips, stale = {}, {}
  local chosen, bound
  local i = 0
  while true do
    local rep, s, raw
    if DRY then
      rep = order[i + 1]
      if not rep then break end
      s = score[rep]
      raw = string.format('%.17g', s)
    else
      local e = redis.call('ZRANGE', pool.rank, i, i, 'WITHSCORES')
      if #e == 0 then break end
      rep, s, raw = e[1], tonumber(e[2]), e[2]
      local actual = rank_score(strategy, rep)
      if actual ~= s and fixes < 10000 then
        -- A lagging score only rises: the entry moves behind this
        -- position, and the scan goes on from here.
        redis.call('ZADD', pool.rank, actual, rep)
        fixes = fixes + 1
        i = i - 1
        rep = nil
      end
    end
    if rep then
      local code, a, b, absent = ineligible(rep, pool.key, pool.id)
      if not code then
        chosen, bound = rep, '(' .. raw
        break
      end
      skip(skips, s, rep, code, a, b)
      if absent then stale[#stale + 1] = { rep = rep } end
    end
    i = i + 1
  end
  local named, absent_total = absent_in(pool, { { '-inf', bound or '+inf' } }, function(x) return x end)
  trace_skips(lines, skips, named, absent_total)
  move_stale(pool, st, stale)
  if not chosen then return nil end
  return chosen, function()
    redis.call('ZADD', pool.rank, rank_score(strategy, chosen), chosen)
    rank_refresh[#rank_refresh + 1] = { rank = pool.rank, strategy = strategy, rep = chosen }
  end
end

-- pick walks one pool with its strategy. pool = {id, key, rank, owed,
-- queue, away}. The pool's state is read in one HMGET per pick (never
-- cached across picks: a drain picks from the same pool again after
-- advancing it).
local function pick(pool, lines)
  local st = pool_state(pool)
  if st.ix ~= '1' and st.exists then
    if DRY then UNINDEXED = true else build_index(pool, st) end
  end
  lines[#lines + 1] = 'P\t' .. pool.id .. '\t' .. st.strategy .. '\t' .. (st.last or '')
  local rep, advance, note
  if st.strategy == 'WEIGHTED_ROUND_ROBIN' then
    rep, advance = pick_weighted(pool, st, lines)
  elseif is_ranked(st.strategy) then
    rep, advance = pick_ranked(pool, st, lines)
  else
    rep, advance, note = pick_round_robin(pool, st, lines)
  end
  if not rep then return nil end
  lines[#lines + 1] = 'C\t' .. rep .. '\t' .. (note or '')
  -- An advance that returns true wrote 'last' itself.
  return rep, function()
    if not advance() then redis.call('HSET', pool.key, 'last', rep) end
  end
end

-- try_rep offers the lead to one rep outside any rotation (sticky owner,
-- account owner).
local function try_rep(rep, label, lines)
  lines[#lines + 1] = 'R\t' .. label .. '\t' .. rep
  local code, a, b = ineligible(rep, nil, '')
  if not code then
    lines[#lines + 1] = 'C\t' .. rep .. '\t'
    return true
  end
  trace_skips(lines, { { order = 0, rep = rep, code = code, a = a, b = b } }, {}, 0)
  return false
end

-- uncommit takes back what commit_rep counted for an offer that was
-- withdrawn: the rep never had the lead.
-- counted is what commit_rep returned for the lead ("<day>|<pool>"): a
-- day's count is taken back only while that day is the counter's current
-- one, and only for the pool that was counted.
local function uncommit_rep(rep, counted)
  if tonumber(redis.call('HGET', K.open, rep) or '0') > 0 then redis.call('HINCRBY', K.open, rep, -1) end
  if tonumber(redis.call('HGET', K.assigned, rep) or '0') > 0 then redis.call('HINCRBY', K.assigned, rep, -1) end
  local day, pool_id = string.match(counted or '', '^(%d+)|(.*)$')
  if not day then return end
  local fields = { rep }
  if pool_id ~= '' then fields[2] = pool_id .. '/' .. rep end
  for _, field in ipairs(fields) do
    local n = daily_count(field, tonumber(day))
    if n > 0 then redis.call('HSET', K.daily, field, day .. ':' .. (n - 1)) end
  end
end

-- history_line is one lifecycle event as the record's history keeps it.
local function history_line(kind, rep, detail)
  return NOW .. '\t' .. kind .. '\t' .. (rep or '') .. '\t' .. (detail or '') .. '\n'
end

-- add_history appends lifecycle events to a stored record.
local function add_history(lead_key, ...)
  local lines = { redis.call('HGET', lead_key, 'history') or '' }
  local events = { ... }
  for i = 1, #events, 3 do lines[#lines + 1] = history_line(events[i], events[i + 1], events[i + 2]) end
  redis.call('HSET', lead_key, 'history', table.concat(lines))
end

-- bind_sticky binds a person (by email) to the rep who has their lead, for
-- the sticky window by the engine's clock ("rep|pool|lead|until_ms");
-- Redis drops the key a day after.
local function bind_sticky(sticky_key, email, window, rep, pool_id, lead_id)
  if email ~= '' and window > 0 then
    redis.call('SET', sticky_key, rep .. '|' .. pool_id .. '|' .. lead_id .. '|' .. (NOW + window), 'PX', window + DAY_MS)
  end
end

-- FACTS are what this call did, for the caller's metrics: one per event
-- written, plus 'dequeued' when a queued lead leaves its queue. Each is
-- {kind, pool, ms}: ms is the duration the fact measures (accepted: offer to
-- accept; first_contact: submission to contact; dequeued: time queued), or
-- -1. with_facts appends them to the script's reply (see store/scripts.go).
local FACTS = {}

local function observe(kind, pool_id, ms)
  FACTS[#FACTS + 1] = { kind, pool_id or '', ms or -1 }
end

local function with_facts(reply)
  if type(reply) ~= 'table' or reply.err or reply.ok then return reply end
  for _, f in ipairs(FACTS) do
    reply[#reply + 1] = f[1]
    reply[#reply + 1] = f[2]
    reply[#reply + 1] = f[3]
  end
  reply[#reply + 1] = #FACTS
  return reply
end

-- emit appends an event to the workspace's event stream and records it as a
-- fact (ms: what the event measures, see FACTS).
local function emit(kind, lead_id, rep, pool_id, detail, ms)
  -- No trimming here: retention (events_trim.lua) records what it removes,
  -- so a client resuming from a removed position is told to resync.
  redis.call('XADD', K.events, '*',
    'kind', kind, 'lead', lead_id, 'rep', rep or '', 'pool', pool_id or '', 'at', NOW, 'detail', detail or '')
  observe(kind, pool_id, ms)
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
  local v = redis.call('HMGET', pool.key, 'accept', 'sla', 'warn')
  local accept, sla, warn = tonumber(v[1] or '0'), tonumber(v[2] or '0'), tonumber(v[3] or '0')
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
      emit('offered', lead_id, rep, pool.id, 'accept within ' .. (accept / 1000) .. 's')
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
  local offered, sla_set = unpack(redis.call('HMGET', lead_key, 'offered', 'sla_due'))
  local state, fields, line = place(pool, rep, lead_id, sla_from, offered or '', tonumber(sla_set or ''))
  append_all(fields, extra or {})
  redis.call('HSET', lead_key, unpack(fields))
  redis.call('HSET', lead_key, 'history', (redis.call('HGET', lead_key, 'history') or '') .. line)
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

-- route_targets tries pools in order (targets[i] = {pool=..., flag=...,
-- wait=ms}) and returns what happened: state 'ASSIGNED' (rep, index),
-- 'QUEUED' (index, reason, backlog flag, wait ms) or nil when there are no
-- targets. It writes nothing.
local function route_targets(targets, lines, queued_reason, exclude)
  if exclude and next(exclude) then
    -- Never the same rep twice for one lead, unless nobody else is
    -- eligible. Reps excluded already (EXCLUDE) stay excluded.
    local saved = EXCLUDE
    EXCLUDE = {}
    for r in pairs(saved) do EXCLUDE[r] = true end
    for r in pairs(exclude) do EXCLUDE[r] = true end
    local mark = #lines
    local outcome = route_targets(targets, lines, queued_reason)
    EXCLUDE = saved
    if outcome and outcome.state == 'ASSIGNED' then return outcome end
    for j = #lines, mark + 1, -1 do lines[j] = nil end
  end
  local queue_at = nil
  for t = 1, #targets do
    local target = targets[t]
    local rep, advance = pick(target.pool, lines)
    if rep then
      local waiting = redis.call('ZCARD', target.pool.queue)
      if waiting > 0 then
        lines[#lines + 1] = 'B\t' .. waiting
        return { state = 'QUEUED', index = t, backlog = true,
          reason = 'waiting behind ' .. waiting .. ' earlier lead(s) queued on ' .. target.pool.id, wait = 0 }
      end
      return { state = 'ASSIGNED', rep = rep, index = t, advance = advance }
    end
    if target.flag == 'wait' then
      local wait = (t < #targets) and target.wait or 0
      return { state = 'QUEUED', index = t, reason = 'nobody eligible in ' .. target.pool.id ..
        ((wait > 0) and ('; escalates to ' .. targets[t + 1].pool.id .. ' after ' .. (target.wait / 1000) .. 's') or ''),
        wait = wait }
    end
    if target.flag ~= 'skip' and not queue_at then queue_at = t end
  end
  if #targets == 0 then return nil end
  return { state = 'QUEUED', index = queue_at or #targets, reason = queued_reason, wait = 0 }
end

-- TARGET_KEYS is how many keys a target pool has in KEYS: pool HASH, rank
-- ZSET, owed ZSET, queue ZSET, away ZSET (store/keys.go target).
local TARGET_KEYS = 5

-- pool_at binds the TARGET_KEYS keys of pool id from KEYS[at].
local function pool_at(id, at)
  return { id = id, key = KEYS[at], rank = KEYS[at + 1], owed = KEYS[at + 2], queue = KEYS[at + 3], away = KEYS[at + 4] }
end

-- read_targets binds targets from KEYS (TARGET_KEYS per target, from
-- key_at) and ARGV (3 per target: pool id, flag, wait ms, from arg_at).
local function read_targets(key_at, arg_at, count)
  local targets = {}
  for t = 0, count - 1 do
    targets[#targets + 1] = {
      pool = pool_at(ARGV[arg_at + 3 * t], key_at + TARGET_KEYS * t),
      flag = ARGV[arg_at + 3 * t + 1], wait = tonumber(ARGV[arg_at + 3 * t + 2]),
    }
  end
  return targets
end
