-- sink_read: hand up to A.count new events of the workspace's stream to
-- a consumer of a sink's group, and return those it should deliver now:
-- the ones at the head of their ordering key (lib_sink). Events of kinds
-- the sink does not want are acknowledged at once. The group is created,
-- at A.start (the config's apply), when it does not exist.
--
-- KEYS[1]  events  STREAM
-- KEYS[2]  heads   HASH    ordering key -> pending ids (lib_sink)
-- KEYS[3]  state   HASH    read: the newest id handed out; errors, losses
--
-- A (store/contract.go sinkReadArgs): group, consumer, count, kinds (a
-- set: kind -> true; empty: every kind), start
--
-- Returns {OK, read, entry...}: how many events were read, then the
-- entries to deliver (push_entry's fields each).

local events, heads, state = KEYS[1], KEYS[2], KEYS[3]
local function read()
  return redis.pcall('XREADGROUP', 'GROUP', A.group, A.consumer, 'COUNT', A.count, 'STREAMS', events, '>')
end
local r = read()
if type(r) == 'table' and r.err then
  if not string.find(r.err, 'NOGROUP', 1, true) then return r end
  redis.call('XGROUP', 'CREATE', events, A.group, A.start, 'MKSTREAM')
  redis.call('HSET', state, 'read', A.start)
  r = read()
end
local out = { C.OK, 0 }
if not r or type(r) ~= 'table' or #r == 0 then return out end
local entries = r[1][2]
local wanted = A.kinds or {}
local all = next(wanted) == nil
for _, e in ipairs(entries) do
  local id, f = e[1], fields(e[2] or {})
  if not all and not wanted[f.kind or ''] then
    redis.call('XACK', events, A.group, id)
  else
    local key = order_key(id, f)
    local cur = redis.call('HGET', heads, key)
    if cur then
      redis.call('HSET', heads, key, cur .. ' ' .. id)
    else
      redis.call('HSET', heads, key, id)
      push_entry(out, id, key, f)
    end
  end
end
out[2] = #entries
redis.call('HSET', state, 'read', entries[#entries][1])
return out
