//go:build race

package fakeengine

// raceEnabled loosens the timing checks: the race detector slows code 5-10x.
const raceEnabled = true
