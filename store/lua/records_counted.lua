-- records_counted: finish a workspace's one-time retention backfill
-- (store/retention.go): the record count grows to the records found, and
-- the config hash is marked so the backfill does not run again.
--
-- KEYS[1]  config  HASH  stored (the record count), retention (the mark)
--
-- A (store/contract.go countedArgs): found, the records the scan saw
--
-- Returns:
--   {OK, stored}  the count now

local n = tonumber(redis.call('HGET', KEYS[1], 'stored') or '0')
if n < A.found then
  n = A.found
  redis.call('HSET', KEYS[1], 'stored', n)
end
redis.call('HSET', KEYS[1], 'retention', '1')
return { C.OK, n }
