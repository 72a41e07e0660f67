//go:build race

package web

// raceEnabled: the race detector slows everything down several times.
const raceEnabled = true
