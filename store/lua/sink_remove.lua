-- sink_remove: a sink left the config: destroy its consumer group (so it
-- no longer holds back the stream's retention) and delete its keys.
--
-- KEYS[1]  events  STREAM
-- KEYS[2..5]  heads, state, dead, replay
--
-- A (store/contract.go sinkRemoveArgs): group
--
-- Returns {OK}.

redis.pcall('XGROUP', 'DESTROY', KEYS[1], A.group)
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4], KEYS[5])
return { C.OK }
