-- pool_index: build or repair the eligible-member index of pools
-- (lib_index.lua).
--   build   index the pools that have none yet (written by a version from
--           before the index): once each
--   repair  also file every member of every pool by its presence and
--           shift now. An AVAILABLE rep can only be missing from rank when
--           its presence was set by something that does not keep the
--           index: a replica of an older version during a rolling upgrade,
--           or a hand edit.
--
-- KEYS[1..14]  the workspace keys (lib_workspace.lua)
-- KEYS[15+5i..19+5i]  pool i (from 0): pool, rank, owed, queue, away
--
-- A (store/contract.go indexArgs): cfg (the pools are in that config), now,
-- mode (build or repair), pools (their ids)
--
-- Returns:
--   {STALE}                  config id is not current
--   {OK, built, moved}       pools indexed now; members moved by a repair

local mode = A.mode
if not current() then
  return { C.STALE }
end
local built, moved = 0, 0
for i, id in ipairs(A.pools or {}) do
  local pool = pool_at(id, 15 + TARGET_KEYS * (i - 1))
  local st = pool_state(pool)
  if st.ix ~= '1' and st.exists then
    build_index(pool, st)
    built = built + 1
  elseif mode == 'repair' then
    for _, set in ipairs({ pool.rank, pool.away }) do
      local members = redis.call('ZRANGE', set, 0, -1)
      if #members > 0 then
        local status = redis.call('HMGET', K.presence, unpack(members))
        for j = 1, #members do
          local available = status[j] == 'AVAILABLE'
          local off = available and off_shift(members[j])
          if set == pool.away and available and not off then
            moved = moved + index_return(pool, st, members[j])
          elseif set == pool.rank and off then
            moved = moved + index_off(pool, st, members[j])
          elseif set == pool.rank and not available then
            moved = moved + index_leave(pool, st, members[j])
          end
        end
      end
    end
  end
end
return { C.OK, built, moved }
