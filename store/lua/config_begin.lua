-- config_begin: start a config apply (store/apply.go): check it is based on
-- the current config and set the config's id to "applying:<nonce>" until
-- config_commit, so that nothing routes on a half-applied config (every
-- routing script checks the id it was given). The plan and the new body
-- were written before, as plain commands: no script copies them.
--
-- KEYS[1]  config  HASH  version, id, applied_at; while applying also
--                        prev_id, next (the step due), steps, lease (unix
--                        ms until which the applier holds the apply)
-- KEYS[2]  plan    LIST  the apply's steps (config_chunk.lua), expiring
-- KEYS[3]  body    STRING the new config, expiring
-- KEYS[4..] the queue ZSET of each pool the new config removes
--
-- A (store/contract.go beginArgs):
--   base   base config id: apply only if this is current ('': none yet)
--   nonce  the apply's nonce
--   lease  the applier's lease: until when it holds the apply, unix ms by
--          the wall clock (every replica judges it by its own)
--
-- The plan and body lose their expiry here: an apply once begun is carried
-- on to its commit, by another replica should the applier stop. A refused
-- apply deletes them.
--
-- Returns:
--   {CONFLICT, current id}  (an apply under way has id "applying:...")
--   {QUEUED_POOL, i}        removed pool i (from 0) still has queued leads
--   {OK, id}                the apply's id, "applying:<nonce>"

local config, plan, body = KEYS[1], KEYS[2], KEYS[3]
local base, nonce, lease = A.base, A.nonce, A.lease

local current = redis.call('HGET', config, 'id') or ''
if current ~= base then
  redis.call('DEL', plan, body)
  return { C.CONFLICT, current }
end
for i = 4, #KEYS do
  if redis.call('ZCARD', KEYS[i]) > 0 then
    redis.call('DEL', plan, body)
    return { C.QUEUED_POOL, i - 4 }
  end
end
redis.call('PERSIST', plan)
redis.call('PERSIST', body)
local id = 'applying:' .. nonce
redis.call('HSET', config, 'id', id, 'prev_id', current, 'next', 0, 'steps', redis.call('LLEN', plan), 'lease', lease)
return { C.OK, id }
