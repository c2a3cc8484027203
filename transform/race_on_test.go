//go:build race

package transform

// raceEnabled is true when the tests run with -race, which makes them
// several times slower and makes sync.Pool drop items on purpose.
const raceEnabled = true
