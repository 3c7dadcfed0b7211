-- rep_connection: presence that follows a rep's desktop connection
-- (settings.presence_follows_connection).
--   connect  the rep's desktop opened a stream: note it, and if the engine
--            had set the rep OFFLINE for being disconnected, restore the
--            status it had then
--   lost     the rep's last heartbeat is older than the grace period: an
--            AVAILABLE rep is set OFFLINE, remembering that it was the
--            engine's doing
--
-- KEYS[1..14]  the workspace keys (lib_workspace.lua)
-- KEYS[15]     connected  ZSET  rep -> last heartbeat, unix ms
-- KEYS[16+5i..20+5i]  pool i of the rep (from 0): pool, rank, owed, queue, away
--
-- A (store/contract.go connectionArgs): cfg (the rep and its pools are in
-- that config), now, and
--   mode    connect or lost
--   rep     the rep's id
--   cutoff  lost: heartbeats at or before this unix ms are lost
--   pools   the rep's pools' ids
--
-- A change of status files the rep in the eligible-member index of each of
-- its pools (lib_index.lua). repstate keeps "auto:<rep>": the status
-- before the engine set the rep OFFLINE.
--
-- Returns {STALE} when the config id is not current, else {OK, status}: the
-- rep's status after the call ('' when it has none).

local presence = K.presence
local repstate = K.repstate
local connected = KEYS[15]
local mode = A.mode
local rep = A.rep
local now = NOW
local cutoff = A.cutoff
local pools = {}
for i, id in ipairs(A.pools or {}) do pools[i] = pool_at(id, 16 + TARGET_KEYS * (i - 1)) end

if not current() then
  return { C.STALE }
end

local function set_status(status, detail)
  local previous = redis.call('HGET', presence, rep) or ''
  redis.call('HSET', presence, rep, status)
  redis.call('HSET', K.status_changed, rep, now)
  redis.call('XADD', K.events, '*', 'kind', 'rep_status_changed', 'lead', '', 'rep', rep, 'pool', '',
    'at', now, 'detail', note('status', previous, status, detail))
  index_presence(pools, rep)
end

local current = redis.call('HGET', presence, rep)
if not current then
  redis.call('ZREM', connected, rep) -- not a rep of the config any more
  return { C.OK, '' }
end
if mode == 'connect' then
  redis.call('ZADD', connected, now, rep)
  local before = redis.call('HGET', repstate, 'auto:' .. rep)
  if before then
    redis.call('HDEL', repstate, 'auto:' .. rep)
    if current == 'OFFLINE' then
      set_status(before, 'desktop_back')
      return { C.OK, before }
    end
  end
  return { C.OK, current }
end
-- lost
local seen = redis.call('ZSCORE', connected, rep)
if not seen or tonumber(seen) > cutoff then
  return { C.OK, current } -- a heartbeat arrived meanwhile
end
redis.call('ZREM', connected, rep)
if current == 'AVAILABLE' then
  redis.call('HSET', repstate, 'auto:' .. rep, current)
  set_status('OFFLINE', 'no_desktop')
  return { C.OK, 'OFFLINE' }
end
return { C.OK, current }
