-- Shared functions, prepended to the scripts that pick reps
-- (lead_decide.lua, queue_drain.lua). Keys arrive as arguments; nothing here
-- builds a key name.

-- pick_round_robin scans a pool's members in rotation order, starting after
-- the member picked last, and returns the rotation index and id of the first
-- AVAILABLE member (-1, nil when none), plus the trace lines of the scan:
--   P <tab> pool id <tab> member picked last ('' for none)
--   C <tab> rep id                       the chosen member
--   S <tab> rep id <tab> skip reason     a member passed over (away, offline, unknown)
-- The cursor is not moved; commit_pick does that.
local function pick_round_robin(pool_key, presence_key, pool_id)
  local n = tonumber(redis.call('HGET', pool_key, 'n') or '0')
  local cursor = tonumber(redis.call('HGET', pool_key, 'cursor') or '-1')
  local previous = ''
  if cursor >= 0 then
    previous = redis.call('HGET', pool_key, 'm' .. cursor) or ''
  end
  local lines = { 'P\t' .. pool_id .. '\t' .. previous }
  for k = 1, n do
    local idx = (cursor + k) % n
    local rep = redis.call('HGET', pool_key, 'm' .. idx)
    local status = redis.call('HGET', presence_key, rep)
    if status == 'AVAILABLE' then
      lines[#lines + 1] = 'C\t' .. rep
      return idx, rep, lines
    end
    lines[#lines + 1] = 'S\t' .. rep .. '\t' .. string.lower(status or 'unknown')
  end
  return -1, nil, lines
end

-- commit_pick moves the pool's cursor to the chosen member and counts the
-- assignment.
local function commit_pick(pool_key, assigned_key, last_assigned_key, idx, rep, now)
  redis.call('HSET', pool_key, 'cursor', idx)
  redis.call('HINCRBY', assigned_key, rep, 1)
  redis.call('HSET', last_assigned_key, rep, now)
end

-- append_all appends the elements of src to dst.
local function append_all(dst, src)
  for i = 1, #src do
    dst[#dst + 1] = src[i]
  end
end
