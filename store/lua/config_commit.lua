-- config_commit: finish a config apply whose steps are all carried out
-- (store/apply.go): the new config and its id, "<version>:<nonce>", take
-- effect at once for every caller.
--
-- KEYS[1]  config  HASH (config_begin.lua)
-- KEYS[2]  plan    LIST
-- KEYS[3]  body    STRING  the new config, renamed to KEYS[4]
-- KEYS[4]  config_body STRING
-- KEYS[5]  workspaces SET, on one server only (store/keys.go workspacesKey;
--          on a cluster it is in another slot, and the sweeper finds the
--          workspace by its config instead)
--
-- A (store/contract.go commitArgs): cfg ("applying:<nonce>"), now (unix ms),
-- ws (the workspace, with KEYS[5]), person_key (a new secret for person
-- hashes, engine.Person: kept only by the workspace's first commit)
--
-- Returns:
--   {STALE, id}           not applying under this id (id: the config's now)
--   {INCOMPLETE, next}    steps remain
--   {OK, version, id, person_key}

local config, plan, body, config_body = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local applying, now = A.cfg, A.now

local id = redis.call('HGET', config, 'id') or ''
if id ~= applying then
  return { C.STALE, id }
end
local v = redis.call('HMGET', config, 'next', 'steps', 'version')
if tonumber(v[1]) ~= tonumber(v[2]) then
  return { C.INCOMPLETE, v[1] }
end
local version = tostring(tonumber(v[3] or '0') + 1)
local new_id = version .. ':' .. string.sub(applying, #'applying:' + 1)
redis.call('RENAME', body, config_body)
redis.call('HSET', config, 'version', version, 'id', new_id, 'applied_at', now)
redis.call('HSETNX', config, 'person_key', A.person_key)
if not v[3] then
  -- A new workspace has no records from before retain timers and person
  -- hashes: nothing for the one-time backfills (store/retention.go,
  -- store/people.go) to convert.
  redis.call('HSET', config, 'retention', '1', 'people', '1')
end
-- 'body' is where configs applied before config_body kept theirs.
redis.call('HDEL', config, 'prev_id', 'next', 'steps', 'lease', 'body')
redis.call('DEL', plan)
if KEYS[5] then
  redis.call('SADD', KEYS[5], A.ws)
end
return { C.OK, version, new_id, redis.call('HGET', config, 'person_key') }
