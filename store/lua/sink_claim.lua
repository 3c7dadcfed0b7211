-- sink_claim: take over a sink's events that have been pending longer than
-- A.min_idle ms (their consumer died, or stalled: a live consumer keeps
-- the events it works on fresh, sink_touch.lua), up to A.count from
-- A.start, and return those at the head of their ordering key. Waiting
-- ones move to this consumer too and stay waiting: sink_ack.lua hands each
-- to whoever finishes the event before it.
--
-- KEYS[1]  events  STREAM
-- KEYS[2]  heads   HASH
--
-- A (store/contract.go sinkClaimArgs): group, consumer, min_idle, count,
-- start
--
-- Returns {OK, next, entry...}: the cursor for the next call ('0-0': the
-- scan went round), then the entries to deliver.

local events, heads = KEYS[1], KEYS[2]
local r = redis.pcall('XAUTOCLAIM', events, A.group, A.consumer, A.min_idle, A.start, 'COUNT', A.count)
if type(r) == 'table' and r.err then
  if string.find(r.err, 'NOGROUP', 1, true) then return { C.OK, '0-0' } end
  return r
end
local out = { C.OK, r[1] }
for _, e in ipairs(r[2]) do
  if e[2] then
    local id, f = e[1], fields(e[2])
    local key = order_key(id, f)
    local cur = redis.call('HGET', heads, key)
    -- A head retention removed (events_trim.lua acknowledges what it
    -- removes, but a group added a moment before it was not held back)
    -- is dropped, and the next event of its key becomes the head.
    while cur do
      local head, rest = first_word(cur)
      if head == id or #redis.call('XRANGE', events, head, head) > 0 then break end
      redis.call('XACK', events, A.group, head)
      if rest == '' then
        redis.call('HDEL', heads, key)
        cur = nil
      else
        redis.call('HSET', heads, key, rest)
        cur = rest
      end
    end
    if cur and first_word(cur) == id then
      push_entry(out, id, key, f)
    elseif not cur then
      -- Pending with no place in the heads: its key's only event, so its
      -- head.
      redis.call('HSET', heads, key, id)
      push_entry(out, id, key, f)
    elseif not string.find(' ' .. cur .. ' ', ' ' .. id .. ' ', 1, true) then
      -- Pending but missing from its key's list: it waits at the end.
      redis.call('HSET', heads, key, cur .. ' ' .. id)
    end
  end
end
return out
