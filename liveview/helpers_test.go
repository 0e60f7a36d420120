package liveview

import (
	"bufio"
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/docker-exporter/docker_exporter/collector"
	"github.com/docker-exporter/docker_exporter/store"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// waitBound bounds every wait of these tests: generous, for -race on two
// busy cores.
const waitBound = 20 * time.Second

// fakeSource is a store as the live view sees it: a snapshot, replaced by
// set, and a change signal that coalesces as the store's does, so set never
// blocks.
type fakeSource struct {
	mu   sync.Mutex
	snap store.Snapshot
	subs map[chan struct{}]struct{}
}

func newFakeSource(snap store.Snapshot) *fakeSource {
	return &fakeSource{snap: snap, subs: make(map[chan struct{}]struct{})}
}

func (f *fakeSource) Snapshot() store.Snapshot {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.snap
	s.Containers = slices.Clone(s.Containers)
	s.Counts = maps.Clone(s.Counts)
	return s
}

func (f *fakeSource) Subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	f.mu.Lock()
	f.subs[ch] = struct{}{}
	f.mu.Unlock()
	return ch, func() {
		f.mu.Lock()
		delete(f.subs, ch)
		f.mu.Unlock()
	}
}

// set replaces the snapshot and signals every subscriber, as the store does
// after a change: without ever waiting for one.
func (f *fakeSource) set(snap store.Snapshot) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.snap = snap
	for ch := range f.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

func (f *fakeSource) subscribers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.subs)
}

// running starts h.Run until the test ends, and waits until it follows
// the source.
func running(t *testing.T, h *Hub, src *fakeSource) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	eventually(t, "the hub subscribed", func() bool { return src.subscribers() > 0 })
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitBound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", waitBound, what)
		}
		time.Sleep(time.Millisecond)
	}
}

// serve serves h's API and page as main does, until the test ends.
func serve(t *testing.T, h *Hub) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(mux(t, h))
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

func mux(t *testing.T, h *Hub) *http.ServeMux {
	t.Helper()
	m := http.NewServeMux()
	m.HandleFunc(ContainersPath, h.ServeContainers)
	m.HandleFunc(EventsPath, h.ServeEvents)
	page, err := h.LandingPage(testLanding())
	if err != nil {
		t.Fatal(err)
	}
	m.Handle("/", page)
	return m
}

// event is one server-sent event; a ping comment has Name "ping".
type event struct {
	Name string
	Data string
	At   time.Time // when the client read it
}

// sseClient reads one event stream in a goroutine of its own.
type sseClient struct {
	t      *testing.T
	resp   *http.Response
	events chan event
	done   chan struct{} // closed when the stream ended
	cancel context.CancelFunc
}

// openStream GETs url and, on a 200, reads its events until the stream
// ends or the test does.
func openStream(t *testing.T, url string) (*sseClient, int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("GET %s: %v", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		cancel()
		return nil, resp.StatusCode
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("Content-Type %q, want text/event-stream", ct)
	}
	c := &sseClient{t: t, resp: resp, events: make(chan event, 1<<16), done: make(chan struct{}), cancel: cancel}
	go c.read()
	t.Cleanup(c.close)
	return c, resp.StatusCode
}

func (c *sseClient) read() {
	defer close(c.done)
	r := bufio.NewReaderSize(c.resp.Body, 1<<20)
	var ev event
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if ev.Name != "" {
				ev.At = time.Now()
				c.events <- ev
			}
			ev = event{}
		case line == ": ping":
			ev.Name = "ping"
		case strings.HasPrefix(line, "event: "):
			ev.Name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			ev.Data += strings.TrimPrefix(line, "data: ")
		case strings.HasPrefix(line, "retry: "):
		default:
			c.t.Errorf("unexpected line in the event stream: %q", line)
		}
	}
}

func (c *sseClient) close() {
	c.cancel()
	c.resp.Body.Close()
	<-c.done
}

// next returns the next event, failing the test if none comes in time.
func (c *sseClient) next() event {
	c.t.Helper()
	select {
	case ev := <-c.events:
		return ev
	case <-time.After(waitBound):
		c.t.Fatalf("no event within %v", waitBound)
	}
	return event{}
}

// model is what a client makes of the stream: the containers by id, as the
// API encodes them, and the status.
type model struct {
	containers map[string]json.RawMessage
	status     json.RawMessage
}

func (m *model) apply(t *testing.T, ev event) {
	t.Helper()
	switch ev.Name {
	case "snapshot":
		var s struct {
			Containers []json.RawMessage `json:"containers"`
			Status     json.RawMessage   `json:"status"`
		}
		decode(t, ev.Data, &s)
		m.containers = make(map[string]json.RawMessage, len(s.Containers))
		for _, c := range s.Containers {
			m.containers[idOf(t, c)] = c
		}
		m.status = s.Status
	case "changes":
		var ch struct {
			Added, Changed []json.RawMessage
			Removed        []string
			Status         json.RawMessage
		}
		decode(t, ev.Data, &ch)
		if len(ch.Added)+len(ch.Changed)+len(ch.Removed) == 0 && ch.Status == nil {
			t.Errorf("an empty changes message: %s", ev.Data)
		}
		for _, c := range append(ch.Added, ch.Changed...) {
			m.containers[idOf(t, c)] = c
		}
		for _, id := range ch.Removed {
			if _, ok := m.containers[id]; !ok {
				t.Errorf("removed %s, which the client does not have", id)
			}
			delete(m.containers, id)
		}
		if ch.Status != nil {
			m.status = ch.Status
		}
	}
}

// equals says whether m shows snap as the API does.
func (m *model) equals(snap store.Snapshot, allow collector.LabelAllowlist) bool {
	want := snapshotOf(snap, allow)
	if len(want.Containers) != len(m.containers) || string(marshal(want.Status)) != string(m.status) {
		return false
	}
	for _, c := range want.Containers {
		if string(m.containers[c.ID]) != string(marshal(c)) {
			return false
		}
	}
	return true
}

func decode(t *testing.T, data string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(data), v); err != nil {
		t.Fatalf("decode %q: %v", data, err)
	}
}

func idOf(t *testing.T, raw json.RawMessage) string {
	t.Helper()
	var c struct{ ID string }
	decode(t, string(raw), &c)
	return c.ID
}
