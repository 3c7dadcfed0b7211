-- rep_shift: file reps by their calendars (working hours and days out of
-- office) in the eligible-member index of their pools (lib_index.lua). The
-- engine computes, in Go, where each rep stands in its calendar at now and
-- sends the reps whose standing changed (engine/shifts.go); every replica
-- sends each change, and the first to arrive files it.
--
-- KEYS[1..14]  the workspace keys (lib_workspace.lua)
-- KEYS[15+5i..19+5i]  pool i (from 0): pool, rank, owed, queue, away
--
-- A (store/contract.go shiftArgs): cfg (the reps and pools are in that
-- config), now, and
--   pools  the pools' ids, in KEYS order
--   reps   [rep, standing, [pool numbers from 1]]: standing is on (inside
--          the calendar), hours (outside working hours) or ooo (out of
--          office)
--
-- A rep outside its calendar is kept as repstate "shift:<rep>" =
-- "<now>|<standing>" (the field is removed when it is back). Filing is idempotent and the last filing wins: each
-- replica files a change once its own clock has passed it, so a replica
-- whose clock runs behind files the same change moments later, never an
-- older one (see engine/shifts.go).
--
-- Returns:
--   {STALE}                 config id is not current
--   {OK, changed, moved}    reps whose standing changed; pool ranks they
--                           entered or left

if not current() then
  return { C.STALE }
end
local pools = {}
for i, id in ipairs(A.pools or {}) do pools[i] = pool_at(id, COMMON_KEYS + 1 + TARGET_KEYS * (i - 1)) end
local changed, moved = 0, 0
for _, r in ipairs(A.reps or {}) do
  local rep, standing = r[1], r[2]
  local field = 'shift:' .. rep
  local kept = redis.call('HGET', K.repstate, field)
  local was = kept and string.match(kept, '|(%a+)$') or 'on'
  if was ~= standing then
    if standing == 'on' then
      redis.call('HDEL', K.repstate, field)
    else
      redis.call('HSET', K.repstate, field, NOW .. '|' .. standing)
    end
    changed = changed + 1
    local list = {}
    for _, i in ipairs(r[3] or {}) do list[#list + 1] = pools[i] end
    moved = moved + index_presence(list, rep)
  end
end
return { C.OK, changed, moved }
