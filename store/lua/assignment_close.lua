-- assignment_close: close an ASSIGNED lead, released by an operator or
-- dispositioned by its rep: the rep's open count falls, the record becomes
-- CLOSED (keeping its history), the first-contact SLA timers stop, the
-- person's sticky owner is forgotten, and the rep's least-loaded scores are
-- corrected. Closing a closed lead again the same way changes nothing.
-- A release also cancels a QUEUED lead: it leaves its queue, its queue
-- timers stop, and it is CLOSED with the reason.
--
-- KEYS[1..14]  the workspace keys (lib_workspace.lua)
-- KEYS[15]     lead    HASH
-- KEYS[16]     sticky  STRING (the lead key again when there is no email)
-- KEYS[17]     queue   ZSET the queue of A.pool (the lead key again when
--                      the caller read no QUEUED record)
-- KEYS[17+i]   rank ZSET of each ranked pool the rep belongs to
--
-- A (store/contract.go closeArgs): cfg, now, and
--   lead         the lead's id
--   rep          the rep: read from the record (release) or the caller
--                (disposition)
--   pool         (release) the pool whose queue KEYS[17] is
--   reason, disposition ('' for a release), reason_code
--   ranked       strategy of each rank key (LEAST_LOADED or LONGEST_IDLE)
--
-- Returns:
--   {STALE}                     config id is not current
--   {WRONG_REP, rep, state}     the record's rep is not A.rep
--   {NOT_FOUND}                 no such lead
--   {WRONG_STATE, state}        the lead is offered or unroutable, or
--                               queued (a disposition)
--   {MOVED, state}              (release) a queued lead moved to another
--                               pool since the caller read it
--   {CONFLICT, disposition}     already dispositioned otherwise
--   {OK, field, value, ...}     the closed record

local lead_key = KEYS[15]
local sticky_key = KEYS[16]
local queue_key = KEYS[17]
local first_rank_key = 18
local lead_id = A.lead
local expected_rep = A.rep
local reason = A.reason
local disposition = A.disposition
local reason_code = A.reason_code

if not current() then
  return { C.STALE }
end
local state, rep, closed_as, pool_id = unpack(redis.call('HMGET', lead_key, 'state', 'rep', 'disposition', 'pool'))
if not state then
  return { C.NOT_FOUND }
end
if (state == 'ASSIGNED' or state == 'CLOSED') and rep ~= expected_rep then
  return { C.WRONG_REP, rep or '', state }
end
if state == 'CLOSED' and disposition ~= '' and (closed_as or '') ~= disposition then
  return { C.CONFLICT, closed_as or 'released' }
end
if state == 'ASSIGNED' then
  if tonumber(redis.call('HGET', K.open, rep) or '0') > 0 then
    redis.call('HINCRBY', K.open, rep, -1)
  end
  redis.call('HSET', lead_key, 'state', 'CLOSED', 'closed_at', NOW, 'close_reason', reason)
  count_state('ASSIGNED', 'CLOSED')
  retain(lead_id)
  if disposition ~= '' then
    redis.call('HSET', lead_key, 'disposition', disposition, 'reason_code', reason_code)
  end
  redis.call('ZREM', K.timers, 'sla|' .. lead_id, 'warn|' .. lead_id)
  add_history(lead_key, disposition ~= '' and 'dispositioned' or 'released', rep,
    disposition ~= '' and (disposition .. (reason_code ~= '' and (' ' .. reason_code) or ''))
      or (string.gsub(reason, '%c', ' '))) -- one line: a line break must not forge entries
  local held = sticky_key ~= lead_key and redis.call('GET', sticky_key)
  if held and select(3, string.match(held, '^([^|]*)|([^|]*)|(.*)|(%d+)$')) == lead_id then
    redis.call('DEL', sticky_key)
  end
  for i, strategy in ipairs(A.ranked or {}) do
    local rank = KEYS[first_rank_key + i - 1]
    if redis.call('ZSCORE', rank, rep) then
      redis.call('ZADD', rank, rank_score(strategy, rep), rep)
    end
  end
  emit(disposition ~= '' and 'dispositioned' or 'released', lead_id, rep, '', disposition ~= '' and disposition or reason)
elseif state == 'QUEUED' and disposition == '' then
  if pool_id ~= A.pool or queue_key == lead_key then
    return { C.MOVED, state }
  end
  redis.call('ZREM', queue_key, lead_id)
  if redis.call('ZCARD', queue_key) == 0 then
    redis.call('SREM', K.queued_pools, pool_id)
  end
  redis.call('ZREM', K.timers, 'escalate|' .. lead_id, 'expire|' .. lead_id)
  redis.call('HSET', lead_key, 'state', 'CLOSED', 'closed_at', NOW, 'close_reason', reason)
  count_state('QUEUED', 'CLOSED')
  retain(lead_id)
  local why = (string.gsub(reason, '%c', ' '))
  add_history(lead_key, 'cancelled', '', why)
  emit('released', lead_id, '', pool_id, why)
elseif state ~= 'CLOSED' then
  return { C.WRONG_STATE, state }
end
local reply = { C.OK }
append_all(reply, redis.call('HGETALL', lead_key))
return reply
