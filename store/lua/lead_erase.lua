-- lead_erase: erase a lead in whatever state it is, for a person's right
-- to be forgotten (AdminService.EraseLead and EraseContact): everything the
-- lead holds is given back as the lifecycle would (an assignment's open
-- count and its holder's least-loaded scores, an offer's counts, a queue
-- place), its timers stop, a sticky binding to it goes, and its record is
-- deleted with its person index entry and its place in the record count.
-- One `erased` event names the lead id and no personal data.
--
-- KEYS[1..14]  the workspace keys (lib_workspace.lua)
-- KEYS[15]     lead    HASH
-- KEYS[16]     sticky  STRING the person's sticky binding (the lead key
--                      again when there is no email)
-- KEYS[17]     people  ZSET   the person index (lead_decide.lua)
-- KEYS[18]     recent  ZSET   the recent index (lead_decide.lua)
-- KEYS[19]     queue   ZSET   the queue of A.pool when A.state is QUEUED
--                      (else the lead key again)
-- KEYS[20+i]   rank ZSET of each ranked pool of A.rep
--
-- A (store/contract.go eraseArgs): cfg, now, and
--   lead                the lead's id
--   state, rep, pool    the record's as the caller read them, which chose
--                       the keys above
--   person              the person erased (EraseContact; '' for one lead):
--                       the record must be theirs, and their sticky
--                       binding goes whatever lead it names
--   ranked              strategy of each rank key
--
-- Returns:
--   {STALE}               config id is not current (the ranked pools may
--                         have changed)
--   {NOT_FOUND}           no such lead, or (A.person) not one of the
--                         person's: its index entry was stale and is gone
--   {MOVED, state}        the record changed since the caller read it:
--                         read it again and call again
--   {OK, state}           erased; the state it was in

local lead_key, sticky_key, people_key, recent_key, queue_key = KEYS[15], KEYS[16], KEYS[17], KEYS[18], KEYS[19]
local first_rank_key = 20
local lead_id = A.lead

if not current() then
  return { C.STALE }
end
local state, rep, pool_id, person, counted = unpack(redis.call('HMGET', lead_key, 'state', 'rep', 'pool', 'person',
  'counted'))
if A.person ~= '' and person ~= A.person then
  -- The id was erased and maybe routed again, for someone else: this
  -- person's entry for it is stale.
  redis.call('ZREM', people_key, A.person .. '|' .. lead_id)
  return { C.NOT_FOUND }
end
if not state then
  return { C.NOT_FOUND }
end
if state ~= A.state or (rep or '') ~= A.rep or (pool_id or '') ~= A.pool then
  return { C.MOVED, state }
end

if state == 'ASSIGNED' then
  if tonumber(redis.call('HGET', K.open, rep) or '0') > 0 then
    redis.call('HINCRBY', K.open, rep, -1)
  end
elseif state == 'OFFERED' then
  uncommit_rep(rep, counted) -- the rep never had the lead
elseif state == 'QUEUED' then
  redis.call('ZREM', queue_key, lead_id)
  if redis.call('ZCARD', queue_key) == 0 then
    redis.call('SREM', K.queued_pools, pool_id)
  end
end
if state == 'ASSIGNED' or state == 'OFFERED' then
  -- The rep's open count fell: so must its scores (pick_ranked).
  for i, strategy in ipairs(A.ranked or {}) do
    local rank = KEYS[first_rank_key + i - 1]
    if redis.call('ZSCORE', rank, rep) then
      redis.call('ZADD', rank, rank_score(strategy, rep), rep)
    end
  end
end
redis.call('ZREM', K.timers, 'offer|' .. lead_id, 'sla|' .. lead_id, 'warn|' .. lead_id, 'escalate|' .. lead_id,
  'expire|' .. lead_id, 'retain|' .. lead_id)
local held = sticky_key ~= lead_key and redis.call('GET', sticky_key)
if held and (A.person ~= '' or select(3, string.match(held, '^([^|]*)|([^|]*)|(.*)|(%d+)$')) == lead_id) then
  redis.call('DEL', sticky_key)
end
redis.call('DEL', lead_key)
redis.call('ZREM', recent_key, lead_id)
count_state(state, nil)
if person and person ~= '' then
  redis.call('ZREM', people_key, person .. '|' .. lead_id)
end
if tonumber(redis.call('HGET', K.config, 'stored') or '0') > 0 then
  redis.call('HINCRBY', K.config, 'stored', -1)
end
emit('erased', lead_id, rep or '', pool_id or '', '')
return { C.OK, state }
