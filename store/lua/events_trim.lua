-- events_trim: apply retention to a workspace's event history: remove the
-- events over the length limit and those older than the age limit, and
-- remember the newest removed id, so that a client resuming from an older
-- position is told its history is gone.
--
-- The work is in proportion to what is removed, never to the stream's
-- length: with nothing to remove it is two O(1) reads (the oldest entry and
-- the length). The length limit removes at most limit events per call (they
-- are read to learn the newest removed id); the caller calls again while
-- the reply says more.
--
-- Sinks hold retention back (lib_sink): the length limit removes no event
-- a sink's group has not acknowledged. The age limit does: a sink whose
-- unacknowledged events are older than it loses them, its group moves
-- past them, the loss is counted in its state (lost, lagging_since) and
-- returned, for a log line and a metric. Nothing goes silently.
--
-- KEYS[1]  events   STREAM
-- KEYS[2]  trimmed  STRING  id of the newest removed event
-- KEYS[3..]  per sink: heads HASH, state HASH (A.groups' order)
--
-- A (store/contract.go trimArgs):
--   max_len  events kept at most
--   cutoff   unix ms: events before it are removed (0: no age limit)
--   limit    events removed for the length limit in this call at most
--   groups   the sinks' consumer groups
--   now      unix ms
--
-- Returns {OK, removed, more, group, lost, ...}: the number of events
-- removed, 1 when the stream is still over max_len and may be trimmed
-- further (call again), else 0, then each sink group that lost events
-- with their number.

local events = KEYS[1]
local trimmed = KEYS[2]
local max_len = A.max_len
local cutoff = A.cutoff
local limit = A.limit

local function split(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end

local function less(a, b)
  local am, as = split(a)
  local bm, bs = split(b)
  return am < bm or (am == bm and as < bs)
end

local function before(id) -- the greatest id below id
  local ms, seq = split(id)
  if seq > 0 then return string.format('%.0f-%.0f', ms, seq - 1) end
  return string.format('%.0f', ms - 1) .. '-18446744073709551615'
end

local function after(id)
  local ms, seq = split(id)
  return string.format('%.0f-%.0f', ms, seq + 1)
end

local oldest = redis.call('XRANGE', events, '-', '+', 'COUNT', 1)
if #oldest == 0 then return { C.OK, 0, 0 } end

-- hold: the oldest event some sink has not acknowledged (pending in its
-- group, or not handed out yet: after its read cursor).
local groups = A.groups or {}
local hold = nil
local holds = {}
for i, g in ipairs(groups) do
  local p = redis.pcall('XPENDING', events, g)
  if type(p) == 'table' and not p.err then
    local h = after(redis.call('HGET', KEYS[2 + 2 * i], 'read') or '0-0')
    if tonumber(p[1]) > 0 and less(p[2], h) then h = p[2] end
    holds[i] = h
    if hold == nil or less(h, hold) then hold = h end
  end
end

local last = nil
local minid = nil -- XTRIM MINID: the oldest event kept
local more = 0
local n = redis.call('XLEN', events)
if n > max_len then
  local over = redis.call('XRANGE', events, '-', '+', 'COUNT', math.min(n - max_len, limit))
  last = over[#over][1]
  more = 1
  if hold ~= nil and not less(last, hold) then
    last = before(hold)
    minid = hold
    more = 0
  else
    minid = after(last)
  end
end
-- Only when the oldest event is too old: XREVRANGE from an end before every
-- entry scans the whole stream.
local lost = {}
if cutoff > 0 and split(oldest[1][1]) < cutoff then
  local aged = redis.call('XREVRANGE', events, (cutoff - 1) .. '-18446744073709551615', '-', 'COUNT', 1)
  if #aged > 0 then
    local a = aged[1][1]
    if last == nil or less(last, a) then
      last = a
      minid = after(a)
    end
    for i, g in ipairs(groups) do
      if holds[i] ~= nil and not less(a, holds[i]) then
        local heads, state = KEYS[1 + 2 * i], KEYS[2 + 2 * i]
        local n_lost = 0
        -- Pending events past the age limit: acknowledged as lost, and
        -- taken out of their key's heads (the next waiting one becomes
        -- the head; sink_claim.lua hands it out).
        local pend = redis.call('XPENDING', events, g, '-', a, 10000)
        for _, pe in ipairs(pend) do
          local e = redis.call('XRANGE', events, pe[1], pe[1])
          if #e > 0 then
            local f = fields(e[1][2])
            local key = order_key(pe[1], f)
            local cur = redis.call('HGET', heads, key)
            if cur then
              local kept = {}
              for w in string.gmatch(cur, '%S+') do
                if w ~= pe[1] then kept[#kept + 1] = w end
              end
              if #kept > 0 then
                redis.call('HSET', heads, key, table.concat(kept, ' '))
              else
                redis.call('HDEL', heads, key)
              end
            end
          end
          redis.call('XACK', events, g, pe[1])
          n_lost = n_lost + 1
        end
        -- Events not handed out yet: the group moves past them.
        local read = redis.call('HGET', state, 'read') or '0-0'
        if less(read, a) then
          n_lost = n_lost + #redis.call('XRANGE', events, after(read), a, 'COUNT', 100000)
          -- XREADGROUP hands out what is after the group's position;
          -- what is removed is not there to hand out. The read cursor
          -- moves past it.
          redis.call('HSET', state, 'read', a)
        end
        if n_lost > 0 then
          redis.call('HINCRBY', state, 'lost', n_lost)
          redis.call('HSET', state, 'lagging_since', A.now)
          lost[#lost + 1] = g
          lost[#lost + 1] = n_lost
        end
      end
    end
  end
end
if last == nil or less(last, oldest[1][1]) then
  local out = { C.OK, 0, 0 }
  for _, v in ipairs(lost) do out[#out + 1] = v end
  return out
end

local removed = redis.call('XTRIM', events, 'MINID', minid)
local cur = redis.call('GET', trimmed)
if cur == false or less(cur, last) then
  redis.call('SET', trimmed, last)
end
local out = { C.OK, removed, (more == 1 and redis.call('XLEN', events) > max_len) and 1 or 0 }
for _, v in ipairs(lost) do out[#out + 1] = v end
return out
