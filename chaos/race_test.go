//go:build race

package chaos

// raceEnabled: the tests run under the race detector, and so does the
// leadrouterd they build.
const raceEnabled = true
