-- config_apply: replace a workspace's routing config in one step, keeping
-- rotation positions and presence.
--
-- KEYS[1]  config          HASH  version, body, applied_at
-- KEYS[2]  presence        HASH  rep id -> status
-- KEYS[3]  status_changed  HASH  rep id -> unix ms
-- KEYS[4..3+P]      pool HASH of each pool of the new config, in ARGV order
-- KEYS[4+P..3+P+R]  pool HASH of each pool the new config removes
--
-- ARGV[1]  base version: apply only if this is current ('0': no config yet)
-- ARGV[2]  the new config, JSON
-- ARGV[3]  now, unix ms
-- ARGV[4]  P, the number of pools in the new config
-- ARGV[5]  R, the number of removed pools
-- then, for each of the P pools: member count m, then m rep ids in order
-- then N, the number of reps, and N pairs: rep id, initial status
-- then M, the number of removed reps, and M rep ids
--
-- A pool whose member list is unchanged keeps its cursor. A changed pool
-- continues after the member picked last if that rep is still a member,
-- else starts from the top. A rep with no presence gets its initial status;
-- removed reps lose theirs.
--
-- Returns:
--   {'CONFLICT', current version}
--   {'OK', new version}

local config_key = KEYS[1]
local presence_key = KEYS[2]
local status_changed_key = KEYS[3]
local first_pool_key = 4

local base = ARGV[1]
local body = ARGV[2]
local now = ARGV[3]
local pools = tonumber(ARGV[4])
local removed_pools = tonumber(ARGV[5])

local current = redis.call('HGET', config_key, 'version') or '0'
if current ~= base then
  return { 'CONFLICT', current }
end

local a = 6
for p = 0, pools - 1 do
  local pool_key = KEYS[first_pool_key + p]
  local m = tonumber(ARGV[a])
  local members = {}
  for j = 1, m do
    members[j] = ARGV[a + j]
  end
  a = a + m + 1

  local old_n = tonumber(redis.call('HGET', pool_key, 'n') or '0')
  local cursor = tonumber(redis.call('HGET', pool_key, 'cursor') or '-1')
  local same = old_n == m
  if same then
    for j = 1, m do
      if redis.call('HGET', pool_key, 'm' .. (j - 1)) ~= members[j] then
        same = false
        break
      end
    end
  end
  if not same then
    local last = false
    if cursor >= 0 then
      last = redis.call('HGET', pool_key, 'm' .. cursor)
    end
    cursor = -1
    for j = 1, m do
      if members[j] == last then
        cursor = j - 1
      end
    end
    redis.call('DEL', pool_key)
    local fields = { 'n', m, 'cursor', cursor }
    for j = 1, m do
      fields[#fields + 1] = 'm' .. (j - 1)
      fields[#fields + 1] = members[j]
    end
    redis.call('HSET', pool_key, unpack(fields))
  end
end

for p = 0, removed_pools - 1 do
  redis.call('DEL', KEYS[first_pool_key + pools + p])
end

local reps = tonumber(ARGV[a])
for j = 1, reps do
  local rep = ARGV[a + 2 * j - 1]
  if redis.call('HSETNX', presence_key, rep, ARGV[a + 2 * j]) == 1 then
    redis.call('HSET', status_changed_key, rep, now)
  end
end
a = a + 2 * reps + 1

local removed_reps = tonumber(ARGV[a])
for j = 1, removed_reps do
  redis.call('HDEL', presence_key, ARGV[a + j])
  redis.call('HDEL', status_changed_key, ARGV[a + j])
end

local version = tostring(tonumber(base) + 1)
redis.call('HSET', config_key, 'version', version, 'body', body, 'applied_at', now)
return { 'OK', version }
