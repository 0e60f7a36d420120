package fakeengine

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"
)

func since(t time.Time) string {
	return fmt.Sprintf("%d.%09d", t.Unix(), t.Nanosecond())
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestEventsLive(t *testing.T) {
	clock := newFakeClock() // stands still: times must still increase
	e, cli := start(t, Options{Now: clock.Now})
	res := subscribe(t, e, cli, client.EventsListOptions{})

	id := e.Create(Spec{Name: "app", Image: "nginx:1.27", Labels: map[string]string{"com.docker.compose.project": "shop"}, Healthcheck: true})
	must(t, e.Start(id))
	must(t, e.Health(id, "healthy"))
	must(t, e.Health(id, "healthy")) // no change, no event
	must(t, e.Pause(id))
	must(t, e.Unpause(id))
	must(t, e.Rename(id, "app2"))
	must(t, e.Kill(id))
	must(t, e.Start(id))
	must(t, e.OOM(id))
	must(t, e.Start(id))
	must(t, e.Stop(id))
	must(t, e.Start(id))
	must(t, e.Restart(id))
	must(t, e.Crash(id, 3))
	if got := e.Truth()[0]; got.State != "restarting" || got.RestartCount != 2 || got.ExitCode != 3 {
		t.Errorf("after a crash: %+v", got)
	}
	must(t, e.Start(id))
	must(t, e.Die(id, 5))
	must(t, e.Destroy(id))

	want := "create start health_status: healthy pause unpause rename kill die start oom die start kill die stop start die start die start die destroy"
	msgs := receive(t, res, len(strings.Fields(want))-1) // "health_status: healthy" is one
	if got := actions(msgs); got != want {
		t.Fatalf("events:\n got %s\nwant %s", got, want)
	}
	var last int64
	for _, m := range msgs {
		if m.Type != events.ContainerEventType || m.Scope != "local" || m.Actor.ID != id ||
			m.TimeNano <= last || m.Time != m.TimeNano/1e9 || m.Actor.Attributes["com.docker.compose.project"] != "shop" ||
			m.Actor.Attributes["image"] != "nginx:1.27" {
			t.Errorf("event %+v after time %d", m, last)
		}
		last = m.TimeNano
	}
	attr := func(i int, k string) string { return msgs[i].Actor.Attributes[k] }
	for _, c := range []struct{ got, want string }{
		{attr(0, "name"), "app"},
		{attr(5, "name"), "app2"},
		{attr(5, "oldName"), "/app"},
		{attr(6, "signal"), "9"},
		{attr(7, "exitCode"), "137"},
		{attr(10, "exitCode"), "137"},
		{attr(12, "signal"), "15"},
		{attr(13, "exitCode"), "143"},
		{attr(16, "exitCode"), "1"},
		{attr(18, "exitCode"), "3"},
		{attr(20, "exitCode"), "5"},
	} {
		if c.got != c.want {
			t.Errorf("attribute: got %q, want %q", c.got, c.want)
		}
	}
	if e.Len() != 0 || e.Emitted() != len(msgs) {
		t.Errorf("%d containers, %d events emitted", e.Len(), e.Emitted())
	}

	// An action the state does not allow changes nothing.
	id = e.Create(Spec{})
	if err := e.Pause(id); err == nil {
		t.Error("paused a created container")
	}
	if err := e.Health(id, "healthy"); err == nil {
		t.Error("health of a container that does not run")
	}
	if err := e.Start("nosuch"); !errors.Is(err, ErrNoSuchContainer) {
		t.Errorf("start of a missing container: %v", err)
	}
}

func TestEventsWireFormat(t *testing.T) {
	for _, tc := range []struct {
		api    string
		legacy bool
	}{{"1.41", true}, {"1.52", false}} {
		t.Run(tc.api, func(t *testing.T) {
			clock := newFakeClock()
			e, _ := start(t, Options{Now: clock.Now, APIVersion: tc.api})
			e.Create(Spec{Name: "app", Image: "nginx:1.27"})
			resp, lines := rawLines(t, e, "/v"+tc.api+"/events?since=0&until="+since(clock.Now()))
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" || len(lines) != 1 {
				t.Fatalf("content type %q, lines %q", ct, lines)
			}
			prefix := `{"status":"create","id":"` + e.Truth()[0].ID + `","from":"nginx:1.27","Type":"container","Action":"create"`
			if got := strings.HasPrefix(lines[0], prefix); got != tc.legacy {
				t.Errorf("legacy fields %v, want %v: %s", got, tc.legacy, lines[0])
			}
			var m events.Message
			if err := json.Unmarshal([]byte(lines[0]), &m); err != nil || m.Action != "create" {
				t.Errorf("decode: %v %+v", err, m)
			}
		})
	}
}

func TestEventsSinceAndUntil(t *testing.T) {
	clock := newFakeClock()
	e, cli := start(t, Options{Now: clock.Now})
	var at []time.Time
	for i := range 5 {
		clock.Add(time.Second)
		e.Create(Spec{Name: fmt.Sprint("c", i)})
		at = append(at, clock.Now())
	}

	// since replays from the event at since, inclusive, then goes live.
	res := subscribe(t, e, cli, client.EventsListOptions{Since: since(at[2])})
	if got := receive(t, res, 3); got[0].Actor.Attributes["name"] != "c2" || got[2].Actor.Attributes["name"] != "c4" {
		t.Errorf("replay: %v", got)
	}
	e.Create(Spec{Name: "live"})
	if got := receive(t, res, 1); got[0].Actor.Attributes["name"] != "live" {
		t.Errorf("live: %v", got)
	}

	// An until in the past replays up to it and ends the stream.
	past := cli.Events(timeout(t), client.EventsListOptions{Since: since(at[1]), Until: since(at[3])})
	if got := receive(t, past, 3); got[0].Actor.Attributes["name"] != "c1" || got[2].Actor.Attributes["name"] != "c3" {
		t.Errorf("until: %v", got)
	}
	if err := streamErr(t, past); !errors.Is(err, io.EOF) {
		t.Errorf("until: stream ended with %v, want EOF", err)
	}

	// An until in the future streams live events up to it. (An until alone
	// would replay the whole buffer first, as in dockerd.)
	clock.Add(time.Second)
	future := subscribe(t, e, cli, client.EventsListOptions{Since: since(clock.Now()), Until: since(clock.Now().Add(time.Minute))})
	e.Create(Spec{Name: "before"})
	clock.Add(2 * time.Minute)
	e.Create(Spec{Name: "after"})
	if got := receive(t, future, 1); got[0].Actor.Attributes["name"] != "before" {
		t.Errorf("future until: %v", got)
	}
	if err := streamErr(t, future); !errors.Is(err, io.EOF) {
		t.Errorf("future until: stream ended with %v, want EOF", err)
	}

	// Filters: only container starts of "c3".
	filtered := subscribe(t, e, cli, client.EventsListOptions{Filters: make(client.Filters).Add("type", "container").Add("event", "start").Add("container", "c3")})
	must(t, e.Start("c2"))
	must(t, e.Start("c3"))
	e.Emit(events.Message{Type: events.NetworkEventType, Action: "start", Actor: events.Actor{ID: "c3"}})
	must(t, e.Kill("c3"))
	must(t, e.Start("c3"))
	if got := receive(t, filtered, 2); got[0].Actor.Attributes["name"] != "c3" || got[1].Action != "start" {
		t.Errorf("filtered: %v", got)
	}
	_, lines := rawLines(t, e, "/events?filters="+url.QueryEscape(`{"bogus":{"x":true}}`))
	if len(lines) != 1 || !strings.Contains(lines[0], "invalid filter 'bogus'") {
		t.Errorf("bad filter: %q", lines)
	}
}

func TestRingBufferAndRestartDaemon(t *testing.T) {
	clock := newFakeClock()
	e, cli := start(t, Options{Now: clock.Now})
	for i := range 300 {
		e.Emit(events.Message{Type: events.NetworkEventType, Action: "connect", Actor: events.Actor{ID: fmt.Sprint(i)}})
	}
	clock.Add(time.Second)
	until := since(clock.Now())
	if _, lines := rawLines(t, e, "/events?since=0&until="+until); len(lines) != 256 || !strings.Contains(lines[0], `"ID":"44"`) {
		t.Errorf("replay of 300 events: %d lines, first %q", len(lines), lines[0])
	}

	e.Add(Spec{Name: "up", State: "running"}, Spec{Name: "down", State: "exited", ExitCode: 1})
	res := subscribe(t, e, cli, client.EventsListOptions{})
	clock.Add(time.Second)
	e.RestartDaemon(true)
	if err := streamErr(t, res); err == nil {
		t.Error("the stream survived the restart")
	}
	if _, lines := rawLines(t, e, "/events?since=0&until="+until); len(lines) != 0 {
		t.Errorf("the restarted daemon replays %d events", len(lines))
	}
	for _, s := range e.Truth() {
		switch s.Name {
		case "up":
			if s.State != "exited" || s.ExitCode != 143 || !s.Finished.Equal(clock.Now()) {
				t.Errorf("a running container after the restart: %+v", s)
			}
		case "down":
			if s.State != "exited" || s.ExitCode != 1 {
				t.Errorf("a stopped container after the restart: %+v", s)
			}
		}
	}
}

func TestStreamFaults(t *testing.T) {
	e, cli := start(t, Options{})

	res := subscribe(t, e, cli, client.EventsListOptions{})
	e.Create(Spec{Name: "a"})
	e.DropStreams()
	receive(t, res, 1) // what was queued comes first
	if err := streamErr(t, res); !errors.Is(err, io.EOF) {
		t.Errorf("DropStreams: %v, want EOF", err)
	}

	res = subscribe(t, e, cli, client.EventsListOptions{})
	e.Create(Spec{Name: "b"})
	e.BreakStreamsMidLine()
	receive(t, res, 1)
	if err := streamErr(t, res); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("BreakStreamsMidLine: %v, want an unexpected EOF", err)
	}

	res = subscribe(t, e, cli, client.EventsListOptions{})
	e.SendMalformed()
	var syntax *json.SyntaxError
	if err := streamErr(t, res); !errors.As(err, &syntax) {
		t.Errorf("SendMalformed: %v, want a JSON syntax error", err)
	}
	if e.Drops() != 0 {
		t.Errorf("%d drops", e.Drops())
	}
}

// TestSlowReaderLosesEventsButKeepsItsStream proves the engine drops events
// for a client that stops reading the way dockerd does: the buffered ones
// are kept, the rest are skipped once the buffer is full, each after
// DropTimeout, and the stream stays open for what comes after.
func TestSlowReaderLosesEventsButKeepsItsStream(t *testing.T) {
	const buffer, extra = 8, 5
	e, cli := start(t, Options{StreamBuffer: buffer, DropTimeout: 2 * time.Millisecond})
	res := subscribe(t, e, cli, client.EventsListOptions{})
	e.StallStreams(true)
	msg := func(i int) events.Message {
		return events.Message{Type: events.NetworkEventType, Action: "connect", Actor: events.Actor{ID: fmt.Sprint("n", i)}}
	}
	begin := time.Now()
	// One more than the buffer: the writer may have taken one before the
	// stall held it.
	for i := range buffer + 1 + extra {
		e.Emit(msg(i))
	}
	drops := e.Drops()
	if drops < extra || drops > extra+1 {
		t.Fatalf("%d events dropped, want %d or %d", drops, extra, extra+1)
	}
	if took := time.Since(begin); took < time.Duration(drops)*2*time.Millisecond {
		t.Errorf("emitting took %v: a drop must wait DropTimeout (2ms) first", took)
	}
	if e.Streams() != 1 {
		t.Fatalf("%d streams open, want the slow one kept", e.Streams())
	}
	e.StallStreams(false)
	e.Emit(msg(100))
	kept := buffer + 1 + extra - drops
	got := receive(t, res, kept+1)
	for i, m := range got[:kept] {
		if want := fmt.Sprint("n", i); m.Actor.ID != want {
			t.Fatalf("event %d is %s, want %s: the first events are the ones kept", i, m.Actor.ID, want)
		}
	}
	if last := got[kept].Actor.ID; last != "n100" {
		t.Fatalf("after the stall the stream sent %s, want n100", last)
	}
}

// TestMutedStreamsStillReplay proves MuteStreams loses events for the open
// streams only: a `since` replay still has them.
func TestMutedStreamsStillReplay(t *testing.T) {
	e, cli := start(t, Options{})
	res := subscribe(t, e, cli, client.EventsListOptions{})
	e.MuteStreams(true)
	id := e.Create(Spec{Name: "quiet"})
	e.MuteStreams(false)
	e.Emit(events.Message{Type: events.NetworkEventType, Action: "connect", Actor: events.Actor{ID: "after"}})
	if got := receive(t, res, 1); got[0].Actor.ID != "after" {
		t.Fatalf("the open stream got %s %s, want only the event after the mute", got[0].Type, got[0].Action)
	}
	replay := subscribe(t, e, cli, client.EventsListOptions{Since: "0"})
	if got := receive(t, replay, 1); got[0].Actor.ID != id || got[0].Action != events.ActionCreate {
		t.Fatalf("the replay starts with %s %s, want the muted create of %s", got[0].Actor.ID, got[0].Action, id)
	}
}

func TestParseTimestamp(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
	}{
		{"1700000000", 1700000000e9},
		{"1700000000.5", 1700000000e9 + 5e8},
		{"1700000000.000000001", 1700000000e9 + 1},
		{"2023-11-14T22:13:20.25Z", 1700000000e9 + 25e7},
	} {
		got, ok, err := parseTimestamp(tc.in)
		if err != nil || !ok || got != tc.want {
			t.Errorf("%s: %d %v %v, want %d", tc.in, got, ok, err, tc.want)
		}
	}
	if _, _, err := parseTimestamp("soon"); err == nil {
		t.Error("parsed garbage")
	}
}
