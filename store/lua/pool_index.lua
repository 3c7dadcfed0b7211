-- pool_index: build or repair the eligible-member index of pools
-- (lib_routing.lua).
--   build   index the pools that have none yet (written by a version from
--           before the index): once each
--   repair  also file every member of every pool by its presence now. An
--           AVAILABLE rep can only be missing from rank when its presence
--           was set by something that does not keep the index: a replica
--           of an older version during a rolling upgrade, or a hand edit.
--
-- KEYS[1..14]  the workspace keys (lib_routing.lua)
-- KEYS[15+5i..19+5i]  pool i (from 0): pool, rank, owed, queue, away
--
-- ARGV[1]  config id the caller holds (the pools are in that config)
-- ARGV[2]  now, unix ms
-- ARGV[3]  mode: build or repair
-- ARGV[4+i] pool i's id
--
-- Returns:
--   {'STALE'}                  config id is not current
--   {'OK', built, moved}       pools indexed now; members moved by a repair

local mode = ARGV[3]
if redis.call('HGET', K.config, 'id') ~= CONFIG_ID then
  return { 'STALE' }
end
local built, moved = 0, 0
for i = 4, #ARGV do
  local pool = pool_at(ARGV[i], 15 + TARGET_KEYS * (i - 4))
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
          if available and set == pool.away then
            index_return(pool, st, members[j])
            moved = moved + 1
          elseif not available and set == pool.rank then
            index_leave(pool, st, members[j])
            moved = moved + 1
          end
        end
      end
    end
  end
end
return { 'OK', built, moved }
