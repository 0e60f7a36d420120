package fakeengine

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/events"
)

// message is an event as the daemon writes it: moby's Message, and the
// HealthStatus that Podman adds to health_status and moby's type lacks.
type message struct {
	events.Message
	HealthStatus string `json:",omitempty"`
}

// event is one published event, encoded once for every stream.
type event struct {
	msg events.Message
	// line is the JSON object and a newline as API 1.52 and later send it;
	// legacy adds the status, id and from fields that older APIs still carry.
	line, legacy []byte
}

type legacyFields struct {
	Status string `json:"status,omitempty"`
	ID     string `json:"id,omitempty"`
	From   string `json:"from,omitempty"`
}

func newEvent(m message) *event {
	b, _ := json.Marshal(m) // plain strings and numbers: cannot fail
	msg := m.Message
	ev := &event{msg: msg, line: append(b, '\n')}
	ev.legacy = ev.line
	var old legacyFields
	switch msg.Type {
	case events.ContainerEventType:
		old = legacyFields{Status: string(msg.Action), ID: msg.Actor.ID, From: msg.Actor.Attributes["image"]}
	case events.ImageEventType:
		old = legacyFields{Status: string(msg.Action), ID: msg.Actor.ID}
	}
	if old != (legacyFields{}) {
		p, _ := json.Marshal(old)
		// The old fields come first, as dockerd wrote them.
		legacy := make([]byte, 0, len(p)+len(ev.line))
		legacy = append(legacy, p[:len(p)-1]...)
		legacy = append(legacy, ',')
		ev.legacy = append(legacy, ev.line[1:]...)
	}
	return ev
}

// Emit publishes msg as it is, without changing any container: for
// malformed, out-of-order or duplicate events. A zero time is set to the
// engine's clock; any other time is kept and does not move the clock.
func (e *Engine) Emit(msg events.Message) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if msg.TimeNano == 0 && msg.Time == 0 {
		at := e.tick()
		msg.Time, msg.TimeNano = at.Unix(), at.UnixNano()
	}
	e.publish(message{Message: msg})
}

// publish keeps msg for replays and queues it on every stream it matches.
// For a stream whose queue is full it waits up to DropTimeout, then drops
// the event for that stream, as dockerd does. It must be called with e.mu
// held.
func (e *Engine) publish(m message) {
	ev := newEvent(m)
	if len(e.ring) < e.opts.EventBuffer {
		e.ring = append(e.ring, ev)
	} else {
		e.ring[e.ringPos] = ev
		e.ringPos = (e.ringPos + 1) % len(e.ring)
	}
	e.emitted++
	if e.muted {
		return
	}
	for s := range e.streams {
		if !s.filter.match(&ev.msg) {
			continue
		}
		if s.until != 0 && ev.msg.TimeNano > s.until {
			e.end(s, endClean)
			continue
		}
		line := ev.line
		if s.legacy {
			line = ev.legacy
		}
		e.send(s, item{line: line})
	}
}

// buffered returns the kept events from since to until (0: no bound) that
// match f, oldest first. Like dockerd it walks back from the newest and
// stops at the first event older than since, so an out-of-order event can
// hide older ones. It must be called with e.mu held.
func (e *Engine) buffered(since, until int64, f filters, legacy bool) [][]byte {
	var out [][]byte
	for i := len(e.ring) - 1; i >= 0; i-- {
		ev := e.ring[(e.ringPos+i)%len(e.ring)]
		if ev.msg.TimeNano < since {
			break
		}
		if (until != 0 && ev.msg.TimeNano > until) || !f.match(&ev.msg) {
			continue
		}
		if legacy {
			out = append(out, ev.legacy)
		} else {
			out = append(out, ev.line)
		}
	}
	slices.Reverse(out)
	return out
}

// Emitted is how many events the engine has published.
func (e *Engine) Emitted() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.emitted
}

// endMode says how a stream ends.
type endMode int

const (
	endNone  endMode = iota
	endClean         // the response ends properly: the client reads EOF
	endBreak         // half an event, then the connection is cut
)

// item is what a stream's queue carries: a line to write, or its end.
type item struct {
	line []byte
	end  endMode
}

// stream is one open /events response. The engine queues items on ch and
// never waits; the handler writes them.
type stream struct {
	ch chan item
	// quit is closed, with how set before, to end the stream at once when
	// its queue has no room for the end item.
	quit   chan struct{}
	how    endMode
	filter filters
	until  int64
	legacy bool
}

// send must be called with e.mu held, for a stream still in e.streams.
func (e *Engine) send(s *stream, it item) {
	select {
	case s.ch <- it:
		return
	default:
	}
	// dockerd's publisher gives a slow subscriber a while, then skips the
	// event for it without a word; the stream stays open.
	t := time.NewTimer(e.opts.DropTimeout)
	defer t.Stop()
	select {
	case s.ch <- it:
	case <-t.C:
		e.drops++
	case <-e.closing:
	}
}

// end queues the end of s after what it already has. It must be called
// with e.mu held, for a stream still in e.streams.
func (e *Engine) end(s *stream, how endMode) {
	delete(e.streams, s)
	select {
	case s.ch <- item{end: how}:
	default:
		s.how = how
		close(s.quit)
	}
}

// endStreams must be called with e.mu held.
func (e *Engine) endStreams(how endMode) {
	for s := range e.streams {
		e.end(s, how)
	}
}

// Streams is how many /events streams are open.
func (e *Engine) Streams() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.streams)
}

// Drops is how many events were dropped for streams whose client was too
// slow to take them.
func (e *Engine) Drops() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.drops
}

// serveEvents answers GET /events: the kept events that since and until
// ask for, then, unless until is past, live events until until, the
// client leaves or the engine ends the stream.
func (e *Engine) serveEvents(w http.ResponseWriter, r *http.Request, version string) {
	q := r.URL.Query()
	since, hasSince, err := parseTimestamp(q.Get("since"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	until, hasUntil, err := parseTimestamp(q.Get("until"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if hasSince && hasUntil && until < since {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("`since` time (%s) cannot be after `until` time (%s)", q.Get("since"), q.Get("until")))
		return
	}
	f, err := parseFilters(q.Get("filters"), eventFilters)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	s := &stream{
		ch:     make(chan item, e.opts.StreamBuffer),
		quit:   make(chan struct{}),
		filter: f,
		legacy: versionLess(version, "1.52"),
	}

	e.mu.Lock()
	now := e.clock().UnixNano()
	var replay [][]byte
	if hasSince || hasUntil {
		replay = e.buffered(since, until, f, s.legacy)
	}
	onlyPast := hasUntil && until < now
	if !onlyPast {
		if hasUntil {
			s.until = until
		}
		// Subscribing under the same lock as the replay: no event is
		// missed or sent twice between the two.
		e.streams[s] = struct{}{}
	}
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		delete(e.streams, s)
		e.mu.Unlock()
	}()

	// Headers go out at once: the client's Events returns only once it has
	// them.
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	for _, line := range replay {
		if _, err := w.Write(line); err != nil {
			return
		}
	}
	if err := rc.Flush(); err != nil || onlyPast {
		return
	}
	var timeout <-chan time.Time
	if hasUntil {
		t := time.NewTimer(time.Duration(until - now))
		defer t.Stop()
		timeout = t.C
	}
	for {
		if stall := e.stalled.Load(); stall != nil {
			select {
			case <-*stall:
			case <-r.Context().Done():
				return
			case <-e.closing:
				return
			}
		}
		var it item
		select {
		case it = <-s.ch:
		case <-s.quit:
			it.end = s.how
		case <-timeout:
			return
		case <-r.Context().Done():
			return
		case <-e.closing:
			return
		}
		// Write all that is queued, then flush once: a burst costs one
		// write to the socket, not one per event.
		for it.end == endNone {
			if _, err := w.Write(it.line); err != nil {
				return
			}
			if e.stalled.Load() != nil {
				break
			}
			select {
			case it = <-s.ch:
				continue
			default:
			}
			break
		}
		if err := rc.Flush(); err != nil {
			return
		}
		switch it.end {
		case endClean:
			return
		case endBreak:
			_, _ = w.Write([]byte(`{"status":"die","id":"0123456789ab`))
			_ = rc.Flush()
			// Cuts the connection without ending the chunked body, as a
			// daemon that crashes mid-write does.
			panic(http.ErrAbortHandler)
		}
	}
}

// parseTimestamp reads dockerd's "seconds[.nanoseconds]" or RFC 3339.
func parseTimestamp(v string) (nano int64, ok bool, err error) {
	if v == "" {
		return 0, false, nil
	}
	if strings.ContainsAny(v, "T-:") {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return 0, false, fmt.Errorf("invalid timestamp %q: %w", v, err)
		}
		return t.UnixNano(), true, nil
	}
	secs, frac, _ := strings.Cut(v, ".")
	sec, err := strconv.ParseInt(secs, 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("invalid timestamp %q", v)
	}
	var ns int64
	if frac != "" {
		// Digits after the dot are a fraction of a second, however many.
		frac = (frac + "000000000")[:9]
		if ns, err = strconv.ParseInt(frac, 10, 64); err != nil {
			return 0, false, fmt.Errorf("invalid timestamp %q", v)
		}
	}
	return sec*int64(time.Second) + ns, true, nil
}
