// Package store is the Redis implementation of engine.Store and the only
// package that talks to Redis. Each state change that must be atomic is one
// Lua script in lua/ (embedded, EVALSHA with EVAL fallback so a failed-over
// master that lacks the script still answers); key names come from keys.go
// and are all passed to scripts in KEYS, hash-tagged per workspace so the
// same code runs on Redis Cluster. Scripts never read the server clock: the
// engine's "now" arrives in ARGV.
//
// The embedded default (Embedded) is the same code on an in-process
// miniredis server, so a fresh checkout runs with zero setup.
package store
