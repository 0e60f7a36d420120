// Package wait polls a condition until it holds or a deadline passes, which
// fails the test: the tests never sleep a fixed time to synchronise.
package wait

import (
	"testing"
	"time"
)

const (
	// Timeout bounds a wait for the exporter or the daemon to show
	// something: generous, for -race on 2 busy cores.
	Timeout = 30 * time.Second
	// Interval is how often For tries again.
	Interval = 20 * time.Millisecond
)

// For calls cond every Interval until it returns true. At the timeout it
// fails tb, naming what it waited for and, unless last is nil, what last
// says about the last try (called only then).
func For(tb testing.TB, timeout time.Duration, what string, cond func() bool, last func() string) {
	tb.Helper()
	Every(tb, timeout, Interval, what, cond, last)
}

// Every is For, trying every interval.
func Every(tb testing.TB, timeout, interval time.Duration, what string, cond func() bool, last func() string) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			msg := "waited " + timeout.String() + " for " + what
			if last != nil {
				msg += "; last:\n" + last()
			}
			tb.Fatal(msg)
		}
		time.Sleep(interval)
	}
}
