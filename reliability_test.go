package main

// Reliability tests: the store and the HTTP handler run in process, against
// internal/fakeengine through the real moby client over a unix socket. They
// inject what a real daemon only does by accident (dropped and broken event
// streams, restarts that forget the event buffer, failing and hanging
// requests, storms of events) and check that /metrics tells the truth
// afterwards. They never sleep to synchronise: they wait on store.Subscribe,
// or poll the engine, the log or the clock with a deadline.

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"

	"github.com/docker-exporter/docker_exporter/internal/fakeengine"
	"github.com/docker-exporter/docker_exporter/store"
)

// TestEventsMissedDuringShortDropAreReplayedOnce breaks the event stream
// while containers die, and proves that after the reconnect each death is
// counted exactly once, whether the store learns it from the replay of the
// daemon's event buffer (`since`), from the resync's list, or both, and
// whether it happens before the reconnect or races with it.
func TestEventsMissedDuringShortDropAreReplayedOnce(t *testing.T) {
	const n = 30
	var names []string
	for i := range n {
		names = append(names, fmt.Sprintf("svc-%02d", i))
	}
	r := startRig(t, rigConfig{before: func(e *fakeengine.Engine) {
		for _, name := range names {
			e.Add(fakeengine.Spec{Name: name, State: "running"})
		}
	}})
	r.waitStore("the first sync", syncedAtLeast(1))
	l := newLedger(t, r.e, names...)

	// Seen live.
	l.kill("svc-00")
	l.start("svc-00")
	r.settle()

	// Drop 1: the stream breaks mid-line and the list fails until the test
	// lifts it, so every death below surely happens in the gap: the store
	// keeps reconnecting (subscribing with since, then listing) and must
	// throw away what each failed attempt received.
	r.e.FailList(http.StatusInternalServerError)
	r.e.BreakStreamsMidLine()
	r.waitStore("the drop", func(s store.Snapshot) bool { return !s.Status.Up })
	for _, name := range names[1:9] {
		l.kill(name)
	}
	l.do(r.e.Die("svc-09", 3), "svc-09", store.Counts{Deaths: 1}, "die")
	l.do(r.e.Stop("svc-10"), "svc-10", store.Counts{Deaths: 1}, "kill", "die", "stop")
	l.do(r.e.OOM("svc-11"), "svc-11", store.Counts{Deaths: 1, OOMs: 1}, "oom", "die")
	l.kill("svc-12")
	l.start("svc-12")
	l.kill("svc-13")
	l.start("svc-13")
	l.kill("svc-13")
	l.do(r.e.Restart("svc-14"), "svc-14", store.Counts{Starts: 1, Deaths: 1}, "die", "start")
	l.do(r.e.Crash("svc-15", 2), "svc-15", store.Counts{Deaths: 1}, "die")
	l.do(r.e.Destroy("svc-16"), "svc-16", store.Counts{Deaths: 1, Destroys: 1}, "kill", "die", "destroy")
	l.do(r.e.Pause("svc-17"), "svc-17", store.Counts{}, "pause")
	l.kill("svc-17")
	lists := r.e.Requests()["GET /containers/json"]
	r.poll("two failed resyncs after the deaths", func() bool { return r.e.Requests()["GET /containers/json"] >= lists+2 })
	snap := r.st.Snapshot()
	if snap.Status.Up || snap.Counts["svc-01"].Deaths != 0 || snap.Counts["svc-16"].Destroys != 0 {
		t.Fatalf("a failed resync changed the store: %s counts %+v", describeSnapshot(snap), snap.Counts)
	}
	x := r.mustScrape()
	if !x.Is(0, "docker_up") || !x.Is(1, "docker_container_state", "name", "svc-01", "state", "running") {
		t.Fatalf("while down, the last state with docker_up 0:\n%s", x.Lines())
	}

	// Deaths that race with the reconnect.
	r.e.ClearFaults()
	for _, name := range names[18:22] {
		l.kill(name)
	}
	r.settle()

	// Drop 2: a clean end of stream, deaths at once, the reconnect free to
	// come whenever it comes.
	r.e.DropStreams()
	for _, name := range names[22:28] {
		l.kill(name)
	}
	l.do(r.e.OOM("svc-28"), "svc-28", store.Counts{Deaths: 1, OOMs: 1}, "oom", "die")
	l.start("svc-01")
	l.kill("svc-01")
	snap = r.settle()

	x = r.mustScrape()
	checkCounts(t, snap, x, l.want)
	// The last event the store applied before each drop was a sentinel's
	// create; the reconnect's `since` replays it, and the store must
	// recognise it.
	l.events["create"] = uint64(len(r.settles))
	for _, action := range []string{"die", "start", "oom", "destroy", "kill", "create"} {
		if got := containerEvents(snap, action); got != l.events[action] {
			t.Errorf("docker_events_total{action=%q} in the store = %d, want each event once: %d", action, got, l.events[action])
		}
		if !x.Is(float64(l.events[action]), "docker_events_total", "type", "container", "action", action) {
			t.Errorf("scraped docker_events_total{action=%q} is not %d", action, l.events[action])
		}
	}
	if snap.Status.Reconnects != 2 || snap.Status.Syncs != 3 {
		t.Errorf("reconnects %d, syncs %d; want 2 and 3", snap.Status.Reconnects, snap.Status.Syncs)
	}
	if !x.Is(2, "docker_exporter_event_stream_reconnects_total") || !x.Is(1, "docker_up") {
		t.Errorf("status metrics:\n%s", x.Lines())
	}
	r.requireTruth(snap)
}

// TestDaemonRestartReconcilesToTruth takes the daemon away, changes
// containers, restarts it (which forgets the event buffer and stops what
// ran), changes more, and brings it back: the store must equal the engine,
// and each counter must be what the changes imply, nothing counted twice.
// What happened before the restart can only be found by the resync (one
// death per run that ended unseen, one destroy per container gone); what
// happened after it is also replayed from the buffer and must not count again.
func TestDaemonRestartReconcilesToTruth(t *testing.T) {
	r := startRig(t, rigConfig{before: func(e *fakeengine.Engine) {
		for i := 1; i <= 6; i++ {
			e.Add(fakeengine.Spec{Name: fmt.Sprint("r", i), State: "running"})
		}
		for i := 1; i <= 4; i++ {
			e.Add(fakeengine.Spec{Name: fmt.Sprint("x", i), State: "exited", ExitCode: i})
		}
		e.Add(fakeengine.Spec{Name: "c1"}, fakeengine.Spec{Name: "c2"})
	}})
	r.waitStore("the first sync", syncedAtLeast(1))
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	// Seen live: r1 dies and starts again.
	must(r.e.Kill("r1"))
	must(r.e.Start("r1"))
	r.settle()

	must(r.e.SetUnreachable(true))
	r.waitStore("the outage", func(s store.Snapshot) bool { return !s.Status.Up })
	// Before the restart: all of this is forgotten with the buffer.
	must(r.e.Destroy("r2"))                                  // running, removed
	must(r.e.Destroy("x1"))                                  // exited, removed
	must(r.e.Kill("r3"))                                     // running, exited
	must(r.e.Start("x2"))                                    // exited, ran again (stopped by the restart)
	must(r.e.Rename("x4", "x4b"))                            // renamed: counts nothing
	must(r.e.Start(r.e.Create(fakeengine.Spec{Name: "n1"}))) // new, ran (stopped by the restart)
	r.e.RestartDaemon(true)                                  // r1, r4, r5, r6, x2, n1 exit with 143
	// After the restart: in the new buffer, replayed on reconnect.
	must(r.e.Start("r4"))
	must(r.e.Destroy("r5"))
	must(r.e.Destroy("x3"))
	must(r.e.Start("c2"))
	r.e.Create(fakeengine.Spec{Name: "n2"})
	must(r.e.Start(r.e.Create(fakeengine.Spec{Name: "n3"})))
	must(r.e.Kill("n3"))
	must(r.e.SetUnreachable(false))

	r.waitStore("the resync", syncedAtLeast(2))
	snap := r.settle()
	want := map[string]store.Counts{
		"r1":  {Starts: 1, Deaths: 2},   // live kill; stopped by the restart
		"r2":  {Deaths: 1, Destroys: 1}, // gone while running
		"r3":  {Deaths: 1},              // running, then exited
		"r4":  {Starts: 1, Deaths: 1},   // stopped by the restart, started after it (replayed)
		"r5":  {Deaths: 1, Destroys: 1}, // stopped by the restart, destroy replayed: not again
		"r6":  {Deaths: 1},              // stopped by the restart
		"x1":  {Destroys: 1},            // gone while exited
		"x2":  {Deaths: 1},              // a whole run unseen: one death
		"x3":  {Destroys: 1},            // destroy replayed: counted once
		"x4":  {},                       // renamed away; kept for the retention
		"x4b": {},                       // the new name, nothing counted
		"c1":  {},                       // untouched
		"c2":  {Starts: 1},              // start replayed
		"n1":  {},                       // never seen running: the store met it exited
		"n2":  {},                       // created after the restart
		"n3":  {Starts: 1, Deaths: 1},   // replayed: create, start, kill, die
	}
	x := r.mustScrape()
	checkCounts(t, snap, x, want)
	for name, c := range snap.Counts {
		if _, listed := want[name]; !listed && !slices.Contains(r.settles, name) && c != (store.Counts{}) {
			t.Errorf("unexpected counters for %s: %+v", name, c)
		}
	}
	if snap.Status.Reconnects != 1 || snap.Status.Syncs != 2 {
		t.Errorf("reconnects %d, syncs %d; want 1 and 2", snap.Status.Reconnects, snap.Status.Syncs)
	}
	if !x.Is(1, "docker_up") || !x.Is(1, "docker_exporter_event_stream_reconnects_total") {
		t.Errorf("status metrics:\n%s", x.Lines())
	}
	r.requireTruth(snap)
}

// TestChurnConvergesToTruth follows 2,000 containers through a storm of
// random actions, with duplicate and out-of-order copies of real events and
// junk events mixed in, and proves that once the stream is quiet the store
// equals the engine, has no ghost, and that a scrape agrees with the store.
func TestChurnConvergesToTruth(t *testing.T) {
	r := startRig(t, rigConfig{
		// Room for the store's stream to fall behind under -race: a drop
		// would still converge, by a resync, but test less.
		engine: fakeengine.Options{StreamBuffer: 1 << 16},
		before: func(e *fakeengine.Engine) { e.Populate(2000, 11) },
		flags:  []string{"--container.labels=*"},
	})
	r.waitStore("the first sync", syncedAtLeast(1))
	r.requireTruth(r.st.Snapshot())

	// An observer stream of its own gives the injector real events to copy.
	obsCtx, stopObs := context.WithCancel(context.Background())
	defer stopObs()
	obs := r.cli.Events(obsCtx, client.EventsListOptions{})
	waitCtx, cancelWait := context.WithTimeout(context.Background(), relWait)
	defer cancelWait()
	if err := r.e.WaitStreams(waitCtx, 2); err != nil {
		t.Fatal(err)
	}

	// Thousands of actions, with copies and junk among them: the storm runs
	// until there are enough of each, however slow the machine.
	const minActions, minCopies, minJunk = 3000, 500, 50
	storm := startStorm(r.e, 1500, 2, 5)
	defer storm.halt()
	var dups, junk atomic.Int64
	injected := make(chan struct{})
	go func() {
		defer close(injected)
		inject(obsCtx, r.e, obs, rand.New(rand.NewPCG(7, 8)), &dups, &junk)
	}()
	r.poll("enough churn", func() bool {
		return storm.actions.Load() >= minActions && dups.Load() >= minCopies && junk.Load() >= minJunk
	})
	actions := storm.halt()
	stopObs()
	<-injected

	snap := r.settle()
	t.Logf("%d actions, %d events, %d duplicated or delayed, %d junk; %d containers; %d stream drops; %d syncs",
		actions, r.e.Emitted(), dups.Load(), junk.Load(), r.e.Len(), r.e.Drops(), snap.Status.Syncs)
	r.requireTruth(snap)
	x := r.mustScrape()
	if sum, info := x.Sum("docker_containers"), x.Count("docker_container_info"); sum != float64(len(snap.Containers)) || info != len(snap.Containers) {
		t.Errorf("docker_containers sums to %v and there are %d docker_container_info series; the store holds %d containers", sum, info, len(snap.Containers))
	}
}

// inject reads real events from obs until ctx ends. It publishes again
// copies of some (at once, or later and so out of order, some with a
// malformed exit code) and junk: events of containers that never existed,
// without an id, of unknown types and actions. It counts the copies and the
// junk events it published in dups and junk.
//
// Only the actions the store must take in any order are copied: create,
// start, die, kill, stop, health_status and destroy, which the store
// guards by time or by a tombstone and follows with an inspect. A stale
// pause, unpause, rename or oom would set what it says with nothing to
// correct it until the container's next event; the daemon never sends one,
// as it publishes a container's events in order, and a replay after a
// reconnect resends only the events at the `since` time, which the store
// recognises.
func inject(ctx context.Context, e *fakeengine.Engine, obs client.EventsResult, rng *rand.Rand, dups, junk *atomic.Int64) {
	var recent []events.Message
	delayed := make([]events.Message, 0, 64)
	ghost := func() string { return fmt.Sprintf("%064x", rng.Uint64()) }
	for seen := 0; ; seen++ {
		var ev events.Message
		select {
		case ev = <-obs.Messages:
		case <-obs.Err:
			return
		case <-ctx.Done():
			// What is still held back goes out now, late.
			for _, d := range delayed {
				e.Emit(d)
			}
			dups.Add(int64(len(delayed)))
			return
		}
		// The observer sees the copies and junk too; only the engine's own
		// events, which always name their container, are copied.
		switch baseAction := strings.SplitN(string(ev.Action), ":", 2)[0]; baseAction {
		case "create", "start", "die", "kill", "stop", "health_status", "destroy":
			if ev.Actor.Attributes["name"] == "" {
				break
			}
			recent = append(recent, ev)
			if len(recent) > 200 {
				recent = recent[len(recent)-100:]
			}
		}
		if len(recent) == 0 {
			continue
		}
		switch seen % 4 {
		case 0: // a duplicate at once
			e.Emit(recent[len(recent)-1])
			dups.Add(1)
		case 1: // a copy of an older one, later
			old := recent[rng.IntN(len(recent))]
			if old.Action == events.ActionDie && rng.IntN(4) == 0 {
				old.Actor.Attributes = maps.Clone(old.Actor.Attributes)
				old.Actor.Attributes["exitCode"] = "not a number"
			}
			delayed = append(delayed, old)
			if len(delayed) == cap(delayed) {
				rng.Shuffle(len(delayed), func(i, j int) { delayed[i], delayed[j] = delayed[j], delayed[i] })
				for _, d := range delayed {
					e.Emit(d)
				}
				dups.Add(int64(len(delayed)))
				delayed = delayed[:0]
			}
		}
		if seen%40 == 0 {
			past := ev.TimeNano - int64(rng.IntN(int(time.Second)))
			realID := recent[rng.IntN(len(recent))].Actor.ID
			for _, j := range []events.Message{
				{Type: events.ContainerEventType, Action: events.ActionDie, Actor: events.Actor{ID: ghost(), Attributes: map[string]string{"exitCode": "1"}}},
				{Type: events.ContainerEventType, Action: events.ActionStart, Actor: events.Actor{ID: ghost()}, TimeNano: past, Time: past / 1e9},
				{Type: events.ContainerEventType, Action: events.ActionDestroy, Actor: events.Actor{ID: ghost()}},
				{Type: events.ContainerEventType, Action: events.ActionDie},
				{Type: events.ContainerEventType, Action: "teleport", Actor: events.Actor{ID: realID}},
				{Type: events.ContainerEventType, Action: "health_status: sideways", Actor: events.Actor{ID: realID}, TimeNano: past, Time: past / 1e9},
				{Type: events.ContainerEventType, Action: "exec_start: sh -c true", Actor: events.Actor{ID: realID}},
				{Type: "plugin", Action: "enable", Actor: events.Actor{ID: ghost()}},
				{Type: "weird\xff", Action: "boom: \xfe", Actor: events.Actor{ID: "x"}, TimeNano: past, Time: past / 1e9},
			} {
				e.Emit(j)
				junk.Add(1)
			}
		}
	}
}

// TestFaultsNeverCrashAndUpSaysTheTruth injects one fault after another. A
// container removed between list and inspect is left out of the sync. An
// inspect that hangs past --docker.timeout after an event keeps the event's
// view with docker_up 1; in a resync, it and a failing list keep docker_up
// at 0, the last state served and the cause in the log, until the fault is
// lifted. A malformed event line ends the stream; the store reconnects.
// After each fault the store equals the engine again.
func TestFaultsNeverCrashAndUpSaysTheTruth(t *testing.T) {
	var ghostID string
	r := startRig(t, rigConfig{
		flags: []string{"--docker.timeout=250ms"},
		before: func(e *fakeengine.Engine) {
			e.Add(fakeengine.Spec{Name: "web", State: "running"},
				fakeengine.Spec{Name: "db", State: "running", Health: "healthy"},
				fakeengine.Spec{Name: "job", State: "exited", ExitCode: 3},
				fakeengine.Spec{Name: "ghost", State: "running"})
			truth := e.Truth()
			ghostID = truth[slices.IndexFunc(truth, func(s fakeengine.Spec) bool { return s.Name == "ghost" })].ID
			e.VanishBetweenListAndInspect(ghostID)
		},
	})
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}

	// Vanished between list and inspect: the sync succeeds without it.
	snap := r.waitStore("the first sync", syncedAtLeast(1))
	if len(snap.Containers) != 3 || slices.ContainsFunc(snap.Containers, func(c *store.Container) bool { return c.ID == ghostID }) {
		t.Fatalf("after a sync that lost one container: %s", describeSnapshot(snap))
	}
	must(r.e.Destroy(ghostID)) // what removed it, as the daemon reports it
	r.requireTruth(r.settle())

	// An inspect after an event hangs past the timeout: the event's view
	// stays, the daemon is still up.
	r.e.HangInspect(true)
	must(r.e.Kill("web"))
	r.mark()
	r.poll("the failed inspect in the log", func() bool { return len(r.logs.Lines("cannot inspect", "deadline exceeded")) > 0 })
	x := r.mustScrape()
	if !x.Is(1, "docker_up") || !x.Is(1, "docker_container_state", "name", "web", "state", "exited") || !x.Is(137, "docker_container_exit_code", "name", "web") {
		t.Fatalf("after an event whose inspect timed out:\n%s", x.Lines())
	}

	// The same hang in a resync: down, the last state served, the cause
	// logged. The log lines must be new ones: the earlier fault logged the
	// same error.
	downAndServing := func(fault, cause string, inject func()) {
		t.Helper()
		before := r.mustScrape().States()
		outages, causes := len(r.logs.Lines("level=WARN", "lost the Docker daemon's event stream")), len(r.logs.Lines(cause))
		inject()
		r.waitStore("docker_up 0 after "+fault, func(s store.Snapshot) bool { return !s.Status.Up })
		lists := r.e.Requests()["GET /containers/json"]
		r.poll("two failed resyncs with "+fault, func() bool { return r.e.Requests()["GET /containers/json"] >= lists+2 })
		x := r.mustScrape()
		if !x.Is(0, "docker_up") || !maps.Equal(x.States(), before) {
			t.Fatalf("with %s: want docker_up 0 and the last state %v; got %v\n%s", fault, before, x.States(), x.Lines())
		}
		if len(r.logs.Lines("level=WARN", "lost the Docker daemon's event stream")) <= outages || len(r.logs.Lines(cause)) <= causes {
			t.Fatalf("with %s, the log lacks the outage or its cause %q:\n%s", fault, cause, r.logTail())
		}
	}
	downAndServing("inspects hanging past --docker.timeout", "context deadline exceeded", r.e.DropStreams)
	must(r.e.Start("web")) // while down: the resync must find it
	r.e.ClearFaults()
	r.requireTruth(r.settle())

	// A list that fails with 500.
	downAndServing("a list failing with 500", "injected list failure", func() {
		r.e.FailList(http.StatusInternalServerError)
		r.e.DropStreams()
	})
	must(r.e.Stop("db"))
	r.e.FailList(0)
	snap = r.settle()
	r.requireTruth(snap)

	// A malformed event ends the stream; the store reconnects.
	reconnects := snap.Status.Reconnects
	r.e.SendMalformed()
	r.waitStore("the reconnect after a malformed event", func(s store.Snapshot) bool {
		return s.Status.Up && s.Status.Reconnects == reconnects+1
	})
	if len(r.logs.Lines("lost the Docker daemon's event stream", "invalid character")) == 0 {
		t.Errorf("the log does not show the malformed event:\n%s", r.logTail())
	}
	must(r.e.Kill("web"))
	snap = r.settle()
	r.requireTruth(snap)
	x = r.mustScrape()
	if !x.Is(1, "docker_up") || !x.Is(float64(reconnects+1), "docker_exporter_event_stream_reconnects_total") {
		t.Errorf("after the malformed event:\n%s", x.Lines())
	}
}

// TestStartsWithDaemonUnreachable proves /metrics answers at once, with
// docker_up 0 and no container, while the daemon cannot be reached, and
// shows every container once it can.
func TestStartsWithDaemonUnreachable(t *testing.T) {
	r := startRig(t, rigConfig{before: func(e *fakeengine.Engine) {
		e.Add(fakeengine.Spec{Name: "web", State: "running"}, fakeengine.Spec{Name: "job", State: "exited", ExitCode: 1})
		if err := e.SetUnreachable(true); err != nil {
			t.Fatal(err)
		}
	}})
	check := func(x *exposition) {
		t.Helper()
		if !x.Is(0, "docker_up") || x.Count("docker_container_info") != 0 || x.Count("docker_daemon_info") != 0 || !x.Is(0, "docker_exporter_syncs_total") {
			t.Fatalf("with the daemon unreachable:\n%s", x.Lines())
		}
	}
	check(r.mustScrape()) // at once: a scrape never waits for the daemon
	r.poll("a failed connect", func() bool { return len(r.logs.Lines("level=WARN", "cannot reach the Docker daemon")) > 0 })
	check(r.mustScrape())

	if err := r.e.SetUnreachable(false); err != nil {
		t.Fatal(err)
	}
	snap := r.waitStore("the first sync", syncedAtLeast(1))
	r.requireTruth(snap)
	x := r.mustScrape()
	if !x.Is(1, "docker_up") || !x.Is(1, "docker_exporter_syncs_total") || !x.Is(0, "docker_exporter_event_stream_reconnects_total") ||
		!x.Is(1, "docker_daemon_info", "version", "20.10.24") ||
		!maps.Equal(x.States(), map[string]string{"web": "running", "job": "exited"}) {
		t.Fatalf("once the daemon is reachable:\n%s", x.Lines())
	}
}

// TestRetentionBoundsSeriesUnderChurn creates, starts and destroys uniquely
// named containers for 3 s with --store.retention=200ms, and proves that the
// names with counters (in the store and as series) stay within a bound set
// by the churn rate and the retention, that they fall to the live containers
// once the churn stops, and that the heap does not grow with the churn.
func TestRetentionBoundsSeriesUnderChurn(t *testing.T) {
	const (
		base      = 10
		retention = 200 * time.Millisecond
		period    = 10 * time.Millisecond // one create-start-destroy cycle each: 100 a second
		churnFor  = 3 * time.Second
		// The churn never runs more than maxLag cycles ahead of the store,
		// so that the bound is about the retention, not about the store's
		// speed under -race (TestConcurrentScrapesDuringEventStorm is).
		maxLag = 10
	)
	r := startRig(t, rigConfig{
		flags: []string{"--store.retention=" + retention.String()},
		before: func(e *fakeengine.Engine) {
			for i := range base {
				e.Add(fakeengine.Spec{Name: fmt.Sprint("base-", i), State: "running"})
			}
		},
	})
	r.waitStore("the first sync", syncedAtLeast(1))

	// Names with counters: the live containers the store holds (at most
	// base, and maxLag+1 churned ones it has not seen destroyed yet), and
	// the names destroyed within the retention. The churn destroys one per
	// period, a ticker never faster; the store commits at most those
	// destroyed in the last retention plus the maxLag+1 it may have been
	// behind: rate × retention + 2 ticks + maxLag + 1. Margin: twice the
	// rate × retention.
	bound := base + 2*(maxLag+1) + 2*int(retention/period) + 2
	destroyed := func(s store.Snapshot) int { return int(containerEvents(s, "destroy")) }

	changed, cancel := r.st.Subscribe()
	defer cancel()
	tick := time.NewTicker(period)
	defer tick.Stop()
	var (
		maxNames, maxSeries int
		sawRetained         bool
		heap                []uint64
	)
	// Churn for churnFor and for at least twice the bound in cycles, so
	// that names kept for ever would exceed it, however slow the machine.
	minCycles := 2 * bound
	start := time.Now()
	nextHeap := start.Add(time.Second)
	cycles := 0
	for ; time.Since(start) < churnFor || cycles < minCycles; cycles++ {
		if time.Since(start) > relWait {
			t.Fatalf("only %d cycles in %v", cycles, relWait)
		}
		<-tick.C
		id := r.e.Create(fakeengine.Spec{Name: fmt.Sprintf("churn-%05d", cycles)})
		if err := r.e.Start(id); err != nil {
			t.Fatal(err)
		}
		if err := r.e.Destroy(id); err != nil {
			t.Fatal(err)
		}
		deadline := time.After(relWait)
		for destroyed(r.st.Snapshot()) < cycles+1-maxLag {
			select {
			case <-changed:
			case <-deadline:
				t.Fatalf("the store fell %d cycles behind: %s", maxLag, describeSnapshot(r.st.Snapshot()))
			}
		}
		snap := r.st.Snapshot()
		maxNames = max(maxNames, len(snap.Counts))
		live := make(map[string]bool)
		for _, c := range snap.Containers {
			live[c.Name] = true
		}
		for name, c := range snap.Counts {
			if !live[name] && c.Destroys == 1 {
				sawRetained = true
			}
		}
		if cycles%20 == 0 {
			x := r.mustScrape()
			for name := range x.Families {
				if strings.HasPrefix(name, "docker_container_") && strings.HasSuffix(name, "_total") {
					maxSeries = max(maxSeries, x.Count(name))
				}
			}
		}
		if time.Now().After(nextHeap) {
			heap = append(heap, heapAlloc())
			nextHeap = nextHeap.Add(500 * time.Millisecond)
		}
	}
	heap = append(heap, heapAlloc())
	t.Logf("%d cycles; at most %d names with counters and %d series per family (bound %d); heap after GC %v", cycles, maxNames, maxSeries, bound, heap)
	if maxNames > bound || maxSeries > bound {
		t.Errorf("names with counters reached %d, series per family %d: over the bound %d", maxNames, maxSeries, bound)
	}
	if !sawRetained {
		t.Error("no destroyed name's counters were ever visible: the retention keeps nothing")
	}
	if len(heap) < 3 || heap[len(heap)-1] > 2*heap[0] {
		t.Errorf("heap after GC grew from %d to %d bytes over the churn (samples %v)", heap[0], heap[len(heap)-1], heap)
	}

	// Quiet: once the retention has passed, only the live containers have
	// counters; one more event sweeps the rest for good.
	r.poll("destroyed names to expire", func() bool {
		s := r.st.Snapshot()
		return len(s.Counts) == len(s.Containers)
	})
	snap := r.settle()
	live := make([]string, 0, len(snap.Containers))
	for _, c := range snap.Containers {
		live = append(live, c.Name)
	}
	slices.Sort(live)
	if got := slices.Sorted(maps.Keys(snap.Counts)); !slices.Equal(got, live) || len(live) != base+1 {
		t.Errorf("names with counters %v, want the live containers %v", got, live)
	}
	x := r.mustScrape()
	for _, family := range []string{"docker_container_starts_total", "docker_container_deaths_total", "docker_container_oom_events_total", "docker_container_destroys_total", "docker_container_restarts_total"} {
		if got := slices.Sorted(maps.Keys(x.ByName(family))); !slices.Equal(got, live) {
			t.Errorf("%s has series for %v, want the live containers %v", family, got, live)
		}
	}
	r.requireTruth(snap)
}

// heapAlloc is the live heap after two collections (the second empties what
// sync.Pools kept through the first).
func heapAlloc() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// stormer applies random actions (the engine's Random) at a rate, over a
// few goroutines, until halted. Unlike Engine.Storm it never catches up
// more than 100 ms of actions: starved (-race on a loaded machine) it slows
// down, where Storm makes up for the lost time in ever larger bursts and
// overruns its end by as long.
type stormer struct {
	actions atomic.Int64
	stop    chan struct{}
	halted  sync.Once
	wg      sync.WaitGroup
}

func startStorm(e *fakeengine.Engine, perSecond, workers int, seed uint64) *stormer {
	s := &stormer{stop: make(chan struct{})}
	for w := range workers {
		s.wg.Go(func() {
			rng := rand.New(rand.NewPCG(seed, uint64(w)))
			rate := float64(perSecond) / float64(workers)
			tick := time.NewTicker(time.Millisecond)
			defer tick.Stop()
			start, done := time.Now(), 0
			for {
				select {
				case <-s.stop:
					return
				case <-tick.C:
				}
				due := int(time.Since(start).Seconds() * rate)
				done = max(done, due-int(rate/10))
				for ; done < due; done++ {
					select {
					case <-s.stop:
						return
					default:
					}
					e.Random(rng)
					s.actions.Add(1)
				}
			}
		})
	}
	return s
}

// halt stops the storm and returns how many actions it applied. It may be
// called again, deferred for a test that fails half-way.
func (s *stormer) halt() int64 {
	s.halted.Do(func() { close(s.stop) })
	s.wg.Wait()
	return s.actions.Load()
}

// TestConcurrentScrapesDuringEventStorm runs 50 scrapers, half asking for
// gzip, against a store applying a storm of about 5,000 events a second:
// every scrape must be a 200 that parses and is consistent in itself (see
// exposition.check), the race detector must find nothing, and no goroutine
// may be left afterwards.
func TestConcurrentScrapesDuringEventStorm(t *testing.T) {
	const (
		scrapers = 50
		// Parsing is the test's work, not the exporter's, and under -race
		// it costs several times what serving does: two goroutines parse
		// every answer, and the scrapers wait for them when they fall
		// behind, so that the storm and the store keep their share of 2
		// cores while 50 scrapes are in flight.
		parsers = 2
	)
	r := startRig(t, rigConfig{
		engine: fakeengine.Options{StreamBuffer: 1 << 16},
		before: func(e *fakeengine.Engine) { e.Populate(50, 21) },
		flags:  []string{"--container.labels=*"},
	})
	r.waitStore("the first sync", syncedAtLeast(1))

	// About 5,000 events a second (an action emits 1.4 events on average),
	// for 3 s and at least 5,000 events: a loaded machine slows the storm
	// down, and then it lasts longer.
	const minEvents = 5000
	emitted := r.e.Emitted()
	storm := startStorm(r.e, 3700, 4, 9)
	defer storm.halt()
	began := time.Now()

	type answer struct {
		scraper int
		body    []byte
	}
	var (
		stop     atomic.Bool
		mu       sync.Mutex
		errs     []error
		done     [scrapers]int
		parsed   int
		minEv    = -1.0
		maxEv    float64
		answers  = make(chan answer, scrapers)
		scraping sync.WaitGroup
		parsing  sync.WaitGroup
		failed   = func(err error) { mu.Lock(); errs = append(errs, err); mu.Unlock() }
	)
	finish := sync.OnceFunc(func() {
		stop.Store(true)
		scraping.Wait()
		close(answers)
		parsing.Wait()
	})
	defer finish()
	for range parsers {
		parsing.Go(func() {
			for a := range answers {
				x, err := parseExposition(a.body)
				if err != nil {
					failed(fmt.Errorf("scraper %d: %w", a.scraper, err))
					continue
				}
				ev := x.Sum("docker_events_total")
				mu.Lock()
				parsed++
				if minEv < 0 || ev < minEv {
					minEv = ev
				}
				maxEv = max(maxEv, ev)
				mu.Unlock()
			}
		})
	}
	for i := range scrapers {
		scraping.Go(func() {
			enc := "" // the transport asks for gzip and unpacks it
			if i%2 == 1 {
				enc = "identity"
			}
			for n := 1; !stop.Load(); n++ {
				body, err := r.fetch(enc)
				if err != nil {
					failed(fmt.Errorf("scraper %d, scrape %d: %w", i, n, err))
					return
				}
				answers <- answer{i, body}
				mu.Lock()
				done[i]++
				mu.Unlock()
			}
		})
	}
	r.poll("the storm", func() bool { return time.Since(began) >= 3*time.Second && r.e.Emitted()-emitted >= minEvents })
	actions := storm.halt()
	emitted = r.e.Emitted() - emitted
	took := time.Since(began)
	finish()

	total := 0
	for _, n := range done {
		total += n
	}
	t.Logf("%d actions, %d events in %v (%.0f a second); %d scrapes, %d parsed; events seen by the scrapes from %v to %v",
		actions, emitted, took.Round(time.Millisecond), float64(emitted)/took.Seconds(), total, parsed, minEv, maxEv)
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(done[:], 0) || parsed != total {
		t.Errorf("scrapes per scraper %v, %d of %d parsed", done, parsed, total)
	}
	if maxEv <= minEv {
		t.Errorf("every scrape saw %v events: none ran while the store applied the storm", maxEv)
	}
}
