-- sink_touch: a consumer still works on these events (a delivery being
-- retried with back-off): reset their idle time, so that sink_claim.lua
-- does not take them over, as long as they are still this consumer's.
--
-- KEYS[1]  events  STREAM
--
-- A (store/contract.go sinkTouchArgs): group, consumer, ids
--
-- Returns {OK, n}: how many were still this consumer's.

local events = KEYS[1]
local n = 0
for _, id in ipairs(A.ids) do
  local p = redis.pcall('XPENDING', events, A.group, id, id, 1)
  if type(p) == 'table' and not p.err and #p > 0 and p[1][2] == A.consumer then
    redis.call('XCLAIM', events, A.group, A.consumer, 0, id, 'JUSTID')
    n = n + 1
  end
end
return { C.OK, n }
