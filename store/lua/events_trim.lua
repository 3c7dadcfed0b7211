-- events_trim: apply retention to a workspace's event history: remove every
-- event up to and including last_removed, and remember that id, so that a
-- client resuming from an older position is told its history is gone.
--
-- KEYS[1]  events   STREAM
-- KEYS[2]  trimmed  STRING  id of the newest removed event
--
-- ARGV[1]  last_removed: the newest id to remove ("<ms>-<seq>")
--
-- Returns the number of events removed.

local events = KEYS[1]
local trimmed = KEYS[2]
local last_removed = ARGV[1]

local ms, seq = string.match(last_removed, '^(%d+)-(%d+)$')
local removed = redis.call('XTRIM', events, 'MINID', ms .. '-' .. (tonumber(seq) + 1))
local cur = redis.call('GET', trimmed)
local cms, cseq = string.match(cur or '0-0', '^(%d+)-(%d+)$')
if tonumber(ms) > tonumber(cms) or (tonumber(ms) == tonumber(cms) and tonumber(seq) > tonumber(cseq)) then
  redis.call('SET', trimmed, last_removed)
end
return removed
