package store

import (
	"context"
	"fmt"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"

	"github.com/docker-exporter/docker_exporter/internal/workers"
)

// sync lists every container, inspects each, and makes the store equal to
// what the daemon has now. Nothing changes unless the whole sync succeeds.
// It returns how many containers the daemon has.
func (s *Store) sync(ctx context.Context, daemon DaemonInfo, reconnect bool) (int, error) {
	lctx, cancel := s.call(ctx)
	list, err := s.engine.ContainerList(lctx, client.ContainerListOptions{All: true})
	cancel()
	if err != nil {
		return 0, fmt.Errorf("list containers: %w", err)
	}
	ids := make([]string, len(list.Items))
	for i, item := range list.Items {
		ids[i] = item.ID
	}
	inspected, err := s.inspectMany(ctx, ids, true)
	if err != nil {
		return 0, err
	}
	s.reconcile(inspected, daemon, reconnect)
	return len(inspected), nil
}

// inspectMany inspects the containers ids with bounded concurrency, in the
// order given. A container the daemon no longer has is left out. With
// stopOnError, the first other failure stops it and is returned; without,
// failures are logged and those containers left out.
func (s *Store) inspectMany(ctx context.Context, ids []string, stopOnError bool) ([]Container, error) {
	results, err := s.inspectAll(ctx, ids, stopOnError)
	if err != nil {
		return nil, err
	}
	out := make([]Container, 0, len(ids))
	for _, r := range results {
		switch {
		case r.err != nil:
			s.log.Warn("cannot inspect container after event; keeping what the event says", "err", r.err)
		case r.c != nil:
			out = append(out, *r.c)
		}
	}
	return out, nil
}

// inspection is the outcome of one inspect: c is nil when the daemon has no
// such container, or when the inspect failed with err.
type inspection struct {
	c   *Container
	err error
}

// inspectAll inspects the containers ids with bounded concurrency and
// returns each outcome in the order given. With stopOnError, the first
// failure stops it and is returned.
func (s *Store) inspectAll(ctx context.Context, ids []string, stopOnError bool) ([]inspection, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make([]inspection, len(ids))
	var (
		errOnce  sync.Once
		firstErr error
	)
	workers.Each(ctx, len(ids), s.cfg.InspectConcurrency, func(i int) {
		c, found, err := s.inspect(ctx, ids[i])
		switch {
		case err != nil:
			results[i].err = err
			if stopOnError {
				errOnce.Do(func() {
					firstErr = err
					cancel()
				})
			}
		case found:
			results[i].c = &c
		}
	})
	if firstErr != nil {
		return nil, firstErr
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return results, nil
}

// inspect asks the daemon for one container; found is false when the
// daemon no longer has it. A container the store meets for the first time
// also gets its pod, if the engine knows pods.
func (s *Store) inspect(ctx context.Context, id string) (c Container, found bool, err error) {
	cctx, cancel := s.call(ctx)
	defer cancel()
	res, err := s.engine.ContainerInspect(cctx, id, client.ContainerInspectOptions{})
	switch {
	case cerrdefs.IsNotFound(err):
		return c, false, nil
	case err != nil:
		return c, false, fmt.Errorf("inspect container %s: %w", shortID(id), err)
	}
	c = fromInspect(res.Container)
	if pods, ok := s.engine.(PodFinder); ok && !s.podKnown(id) {
		pod, err := pods.ContainerPod(cctx, id)
		if err != nil {
			// Left for the next inspect to ask again.
			s.log.Debug("cannot tell the pod of a container", "id", shortID(id), "err", err)
		} else {
			c.Pod, c.podKnown = pod, true
		}
	}
	return c, true, nil
}

// podKnown says whether the store already has id's pod. Inspects run on
// workers while the Run goroutine, the only writer, waits for them.
func (s *Store) podKnown(id string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c := s.containers[id]
	return c != nil && c.podKnown
}

// reconcile makes the store equal to the daemon's full view, counting what
// the event stream could not tell: a run that ended unseen is one death, a
// container that vanished is one destroy.
func (s *Store) reconcile(inspected []Container, daemon DaemonInfo, reconnect bool) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := make(map[string]bool, len(inspected))
	for _, fresh := range inspected {
		if s.retained.buried(fresh.ID) {
			continue
		}
		seen[fresh.ID] = true
		s.mend(fresh, now)
	}
	for id, prev := range s.containers {
		if !seen[id] {
			s.vanish(prev, now)
		}
	}
	s.status.Daemon = daemon
	s.status.Up = true
	s.status.Syncs++
	s.status.LastSync = now
	if reconnect {
		s.status.Reconnects++
	}
	s.retained.sweep(now)
	s.notify()
}

// mend stores the daemon's fresh view of a container in place of the
// store's, counting a run that ended unseen as one death. s.mu must be held.
func (s *Store) mend(fresh Container, now time.Time) {
	prev := s.containers[fresh.ID]
	next := fresh
	if prev != nil {
		next = fresh.since(*prev)
	}
	if prev != nil && missedDeath(prev, &next) {
		s.retained.of(next.Name).Deaths++
		next.deathCountedAt = next.Finished
	}
	s.put(&next, now)
}

// vanish forgets a container the daemon no longer has, counting one
// destroy, and one death if it was running. Its id is tombstoned, so that
// its events, replayed or late, are ignored. s.mu must be held.
func (s *Store) vanish(prev *Container, now time.Time) {
	nc := s.retained.of(prev.Name)
	if prev.running() {
		nc.Deaths++
	}
	nc.Destroys++
	s.del(prev.ID, now)
	s.retained.bury(prev.ID, now)
}

// missedDeath says whether the daemon's view shows a run ending that the
// store did not see end.
func missedDeath(prev, next *Container) bool {
	newRun := next.Started.After(prev.Started)
	if prev.running() {
		return !next.running() || newRun
	}
	return newRun && !next.running()
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
