package store

import (
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// Every key of a workspace starts with "<prefix>:{<workspace>}:". The braces
// make the workspace the Redis Cluster hash tag, so all keys of one
// workspace live in one slot and every script below is legal on a cluster.
// Workspace names never contain braces (engine.NormalizeWorkspace).
type keys struct{ base string }

func keysFor(prefix, ws string) keys { return keys{base: prefix + ":{" + ws + "}:"} }

// config is a HASH: version, id, applied_at (ms); the body is configBody.
func (k keys) config() string { return k.base + "config" }

// configBody is a STRING: the current config as JSON (engine.Config). A
// config applied before it existed keeps its body in config's body field.
func (k keys) configBody() string { return k.base + "config_body" }

// configHistory is a ZSET of the config versions kept, and configAt(v) a
// STRING, version v's body (store/apply.go RecordConfigVersion).
func (k keys) configHistory() string { return k.base + "config_history" }
func (k keys) configAt(version int64) string {
	return k.base + "config_at:" + strconv.FormatInt(version, 10)
}

// applyPlan is a LIST: the steps of config apply <nonce> (store/apply.go),
// gone once it is committed.
func (k keys) applyPlan(nonce string) string { return k.base + "apply_plan:" + nonce }

// applyBody is a STRING: the config apply <nonce> makes current, renamed to
// configBody by its commit.
func (k keys) applyBody(nonce string) string { return k.base + "apply_body:" + nonce }

// presence is a HASH: rep id -> declared status (AVAILABLE, AWAY, OFFLINE).
func (k keys) presence() string { return k.base + "presence" }

// statusChanged is a HASH: rep id -> unix ms of the last presence change.
func (k keys) statusChanged() string { return k.base + "status_changed" }

// open is a HASH: rep id -> assignments the rep holds now.
func (k keys) open() string { return k.base + "open" }

// daily is a HASH: rep id, or "<pool>/<rep>" for a pool membership ->
// "<local day number>:<assignments that day>".
func (k keys) daily() string { return k.base + "daily" }

// profile is a HASH: rep id -> "max_open|daily_cap|zone|week|ooo", the
// rep's limits and calendar as lib_eligibility.lua reads them.
func (k keys) profile() string { return k.base + "profile" }

// zones is a HASH: time zone -> "from_ms:offset_s,...", its UTC offsets.
func (k keys) zones() string { return k.base + "zones" }

// timers is a ZSET: "escalate|<lead>" or "expire|<lead>" -> due unix ms.
func (k keys) timers() string { return k.base + "timers" }

// timerClaims is a ZSET: "<timer member>@<due>" -> unix ms when a
// sweeper's claim on that timer expires (timers_claim.lua). Bounded by the
// timers claimed within one lease.
func (k keys) timerClaims() string { return k.base + "timer_claims" }

// timerFails is a HASH: timer member -> "<attempts>|<due>" of a timer whose
// firing failed and that waits to try again. At most one entry per timer;
// those of timers gone are pruned (timers_prune.lua).
func (k keys) timerFails() string { return k.base + "timer_fails" }

// timersParked is a ZSET: timer member -> due, of timers that failed too
// often to try again (timer_retry.lua); at most maxParked of them.
func (k keys) timersParked() string { return k.base + "timers_parked" }

// events is a STREAM of the workspace's routing events.
func (k keys) events() string { return k.base + "events" }

// eventsEpoch is a STRING: the random epoch of the events stream; created
// with the first reader, gone (and so changed) when Redis loses its data.
func (k keys) eventsEpoch() string { return k.base + "events_epoch" }

// eventsTrimmed is a STRING: the id of the newest event retention removed.
func (k keys) eventsTrimmed() string { return k.base + "events_trimmed" }

// connected is a ZSET: rep id -> unix ms of the last heartbeat of one of the
// rep's desktop streams (presence_follows_connection).
func (k keys) connected() string { return k.base + "connected" }

// queuedPools is a SET of pool ids whose queues are not empty.
func (k keys) queuedPools() string { return k.base + "queued_pools" }

// sticky is a STRING "rep|pool|lead|until_ms": the open assignment of a
// person (by person hash, engine.Person: no key names an address) and when
// its sticky window ends by the engine's clock; Redis expires the key a
// day after that.
func (k keys) sticky(person string) string { return k.base + "sticky:" + person }

// stickyOr is the person's sticky key, or fallback (an existing key of the
// workspace, never read) when the lead has no email.
func (k keys) stickyOr(person, fallback string) string {
	if person == "" {
		return fallback
	}
	return k.sticky(person)
}

// people is a ZSET, the person index: "<person>|<lead id>" at score 0 for
// every record of a lead with an email, so EraseContact finds a person's
// records by range (ZRANGEBYLEX). Bounded by the records: lead_remove and
// lead_erase drop a record's entry with the record.
func (k keys) people() string { return k.base + "people" }

// recent is a ZSET, the recent index: lead id -> received unix ms of the
// workspace's newest engine.RecentLeadsKept records (lead_decide.lua trims
// it as it adds; lead_remove and lead_erase drop a record's entry with the
// record). AdminService.SimulateConfig replays the leads it names.
func (k keys) recent() string { return k.base + "recent" }

// assigned is a HASH: rep id -> leads assigned since the rep joined.
func (k keys) assigned() string { return k.base + "assigned" }

// lastAssigned is a HASH: rep id -> unix ms of the rep's last assignment.
func (k keys) lastAssigned() string { return k.base + "last_assigned" }

// seq is a STRING counter giving queued leads their arrival order.
func (k keys) seq() string { return k.base + "seq" }

// pool is a HASH: n (member count), cursor (index of the member picked
// last, -1 for none), m<i> (rep id at rotation index i), last (rep picked
// last), strategy, policy, limit (catch-up), w:<rep> (weight), cap:<rep>
// (daily cap of the membership).
func (k keys) pool(id string) string { return k.base + "pool:" + id }

// rank is a ZSET, the eligible-member index of a pool: the members last
// seen AVAILABLE, scored by rotation position (round robin), pass
// (weighted round robin) or load / idle score (least loaded, longest
// idle); see lib_index.lua.
func (k keys) rank(poolID string) string { return k.base + "rank:" + poolID }

// away is a ZSET of a pool's members that are not AVAILABLE, scored as in
// rank (a weighted member's pass as it left; a ranked member's score then).
func (k keys) away(poolID string) string { return k.base + "away:" + poolID }

// owed is a ZSET: member -> turns owed after an absence (CATCH_UP pools).
func (k keys) owed(poolID string) string { return k.base + "owed:" + poolID }

// queue is a ZSET: lead id -> arrival sequence, of leads queued on a pool.
func (k keys) queue(poolID string) string { return k.base + "queue:" + poolID }

// queueOr is a pool's queue key, or fallback when there is no pool.
func (k keys) queueOr(poolID, fallback string) string {
	if poolID == "" {
		return fallback
	}
	return k.queue(poolID)
}

// lead is a HASH, the assignment record and idempotency key of one lead;
// fields are listed in record.go.
func (k keys) lead(id string) string { return k.base + "lead:" + id }

// workspacesKey is a SET of every workspace with a config, read by the
// timer sweeper. It is the one key outside any workspace's slot.
func workspacesKey(prefix string) string { return prefix + ":workspaces" }

// repState is a HASH: "miss:<rep>" -> consecutive offers the rep let time
// out, "cool:<pool>/<rep>" -> unix ms when the rep's reject cooldown ends.
func (k keys) repState() string { return k.base + "repstate" }

// common are the fourteen workspace keys every routing script starts with
// (lib_workspace.lua), in that order, in a new slice with room for the call's
// own keys after them.
func (k keys) common() []string {
	var names []string
	if v, ok := commonKeys.Load(k.base); ok {
		names = v.([]string)
	} else {
		names = []string{k.config(), k.presence(), k.open(), k.daily(), k.profile(),
			k.zones(), k.assigned(), k.lastAssigned(), k.seq(), k.timers(), k.events(), k.queuedPools(),
			k.repState(), k.statusChanged()}
		if commonKeysSize.Load() < maxCommonKeys {
			if _, loaded := commonKeys.LoadOrStore(k.base, names); !loaded {
				commonKeysSize.Add(1)
			}
		}
	}
	return append(make([]string, 0, len(names)+16), names...)
}

// maxCommonKeys bounds commonKeys: calls may name any valid workspace, so
// past this many the names are built per call instead of kept.
const maxCommonKeys = 10_000

// commonKeys holds the common key names of up to maxCommonKeys workspaces
// by key base: they never change, and building them was fourteen strings
// per script call.
var (
	commonKeys     sync.Map
	commonKeysSize atomic.Int64
)

// target appends the five keys of a target pool (pool, rank, owed, queue,
// away), lib_index.lua's TARGET_KEYS.
func (k keys) target(dst []string, poolID string) []string {
	return append(dst, k.pool(poolID), k.rank(poolID), k.owed(poolID), k.queue(poolID), k.away(poolID))
}

// targets appends the keys of each pool.
func (k keys) targets(dst []string, poolIDs []string) []string {
	for _, id := range poolIDs {
		dst = k.target(dst, id)
	}
	return dst
}

// hashSlot is the Redis Cluster slot of a key: CRC16 (XMODEM) of its hash
// tag, modulo 16384.
func hashSlot(key string) uint16 {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	var crc uint16
	for k := 0; k < len(key); k++ {
		crc ^= uint16(key[k]) << 8
		for b := 0; b < 8; b++ {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc % 16384
}

// sinkGroup is the consumer group of a sink on the events stream.
func sinkGroup(id string) string { return "sink:" + id }

// sinkHeads is a HASH: a sink's events handed out and not acknowledged,
// by ordering key (lib_sink.lua); bounded by the group's pending entries.
func (k keys) sinkHeads(id string) string { return k.base + "sink_heads:" + id }

// sinkState is a HASH: a sink's read cursor, last error, losses to
// retention and dropped dead letters.
func (k keys) sinkState(id string) string { return k.base + "sink_state:" + id }

// sinkDead is a LIST: a sink's dead letters (at most engine.MaxDeadLetters).
func (k keys) sinkDead(id string) string { return k.base + "sink_dead:" + id }

// sinkReplay is a ZSET: dead letters being delivered again, by lease end
// (at most engine.MaxDeadLetters: they come off the dead-letter list).
func (k keys) sinkReplay(id string) string { return k.base + "sink_replay:" + id }
