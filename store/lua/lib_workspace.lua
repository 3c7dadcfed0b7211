-- lib_workspace: what every routing script shares (store/scripts.go puts
-- the modules a script needs in front of it, after contract.lua). Nothing
-- here builds a key name.
--
-- Every routing script starts its KEYS with the same fourteen workspace
-- keys, bound here to K:
--   KEYS[1]  config         HASH  version, id, applied_at (config_body holds the body)
--   KEYS[2]  presence       HASH  rep -> AVAILABLE / AWAY / OFFLINE
--   KEYS[3]  open           HASH  rep -> open assignments
--   KEYS[4]  daily          HASH  rep, or pool/rep -> "day:count"
--   KEYS[5]  profile        HASH  rep -> "max_open|daily_cap|zone|week|ooo"
--   KEYS[6]  zones          HASH  zone -> "from_ms:offset_s,..." (written for
--                                 replicas of older versions; no script reads
--                                 it: the engine sends local times, A.zones)
--   KEYS[7]  assigned       HASH  rep -> assignments ever
--   KEYS[8]  last_assigned  HASH  rep -> unix ms
--   KEYS[9]  seq            STRING arrival counter
--   KEYS[10] timers         ZSET  "escalate|lead", "expire|lead" -> due ms
--   KEYS[11] events         STREAM
--   KEYS[12] queued_pools   SET   pools with queued leads
--   KEYS[13] repstate       HASH  "miss:<rep>" -> consecutive missed offers,
--                                 "cool:<pool>/<rep>" -> cooldown end ms,
--                                 "shift:<rep>" -> "ms|hours" or "ms|ooo"
--                                 while outside its calendar (rep_shift.lua)
--   KEYS[14] status_changed HASH  rep -> unix ms of the last presence change
-- and its request (A, contract.lua) with:
--   cfg  the config id the caller holds (version:nonce; see store/apply.go)
--   now  unix ms, the engine's clock
--   dry  true for a preview: decide, write nothing
local K = {
  config = KEYS[1], presence = KEYS[2], open = KEYS[3], daily = KEYS[4], profile = KEYS[5], zones = KEYS[6],
  assigned = KEYS[7], last_assigned = KEYS[8], seq = KEYS[9], timers = KEYS[10], events = KEYS[11],
  queued_pools = KEYS[12], repstate = KEYS[13], status_changed = KEYS[14],
}
local COMMON_KEYS = 14
local CONFIG_ID = A.cfg or ''
local NOW = A.now
local DRY = A.dry == true

local DAY_MS = 86400000

-- retain sets the timer that removes a lead's record A.retain ms after it
-- reached CLOSED or UNROUTABLE (settings.retain_closed; the engine fires it
-- with lead_remove.lua).
local function retain(lead_id)
  if (A.retain or 0) > 0 then
    redis.call('ZADD', K.timers, NOW + A.retain, 'retain|' .. lead_id)
  end
end

-- count_state moves one record between the workspace's per-state record
-- counts, the config hash's "n:<STATE>" fields (from nil: a new record; to
-- nil: a removed one), read for leadrouter_stored_leads. Every script that
-- changes a record's state calls it in the same step.
local function count_state(from, to)
  if from == to then return end
  if from then
    local field = 'n:' .. from
    if tonumber(redis.call('HGET', K.config, field) or '0') > 0 then redis.call('HINCRBY', K.config, field, -1) end
  end
  if to then redis.call('HINCRBY', K.config, 'n:' .. to, 1) end
end

-- note is a sentence for a person (a reason, a history or event detail, a
-- trace label) as a code and its arguments: engine.RenderNote has the
-- codes and renders the text.
local function note(code, ...)
  local parts = { '\1' .. code }
  for _, v in ipairs({ ... }) do parts[#parts + 1] = tostring(v) end
  return table.concat(parts, '\31')
end

-- current is whether the config id the caller holds is the workspace's.
local function current()
  return redis.call('HGET', K.config, 'id') == CONFIG_ID
end

-- config_version is the version of the config the caller holds (its id
-- is "<version>:<nonce>"), recorded as placed_cfgv by a placement after
-- the decision (drains, escalations, reroutes, an operator's moves).
local function config_version()
  return string.match(CONFIG_ID, '^(%d+):') or ''
end

local function append_all(dst, src)
  for i = 1, #src do dst[#dst + 1] = src[i] end
end

-- history_line is one lifecycle event as the record's history keeps it.
local function history_line(kind, rep, detail)
  return NOW .. '\t' .. kind .. '\t' .. (rep or '') .. '\t' .. (detail or '') .. '\n'
end

-- A record's history keeps at most HISTORY_MAX entries: past it, the
-- oldest are dropped and counted in the record's history_folded field, so
-- a lead contacted thousands of times keeps a bounded record
-- (docs/design.md, "The record").
local HISTORY_MAX = 200

-- append_history appends lines (history_line's, concatenated) to a stored
-- record's history, folding the oldest past HISTORY_MAX.
local function append_history(lead_key, lines)
  local text = (redis.call('HGET', lead_key, 'history') or '') .. lines
  local _, n = string.gsub(text, '\n', '')
  if n > HISTORY_MAX then
    local at = 0
    for _ = 1, n - HISTORY_MAX do at = string.find(text, '\n', at + 1, true) end
    text = string.sub(text, at + 1)
    redis.call('HINCRBY', lead_key, 'history_folded', n - HISTORY_MAX)
  end
  redis.call('HSET', lead_key, 'history', text)
end

-- add_history appends lifecycle events (kind, rep, detail, ...) to a
-- stored record.
local function add_history(lead_key, ...)
  local lines, events = {}, { ... }
  for i = 1, #events, 3 do lines[#lines + 1] = history_line(events[i], events[i + 1], events[i + 2]) end
  append_history(lead_key, table.concat(lines))
end

-- FACTS are what this call did, for the caller's metrics: one per event
-- written, plus 'dequeued' when a queued lead leaves its queue. Each is
-- {kind, pool, ms}: ms is the duration the fact measures (accepted: offer to
-- accept; first_contact: submission to contact; dequeued: time queued), or
-- -1. with_facts appends them to the script's reply (see store/scripts.go).
local FACTS = {}

local function observe(kind, pool_id, ms)
  FACTS[#FACTS + 1] = { kind, pool_id or '', ms or -1 }
end

local function with_facts(reply)
  if type(reply) ~= 'table' or reply.err or reply.ok then return reply end
  for _, f in ipairs(FACTS) do
    reply[#reply + 1] = f[1]
    reply[#reply + 1] = f[2]
    reply[#reply + 1] = f[3]
  end
  reply[#reply + 1] = #FACTS
  return reply
end

-- emit appends an event to the workspace's event stream and records it as a
-- fact (ms: what the event measures, see FACTS).
local function emit(kind, lead_id, rep, pool_id, detail, ms)
  -- No trimming here: retention (events_trim.lua) records what it removes,
  -- so a client resuming from a removed position is told to resync.
  redis.call('XADD', K.events, '*',
    'kind', kind, 'lead', lead_id, 'rep', rep or '', 'pool', pool_id or '', 'at', NOW, 'detail', detail or '')
  observe(kind, pool_id, ms)
end
