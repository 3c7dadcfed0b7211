-- lib_sink: what the sink scripts share (store/sinks.go). A sink reads the
-- workspace's event stream through its consumer group; its heads HASH maps
-- an ordering key (the lead, else 'rep:<rep>', else the event's own id) to
-- the space-separated ids of that key's events the group has handed out
-- and not yet acknowledged, oldest first. Only the first (the head) is
-- delivered; the others wait behind it, so deliveries for one lead never
-- overtake each other, whichever replica holds them.

-- fields turns a stream entry's flat field list into a table.
local function fields(flat)
  local f = {}
  for i = 1, #flat, 2 do f[flat[i]] = flat[i + 1] end
  return f
end

-- order_key is the ordering key of an entry's fields.
local function order_key(id, f)
  if f.lead and f.lead ~= '' then return f.lead end
  if f.rep and f.rep ~= '' then return 'rep:' .. f.rep end
  return 'id:' .. id
end

-- push_entry appends an entry to out as id, key, kind, lead, rep, pool,
-- at, detail (store/sinks.go sinkEntryWidth).
local function push_entry(out, id, key, f)
  for _, v in ipairs({ id, key, f.kind or '', f.lead or '', f.rep or '', f.pool or '', f.at or '', f.detail or '' }) do
    out[#out + 1] = v
  end
end

-- first_word returns the first id of a heads value and the rest ('' when
-- none).
local function first_word(s)
  local head, rest = string.match(s, '^(%S+)%s*(.*)$')
  return head, rest or ''
end

-- push_dead appends a dead letter to a sink's list, keeping at most max:
-- past it the oldest are dropped and counted in the state's dead_dropped.
local function push_dead(dead, state, letter, max)
  redis.call('RPUSH', dead, letter)
  local over = redis.call('LLEN', dead) - max
  if over > 0 then
    redis.call('LTRIM', dead, over, -1)
    redis.call('HINCRBY', state, 'dead_dropped', over)
  end
end
