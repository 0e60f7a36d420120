package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"
)

// FuzzEventSequence decodes its input into a sequence of steps: events
// delivered live (through handle, in batches that end with refresh, as a
// session applies them), events the store misses (only a replay sends them),
// changes to what the daemon lists and inspects, failing inspects, resyncs,
// whole sessions (subscribe with `since`, replay, sync, follow to the end of
// the stream), daemon restarts that forget the replay buffer, and the clock
// moving past the retention. Actions come from the real set and garbage; ids
// from a small set; attributes include bad exit codes; times go backwards,
// repeat, are missing or extreme. After every step the store must hold
// together (see checker.check). Nothing does I/O: the daemon is fakeEngine.
func FuzzEventSequence(f *testing.F) {
	for _, seed := range fuzzSeeds() {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		in := &fuzzInput{data: data}
		eng := &fuzzEngine{fakeEngine: newFakeEngine(), failInspect: make(map[string]bool)}
		s := New(eng, Config{Retention: time.Minute, InspectConcurrency: 3})
		clock := t0
		s.now = func() time.Time { return clock }
		ctx := context.Background()
		chk := &checker{t: t, s: s}
		later := make(map[string]struct{})
		synced := false
		// A sync first, as a session always starts with one.
		if _, err := s.sync(ctx, DaemonInfo{Version: "fuzz"}, false); err != nil {
			t.Fatal(err)
		}
		chk.check("the first sync")

		for step := 0; !in.empty() && step < 300; step++ {
			switch op := in.byte() % 12; op {
			case 0, 1, 2, 3: // an event, live
				ev := in.event()
				eng.record(ev)
				s.handle(ctx, ev, later)
				chk.check(fmt.Sprintf("step %d: live %s %q of %q", step, ev.Type, ev.Action, ev.Actor.ID))
			case 4: // the end of a batch
				s.refresh(ctx, later)
				chk.check(fmt.Sprintf("step %d: refresh", step))
			case 5: // an event the store misses
				eng.record(in.event())
			case 6: // the daemon's view of one container changes
				eng.put(in)
			case 7:
				eng.remove(in.pick(fuzzIDs))
			case 8: // a resync, after the batch that was under way
				s.refresh(ctx, later)
				_, err := s.sync(ctx, DaemonInfo{Version: "fuzz"}, synced)
				synced = synced || err == nil
				chk.check(fmt.Sprintf("step %d: resync (err %v)", step, err))
			case 9: // a whole session: replay since the last event, then these
				s.refresh(ctx, later)
				n := int(in.byte() % 4)
				for range n {
					eng.stream = append(eng.stream, in.event())
				}
				ok, err := s.session(ctx, synced)
				synced = synced || ok
				eng.stream = nil
				chk.check(fmt.Sprintf("step %d: session of %d new events (synced %v, err %v)", step, n, ok, err))
			case 10:
				switch in.byte() % 5 {
				case 0: // the clock moves on, up to four retentions
					clock = clock.Add(time.Duration(in.byte()) * s.cfg.Retention / 64)
					chk.check(fmt.Sprintf("step %d: clock at %v", step, clock.Sub(t0)))
				case 1: // a daemon restart forgets its event buffer
					eng.forget()
				case 2: // the daemon goes down or comes back
					eng.setDown(!eng.isDown())
				case 3:
					id := in.pick(fuzzIDs)
					eng.mu.Lock()
					eng.failInspect[id] = !eng.failInspect[id]
					eng.mu.Unlock()
				case 4: // a resync with one list, after the batch under way
					s.refresh(ctx, later)
					err := s.resync(ctx, resyncInterval, 0, func() map[string]bool { return nil }, func() error { return nil })
					chk.check(fmt.Sprintf("step %d: list resync (err %v)", step, err))
				}
			case 11: // a duplicate of an event delivered before
				eng.mu.Lock()
				var ev events.Message
				if len(eng.history) > 0 {
					ev = eng.history[int(in.byte())%len(eng.history)]
				}
				eng.mu.Unlock()
				if ev.Type != "" {
					s.handle(ctx, ev, later)
					chk.check(fmt.Sprintf("step %d: duplicate %s %q of %q", step, ev.Type, ev.Action, ev.Actor.ID))
				}
			}
		}
		s.refresh(ctx, later)
		chk.check("the last refresh")
	})
}

// fuzzEngine is fakeEngine with inspects that fail for chosen ids, and an
// event stream that replays the history since the time asked, sends the
// events of stream, and ends.
type fuzzEngine struct {
	*fakeEngine
	failInspect map[string]bool
	stream      []events.Message
}

var errInspect = errors.New("fuzz: inspect failed")

func (f *fuzzEngine) ContainerInspect(ctx context.Context, id string, opts client.ContainerInspectOptions) (client.ContainerInspectResult, error) {
	f.mu.Lock()
	fail := f.failInspect[id]
	f.mu.Unlock()
	if fail {
		return client.ContainerInspectResult{}, errInspect
	}
	return f.fakeEngine.ContainerInspect(ctx, id, opts)
}

func (f *fuzzEngine) Events(ctx context.Context, opts client.EventsListOptions) client.EventsResult {
	f.mu.Lock()
	var send []events.Message
	if opts.Since != "" {
		since := parseSince(opts.Since)
		for _, ev := range f.history {
			if ev.TimeNano >= since {
				send = append(send, ev)
			}
		}
	}
	f.history = append(f.history, f.stream...)
	send = append(send, f.stream...)
	f.mu.Unlock()
	msgs := make(chan events.Message)
	errs := make(chan error, 1)
	go func() {
		defer close(errs)
		for _, ev := range send {
			select {
			case msgs <- ev:
			case <-ctx.Done():
				errs <- ctx.Err()
				return
			}
		}
		errs <- io.EOF
	}()
	return client.EventsResult{Messages: msgs, Err: errs}
}

// put sets the daemon's view of one container from the input.
func (f *fuzzEngine) put(in *fuzzInput) {
	id := in.pick(fuzzIDs)
	r := container.InspectResponse{
		ID: id, Name: in.pick([]string{"/web", "/db", "web", "", "/x\xff", "/" + in.str()}),
		Image: "sha256:" + in.str(), Created: in.timeString(), RestartCount: int(int8(in.byte())),
	}
	if in.byte()%8 != 0 {
		r.Config = &container.Config{Image: in.pick([]string{"busybox", "", in.str()}), Labels: in.attrs()}
	}
	if in.byte()%8 != 0 {
		st := &container.State{
			Status:     container.ContainerState(in.pick(append(States, "", "bogus"))),
			StartedAt:  in.timeString(),
			FinishedAt: in.timeString(),
			ExitCode:   int(int8(in.byte())),
			OOMKilled:  in.byte()%2 == 0,
		}
		if h := in.pick([]string{"", "starting", "healthy", "unhealthy", "none"}); h != "" {
			st.Health = &container.Health{Status: container.HealthStatus(h), FailingStreak: int(in.byte() % 8)}
		}
		r.State = st
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.containers[id] = r
}

var (
	fuzzIDs     = []string{"a", "b", "c", "d", strings.Repeat("f", 64), ""}
	fuzzActions = []string{
		"create", "start", "restart", "die", "kill", "oom", "stop", "pause", "unpause", "rename", "update",
		"health_status: healthy", "health_status: unhealthy", "health_status: starting", "health_status: sideways",
		"health_status", "destroy", "exec_start: sh -c true", "attach", "teleport", "", ":",
	}
	fuzzKeys   = []string{"name", "image", "exitCode", "oldName", "signal", composeProjectLabel}
	fuzzValues = []string{"", "web", "/web", "db", "/db", "0", "137", "143", "-1", "x", "99999999999999999999", "\xff\xfe"}
)

// fuzzInput reads steps from the fuzzer's bytes; past the end it reads zeros.
type fuzzInput struct {
	data []byte
	i    int
}

func (in *fuzzInput) empty() bool { return in.i >= len(in.data) }

func (in *fuzzInput) byte() byte {
	if in.empty() {
		return 0
	}
	b := in.data[in.i]
	in.i++
	return b
}

func (in *fuzzInput) pick(from []string) string { return from[int(in.byte())%len(from)] }

// str is up to 15 raw bytes.
func (in *fuzzInput) str() string {
	n := min(int(in.byte()%16), len(in.data)-in.i)
	if n <= 0 {
		return ""
	}
	s := string(in.data[in.i : in.i+n])
	in.i += n
	return s
}

func (in *fuzzInput) attrs() map[string]string {
	n := int(in.byte() % 4)
	if n == 0 {
		return nil
	}
	attrs := make(map[string]string, n)
	for range n {
		key := in.pick(fuzzKeys)
		if in.byte()%4 == 0 {
			key = in.str()
		}
		value := in.pick(fuzzValues)
		if in.byte()%4 == 0 {
			value = in.str()
		}
		attrs[key] = value
	}
	return attrs
}

// timeString is a daemon timestamp: a time near t0, the zero time, garbage.
func (in *fuzzInput) timeString() string {
	switch b := in.byte(); b % 4 {
	case 0:
		return "0001-01-01T00:00:00Z"
	case 1:
		return in.str()
	default:
		return at(int(int8(b))).Format(time.RFC3339Nano)
	}
}

func (in *fuzzInput) event() events.Message {
	ev := events.Message{Type: events.ContainerEventType}
	switch b := in.byte() % 8; b {
	case 6:
		ev.Type = events.NetworkEventType
	case 7:
		ev.Type = events.Type(in.str())
	}
	if i := int(in.byte()) % (len(fuzzActions) + 1); i < len(fuzzActions) {
		ev.Action = events.Action(fuzzActions[i])
	} else {
		ev.Action = events.Action(in.str())
	}
	ev.Actor = events.Actor{ID: in.pick(fuzzIDs), Attributes: in.attrs()}
	// Times around t0+100s, out of order and repeating; in seconds only;
	// missing; extreme.
	base := at(100)
	switch in.byte() % 6 {
	case 0, 1, 2:
		ev.TimeNano = base.Add(time.Duration(int8(in.byte())) * time.Second).UnixNano()
		ev.Time = ev.TimeNano / 1e9
	case 3:
		ev.Time = base.Unix() + int64(int8(in.byte()))
	case 4:
	case 5:
		ev.TimeNano = []int64{math.MaxInt64, math.MinInt64, -1, 1}[in.byte()%4]
		ev.Time = ev.TimeNano / 1e9
	}
	return ev
}

// checker checks what must hold between any two steps, and remembers the
// last snapshot to check that counters never go down.
type checker struct {
	t    *testing.T
	s    *Store
	prev *Snapshot
}

func (c *checker) check(after string) {
	c.t.Helper()
	s := c.s
	s.mu.RLock()
	var problems []string
	names := make(map[string]int)
	for id, ct := range s.containers {
		switch {
		case ct == nil:
			problems = append(problems, "nil container at "+id)
			continue
		case ct.ID != id:
			problems = append(problems, fmt.Sprintf("container %q stored as %q", ct.ID, id))
		case s.retained.buried(id):
			problems = append(problems, fmt.Sprintf("container %q is both stored and buried", id))
		}
		names[ct.Name]++
		if nc := s.retained.counts[ct.Name]; nc == nil || !nc.orphanedAt.IsZero() {
			problems = append(problems, fmt.Sprintf("container %q has name %q without live counters (%+v)", id, ct.Name, nc))
		}
	}
	for name, n := range s.names {
		if n != names[name] {
			problems = append(problems, fmt.Sprintf("name %q counted %d times, held by %d containers", name, n, names[name]))
		}
	}
	for name, n := range names {
		if s.names[name] != n {
			problems = append(problems, fmt.Sprintf("name %q held by %d containers, counted %d times", name, n, s.names[name]))
		}
	}
	for name, nc := range s.retained.counts {
		if nc.orphanedAt.IsZero() && names[name] == 0 {
			problems = append(problems, fmt.Sprintf("counters of %q never expire, yet no container holds the name", name))
		}
	}
	s.mu.RUnlock()

	snap := s.Snapshot()
	ids := make(map[string]bool, len(snap.Containers))
	for _, ct := range snap.Containers {
		if ids[ct.ID] {
			problems = append(problems, fmt.Sprintf("the snapshot holds %q twice", ct.ID))
		}
		ids[ct.ID] = true
		if _, ok := snap.Counts[ct.Name]; !ok {
			problems = append(problems, fmt.Sprintf("the snapshot has no counters for %q, the name of %q", ct.Name, ct.ID))
		}
	}
	if p := c.prev; p != nil {
		for name, was := range p.Counts {
			now, ok := snap.Counts[name]
			if ok && (now.Starts < was.Starts || now.Deaths < was.Deaths || now.OOMs < was.OOMs || now.Destroys < was.Destroys) {
				problems = append(problems, fmt.Sprintf("counters of %q went down: %+v, then %+v", name, was, now))
			}
		}
		for kind, was := range p.Events {
			if snap.Events[kind] < was {
				problems = append(problems, fmt.Sprintf("events %v went down: %d, then %d", kind, was, snap.Events[kind]))
			}
		}
		ps, ns := p.Status, snap.Status
		if ns.Events < ps.Events || ns.Syncs < ps.Syncs || ns.Reconnects < ps.Reconnects || ns.LastEvent.Before(ps.LastEvent) {
			problems = append(problems, fmt.Sprintf("status went back: %+v, then %+v", ps, ns))
		}
	}
	c.prev = &snap
	if len(problems) > 0 {
		c.t.Fatalf("after %s:\n%s", after, strings.Join(problems, "\n"))
	}
}

// seed writes steps in the encoding FuzzEventSequence reads, for readable
// seeds.
type seed []byte

func index(of string, in []string) byte {
	for i, s := range in {
		if s == of {
			return byte(i)
		}
	}
	panic("no " + of)
}

// at encodes a time of t0+sec for timeString; sec%4 must be 2 or 3.
func (s seed) timeAt(sec int8) seed {
	if sec%4 != 2 && sec%4 != 3 && sec%4 != -2 && sec%4 != -1 {
		panic(fmt.Sprint("timeString cannot say ", sec))
	}
	return append(s, byte(sec))
}

// put: the daemon shows container id (by index) with name, state, times.
func (s seed) put(id int, name, state string, started, finished int8, exitCode int8) seed {
	s = append(s, 6, byte(id), index(name, []string{"/web", "/db", "web", "", "/x\xff"}), 0)
	s = s.timeAt(2)
	s = append(s, 0, 1, 0, 0, 1, index(state, States))
	if started == 0 {
		s = append(s, 0)
	} else {
		s = s.timeAt(started)
	}
	if finished == 0 {
		s = append(s, 0)
	} else {
		s = s.timeAt(finished)
	}
	return append(s, byte(exitCode), 1, 0)
}

// event: op, then a container event of action on id at t0+100+sec, with
// attributes as key and value indexes.
func (s seed) event(op byte, action string, id int, sec int8, attrs ...[2]string) seed {
	s = append(s, op, 0, index(action, fuzzActions), byte(id), byte(len(attrs)))
	for _, kv := range attrs {
		s = append(s, index(kv[0], fuzzKeys), 1, index(kv[1], fuzzValues), 1)
	}
	return append(s, 0, byte(sec))
}

func (s seed) live(action string, id int, sec int8, attrs ...[2]string) seed {
	return s.event(0, action, id, sec, attrs...)
}

func (s seed) missed(action string, id int, sec int8, attrs ...[2]string) seed {
	return s.event(5, action, id, sec, attrs...)
}

func (s seed) refresh() seed                { return append(s, 4) }
func (s seed) remove(id int) seed           { return append(s, 7, byte(id)) }
func (s seed) resync() seed                 { return append(s, 8) }
func (s seed) session() seed                { return append(s, 9, 0) }
func (s seed) clock(sixtyFourths byte) seed { return append(s, 10, 0, sixtyFourths) }
func (s seed) restart() seed                { return append(s, 10, 1) }
func (s seed) failInspect(id int) seed      { return append(s, 10, 3, byte(id)) }
func (s seed) duplicate(i byte) seed        { return append(s, 11, i) }
func (s seed) listResync() seed             { return append(s, 10, 4) }

func fuzzSeeds() [][]byte {
	name := func(v string) [2]string { return [2]string{"name", v} }
	code := func(v string) [2]string { return [2]string{"exitCode", v} }
	return [][]byte{
		{},
		// A life, live: create, start, die, start, oom, die, destroy.
		seed{}.put(0, "/web", "created", 0, 0, 0).live("create", 0, 2, name("web")).refresh().
			put(0, "/web", "running", 3, 0, 0).live("start", 0, 3).refresh().
			put(0, "/web", "exited", 3, 6, 1).live("die", 0, 6, code("x")).refresh().
			put(0, "/web", "running", 7, 6, 0).live("start", 0, 7).
			live("oom", 0, 8).put(0, "/web", "exited", 7, 10, -119).live("die", 0, 10, code("137")).refresh().
			remove(0).live("destroy", 0, 11).refresh().clock(70).live("create", 1, 12),
		// Deaths missed while disconnected: replayed and found by the resync.
		seed{}.put(0, "/web", "running", 2, 0, 0).put(1, "/db", "running", 2, 0, 0).session().
			put(0, "/web", "exited", 2, 6, 2).missed("die", 0, 6, code("0")).
			remove(1).missed("kill", 1, 7).missed("die", 1, 7, code("137")).missed("destroy", 1, 8).
			session().duplicate(0).duplicate(1).session(),
		// A daemon restart forgets the buffer; the resync finds what ended.
		seed{}.put(0, "/web", "running", 2, 0, 0).put(1, "/db", "exited", 2, 3, 0).session().
			restart().put(0, "/web", "exited", 2, 10, -113).put(1, "/db", "running", 11, 3, 0).remove(2).
			resync().live("start", 1, 11).live("die", 0, 10, code("143")).refresh(),
		// Out of order and repeated, a rename, an inspect that fails, and the
		// clock past the retention.
		seed{}.put(0, "/web", "running", 2, 0, 0).session().live("die", 0, 6).live("start", 0, 3).
			live("rename", 0, 7, name("/db")).failInspect(0).live("health_status: unhealthy", 0, 8).refresh().
			live("destroy", 0, 9).live("destroy", 0, 9).clock(200).clock(200).resync().live("start", 0, 10),
		// Events the daemon dropped, found by a list resync, then seen late.
		seed{}.put(0, "/web", "running", 2, 0, 0).put(1, "/db", "running", 2, 0, 0).session().
			put(0, "/web", "exited", 2, 6, 1).missed("die", 0, 6, code("137")).
			remove(1).missed("destroy", 1, 7).put(2, "web", "running", 10, 0, 0).missed("create", 2, 8).
			listResync().live("die", 0, 6, code("137")).live("destroy", 1, 7).live("create", 2, 8).refresh(),
	}
}
