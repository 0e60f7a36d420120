package store

import (
	"context"
	"strconv"

	"github.com/moby/moby/api/types/events"
)

// eventKey identifies one event, to recognise it when a replay sends it again.
func eventKey(ev events.Message) string {
	return string(ev.Type) + "\x00" + string(ev.Action) + "\x00" + ev.Actor.ID + "\x00" + strconv.FormatInt(ev.TimeNano, 10)
}

// handle applies one event to the container it names. Only the Run
// goroutine calls it, so it may read the store's maps without the lock; it
// takes the lock to write.
func (s *Store) handle(ctx context.Context, ev events.Message) {
	if ev.TimeNano == 0 {
		ev.TimeNano = ev.Time * 1e9
	}
	if ev.TimeNano > s.lastNano {
		s.lastNano = ev.TimeNano
		clear(s.keysAtLast)
	}
	if ev.TimeNano == s.lastNano {
		s.keysAtLast[eventKey(ev)] = struct{}{}
	}
	kind := EventKind{Type: string(ev.Type), Action: baseAction(ev.Action)}

	id := ev.Actor.ID
	if ev.Type != events.ContainerEventType || id == "" || s.retained.buried(id) {
		s.commit(ev, kind, nil, nil, effect{})
		return
	}
	prev := s.containers[id]
	if prev == nil && (kind.Action == "destroy" || !isStateAction(kind.Action)) {
		// Nothing to forget, and nothing worth an inspect: exec and attach
		// events of a container the store does not know yet.
		s.commit(ev, kind, nil, nil, effect{})
		return
	}
	base := Container{ID: id}
	if prev != nil {
		base = *prev
	}
	next, eff := apply(base, ev)
	if !eff.destroy && (prev == nil || needsInspect(kind.Action)) {
		r, found, err := s.inspect(ctx, id)
		switch {
		case err != nil:
			s.log.Warn("cannot inspect container after event; keeping what the event says", "id", shortID(id), "action", kind.Action, "err", err)
		case found:
			next = fromInspect(next, r)
		}
		// A container met first in an event other than create is only
		// added once the daemon confirms it exists.
		if prev == nil && kind.Action != "create" && (err != nil || !found) {
			s.commit(ev, kind, nil, nil, effect{})
			return
		}
	}
	s.commit(ev, kind, prev, &next, eff)
}

// isStateAction says whether an action can change what the store shows.
func isStateAction(action string) bool {
	switch action {
	case "create", "start", "restart", "die", "kill", "oom", "stop", "pause", "unpause", "rename", "update", "health_status", "destroy":
		return true
	}
	return false
}

// commit stores the outcome of one event: the event counted, the container
// replaced (or removed on destroy) and its name's counters fed, all under one
// lock so that a snapshot never sees a death without its exited state.
func (s *Store) commit(ev events.Message, kind EventKind, prev, next *Container, eff effect) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events[kind]++
	if at := eventTime(ev); at.After(s.status.LastEvent) {
		s.status.LastEvent = at
	}
	if next != nil {
		if eff.destroy {
			delete(s.containers, next.ID)
			s.retained.bury(next.ID, now)
		} else {
			s.containers[next.ID] = next
		}
		if prev != nil && prev.Name != next.Name {
			s.retained.orphan(prev.Name, now)
		}
		nc := s.retained.adopt(next.Name)
		if eff.destroy {
			s.retained.orphan(next.Name, now)
		}
		count(&nc.Counts, eff)
	}
	s.retained.sweep(now)
	s.notify()
}

func count(c *Counts, eff effect) {
	if eff.start {
		c.Starts++
	}
	if eff.death {
		c.Deaths++
	}
	if eff.oom {
		c.OOMs++
	}
	if eff.destroy {
		c.Destroys++
	}
}
