-- lib_pick: a pool's pick under its strategy, and routing over a rule's
-- targets. Needs lib_workspace, lib_index and lib_eligibility.
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

local MAX_NAMED = 10 -- skipped members named per pick; the rest are counted by code
local UNINDEXED = false -- a preview's pick found a pool with no index (see pick)

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
-- rest as a count per code ('N' lines; 'absent' for away members not named:
-- away, offline or outside their calendar).
local function trace_skips(lines, skips, named, absent_total)
  local all = {}
  append_all(all, skips)
  if #named > 0 then
    local ids = {}
    for i = 1, #named do ids[i] = named[i].rep end
    local status = redis.call('HMGET', K.presence, unpack(ids))
    for i = 1, #named do
      -- An AVAILABLE member of away is there for its calendar.
      local code = status[i] == 'AVAILABLE' and off_shift(named[i].rep) or string.lower(status[i] or 'unknown')
      all[#all + 1] = { order = named[i].order, rep = named[i].rep, code = code }
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
        end, note('catch_up')
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
          reason = note('backlog', waiting, target.pool.id), wait = 0 }
      end
      return { state = 'ASSIGNED', rep = rep, index = t, advance = advance }
    end
    if target.flag == 'wait' then
      local wait = (t < #targets) and target.wait or 0
      local reason = note('nobody', target.pool.id)
      if wait > 0 then reason = note('nobody', target.pool.id, targets[t + 1].pool.id, target.wait) end
      return { state = 'QUEUED', index = t, reason = reason, wait = wait }
    end
    if target.flag ~= 'skip' and not queue_at then queue_at = t end
  end
  if #targets == 0 then return nil end
  return { state = 'QUEUED', index = queue_at or #targets, reason = queued_reason, wait = 0 }
end

-- read_targets binds a request's targets ({pool, skip, wait} and the pool's
-- policies each, see store/contract.go targetArg) to their keys, TARGET_KEYS per target from
-- KEYS[key_at]. A target's flag is 'skip' (skip_if_unavailable), 'wait' (queue
-- here for wait ms, then escalate) or ''.
local function read_targets(key_at, list)
  local targets = {}
  for t, arg in ipairs(list or {}) do
    local flag = ''
    if arg.skip then flag = 'skip' elseif arg.wait > 0 then flag = 'wait' end
    targets[t] = { pool = pool_at(arg.pool, key_at + TARGET_KEYS * (t - 1), arg), flag = flag, wait = arg.wait }
  end
  return targets
end
