package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/system"
	"github.com/moby/moby/client"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fakeEngine is a small in-memory daemon for the store's own logic: what it
// lists and inspects is set by the test, and the test drives its event
// stream. Real daemon behaviour is tested end to end against dockerd.
type fakeEngine struct {
	mu         sync.Mutex
	containers map[string]container.InspectResponse
	history    []events.Message // what a `since` replay can send
	live       chan events.Message
	broken     chan struct{}
	down       bool
	onList     func()
	inspects   int
}

func newFakeEngine() *fakeEngine {
	return &fakeEngine{
		containers: make(map[string]container.InspectResponse),
		live:       make(chan events.Message, 100),
		broken:     make(chan struct{}),
	}
}

var errDown = errors.New("daemon down")

func (f *fakeEngine) set(id, name, state string, started, finished time.Time, exitCode int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.containers[id] = container.InspectResponse{
		ID: id, Name: "/" + name, Image: "sha256:abc", Created: t0.Format(time.RFC3339Nano),
		Config: &container.Config{Image: "busybox"},
		State: &container.State{
			Status:     container.ContainerState(state),
			StartedAt:  started.Format(time.RFC3339Nano),
			FinishedAt: finished.Format(time.RFC3339Nano),
			ExitCode:   exitCode,
		},
	}
}

func (f *fakeEngine) remove(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.containers, id)
}

// emit records an event for replays and sends it on the live stream.
func (f *fakeEngine) emit(ev events.Message) {
	f.mu.Lock()
	f.history = append(f.history, ev)
	f.mu.Unlock()
	f.live <- ev
}

// record only keeps an event for a later replay: it happened while the
// stream was broken.
func (f *fakeEngine) record(ev events.Message) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.history = append(f.history, ev)
}

// forget drops the replay buffer, as a daemon restart does.
func (f *fakeEngine) forget() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.history = nil
}

func (f *fakeEngine) breakStream(down bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = down
	close(f.broken)
	f.broken = make(chan struct{})
}

func (f *fakeEngine) setDown(down bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = down
}

func (f *fakeEngine) isDown() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.down
}

func (f *fakeEngine) Info(context.Context, client.InfoOptions) (client.SystemInfoResult, error) {
	if f.isDown() {
		return client.SystemInfoResult{}, errDown
	}
	return client.SystemInfoResult{Info: system.Info{
		ServerVersion: "20.10.24", OSType: "linux", Architecture: "x86_64", KernelVersion: "6.1",
		SystemTime: t0.Format(time.RFC3339Nano),
	}}, nil
}

func (f *fakeEngine) ServerVersion(context.Context, client.ServerVersionOptions) (client.ServerVersionResult, error) {
	return client.ServerVersionResult{APIVersion: "1.41"}, nil
}

func (f *fakeEngine) ContainerList(context.Context, client.ContainerListOptions) (client.ContainerListResult, error) {
	if f.onList != nil {
		f.onList()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return client.ContainerListResult{}, errDown
	}
	var out client.ContainerListResult
	for id, r := range f.containers {
		item := container.Summary{ID: id, Names: []string{r.Name}, Created: parseTime(r.Created).Unix()}
		if r.State != nil {
			item.State = r.State.Status
		}
		out.Items = append(out.Items, item)
	}
	return out, nil
}

func (f *fakeEngine) ContainerInspect(_ context.Context, id string, _ client.ContainerInspectOptions) (client.ContainerInspectResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.inspects++
	r, ok := f.containers[id]
	if !ok {
		return client.ContainerInspectResult{}, notFound(id)
	}
	return client.ContainerInspectResult{Container: r}, nil
}

type notFound string

func (e notFound) Error() string { return "No such container: " + string(e) }
func (notFound) NotFound()       {}

func (f *fakeEngine) Events(ctx context.Context, opts client.EventsListOptions) client.EventsResult {
	msgs := make(chan events.Message)
	errs := make(chan error, 1)
	f.mu.Lock()
	var replay []events.Message
	if opts.Since != "" {
		since := parseSince(opts.Since)
		for _, ev := range f.history {
			if ev.TimeNano >= since {
				replay = append(replay, ev)
			}
		}
	}
	broken := f.broken
	f.mu.Unlock()
	go func() {
		defer close(errs)
		send := func(ev events.Message) bool {
			select {
			case msgs <- ev:
				return true
			case <-ctx.Done():
				errs <- ctx.Err()
				return false
			}
		}
		for _, ev := range replay {
			if !send(ev) {
				return
			}
		}
		for {
			select {
			case ev := <-f.live:
				if !send(ev) {
					return
				}
			case <-broken:
				errs <- errors.New("stream broken")
				return
			case <-ctx.Done():
				errs <- ctx.Err()
				return
			}
		}
	}()
	return client.EventsResult{Messages: msgs, Err: errs}
}

func parseSince(s string) int64 {
	var sec, nsec int64
	fmt.Sscanf(s, "%d.%d", &sec, &nsec)
	return sec*1e9 + nsec
}

func ev(id, action string, sec int, attrs map[string]string) events.Message {
	m := event(action, sec, attrs)
	m.Actor.ID = id
	return m
}

// run starts a store over f and stops it when the test ends.
func run(t *testing.T, f *fakeEngine) *Store {
	t.Helper()
	s := New(f, Config{MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond})
	runStore(t, s)
	return s
}

// runStore runs s until the test ends.
func runStore(t *testing.T, s *Store) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

// waitFor waits until the store's snapshot satisfies cond.
func waitFor(t *testing.T, s *Store, what string, cond func(Snapshot) bool) Snapshot {
	t.Helper()
	changed, cancel := s.Subscribe()
	defer cancel()
	deadline := time.After(5 * time.Second)
	for {
		snap := s.Snapshot()
		if cond(snap) {
			return snap
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("timed out waiting for %s; last snapshot: %s", what, describe(snap))
		}
	}
}

func describe(snap Snapshot) string {
	out := fmt.Sprintf("status=%+v counts=%+v containers:", snap.Status, snap.Counts)
	for _, c := range snap.Containers {
		out += fmt.Sprintf(" %s/%s", c.Name, c.State)
	}
	return out
}

func find(snap Snapshot, name string) *Container {
	for _, c := range snap.Containers {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func synced(n uint64) func(Snapshot) bool {
	return func(s Snapshot) bool { return s.Status.Up && s.Status.Syncs >= n }
}

func TestInitialSyncCountsNothing(t *testing.T) {
	f := newFakeEngine()
	f.set("a", "web", "running", at(1), time.Time{}, 0)
	f.set("b", "job", "exited", at(1), at(2), 3)
	s := run(t, f)
	snap := waitFor(t, s, "first sync", synced(1))
	if len(snap.Containers) != 2 {
		t.Fatalf("containers: %s", describe(snap))
	}
	if job := find(snap, "job"); !job.HasExitCode || job.ExitCode != 3 || !job.Finished.Equal(at(2)) {
		t.Errorf("job: %+v", job)
	}
	if web := find(snap, "web"); web.HasExitCode || !web.Finished.IsZero() {
		t.Errorf("a running container that never finished has no exit code or finish time: %+v", web)
	}
	for name, c := range snap.Counts {
		if c != (Counts{}) {
			t.Errorf("counts of %s start at zero, got %+v", name, c)
		}
	}
	if snap.Status.Daemon.Version != "20.10.24" || snap.Status.Daemon.APIVersion != "1.41" {
		t.Errorf("daemon info: %+v", snap.Status.Daemon)
	}
}

func TestEventDuringListIsAppliedAfterIt(t *testing.T) {
	f := newFakeEngine()
	f.set("a", "web", "running", at(1), time.Time{}, 0)
	var once sync.Once
	f.onList = func() {
		once.Do(func() {
			// The container dies while the store is listing: the list
			// may or may not show it, the event must count it.
			f.set("a", "web", "exited", at(1), at(3), 1)
			f.emit(ev("a", "die", 3, map[string]string{"exitCode": "1"}))
		})
	}
	s := run(t, f)
	snap := waitFor(t, s, "the death", func(s Snapshot) bool { return s.Counts["web"].Deaths == 1 })
	if web := find(snap, "web"); web.State != "exited" || web.ExitCode != 1 {
		t.Errorf("web: %+v", web)
	}
}

func TestEventsUpdateOnlyTheirContainer(t *testing.T) {
	f := newFakeEngine()
	f.set("a", "web", "running", at(1), time.Time{}, 0)
	f.set("b", "db", "running", at(1), time.Time{}, 0)
	s := run(t, f)
	waitFor(t, s, "first sync", synced(1))

	f.set("a", "web", "exited", at(1), at(5), 137)
	f.emit(ev("a", "oom", 5, nil))
	f.emit(ev("a", "die", 5, map[string]string{"exitCode": "137"}))
	snap := waitFor(t, s, "the OOM death", func(s Snapshot) bool { return s.Counts["web"].Deaths == 1 })
	if c := snap.Counts["web"]; c.OOMs != 1 || c.Starts != 0 {
		t.Errorf("web counts: %+v", c)
	}
	if db := find(snap, "db"); db.State != "running" || snap.Counts["db"] != (Counts{}) {
		t.Errorf("db changed: %+v %+v", db, snap.Counts["db"])
	}
	if snap.Events[EventKind{"container", "die"}] != 1 || snap.Events[EventKind{"container", "oom"}] != 1 {
		t.Errorf("events: %+v", snap.Events)
	}
	if !snap.Status.LastEvent.Equal(at(5)) {
		t.Errorf("last event time is the daemon's: got %v", snap.Status.LastEvent)
	}
}

func TestCreateStartRenameDestroy(t *testing.T) {
	f := newFakeEngine()
	s := run(t, f)
	waitFor(t, s, "first sync", synced(1))

	f.set("n", "new", "created", time.Time{}, time.Time{}, 0)
	f.emit(ev("n", "create", 1, map[string]string{"name": "new", "image": "busybox", "team": "core"}))
	waitFor(t, s, "create", func(s Snapshot) bool { return find(s, "new") != nil })
	f.set("n", "new", "running", at(2), time.Time{}, 0)
	f.emit(ev("n", "start", 2, nil))
	waitFor(t, s, "start", func(s Snapshot) bool { return s.Counts["new"].Starts == 1 })
	f.set("n", "renamed", "running", at(2), time.Time{}, 0)
	f.emit(ev("n", "rename", 3, map[string]string{"name": "renamed", "oldName": "/new"}))
	snap := waitFor(t, s, "rename", func(s Snapshot) bool { return find(s, "renamed") != nil })
	if find(snap, "new") != nil {
		t.Errorf("old name still there: %s", describe(snap))
	}
	if snap.Counts["new"].Starts != 1 {
		t.Errorf("the old name keeps its counts for the retention: %+v", snap.Counts)
	}

	f.remove("n")
	f.emit(ev("n", "die", 4, map[string]string{"exitCode": "0"}))
	f.emit(ev("n", "destroy", 5, nil))
	snap = waitFor(t, s, "destroy", func(s Snapshot) bool { return len(s.Containers) == 0 })
	if c := snap.Counts["renamed"]; c.Deaths != 1 || c.Destroys != 1 {
		t.Errorf("counts after destroy: %+v", snap.Counts)
	}
}

func TestUnknownContainerIsInspectedAndGhostsAreNotAdded(t *testing.T) {
	f := newFakeEngine()
	s := run(t, f)
	waitFor(t, s, "first sync", synced(1))

	// A start for a container the store never saw created: it asks.
	f.set("x", "stray", "running", at(1), time.Time{}, 0)
	f.emit(ev("x", "start", 1, nil))
	// A die for a container the daemon no longer has: no ghost.
	f.emit(ev("gone", "die", 2, map[string]string{"exitCode": "1"}))
	// Malformed events: no actor, unknown type, unknown action.
	f.emit(events.Message{Type: events.ContainerEventType, Action: "die", TimeNano: at(3).UnixNano()})
	f.emit(events.Message{Type: "weird", Action: "boom", TimeNano: at(4).UnixNano()})
	f.emit(ev("x", "teleport", 5, nil))
	snap := waitFor(t, s, "all events", func(s Snapshot) bool { return s.Status.LastEvent.Equal(at(5)) })
	if len(snap.Containers) != 1 || find(snap, "stray") == nil {
		t.Fatalf("containers: %s", describe(snap))
	}
	if snap.Counts["stray"].Starts != 1 {
		t.Errorf("stray counts: %+v", snap.Counts)
	}
	if snap.Events[EventKind{"weird", "boom"}] != 1 {
		t.Errorf("every event is counted: %+v", snap.Events)
	}
}

func TestDeathDuringDisconnectIsCountedOnce(t *testing.T) {
	f := newFakeEngine()
	f.set("a", "web", "running", at(1), time.Time{}, 0)
	s := run(t, f)
	waitFor(t, s, "first sync", synced(1))
	f.emit(ev("a", "exec_start: true", 2, nil))
	waitFor(t, s, "first event", func(s Snapshot) bool { return s.Status.LastEvent.Equal(at(2)) })

	// The stream breaks; while the store is away the container dies. The
	// replay (since the last event) sends the die; the list shows it exited.
	f.breakStream(true)
	waitFor(t, s, "down", func(s Snapshot) bool { return !s.Status.Up })
	f.set("a", "web", "exited", at(1), at(3), 2)
	f.record(ev("a", "die", 3, map[string]string{"exitCode": "2"}))
	f.setDown(false)

	snap := waitFor(t, s, "resync", synced(2))
	snap = waitFor(t, s, "replay applied", func(s Snapshot) bool { return s.Status.LastEvent.Equal(at(3)) })
	if d := snap.Counts["web"].Deaths; d != 1 {
		t.Errorf("deaths = %d, want exactly 1 (replay and reconcile both saw it)", d)
	}
	if web := find(snap, "web"); web.State != "exited" || web.ExitCode != 2 {
		t.Errorf("web: %+v", web)
	}
	if snap.Status.Reconnects != 1 {
		t.Errorf("reconnects = %d", snap.Status.Reconnects)
	}
	// The event at the `since` time is replayed too; it must not count twice.
	if n := snap.Events[EventKind{"container", "exec_start"}]; n != 1 {
		t.Errorf("exec_start counted %d times", n)
	}
}

func TestDeathsAcrossDaemonRestartAreFoundByReconcile(t *testing.T) {
	f := newFakeEngine()
	f.set("a", "web", "running", at(1), time.Time{}, 0)
	f.set("b", "db", "running", at(1), time.Time{}, 0)
	f.set("c", "cache", "exited", at(1), at(2), 0)
	s := run(t, f)
	waitFor(t, s, "first sync", synced(1))

	// The daemon restarts and forgets its events: web died, db was removed,
	// cache ran again and exited again; none of it can be replayed.
	f.breakStream(true)
	waitFor(t, s, "down", func(s Snapshot) bool { return !s.Status.Up })
	f.forget()
	f.set("a", "web", "exited", at(1), at(10), 143)
	f.remove("b")
	f.set("c", "cache", "exited", at(11), at(12), 0)
	f.setDown(false)

	snap := waitFor(t, s, "resync", synced(2))
	want := map[string]Counts{
		"web":   {Deaths: 1},
		"db":    {Deaths: 1, Destroys: 1},
		"cache": {Deaths: 1},
	}
	for name, w := range want {
		if got := snap.Counts[name]; got != w {
			t.Errorf("%s counts = %+v, want %+v", name, got, w)
		}
	}
	if find(snap, "db") != nil || len(snap.Containers) != 2 {
		t.Errorf("containers: %s", describe(snap))
	}

	// A second resync with nothing changed counts nothing more.
	f.breakStream(false)
	snap = waitFor(t, s, "second resync", synced(3))
	for name, w := range want {
		if got := snap.Counts[name]; got != w {
			t.Errorf("after a quiet resync %s counts = %+v, want %+v", name, got, w)
		}
	}
}

func TestReplayedEventsOfARemovedContainerAreIgnored(t *testing.T) {
	f := newFakeEngine()
	f.set("a", "web", "running", at(1), time.Time{}, 0)
	s := run(t, f)
	waitFor(t, s, "first sync", synced(1))
	f.emit(ev("a", "pause", 2, nil))
	waitFor(t, s, "pause", func(s Snapshot) bool { return find(s, "web").State == "paused" })

	f.breakStream(true)
	waitFor(t, s, "down", func(s Snapshot) bool { return !s.Status.Up })
	f.remove("a")
	f.record(ev("a", "kill", 3, nil))
	f.record(ev("a", "die", 3, map[string]string{"exitCode": "137"}))
	f.record(ev("a", "destroy", 4, nil))
	f.setDown(false)

	waitFor(t, s, "resync", synced(2))
	snap := waitFor(t, s, "replay", func(s Snapshot) bool { return s.Status.LastEvent.Equal(at(4)) })
	if got, want := snap.Counts["web"], (Counts{Deaths: 1, Destroys: 1}); got != want {
		t.Errorf("counts = %+v, want %+v", got, want)
	}
	if len(snap.Containers) != 0 {
		t.Errorf("ghost: %s", describe(snap))
	}
}

func TestStartsDownAndSyncsWhenTheDaemonAppears(t *testing.T) {
	f := newFakeEngine()
	f.setDown(true)
	f.set("a", "web", "running", at(1), time.Time{}, 0)
	s := run(t, f)
	snap := s.Snapshot()
	if snap.Status.Up || len(snap.Containers) != 0 {
		t.Fatalf("before the daemon answers: %s", describe(snap))
	}
	f.setDown(false)
	snap = waitFor(t, s, "sync", synced(1))
	if snap.Status.Reconnects != 0 {
		t.Errorf("a first connect is not a reconnect: %d", snap.Status.Reconnects)
	}
}

func TestRecreatedNameContinuesItsCounters(t *testing.T) {
	f := newFakeEngine()
	f.set("a", "web", "running", at(1), time.Time{}, 0)
	s := run(t, f)
	waitFor(t, s, "first sync", synced(1))

	f.remove("a")
	f.emit(ev("a", "die", 2, map[string]string{"exitCode": "0"}))
	f.emit(ev("a", "destroy", 3, map[string]string{"name": "web"}))
	f.set("b", "web", "running", at(5), time.Time{}, 0)
	f.emit(ev("b", "create", 4, map[string]string{"name": "web", "image": "busybox"}))
	f.emit(ev("b", "start", 5, nil))
	snap := waitFor(t, s, "re-create", func(s Snapshot) bool { return s.Counts["web"].Starts == 1 })
	if got, want := snap.Counts["web"], (Counts{Starts: 1, Deaths: 1, Destroys: 1}); got != want {
		t.Errorf("counts = %+v, want %+v", got, want)
	}
}

func TestRetentionForgetsCountersOfDestroyedNames(t *testing.T) {
	f := newFakeEngine()
	f.set("a", "web", "running", at(1), time.Time{}, 0)
	s := New(f, Config{Retention: time.Minute, MinBackoff: time.Millisecond})
	var clockMu sync.Mutex
	clock := t0
	s.now = func() time.Time {
		clockMu.Lock()
		defer clockMu.Unlock()
		return clock
	}
	advance := func(d time.Duration) {
		clockMu.Lock()
		clock = clock.Add(d)
		clockMu.Unlock()
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Run(ctx)
	}()
	defer func() {
		cancel()
		<-done
	}()
	waitFor(t, s, "first sync", synced(1))

	f.remove("a")
	f.emit(ev("a", "destroy", 2, nil))
	waitFor(t, s, "destroy", func(s Snapshot) bool { return len(s.Containers) == 0 })
	advance(59 * time.Second)
	if _, ok := s.Snapshot().Counts["web"]; !ok {
		t.Fatal("counters vanished before the retention")
	}
	advance(time.Second)
	if _, ok := s.Snapshot().Counts["web"]; ok {
		t.Fatal("counters still visible after the retention")
	}
	// The next write forgets them for good, and the id's tombstone too.
	for i := range 100 {
		id := "churn" + strconv.Itoa(i)
		f.emit(ev(id, "destroy", 10+i, nil))
	}
	waitFor(t, s, "churn", func(s Snapshot) bool { return s.Status.LastEvent.Equal(at(109)) })
	s.mu.RLock()
	defer s.mu.RUnlock()
	if len(s.retained.counts) != 0 || len(s.retained.gone) != 0 {
		t.Errorf("retained after sweep: %d counts, %d ids", len(s.retained.counts), len(s.retained.gone))
	}
}
