package stats

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/docker-exporter/docker_exporter/internal/workers"
	"github.com/docker-exporter/docker_exporter/store"
)

// Containers is where the sampler learns which containers run; *store.Store
// is one.
type Containers interface {
	Snapshot() store.Snapshot
	Subscribe() (changed <-chan struct{}, cancel func())
}

// Source reads one running container's usage. An error wrapping ErrGone
// means the container stopped or vanished meanwhile.
type Source interface {
	Read(ctx context.Context, c *store.Container) (Usage, error)
	// Name says where the figures come from, for the log and a self-metric:
	// "cgroup" or "api".
	Name() string
}

// Config tunes a Sampler. Zero values take the defaults noted.
type Config struct {
	// Interval is how often every running container is read (default 15s).
	Interval time.Duration
	// Concurrency bounds the reads in flight (default 4): the stats API
	// answers each in the daemon's time.
	Concurrency int
	// Timeout bounds one read (default 10s).
	Timeout time.Duration
	// Fallback, when set, takes over for good from the source when a
	// sample reads no running container and fails for a reason the
	// Engine's stats API does not have (see fallsBack): --stats.source=auto.
	Fallback Source
	// Hints say, per reason, what an operator can do about it; the WARN
	// that says a reason first adds its hint.
	Hints  map[string]string
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.Interval <= 0 {
		c.Interval = 15 * time.Second
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 4
	}
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// newcomerDelay is how soon after the store changes a container that
// started since the last sample is read, rather than at the next interval.
// It also bounds how often store changes (one per event) can cost a look.
const newcomerDelay = time.Second

// Sample is the usage of the containers that ran at one moment, by id. A
// published Sample is never modified.
type Sample struct {
	Seq      uint64 // counts samples, so a reader can tell a new one
	At       time.Time
	Duration time.Duration // how long the reads took
	Source   string
	ByID     map[string]Usage
	// Started is when each container in ByID last started, as the store
	// said when it was read: figures of an earlier run are not this one's.
	Started map[string]time.Time
	// Unsampled counts the containers that ran or were paused throughout
	// the sample and have no figures in it: their reads failed.
	Unsampled int
	// ReadErrors counts failed reads since the sampler started.
	ReadErrors ReadErrors
}

// Sampler reads the usage of every running or paused container of the
// store every Interval, and soon after one starts, and keeps the latest.
type Sampler struct {
	containers Containers
	src        Source
	cfg        Config
	log        *slog.Logger

	mu     sync.RWMutex
	latest Sample

	// Only the goroutine that samples uses these.
	warned map[string]bool // reasons logged at WARN: the rest go to debug
	// suspects are the containers whose reads said gone while the store
	// still said they ran, by id, with the start of that run: the process
	// may have just ended. The same again at the next sample is no race.
	suspects map[string]time.Time
}

// New makes a sampler; Run samples.
func New(containers Containers, src Source, cfg Config) *Sampler {
	cfg = cfg.withDefaults()
	return &Sampler{containers: containers, src: src, cfg: cfg, log: cfg.Logger, warned: map[string]bool{},
		latest: Sample{Source: src.Name(), ByID: map[string]Usage{}, Started: map[string]time.Time{}}}
}

// Latest returns the newest sample. It never reads anything.
func (s *Sampler) Latest() Sample {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.latest
}

// Run samples until ctx ends.
func (s *Sampler) Run(ctx context.Context) {
	changed, cancel := s.containers.Subscribe()
	defer cancel()
	tick := time.NewTicker(s.cfg.Interval)
	defer tick.Stop()
	soon := time.NewTimer(0)
	defer soon.Stop()
	armed := true // the first sample: as soon as the store has containers
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			s.sample(ctx, false)
		case <-changed:
			if !armed {
				soon.Reset(newcomerDelay)
				armed = true
			}
		case <-soon.C:
			armed = false
			s.sample(ctx, true)
		}
	}
}

// sample reads the running containers: all of them, or with onlyNew those
// the latest sample lacks (a container that started since, or one whose
// read failed).
func (s *Sampler) sample(ctx context.Context, onlyNew bool) {
	begin := time.Now()
	prev := s.Latest()
	var targets []*store.Container
	running := make(map[string]time.Time)
	for _, c := range s.containers.Snapshot().Containers {
		if !runs(c) {
			continue
		}
		running[c.ID] = c.Started
		if onlyNew && prev.Started[c.ID].Equal(c.Started) {
			if _, ok := prev.ByID[c.ID]; ok {
				continue
			}
		}
		targets = append(targets, c)
	}
	if onlyNew && len(targets) == 0 && len(running) == len(prev.ByID) {
		return
	}
	read := s.readAll(ctx, targets)
	if ctx.Err() != nil {
		return
	}
	next := Sample{Seq: prev.Seq + 1, Source: s.src.Name(), ReadErrors: prev.ReadErrors,
		ByID: make(map[string]Usage, len(running)), Started: make(map[string]time.Time, len(running))}
	if onlyNew {
		// The others keep their figures, while they still run.
		for id, u := range prev.ByID {
			if _, ok := running[id]; ok {
				next.ByID[id], next.Started[id] = u, prev.Started[id]
			}
		}
	}
	// What runs after the reads tells a container that stopped meanwhile,
	// which is no failure, from a read that failed.
	now := make(map[string]time.Time)
	for _, c := range s.containers.Snapshot().Containers {
		if runs(c) {
			now[c.ID] = c.Started
		}
	}
	stillRuns := func(id string, started time.Time) bool {
		startedNow, ok := now[id]
		return ok && startedNow.Equal(started)
	}
	suspects := make(map[string]time.Time)
	succeeded, fallBackFor := 0, ""
	type failure struct {
		c      *store.Container
		reason string
		err    error
	}
	var failures []failure
	for i, c := range targets {
		r := read[i]
		if errors.Is(r.err, ErrGone) && stillRuns(c.ID, c.Started) {
			if started, ok := s.suspects[c.ID]; !ok || !started.Equal(c.Started) {
				suspects[c.ID] = c.Started
				continue
			}
			// Not wrapped: it is no longer a stop.
			r.err = readError(ReasonNoPid, fmt.Errorf("%s: process %d is not there, though the daemon says it runs (%v)", c.Name, c.Pid, r.err))
		}
		switch {
		case errors.Is(r.err, ErrGone):
			s.log.Debug("container gone before its usage was read", "name", c.Name)
			continue
		case r.err != nil && !stillRuns(c.ID, c.Started):
			continue // it stopped meanwhile
		case r.err != nil:
			reason := reasonOf(r.err)
			next.ReadErrors.add(reason)
			if fallsBack(reason) && fallBackFor == "" {
				fallBackFor = reason
			}
			failures = append(failures, failure{c, reason, r.err})
			continue
		}
		succeeded++
		u := r.u
		if old, ok := prev.ByID[c.ID]; ok && prev.Started[c.ID].Equal(c.Started) {
			u = monotonic(old, u)
		}
		next.ByID[c.ID], next.Started[c.ID] = u, c.Started
	}
	s.suspects = suspects
	for id, started := range running {
		if _, ok := next.ByID[id]; !ok && stillRuns(id, started) {
			next.Unsampled++
		}
	}
	next.At, next.Duration = time.Now(), time.Since(begin)
	s.mu.Lock()
	s.latest = next
	s.mu.Unlock()

	if succeeded == 0 && fallBackFor != "" && s.cfg.Fallback != nil {
		from := s.src.Name()
		s.src, s.cfg.Fallback = s.cfg.Fallback, nil
		f := failures[slices.IndexFunc(failures, func(f failure) bool { return f.reason == fallBackFor })]
		s.log.Warn("cannot read any running container's usage from the "+from+" source; using the "+s.src.Name()+" source from now on",
			"reason", fallBackFor, "name", f.c.Name, "err", f.err, "hint", s.cfg.Hints[fallBackFor])
		s.sample(ctx, false)
		return
	}
	for _, f := range failures {
		s.logFailure(f.c, f.reason, f.err)
	}
}

// runs says whether a container has usage to read.
func runs(c *store.Container) bool { return c.State == "running" || c.State == "paused" }

// logFailure says each reason once at WARN, with what to do about it, and
// every failure after that at debug.
func (s *Sampler) logFailure(c *store.Container, reason string, err error) {
	if s.warned[reason] {
		s.log.Debug("cannot read a container's usage; leaving it out", "name", c.Name, "reason", reason, "err", err)
		return
	}
	s.warned[reason] = true
	attrs := []any{"reason", reason, "stats_source", s.src.Name(), "name", c.Name, "err", err}
	if hint := s.cfg.Hints[reason]; hint != "" {
		attrs = append(attrs, "hint", hint)
	}
	s.log.Warn("cannot read a running container's usage; leaving out every container that fails for this reason "+
		"(docker_exporter_stats_read_errors_total counts them; further failures are logged at debug)", attrs...)
}

type reading struct {
	u   Usage
	err error
}

func (s *Sampler) readAll(ctx context.Context, targets []*store.Container) []reading {
	out := make([]reading, len(targets))
	workers.Each(ctx, len(targets), s.cfg.Concurrency, func(i int) {
		rctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
		out[i].u, out[i].err = s.src.Read(rctx, targets[i])
		cancel()
	})
	return out
}

// monotonic keeps the counters of one run of a container from going back:
// a figure read lower than before (a file read mid-update, an interface
// gone) keeps its last value, so that Prometheus sees no reset.
func monotonic(old, u Usage) Usage {
	if u.HasCPU && old.HasCPU {
		u.CPUSeconds = max(u.CPUSeconds, old.CPUSeconds)
	}
	if u.HasThrottled && old.HasThrottled {
		u.ThrottledSeconds = max(u.ThrottledSeconds, old.ThrottledSeconds)
	}
	if u.HasBlockIO && old.HasBlockIO {
		u.BlockReadBytes = max(u.BlockReadBytes, old.BlockReadBytes)
		u.BlockWriteBytes = max(u.BlockWriteBytes, old.BlockWriteBytes)
	}
	if len(u.Networks) > 0 && len(old.Networks) > 0 {
		before := make(map[string]Interface, len(old.Networks))
		for _, n := range old.Networks {
			before[n.Name] = n
		}
		nets := make([]Interface, len(u.Networks))
		for i, n := range u.Networks {
			if o, ok := before[n.Name]; ok {
				n.RxBytes, n.TxBytes = max(n.RxBytes, o.RxBytes), max(n.TxBytes, o.TxBytes)
				n.RxPackets, n.TxPackets = max(n.RxPackets, o.RxPackets), max(n.TxPackets, o.TxPackets)
			}
			nets[i] = n
		}
		u.Networks = nets
	}
	return u
}
