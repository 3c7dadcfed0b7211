-- people_backfill: give records written before person hashes existed their
-- person hash and person index entry (store/people.go BackfillPeople), and
-- drop the address field those versions kept. A record that went meanwhile,
-- or that has its person hash already, is left alone.
--
-- KEYS[1]      people  ZSET  the person index (lead_decide.lua)
-- KEYS[1+i]    lead i's record HASH
--
-- A (store/contract.go backfillArgs): leads, the lead ids, and persons,
-- their person hashes, in KEYS order
--
-- Returns:
--   {OK, converted}

local converted = 0
for i, lead_id in ipairs(A.leads) do
  local key = KEYS[1 + i]
  if redis.call('EXISTS', key) == 1 and not redis.call('HGET', key, 'person') then
    local person = A.persons[i]
    redis.call('HSET', key, 'person', person)
    redis.call('HDEL', key, 'email')
    redis.call('ZADD', KEYS[1], 0, person .. '|' .. lead_id)
    converted = converted + 1
  end
end
return { C.OK, converted }
