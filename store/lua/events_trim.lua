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
-- KEYS[1]  events   STREAM
-- KEYS[2]  trimmed  STRING  id of the newest removed event
--
-- A (store/contract.go trimArgs):
--   max_len  events kept at most
--   cutoff   unix ms: events before it are removed (0: no age limit)
--   limit    events removed for the length limit in this call at most
--
-- Returns {OK, removed, more}: the number of events removed, and 1 when the
-- stream is still over max_len (call again), else 0.

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

local oldest = redis.call('XRANGE', events, '-', '+', 'COUNT', 1)
if #oldest == 0 then return { C.OK, 0, 0 } end

local last = nil
local n = redis.call('XLEN', events)
if n > max_len then
  local over = redis.call('XRANGE', events, '-', '+', 'COUNT', math.min(n - max_len, limit))
  last = over[#over][1]
end
-- Only when the oldest event is too old: XREVRANGE from an end before every
-- entry scans the whole stream.
if cutoff > 0 and split(oldest[1][1]) < cutoff then
  local aged = redis.call('XREVRANGE', events, (cutoff - 1) .. '-18446744073709551615', '-', 'COUNT', 1)
  if #aged > 0 and (last == nil or less(last, aged[1][1])) then last = aged[1][1] end
end
if last == nil then return { C.OK, 0, 0 } end

local ms, seq = string.match(last, '^(%d+)-(%d+)$')
local removed = redis.call('XTRIM', events, 'MINID', ms .. '-' .. (tonumber(seq) + 1))
local cur = redis.call('GET', trimmed)
if cur == false or less(cur, last) then
  redis.call('SET', trimmed, last)
end
return { C.OK, removed, redis.call('XLEN', events) > max_len and 1 or 0 }
