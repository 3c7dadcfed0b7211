-- queue_drain: assign leads queued on one pool, oldest first, while the pool
-- has an eligible member.
--
-- KEYS[1]  config         HASH  (version)
-- KEYS[2]  pool           HASH
-- KEYS[3]  queue          ZSET  lead id -> arrival sequence
-- KEYS[4]  presence       HASH
-- KEYS[5]  assigned       HASH
-- KEYS[6]  last_assigned  HASH
-- KEYS[7+i] lead HASH of the i-th lead id below (i from 0)
--
-- ARGV[1]  config version the caller holds
-- ARGV[2]  now, unix ms
-- ARGV[3]  pool id
-- ARGV[4+i] lead ids, oldest first (the head of the queue as the caller read it)
--
-- Returns:
--   {'STALE'}                         config version is not current
--   {'OK', blocked, lead id, ...}     the leads assigned, in order; blocked
--                                     '1' when the pool ran out of eligible
--                                     members. Leads no longer in the queue
--                                     (drained elsewhere) are skipped.

local config_key = KEYS[1]
local pool_key = KEYS[2]
local queue_key = KEYS[3]
local presence_key = KEYS[4]
local assigned_key = KEYS[5]
local last_assigned_key = KEYS[6]
local first_lead_key = 7

local version = ARGV[1]
local now = ARGV[2]
local pool_id = ARGV[3]
local first_lead_arg = 4

if redis.call('HGET', config_key, 'version') ~= version then
  return { 'STALE' }
end

local reply = { 'OK', '0' }
for i = 0, #ARGV - first_lead_arg do
  local lead_id = ARGV[first_lead_arg + i]
  local lead_key = KEYS[first_lead_key + i]
  if redis.call('ZSCORE', queue_key, lead_id) then
    local idx, rep, lines = pick_round_robin(pool_key, presence_key, pool_id)
    if not rep then
      reply[2] = '1'
      return reply
    end
    commit_pick(pool_key, assigned_key, last_assigned_key, idx, rep, now)
    redis.call('ZREM', queue_key, lead_id)
    table.insert(lines, 1, 'D\t' .. redis.call('HGET', lead_key, 'decided_at'))
    redis.call('HSET', lead_key,
      'state', 'ASSIGNED', 'rep', rep, 'pool', pool_id, 'reason', '',
      'decided_at', now, 'picks', table.concat(lines, '\n'))
    reply[#reply + 1] = lead_id
  end
end
return reply
