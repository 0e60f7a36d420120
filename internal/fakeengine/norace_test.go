//go:build !race

package fakeengine

const raceEnabled = false
