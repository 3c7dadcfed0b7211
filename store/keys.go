package store

// Every key of a workspace starts with "<prefix>:{<workspace>}:". The braces
// make the workspace the Redis Cluster hash tag, so all keys of one
// workspace live in one slot and every script below is legal on a cluster.
// Workspace names never contain braces (engine.NormalizeWorkspace).
type keys struct{ base string }

func keysFor(prefix, ws string) keys { return keys{base: prefix + ":{" + ws + "}:"} }

// config is a HASH: version, body (engine.Config as JSON), applied_at (ms).
func (k keys) config() string { return k.base + "config" }

// presence is a HASH: rep id -> declared status (AVAILABLE, AWAY, OFFLINE).
func (k keys) presence() string { return k.base + "presence" }

// statusChanged is a HASH: rep id -> unix ms of the last presence change.
func (k keys) statusChanged() string { return k.base + "status_changed" }

// assigned is a HASH: rep id -> leads assigned since the rep joined.
func (k keys) assigned() string { return k.base + "assigned" }

// lastAssigned is a HASH: rep id -> unix ms of the rep's last assignment.
func (k keys) lastAssigned() string { return k.base + "last_assigned" }

// seq is a STRING counter giving queued leads their arrival order.
func (k keys) seq() string { return k.base + "seq" }

// pool is a HASH: n (member count), cursor (index of the member picked
// last, -1 for none), m<i> (rep id at rotation index i).
func (k keys) pool(id string) string { return k.base + "pool:" + id }

// queue is a ZSET: lead id -> arrival sequence, of leads queued on a pool.
func (k keys) queue(poolID string) string { return k.base + "queue:" + poolID }

// lead is a HASH, the assignment record and idempotency key of one lead;
// fields are listed in record.go.
func (k keys) lead(id string) string { return k.base + "lead:" + id }
