package store

import (
	"time"

	"github.com/moby/moby/api/types/events"
)

// dockerd gives each event subscriber a buffer of daemonBuffer events and
// waits at most 100ms for room in a full one; past that the event is
// dropped for that subscriber, and the stream stays open. So lost events
// leave one trace: the events around them reach the exporter late.
const (
	daemonBuffer = 1024
	// An event this late means the exporter was not reading for a while,
	// so the daemon may have dropped events meanwhile.
	maxLag = time.Second
	// A run of daemonBuffer events at least this late means the daemon's
	// buffer for the exporter was full, even if the stall was short.
	slightLag = 50 * time.Millisecond
)

// lagWatch tells, event by event, whether the exporter fell behind the
// daemon. It only looks at live events in the daemon's order: a `since`
// replay and out-of-order or undated junk are late by nature, not a sign.
type lagWatch struct {
	offset    time.Duration // the daemon's clock minus ours, at connect
	liveAfter int64         // events at or before this daemon time are replays
	newest    int64
	run       int // consecutive events slightLag late
}

// newLagWatch measures the offset between the clocks from the daemon's
// time and ours, read together at connect.
func newLagWatch(daemonNow, localNow time.Time) lagWatch {
	if daemonNow.IsZero() {
		return lagWatch{liveAfter: localNow.UnixNano()}
	}
	return lagWatch{offset: daemonNow.Sub(localNow), liveAfter: daemonNow.UnixNano()}
}

// late says whether ev, received now, shows the exporter fell behind.
func (w *lagWatch) late(ev events.Message, now time.Time) bool {
	if ev.TimeNano == 0 && ev.Time == 0 {
		return false
	}
	at := eventTime(ev)
	nano := at.UnixNano()
	if nano <= w.liveAfter || nano < w.newest {
		return false
	}
	w.newest = nano
	switch lag := now.Add(w.offset).Sub(at); {
	case lag > maxLag:
		w.run = 0
		return true
	case lag > slightLag:
		w.run++
		if w.run >= daemonBuffer {
			w.run = 0
			return true
		}
	default:
		w.run = 0
	}
	return false
}

// resyncReason says why a resync runs.
type resyncReason int

const (
	resyncInterval resyncReason = iota
	resyncFellBehind
)

func (r resyncReason) String() string {
	if r == resyncFellBehind {
		return "fell_behind"
	}
	return "interval"
}

const (
	// behindDelay lets the backlog drain before the resync that follows a
	// fall behind, so that the list is compared with a caught-up store.
	behindDelay = time.Second
	// behindSpacing bounds how often falling behind can cost a list: an
	// exporter that stays behind during a long storm resyncs every 10s,
	// not constantly.
	behindSpacing = 10 * time.Second
)

// resyncClock says when the next resync is due, and why.
type resyncClock struct {
	interval   time.Duration // 0: no periodic resync
	next       time.Time     // zero: none is due
	reason     resyncReason
	lastBehind time.Time
}

func newResyncClock(interval time.Duration, now time.Time) resyncClock {
	c := resyncClock{interval: interval}
	c.ran(resyncInterval, now)
	return c
}

// ran starts the wait for the next periodic resync.
func (c *resyncClock) ran(reason resyncReason, now time.Time) {
	if reason == resyncFellBehind {
		c.lastBehind = now
	}
	c.next, c.reason = time.Time{}, resyncInterval
	if c.interval > 0 {
		c.next = now.Add(c.interval)
	}
}

// fellBehind brings the next resync forward.
func (c *resyncClock) fellBehind(now time.Time) {
	at := now.Add(behindDelay)
	if !c.lastBehind.IsZero() {
		at = later(at, c.lastBehind.Add(behindSpacing))
	}
	if c.next.IsZero() || at.Before(c.next) {
		c.next, c.reason = at, resyncFellBehind
	}
}

// wait is how long until the next resync; ok is false when none is due.
func (c *resyncClock) wait(now time.Time) (d time.Duration, ok bool) {
	if c.next.IsZero() {
		return 0, false
	}
	return max(c.next.Sub(now), 0), true
}

// due says whether a resync should run now.
func (c *resyncClock) due(now time.Time) (resyncReason, bool) {
	return c.reason, !c.next.IsZero() && !now.Before(c.next)
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
