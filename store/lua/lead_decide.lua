-- lead_decide: the whole routing decision for one lead, in one step:
-- idempotency check, eligibility, round-robin pick, cursor, assignment
-- record, queueing.
--
-- KEYS[1]  config         HASH  (version)
-- KEYS[2]  lead           HASH  the record of this lead (see store/record.go)
-- KEYS[3]  presence       HASH  rep id -> status
-- KEYS[4]  assigned       HASH  rep id -> count
-- KEYS[5]  last_assigned  HASH  rep id -> unix ms
-- KEYS[6]  seq            STRING arrival counter for queues
-- KEYS[7+2i], KEYS[8+2i]  pool HASH and queue ZSET of target i (i from 0)
--
-- ARGV[1]  config version the rule was matched under
-- ARGV[2]  now, unix ms
-- ARGV[3]  '1' for a dry run (preview): decide, write nothing
-- ARGV[4]  the lead, JSON
-- ARGV[5]  received at, unix ms
-- ARGV[6]  rule id ('' when no rule matched)
-- ARGV[7]  rule trace, JSON
-- ARGV[8]  reason recorded when nobody is eligible in any target
-- ARGV[9]  reason recorded when no rule matched
-- ARGV[10] lead id (the queue member)
-- ARGV[11+i] pool id of target i
--
-- Returns:
--   {'STALE'}                           config version is not current
--   {'DUP', '0', field, value, ...}     lead already recorded: the record
--   {'OK', backlog, field, value, ...}  the new record (written unless dry
--                                       run); backlog '1' when the lead was
--                                       queued behind earlier leads on a pool
--                                       that has an eligible rep

local config_key = KEYS[1]
local lead_key = KEYS[2]
local presence_key = KEYS[3]
local assigned_key = KEYS[4]
local last_assigned_key = KEYS[5]
local seq_key = KEYS[6]

local version = ARGV[1]
local now = ARGV[2]
local dry_run = ARGV[3] == '1'
local lead_json = ARGV[4]
local received_at = ARGV[5]
local rule_id = ARGV[6]
local rules_trace = ARGV[7]
local queued_reason = ARGV[8]
local unroutable_reason = ARGV[9]
local lead_id = ARGV[10]
local first_target_arg = 11

if redis.call('HGET', config_key, 'version') ~= version then
  return { 'STALE' }
end

local existing = redis.call('HGETALL', lead_key)
if #existing > 0 then
  local reply = { 'DUP', '0' }
  append_all(reply, existing)
  return reply
end

local record = {
  'lead', lead_json, 'rule', rule_id, 'rules', rules_trace,
  'received_at', received_at, 'decided_at', now, 'cfgv', version,
}
local picks = {}
local state, rep, pool, reason = 'UNROUTABLE', '', '', unroutable_reason
local queue_key, backlog = nil, '0'

local targets = #ARGV - first_target_arg + 1
for t = 0, targets - 1 do
  local pool_id = ARGV[first_target_arg + t]
  local pool_key = KEYS[7 + 2 * t]
  local target_queue = KEYS[8 + 2 * t]
  local idx, chosen, lines = pick_round_robin(pool_key, presence_key, pool_id)
  append_all(picks, lines)
  if chosen then
    local waiting = redis.call('ZCARD', target_queue)
    if waiting > 0 then
      -- Earlier leads wait on this pool: keep arrival order, queue behind.
      picks[#picks + 1] = 'B\t' .. waiting
      state, pool, queue_key, backlog = 'QUEUED', pool_id, target_queue, '1'
      reason = 'waiting behind ' .. waiting .. ' earlier lead(s) queued on ' .. pool_id
    else
      state, rep, pool, reason = 'ASSIGNED', chosen, pool_id, ''
      if not dry_run then
        commit_pick(pool_key, assigned_key, last_assigned_key, idx, chosen, now)
      end
    end
    break
  end
end
if state == 'UNROUTABLE' and targets > 0 then
  state, pool, reason = 'QUEUED', ARGV[first_target_arg], queued_reason
  queue_key = KEYS[8]
end

append_all(record, {
  'state', state, 'rep', rep, 'pool', pool, 'reason', reason,
  'picks', table.concat(picks, '\n'),
})
if not dry_run then
  if queue_key then
    redis.call('ZADD', queue_key, redis.call('INCR', seq_key), lead_id)
  end
  redis.call('HSET', lead_key, unpack(record))
end
local reply = { 'OK', backlog }
append_all(reply, record)
return reply
