-- lib_eligibility: whether a rep may take a lead now, and the counts an
-- assignment changes. Needs lib_workspace and lib_index.

local profiles = {}

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
-- 00:00 = 0) at NOW in a zone. The engine computes them (engine.LocalTimes)
-- for every zone of its config, and UTC, and sends them as A.zones,
-- ";zone=day,minute;..." (store/contract.go zonesArg): no script converts
-- a time itself. A zone not sent (a rep the config no longer has) counts as
-- UTC.
local ZONES, zone_times = A.zones or '', {}

local function local_time(zone)
  local t = zone_times[zone]
  if not t then
    local at = string.find(ZONES, ';' .. zone .. '=', 1, true)
    if not at and zone ~= 'UTC' then return local_time('UTC') end
    if not at then error('no local time for zone ' .. zone) end
    local day, minute = string.match(ZONES, '^(%d+),(%d+);', at + #zone + 2)
    t = { tonumber(day), tonumber(minute) }
    zone_times[zone] = t
  end
  return t[1], t[2]
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
