-- sink_status: how much of the stream a sink's group has not finished:
-- the events handed out and not acknowledged (its pending entries), and
-- those after its read cursor not handed out yet, counted up to A.cap.
--
-- KEYS[1]  events  STREAM
-- KEYS[2]  state   HASH    read
--
-- A (store/contract.go sinkStatusArgs): group, cap
--
-- Returns {OK, pending, oldest pending id, unread (at most cap), oldest
-- unread id ('' for none), started (0: no group yet)}.

local events, state = KEYS[1], KEYS[2]
local p = redis.pcall('XPENDING', events, A.group)
if type(p) == 'table' and p.err then return { C.OK, 0, '', 0, '', 0 } end
local read = redis.call('HGET', state, 'read') or '0-0'
local ms, seq = string.match(read, '^(%d+)-(%d+)$')
local unread = redis.call('XRANGE', events, ms .. '-' .. (tonumber(seq) + 1), '+', 'COUNT', A.cap)
local oldest_unread = ''
if #unread > 0 then oldest_unread = unread[1][1] end
return { C.OK, tonumber(p[1]), p[2] or '', #unread, oldest_unread, 1 }
