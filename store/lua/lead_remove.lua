-- lead_remove: remove a CLOSED or UNROUTABLE lead's record once its
-- retention has passed (settings.retain_closed; its retain timer, claimed
-- here), with its timers. A final lead holds no sticky binding: closing
-- the assignment released it (assignment_close), and an unroutable lead was
-- never bound or was withdrawn first (lead_reroute). The record's count
-- falls (the quota, lead_decide.lua), and its entry in the person index
-- goes. From then on the lead id is free: sending it again routes a new
-- lead.
--
-- KEYS[1..14]  the workspace keys (lib_workspace.lua)
-- KEYS[15]     lead    HASH
-- KEYS[16]     people  ZSET  the person index (lead_decide.lua)
-- KEYS[17]     recent  ZSET  the recent index (lead_decide.lua)
-- KEYS[18]     the archive sink's heads HASH (lib_sink.lua), with archive
-- KEYS[19]     the archive sink's state HASH
--
-- A (store/contract.go removeArgs): now, lead (the lead's id); archive:
-- with a POSTGRES sink, removal waits until that sink has delivered every
-- event of the lead: none of them is pending in its group (no heads
-- entry) and its read cursor is past the lead's last event, which is at
-- least retain (ms) old when the retain timer fires. Until then the timer
-- is set again a minute on.
--
-- Returns:
--   {CLAIMED}             the timer was fired already, or is not due
--   {NOT_FOUND}           no such lead
--   {WRONG_STATE, state}  the lead is not CLOSED or UNROUTABLE
--   {HELD}                the archive sink has not delivered the lead's events yet
--   {OK}                  removed

local lead_key, lead_id = KEYS[15], A.lead

if not claim_timer('retain|' .. lead_id) then
  return { C.CLAIMED }
end
local state, closed_at, decided_at, person = unpack(redis.call('HMGET', lead_key, 'state', 'closed_at', 'decided_at',
  'person'))
if not state then
  return { C.NOT_FOUND }
end
if state ~= 'CLOSED' and state ~= 'UNROUTABLE' then
  return { C.WRONG_STATE, state }
end
if A.archive then
  local read = redis.call('HGET', KEYS[19], 'read') or '0-0'
  local newest = redis.call('XREVRANGE', K.events, '+', '-', 'COUNT', 1)
  local caught_up = #newest == 0 or newest[1][1] == read
  local read_ms = tonumber(string.match(read, '^(%d+)-')) or 0
  -- 5 s: the skew the clock guard allows between this replica's clock (NOW)
  -- and Redis's (event ids).
  if redis.call('HEXISTS', KEYS[18], lead_id) == 1 or not (caught_up or read_ms >= NOW - A.retain_window + 5000) then
    redis.call('ZADD', K.timers, NOW + 60000, 'retain|' .. lead_id)
    return { C.HELD }
  end
end
redis.call('ZREM', K.timers, 'offer|' .. lead_id, 'sla|' .. lead_id, 'warn|' .. lead_id, 'escalate|' .. lead_id,
  'expire|' .. lead_id)
redis.call('DEL', lead_key)
redis.call('ZREM', KEYS[17], lead_id)
count_state(state, nil)
if person and person ~= '' then
  redis.call('ZREM', KEYS[16], person .. '|' .. lead_id)
end
if tonumber(redis.call('HGET', K.config, 'stored') or '0') > 0 then
  redis.call('HINCRBY', K.config, 'stored', -1)
end
observe('removed', '', NOW - tonumber(closed_at or decided_at or NOW))
return { C.OK }
