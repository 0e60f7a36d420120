package store

import (
	"context"
	"strconv"
	"time"

	"github.com/moby/moby/api/types/events"
)

// eventKey identifies one event, to recognise it when a replay sends it again.
func eventKey(ev events.Message) string {
	return string(ev.Type) + "\x00" + string(ev.Action) + "\x00" + ev.Actor.ID + "\x00" + strconv.FormatInt(ev.TimeNano, 10)
}

// handle applies one event to the container it names. Only the Run
// goroutine calls it, so it may read the store's maps without the lock; it
// takes the lock to write. The details an event lacks are left to an
// inspect after its batch: handle adds the container's id to later.
func (s *Store) handle(ctx context.Context, ev events.Message, later map[string]struct{}) {
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
		s.commit(ev, kind, nil, nil, "", effect{})
		return
	}
	prev := s.containers[id]
	if prev == nil && (kind.Action == "destroy" || !isStateAction(kind.Action)) {
		// Nothing to forget, and nothing worth an inspect: exec and attach
		// events of a container the store does not know yet.
		s.commit(ev, kind, nil, nil, "", effect{})
		return
	}
	base := Container{ID: id}
	if prev != nil {
		base = *prev
	}
	next, eff := apply(base, ev)
	// What the event counts goes to the name the container had when it
	// happened, even if an inspect below already sees a later rename.
	countAs := next.Name
	switch {
	case eff.destroy:
	case prev == nil && kind.Action != "create":
		// A container met first in an event other than create is only
		// added once the daemon confirms it exists.
		fresh, found, err := s.inspect(ctx, id)
		if err != nil || !found {
			if err != nil {
				s.log.Warn("cannot inspect a container first seen in an event; leaving it to the next event or sync", "id", shortID(id), "action", kind.Action, "err", err)
			}
			s.commit(ev, kind, nil, nil, "", effect{})
			return
		}
		next = fresh.since(next)
	case prev == nil || needsInspect(kind.Action):
		later[id] = struct{}{}
	}
	if countAs == "" {
		countAs = next.Name
	}
	s.commit(ev, kind, prev, &next, countAs, eff)
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
func (s *Store) commit(ev events.Message, kind EventKind, prev, next *Container, countAs string, eff effect) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events[kind]++
	s.status.Events++
	if at := eventTime(ev); at.After(s.status.LastEvent) {
		s.status.LastEvent = at
	}
	if next != nil {
		if eff.destroy {
			s.del(next.ID, now)
			s.retained.bury(next.ID, now)
		} else {
			s.put(next, now)
		}
		count(&s.retained.of(countAs).Counts, eff)
		if s.names[countAs] == 0 {
			s.retained.orphan(countAs, now)
		}
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

// put stores c in place of whatever had its id. It and del keep count of
// the containers holding each name: a name's counters expire only once no
// container holds it.
func (s *Store) put(c *Container, now time.Time) {
	if old := s.containers[c.ID]; old != nil {
		s.unref(old.Name, now)
	}
	s.containers[c.ID] = c
	s.names[c.Name]++
	s.retained.adopt(c.Name)
}

func (s *Store) del(id string, now time.Time) {
	if old := s.containers[id]; old != nil {
		s.unref(old.Name, now)
		delete(s.containers, id)
	}
}

func (s *Store) unref(name string, now time.Time) {
	if s.names[name]--; s.names[name] <= 0 {
		delete(s.names, name)
		s.retained.orphan(name, now)
	}
}

// refresh inspects the containers whose events left details out, once each
// however many events they had in the batch, and stores what the daemon
// says. Its view is at least as new as every event of the batch.
func (s *Store) refresh(ctx context.Context, later map[string]struct{}) {
	if len(later) == 0 {
		return
	}
	ids := make([]string, 0, len(later))
	for id := range later {
		ids = append(ids, id)
	}
	clear(later)
	inspected, err := s.inspectMany(ctx, ids, false)
	if err != nil {
		return // the session is ending; the next sync sees everything
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, fresh := range inspected {
		if cur := s.containers[fresh.ID]; cur != nil {
			next := fresh.since(*cur)
			s.put(&next, now)
		}
	}
	s.notify()
}
