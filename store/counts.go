package store

import "time"

// Counts are the event-fed counters of one container name. They are keyed
// by name so that a container re-created under the same name (as compose
// does) continues the same series.
type Counts struct {
	Starts   uint64
	Deaths   uint64
	OOMs     uint64
	Destroys uint64
}

type namedCounts struct {
	Counts
	// orphanedAt is when the last container with this name went away; the
	// counts are kept for the retention after it, so the last increase is
	// scraped, then forgotten. Zero while a container has the name.
	orphanedAt time.Time
}

// retained holds what outlives a destroyed container for a while: its name's
// counters and its id (so that a replayed event for it is not mistaken for a
// new container).
type retained struct {
	retention time.Duration
	counts    map[string]*namedCounts
	gone      map[string]time.Time // container id -> when it was removed
	nextSweep time.Time
}

func newRetained(retention time.Duration) retained {
	return retained{
		retention: retention,
		counts:    make(map[string]*namedCounts),
		gone:      make(map[string]time.Time),
	}
}

// of returns name's counters, made at zero if it has none.
func (r *retained) of(name string) *namedCounts {
	nc := r.counts[name]
	if nc == nil {
		nc = &namedCounts{}
		r.counts[name] = nc
	}
	return nc
}

// adopt makes sure name has counters and that they are not expiring.
func (r *retained) adopt(name string) *namedCounts {
	nc := r.of(name)
	nc.orphanedAt = time.Time{}
	return nc
}

// orphan starts the retention clock of name's counters.
func (r *retained) orphan(name string, now time.Time) {
	if nc := r.counts[name]; nc != nil && nc.orphanedAt.IsZero() {
		nc.orphanedAt = now
		r.scheduleSweep(now)
	}
}

func (r *retained) bury(id string, now time.Time) {
	r.gone[id] = now
	r.scheduleSweep(now)
}

func (r *retained) buried(id string) bool {
	_, ok := r.gone[id]
	return ok
}

func (r *retained) scheduleSweep(now time.Time) {
	if at := now.Add(r.retention); r.nextSweep.IsZero() || at.Before(r.nextSweep) {
		r.nextSweep = at
	}
}

func (r *retained) expired(since, now time.Time) bool {
	return !since.IsZero() && now.Sub(since) >= r.retention
}

// sweep forgets what outlived its retention. It runs on writes only, and only
// when something is due, so an idle store costs nothing.
func (r *retained) sweep(now time.Time) {
	if r.nextSweep.IsZero() || now.Before(r.nextSweep) {
		return
	}
	r.nextSweep = time.Time{}
	for name, nc := range r.counts {
		if r.expired(nc.orphanedAt, now) {
			delete(r.counts, name)
		} else if !nc.orphanedAt.IsZero() {
			r.scheduleSweep(nc.orphanedAt)
		}
	}
	for id, at := range r.gone {
		if r.expired(at, now) {
			delete(r.gone, id)
		} else {
			r.scheduleSweep(at)
		}
	}
}

// visible copies the counters that have not expired.
func (r *retained) visible(now time.Time) map[string]Counts {
	out := make(map[string]Counts, len(r.counts))
	for name, nc := range r.counts {
		if !r.expired(nc.orphanedAt, now) {
			out[name] = nc.Counts
		}
	}
	return out
}
