// Package chaos proves leadrouter's fault tolerance against real processes.
//
// Its tests (chaos_test.go) build cmd/leadrouterd once, start real
// redis-server processes (internal/redistest.StartServer) and real
// leadrouterd processes on loopback ports, talk to them over gRPC with the
// generated clients, break things, and check what the issue "Security and
// fault tolerance" promises:
//
//   - TestChaosRedisDown: with Redis frozen (SIGSTOP, a hung host) and then
//     killed (SIGKILL, connection refused), every call answers UNAVAILABLE
//     within its deadline (the server's default of 1 s when the client sets
//     none; before the client's own deadline when it sets one) and never
//     hangs; health turns NOT_SERVING; when Redis comes back the same
//     leadrouterd process serves again on its own, health SERVING, earlier
//     assignments intact.
//   - TestChaosRedisDataLoss: Redis comes back empty under replicas that
//     still cache the old config: no decision is made under it
//     (FAILED_PRECONDITION) until a config is applied again; a different
//     config applied through the other replica, version 1 again, is the
//     one the first replica decides under at once (config ids carry a
//     nonce).
//   - TestChaosRedisRestartAOF: Redis with appendonly yes and appendfsync
//     always is killed with SIGKILL and restarted on the same port and
//     directory under a running leadrouterd. Every key of the store, every
//     assignment, rep counter and rotation cursor (the next pick, by
//     PreviewAssignment) is as before; queued leads are still queued and
//     drain in order; the pending deadlines (offer accept deadlines, a
//     queue escalation, queue expiry timers) are still there and fire.
//   - TestChaosDurabilityWarnings: leadrouterd warns at start ("evicts
//     keys") when its Redis would evict keys, says it keeps no append-only
//     file when AOF is off, and says neither for a durable Redis.
//   - TestChaosReplicaKilled: three replicas on one Redis under load from
//     16 clients, each retrying a failed call with the same lead id on the
//     next replica; one replica is killed with SIGKILL midway and restarted.
//     Afterwards every lead has exactly one assignment (one rep, one
//     "assigned" history entry) and each rep's counter in the store equals
//     the leads the records give it.
//   - TestChaosClientCancels: calls cancelled (or timed out) at random
//     points, before, during and after the store's script, leave no partial
//     assignment: every lead is either absent or fully assigned, the
//     counters equal the leads found, and retrying every id completes the
//     rest without assigning any lead twice.
//
// Every test logs what it verified in lines starting with "checked:", and
// the measured times of the fault handling; `make chaos` runs the suite
// verbosely. The tests are part of `go test ./...` (make test): they never
// skip, and a missing redis-server or go toolchain fails them. When a test
// fails, the tail of every leadrouterd log it started is printed; a
// leadrouterd that logs a panic (or, built with -race, a data race) fails
// the test.
package chaos
