// Package engine is leadrouter's domain: leads, reps, pools and rules, how a
// lead is matched to a rule and handed to a pool, and the Store interface the
// decision needs from persistent state.
//
// The split of work is deliberate. Rule matching happens here, in Go, against
// an in-memory copy of the workspace's routing config (see Config and
// compiledConfig). Everything that must be atomic across replicas -
// eligibility, the rotation cursor, the idempotency record, the assignment
// record - happens in one Store call (Store.Decide), which the Redis store
// implements as one Lua script. The Store checks that the config version the
// engine matched against is still current; when it is not, the engine reloads
// the config and decides again, so a new config takes effect for the next
// lead on every replica without a restart.
//
// The engine imports neither gRPC nor Redis: server/ maps the wire contract
// onto it and store/ implements Store.
package engine
