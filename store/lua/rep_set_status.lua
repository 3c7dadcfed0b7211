-- rep_set_status: set a rep's declared presence, and file the rep in the
-- eligible-member index of each of its pools (lib_index.lua).
--
-- KEYS[1..14]  the workspace keys (lib_workspace.lua)
-- KEYS[15+5i..19+5i]  pool i of the rep (from 0): pool, rank, owed, queue, away
--
-- A (store/contract.go repArgs): cfg (the rep and its pools are in that
-- config), now, and
--   rep     the rep's id
--   status  AVAILABLE, AWAY or OFFLINE
--   pools   the rep's pools' ids
--
-- Returns:
--   {STALE}                 config id is not current
--   {OK, previous status}   ('' when the rep had none)

local rep = A.rep
local status = A.status
local pools = {}
for i, id in ipairs(A.pools or {}) do pools[i] = pool_at(id, 15 + TARGET_KEYS * (i - 1)) end

if not current() then
  return { C.STALE }
end
local previous = redis.call('HGET', K.presence, rep) or ''
if previous ~= status then
  redis.call('HSET', K.presence, rep, status)
  redis.call('HSET', K.status_changed, rep, NOW)
  redis.call('XADD', K.events, '*', 'kind', 'rep_status_changed', 'lead', '', 'rep', rep, 'pool', '',
    'at', NOW, 'detail', note('status', previous, status))
end
index_presence(pools, rep)
return { C.OK, previous }
