-- rep_connection: presence that follows a rep's desktop connection
-- (settings.presence_follows_connection).
--   connect  the rep's desktop opened a stream: note it, and if the engine
--            had set the rep OFFLINE for being disconnected, restore the
--            status it had then
--   lost     the rep's last heartbeat is older than the grace period: an
--            AVAILABLE rep is set OFFLINE, remembering that it was the
--            engine's doing
--
-- KEYS[1]  presence        HASH
-- KEYS[2]  status_changed  HASH
-- KEYS[3]  repstate        HASH  "auto:<rep>" -> status before the engine set OFFLINE
-- KEYS[4]  connected       ZSET  rep -> last heartbeat, unix ms
-- KEYS[5]  events          STREAM
--
-- ARGV[1]  mode: connect or lost
-- ARGV[2]  rep id
-- ARGV[3]  now, unix ms
-- ARGV[4]  lost: heartbeats at or before this unix ms are lost
--
-- Returns the rep's status after the call ('' when it has none).

local presence = KEYS[1]
local status_changed = KEYS[2]
local repstate = KEYS[3]
local connected = KEYS[4]
local events = KEYS[5]
local mode = ARGV[1]
local rep = ARGV[2]
local now = ARGV[3]
local cutoff = tonumber(ARGV[4])

local function set_status(status, detail)
  local previous = redis.call('HGET', presence, rep) or ''
  redis.call('HSET', presence, rep, status)
  redis.call('HSET', status_changed, rep, now)
  redis.call('XADD', events, '*', 'kind', 'rep_status_changed', 'lead', '', 'rep', rep, 'pool', '',
    'at', now, 'detail', previous .. ' -> ' .. status .. ': ' .. detail)
end

local current = redis.call('HGET', presence, rep)
if not current then
  redis.call('ZREM', connected, rep) -- not a rep of the config any more
  return { '' }
end
if mode == 'connect' then
  redis.call('ZADD', connected, now, rep)
  local before = redis.call('HGET', repstate, 'auto:' .. rep)
  if before then
    redis.call('HDEL', repstate, 'auto:' .. rep)
    if current == 'OFFLINE' then
      set_status(before, 'desktop connected again')
      return { before }
    end
  end
  return { current }
end
-- lost
local seen = redis.call('ZSCORE', connected, rep)
if not seen or tonumber(seen) > cutoff then
  return { current } -- a heartbeat arrived meanwhile
end
redis.call('ZREM', connected, rep)
if current == 'AVAILABLE' then
  redis.call('HSET', repstate, 'auto:' .. rep, current)
  set_status('OFFLINE', 'no desktop connection')
  return { 'OFFLINE' }
end
return { current }
