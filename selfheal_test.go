package main

// Self-healing tests: the daemon drops events for a reader that falls
// behind, silently, and keeps the stream open (dockerd's publisher waits
// 100ms for a full subscriber buffer, then skips the event). Nothing breaks,
// so no reconnect replays them; the store must notice and resync with one
// list. These run in process against internal/fakeengine, which drops
// events the same way; e2e_test.go makes a real dockerd drop them.

import (
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/moby/moby/api/types/events"

	"github.com/docker-exporter/docker_exporter/internal/fakeengine"
	"github.com/docker-exporter/docker_exporter/store"
)

// healBound is how soon after a disturbance ends the store must equal the
// daemon again: a fell_behind resync waits 1s for the backlog to drain,
// then lists and inspects what differs; the rest is slack for -race on 2
// busy cores.
const healBound = 10 * time.Second

// lostChanges makes, while the reader cannot hear them, every kind of change
// a resync must find: containers removed (ghosts), created (missing), killed,
// restarted and paused (changed). It returns the corrections the resync
// must count.
func lostChanges(r *rig, l *ledger) store.Corrections {
	r.t.Helper()
	for _, name := range []string{"svc-00", "svc-01", "svc-02"} {
		l.do(r.e.Destroy(name), name, store.Counts{Deaths: 1, Destroys: 1})
	}
	for i := range 3 {
		name := fmt.Sprint("new-", i)
		r.e.Create(fakeengine.Spec{Name: name})
		// The start was never seen, so it is not counted; the resync
		// counts only what ended unseen, as a reconnect does.
		l.do(r.e.Start(name), name, store.Counts{})
	}
	for _, name := range []string{"svc-03", "svc-04", "svc-05"} {
		l.do(r.e.Kill(name), name, store.Counts{Deaths: 1})
	}
	for _, name := range []string{"svc-06", "svc-07"} {
		// A run that ended unseen: one death; the new start was not seen.
		l.do(r.e.Restart(name), name, store.Counts{Deaths: 1})
	}
	l.do(r.e.Pause("svc-08"), "svc-08", store.Counts{})
	return store.Corrections{Missing: 3, Ghost: 3, Changed: 6}
}

// longRunning are containers started an hour ago, so that a restart shows
// in the list's "Up ..." text.
func longRunning(e *fakeengine.Engine, n int) []string {
	var names []string
	started := time.Now().Add(-time.Hour)
	for i := range n {
		name := fmt.Sprintf("svc-%02d", i)
		names = append(names, name)
		e.Add(fakeengine.Spec{Name: name, State: "running", Created: started.Add(-time.Minute), Started: started})
	}
	return names
}

// fill publishes n events nobody cares about: with the reader stalled they
// fill the daemon's buffer for it, so that every event after them is lost.
func fill(e *fakeengine.Engine, n int) {
	for i := range n {
		e.Emit(events.Message{Type: events.NetworkEventType, Action: "connect", Actor: events.Actor{ID: fmt.Sprint("filler-", i)}})
	}
}

// waitHealed waits until the store equals the engine, at most healBound.
func (r *rig) waitHealed(since time.Time) store.Snapshot {
	r.t.Helper()
	changed, cancel := r.st.Subscribe()
	defer cancel()
	deadline := time.NewTimer(time.Until(since.Add(healBound)))
	defer deadline.Stop()
	for {
		snap := r.st.Snapshot()
		if len(truthDiff(r.e.Truth(), snap)) == 0 {
			r.t.Logf("the store equals the engine %v after the disturbance ended", time.Since(since).Round(time.Millisecond))
			return snap
		}
		select {
		case <-changed:
		case <-deadline.C:
			r.requireTruth(snap)
		}
	}
}

func TestEventsDroppedForAStalledReaderAreHealedWithoutReconnect(t *testing.T) {
	for _, tt := range []struct {
		name  string
		stall time.Duration
	}{
		// The buffered events then come more than a second late.
		{"stalled longer than a second", 1500 * time.Millisecond},
		// Under a second, but the daemon's whole buffer came late.
		{"stalled briefly with the daemon's buffer full", 300 * time.Millisecond},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var names []string
			r := startRig(t, rigConfig{
				// No periodic resync: only the signs of falling behind
				// can heal this. Drops wait 1ms, not dockerd's 100ms, so
				// that a short stall is short.
				flags:  []string{"--store.resync-interval=0"},
				engine: fakeengine.Options{DropTimeout: time.Millisecond},
				before: func(e *fakeengine.Engine) { names = longRunning(e, 10) },
			})
			r.waitStore("the first sync", syncedAtLeast(1))
			l := newLedger(t, r.e, names...)
			before := r.settle().Status

			r.e.StallStreams(true)
			stalled := time.Now()
			fill(r.e, 1100)
			dropsBefore := r.e.Drops()
			want := lostChanges(r, l)
			if r.e.Drops() == dropsBefore {
				t.Fatal("the engine dropped none of the changes' events: the test disturbs nothing")
			}
			// The disturbance itself: the reader stays behind this long.
			time.Sleep(time.Until(stalled.Add(tt.stall)))
			r.e.StallStreams(false)
			lifted := time.Now()

			snap := r.waitHealed(lifted)
			st := snap.Status
			if st.Reconnects != before.Reconnects || st.Syncs != before.Syncs {
				t.Errorf("reconnects %d -> %d, syncs %d -> %d: healed by a reconnect, want by a resync", before.Reconnects, st.Reconnects, before.Syncs, st.Syncs)
			}
			if st.Resyncs.FellBehind == 0 || st.Resyncs.Interval != 0 {
				t.Errorf("resyncs %+v, want fell_behind ones only", st.Resyncs)
			}
			if st.Corrections != want {
				t.Errorf("corrections %+v, want %+v", st.Corrections, want)
			}
			snap = r.settle()
			x := r.mustScrape()
			checkCounts(t, snap, x, l.want)
			for kind, n := range map[string]uint64{"missing": want.Missing, "ghost": want.Ghost, "changed": want.Changed} {
				if !x.Is(float64(n), "docker_exporter_resync_corrections_total", "kind", kind) {
					t.Errorf("docker_exporter_resync_corrections_total{kind=%q} is not %d:\n%s", kind, n, x.Lines())
				}
			}
			r.requireTruth(snap)
		})
	}
}

// TestEventsLostWithoutLatenessAreHealedByTheIntervalResync covers the loss
// no sign can show (events muted at the source, arriving neither late nor
// at all): the periodic resync is the backstop.
func TestEventsLostWithoutLatenessAreHealedByTheIntervalResync(t *testing.T) {
	var names []string
	r := startRig(t, rigConfig{
		flags:  []string{"--store.resync-interval=300ms"},
		before: func(e *fakeengine.Engine) { names = longRunning(e, 10) },
	})
	r.waitStore("the first sync", syncedAtLeast(1))
	l := newLedger(t, r.e, names...)
	r.settle()
	r.e.MuteStreams(true)
	want := lostChanges(r, l)
	r.e.MuteStreams(false)

	snap := r.waitHealed(time.Now())
	if st := snap.Status; st.Resyncs.Interval == 0 || st.Resyncs.FellBehind != 0 || st.Corrections != want || st.Reconnects != 0 {
		t.Errorf("status %+v; want interval resyncs only, corrections %+v, no reconnect", st, want)
	}
	snap = r.settle()
	checkCounts(t, snap, r.mustScrape(), l.want)
}

// TestIdleResyncCostsOneListAndScrapesNone proves what a resync costs the
// daemon when nothing changed: exactly one list each, no inspect, nothing
// else; and scrapes cost nothing.
func TestIdleResyncCostsOneListAndScrapesNone(t *testing.T) {
	r := startRig(t, rigConfig{
		flags:  []string{"--store.resync-interval=300ms"},
		before: func(e *fakeengine.Engine) { e.Populate(200, 7) },
	})
	r.waitStore("the first sync", syncedAtLeast(1))
	r.settle()
	// Count from just after a resync: the next is 300ms away.
	first := r.st.Status().Resyncs.Interval
	r.waitStore("a resync", func(s store.Snapshot) bool { return s.Status.Resyncs.Interval > first })
	r.e.ResetRequests()
	from := r.st.Status().Resyncs.Interval
	for range 20 {
		r.mustScrape()
	}
	last := r.waitStore("five more resyncs", func(s store.Snapshot) bool { return s.Status.Resyncs.Interval >= from+5 })
	got := r.e.Requests()
	resyncs := int(last.Status.Resyncs.Interval - from)
	// The next resync's list may be on its way already: one list per
	// resync, and at most one more in flight.
	if lists := got["GET /containers/json"]; lists == resyncs+1 {
		got["GET /containers/json"] = resyncs
	}
	if want := map[string]int{"GET /containers/json": resyncs}; !maps.Equal(got, want) {
		t.Fatalf("%d idle resyncs and 20 scrapes made %v, want %v (or one list more, in flight)", resyncs, got, want)
	}
	if c := last.Status.Corrections; c != (store.Corrections{}) {
		t.Fatalf("idle resyncs corrected %+v, want nothing", c)
	}
}
