// Package store keeps every container of one Docker daemon in memory, fed by
// the daemon's event stream, so that readers never have to ask the daemon.
package store

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"
)

// Engine is the part of the Docker client the store uses; *client.Client
// satisfies it, and tests can hand in something else.
type Engine interface {
	ContainerList(ctx context.Context, options client.ContainerListOptions) (client.ContainerListResult, error)
	ContainerInspect(ctx context.Context, id string, options client.ContainerInspectOptions) (client.ContainerInspectResult, error)
	Events(ctx context.Context, options client.EventsListOptions) client.EventsResult
	Info(ctx context.Context, options client.InfoOptions) (client.SystemInfoResult, error)
	ServerVersion(ctx context.Context, options client.ServerVersionOptions) (client.ServerVersionResult, error)
}

var _ Engine = (*client.Client)(nil)

// PodFinder is an Engine whose daemon groups containers in pods, as
// Podman's does; the store asks it once for each container it meets.
// For a daemon without pods it answers "" without a request.
type PodFinder interface {
	ContainerPod(ctx context.Context, id string) (string, error)
}

// Config tunes a Store. Zero values take the defaults noted.
type Config struct {
	// Retention is how long the counters of a destroyed container's name
	// are kept (default 15m).
	Retention time.Duration
	// Timeout bounds each request to the daemon except the event stream,
	// which stays open (default 10s).
	Timeout time.Duration
	// InspectConcurrency bounds the inspects of a sync (default 8).
	InspectConcurrency int
	// MinBackoff and MaxBackoff bound the wait between reconnects
	// (defaults 250ms and 30s).
	MinBackoff, MaxBackoff time.Duration
	// ResyncInterval is how often the store compares itself with one list
	// of the daemon's containers and mends what events it lost; 0 turns
	// the periodic resync off (one still follows signs of lost events).
	ResyncInterval time.Duration
	Logger         *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.Retention <= 0 {
		c.Retention = 15 * time.Minute
	}
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Second
	}
	if c.InspectConcurrency <= 0 {
		c.InspectConcurrency = 8
	}
	if c.MinBackoff <= 0 {
		c.MinBackoff = 250 * time.Millisecond
	}
	if c.MaxBackoff < c.MinBackoff {
		c.MaxBackoff = max(30*time.Second, c.MinBackoff)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// EventKind names a kind of event, its action without the ": detail" suffix.
type EventKind struct {
	Type   string
	Action string
}

// DaemonInfo describes the daemon, as read at the last (re)connect.
type DaemonInfo struct {
	Version, APIVersion, OS, Arch, KernelVersion string
	// Flavor is FlavorDocker or FlavorPodman: which daemon serves the API.
	Flavor string
	// MemTotal is the daemon host's memory in bytes.
	MemTotal int64
}

// Status is what the store knows of its own link to the daemon.
type Status struct {
	// Up is true while the event stream is connected and the last sync
	// succeeded.
	Up         bool
	Daemon     DaemonInfo // zero until the daemon was first reached
	LastEvent  time.Time  // the daemon's time of the newest event applied
	Events     uint64     // events received, of every type
	LastSync   time.Time
	Reconnects uint64
	Syncs      uint64
	// Resyncs counts the list-only resyncs by why they ran; Corrections,
	// the containers they found wrong.
	Resyncs     Resyncs
	Corrections Corrections
}

// Resyncs counts resyncs by reason.
type Resyncs struct {
	Interval   uint64 // the periodic one
	FellBehind uint64 // events arrived late, so the daemon may have dropped some
}

// Corrections counts the containers resyncs found wrong, by kind.
type Corrections struct {
	Missing uint64 // the daemon has it, the store did not
	Ghost   uint64 // the store had it, the daemon does not
	Changed uint64 // both have it, the store's view was out of date
}

// Snapshot is a consistent view of the store at one moment. Its containers
// are shared with the store and must not be modified.
type Snapshot struct {
	Containers []*Container
	Counts     map[string]Counts // by container name
	Events     map[EventKind]uint64
	Status     Status
}

// Store is the in-memory view of a daemon's containers. One goroutine (Run)
// writes; any number read through Snapshot.
type Store struct {
	engine Engine
	cfg    Config
	log    *slog.Logger

	mu         sync.RWMutex
	containers map[string]*Container
	names      map[string]int // how many containers hold each name
	retained   retained
	events     map[EventKind]uint64
	status     Status
	subs       map[chan struct{}]struct{}

	// Owned by the Run goroutine: the newest event time applied and the
	// events applied at exactly that time, to drop the ones a `since`
	// replay sends again.
	lastNano   int64
	keysAtLast map[string]struct{}
	now        func() time.Time
}

// New makes an empty store; Run fills it.
func New(engine Engine, cfg Config) *Store {
	cfg = cfg.withDefaults()
	return &Store{
		engine:     engine,
		cfg:        cfg,
		log:        cfg.Logger,
		containers: make(map[string]*Container),
		names:      make(map[string]int),
		retained:   newRetained(cfg.Retention),
		events:     make(map[EventKind]uint64),
		subs:       make(map[chan struct{}]struct{}),
		keysAtLast: make(map[string]struct{}),
		now:        time.Now,
	}
}

// Snapshot returns the current state. It never calls the daemon.
func (s *Store) Snapshot() Snapshot {
	s.mu.RLock()
	defer s.mu.RUnlock()
	snap := Snapshot{
		Containers: make([]*Container, 0, len(s.containers)),
		Counts:     s.retained.visible(s.now()),
		Events:     make(map[EventKind]uint64, len(s.events)),
		Status:     s.status,
	}
	for _, c := range s.containers {
		snap.Containers = append(snap.Containers, c)
	}
	for k, v := range s.events {
		snap.Events[k] = v
	}
	return snap
}

// Status returns the store's own status alone, cheaper than a Snapshot.
func (s *Store) Status() Status {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.status
}

// Subscribe returns a channel that receives a signal after every change to
// the store. Signals coalesce: one pending signal stands for any number of
// changes, so a slow subscriber never blocks the store; it reads a Snapshot
// to see what is new. cancel releases the subscription.
func (s *Store) Subscribe() (changed <-chan struct{}, cancel func()) {
	ch := make(chan struct{}, 1)
	s.mu.Lock()
	s.subs[ch] = struct{}{}
	s.mu.Unlock()
	return ch, func() {
		s.mu.Lock()
		delete(s.subs, ch)
		s.mu.Unlock()
	}
}

// notify must be called with s.mu held.
func (s *Store) notify() {
	for ch := range s.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// Run follows the daemon until ctx ends: connect, sync, apply events; on any
// break, keep the last state, mark the daemon down and reconnect with capped
// exponential backoff. It returns when ctx is done.
func (s *Store) Run(ctx context.Context) {
	backoff := s.cfg.MinBackoff
	// everUp: a sync has succeeded before, so the next one is a reconnect.
	// logged: this outage has been logged once; retries log at debug only.
	everUp, logged := false, false
	for {
		synced, err := s.session(ctx, everUp)
		if ctx.Err() != nil {
			return
		}
		s.setUp(false)
		if synced {
			backoff = s.cfg.MinBackoff
			everUp, logged = true, false
		}
		switch {
		case logged:
			s.log.Debug("reconnect to the Docker daemon failed", "err", err, "retry_in", backoff)
		case synced:
			s.log.Warn("lost the Docker daemon's event stream; serving the last known state and reconnecting", "err", err)
		default:
			s.log.Warn("cannot reach the Docker daemon; serving docker_up 0 and retrying", "err", err)
		}
		logged = true
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, s.cfg.MaxBackoff)
	}
}

func (s *Store) setUp(up bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.status.Up != up {
		s.status.Up = up
		s.notify()
	}
}

// call bounds one request to the daemon by the configured timeout.
func (s *Store) call(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.cfg.Timeout)
}

func (s *Store) daemonInfo(ctx context.Context) (DaemonInfo, time.Time, error) {
	cctx, cancel := s.call(ctx)
	defer cancel()
	info, err := s.engine.Info(cctx, client.InfoOptions{})
	if err != nil {
		return DaemonInfo{}, time.Time{}, err
	}
	ver, err := s.engine.ServerVersion(cctx, client.ServerVersionOptions{})
	if err != nil {
		return DaemonInfo{}, time.Time{}, err
	}
	return DaemonInfo{
		Version:       info.Info.ServerVersion,
		APIVersion:    ver.APIVersion,
		OS:            info.Info.OSType,
		Arch:          info.Info.Architecture,
		KernelVersion: info.Info.KernelVersion,
		MemTotal:      info.Info.MemTotal,
		Flavor:        FlavorOf(ver),
	}, parseTime(info.Info.SystemTime), nil
}

// session connects once: it subscribes to events first, then syncs with a
// full list, then applies events until the stream breaks. Events that arrive
// during the sync queue up and are applied after it, in order.
func (s *Store) session(ctx context.Context, reconnect bool) (synced bool, err error) {
	daemon, daemonNow, err := s.daemonInfo(ctx)
	if err != nil {
		return false, err
	}
	// Replay from the last event applied. The first connect starts from the
	// daemon's own now, so the subscription has no gap before the list, and
	// a later reconnect replays from there even if no event came between.
	if s.lastNano == 0 && !daemonNow.IsZero() {
		s.lastNano = daemonNow.UnixNano()
	}
	sinceNano := s.lastNano
	replayed := make(map[string]struct{}, len(s.keysAtLast))
	for k := range s.keysAtLast {
		replayed[k] = struct{}{}
	}

	sctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	opts := client.EventsListOptions{}
	if sinceNano > 0 {
		opts.Since = formatSince(sinceNano)
	}
	q := newEventQueue(newLagWatch(daemonNow, time.Now()))
	stream := s.engine.Events(sctx, opts)
	wg.Go(func() { q.fill(sctx, stream) })

	n, err := s.sync(sctx, daemon, reconnect)
	if err != nil {
		return false, err
	}
	s.log.Info("synced with the Docker daemon; following its events", "containers", n, "daemon_version", daemon.Version, "api_version", daemon.APIVersion, "reconnect", reconnect)
	return true, s.follow(sctx, q, sinceNano, replayed)
}

// follow applies the queued events in batches until the stream ends, and
// resyncs in between: every ResyncInterval, and soon after events arrived
// late (the daemon drops events for a subscriber that falls behind,
// without a word).
func (s *Store) follow(ctx context.Context, q *eventQueue, sinceNano int64, replayed map[string]struct{}) error {
	later := make(map[string]struct{})
	apply := func(batch []events.Message) {
		for _, ev := range batch {
			if ev.TimeNano == sinceNano && sinceNano != 0 {
				if _, dup := replayed[eventKey(ev)]; dup {
					continue
				}
			}
			s.handle(ctx, ev, later)
		}
		s.refresh(ctx, later)
	}
	clock := newResyncClock(s.cfg.ResyncInterval, time.Now())
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		if d, ok := clock.wait(time.Now()); ok {
			timer.Reset(d)
		} else {
			timer.Stop()
		}
		batch, behind, err := q.take(ctx, timer.C)
		apply(batch)
		if err != nil {
			return err
		}
		if behind {
			clock.fellBehind(time.Now())
		}
		if reason, due := clock.due(time.Now()); due {
			behindDuring := false
			drain := func() error {
				batch, behind, err := q.poll()
				apply(batch)
				behindDuring = behindDuring || behind
				return err
			}
			if err := s.resync(ctx, reason, q.offset, q.queuedIDs, drain); err != nil {
				return err
			}
			clock.ran(reason, time.Now())
			if behindDuring {
				clock.fellBehind(time.Now())
			}
		}
	}
}

func formatSince(nano int64) string {
	// The Engine takes "seconds.nanoseconds"; since is inclusive.
	return fmt.Sprintf("%d.%09d", nano/int64(time.Second), nano%int64(time.Second))
}
