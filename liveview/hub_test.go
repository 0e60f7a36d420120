package liveview

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/docker-exporter/docker_exporter/store"
)

// population makes n containers, each with a label of size bytes.
func population(n, size int) store.Snapshot {
	snap := store.Snapshot{Counts: make(map[string]store.Counts), Status: store.Status{Up: true}}
	for i := range n {
		name := fmt.Sprintf("c%04d", i)
		snap.Containers = append(snap.Containers, &store.Container{
			ID: fmt.Sprintf("id%04d", i), Name: name, State: "running", Created: at(0), Started: at(1),
			Labels: map[string]string{"blob": strings.Repeat("x", size)},
		})
		snap.Counts[name] = store.Counts{Starts: 1}
	}
	return snap
}

// churn returns snap after step i of a storm: one container restarted, and
// now and then one gone and one new.
func churn(snap store.Snapshot, i int) store.Snapshot {
	next := snap
	next.Containers = append([]*store.Container(nil), snap.Containers...)
	k := i % len(next.Containers)
	c := *next.Containers[k]
	c.RestartCount++
	next.Containers[k] = &c
	if i%50 == 0 {
		next.Containers = append(next.Containers[:k:k], next.Containers[k+1:]...)
		next.Containers = append(next.Containers, &store.Container{ID: fmt.Sprintf("new%05d", i), Name: fmt.Sprintf("new%05d", i), State: "created"})
	}
	next.Status.LastEvent = at(float64(i))
	return next
}

func TestBurstOfChangesComesAsAFewMessages(t *testing.T) {
	for _, tt := range []struct {
		name  string
		pause time.Duration // after every 100 changes
	}{
		{"at once", 0},
		{"over about a second", 20 * time.Millisecond},
	} {
		t.Run(tt.name, func(t *testing.T) {
			const coalesce = 100 * time.Millisecond
			snap := population(100, 0)
			src := newFakeSource(snap)
			h := New(src, Config{Coalesce: coalesce})
			running(t, h, src)
			stream, _ := openStream(t, serve(t, h).URL+EventsPath)
			var m model
			m.apply(t, stream.next())
			if !m.equals(snap, h.allow) {
				t.Fatal("the first snapshot is not the source's")
			}

			start := time.Now()
			for i := range 5000 {
				snap = churn(snap, i)
				src.set(snap)
				if i%100 == 99 {
					time.Sleep(tt.pause)
				}
			}
			burst := time.Since(start)
			messages := 0
			for !m.equals(snap, h.allow) {
				ev := stream.next()
				if ev.Name != "changes" {
					t.Fatalf("got a %s event, want changes", ev.Name)
				}
				messages++
				m.apply(t, ev)
			}
			// One at the first change, then at most one per coalesce
			// period while they keep coming, and one after the last.
			if most := 2 + int(burst/coalesce); messages > most {
				t.Errorf("5,000 changes in %v came as %d messages, want at most %d", burst, messages, most)
			}
			t.Logf("5,000 changes in %v came as %d changes messages", burst, messages)
			select {
			case ev := <-stream.events:
				t.Errorf("after the final state, one more %s event: %.200s", ev.Name, ev.Data)
			case <-time.After(3 * coalesce):
			}
		})
	}
}

// TestSlowClientIsDroppedAndOthersKeepUp: a client that never reads fills
// its connection, then its queue, and is dropped; its handler ends within
// the write timeout, while another client follows every change, and the
// source's side (its signal) never waits.
func TestSlowClientIsDroppedAndOthersKeepUp(t *testing.T) {
	snap := population(100, 500)
	src := newFakeSource(snap)
	// A queue deep enough for a client that reads, on a loaded machine;
	// the stalled one's fills all the same, as nothing drains it.
	h := New(src, Config{Coalesce: time.Millisecond, QueueLen: 64, WriteTimeout: 200 * time.Millisecond})
	running(t, h, src)
	srv := httptest.NewUnstartedServer(mux(t, h))
	// A small send buffer, so the stalled connection fills within a few
	// messages rather than the kernel's megabytes.
	srv.Config.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetWriteBuffer(16 << 10)
		}
		return ctx
	}
	srv.Start()
	t.Cleanup(srv.Close)

	stalled, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()
	_ = stalled.(*net.TCPConn).SetReadBuffer(4 << 10)
	if _, err := fmt.Fprintf(stalled, "GET %s HTTP/1.1\r\nHost: test\r\n\r\n", EventsPath); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the stalled client's stream to open", func() bool { return h.Streams() == 1 })
	good, _ := openStream(t, srv.URL+EventsPath)
	var m model
	m.apply(t, good.next())

	var slowest time.Duration
	start := time.Now()
	for i := 0; h.Streams() > 1; i++ {
		if time.Since(start) > waitBound {
			t.Fatalf("the stalled client still has a stream after %v", waitBound)
		}
		// Twenty containers change in each step: each message of
		// changes is about 12 KB.
		for j := range 20 {
			snap = churn(snap, i*20+j)
		}
		t0 := time.Now()
		src.set(snap)
		slowest = max(slowest, time.Since(t0))
		time.Sleep(2 * time.Millisecond)
	}
	t.Logf("stalled client dropped after %v", time.Since(start))
	select {
	case <-good.done:
		t.Fatal("the hub dropped the client that reads")
	default:
	}
	if slowest > 100*time.Millisecond {
		t.Errorf("a change signal took %v: the source waited", slowest)
	}

	// The good client still follows.
	snap = churn(snap, 1_000_000)
	src.set(snap)
	for !m.equals(snap, h.allow) {
		ev := good.next()
		if ev.Name == "changes" {
			m.apply(t, ev)
		}
	}
	if n := h.Streams(); n != 1 {
		t.Errorf("%d streams open, want the good client's alone", n)
	}
}

func TestClientsPastTheLimitGet503(t *testing.T) {
	src := newFakeSource(population(3, 0))
	h := New(src, Config{MaxClients: 2})
	running(t, h, src)
	srv := serve(t, h)
	var open []*sseClient
	for range 2 {
		c, code := openStream(t, srv.URL+EventsPath)
		if code != http.StatusOK {
			t.Fatalf("stream %d: %d", len(open)+1, code)
		}
		c.next()
		open = append(open, c)
	}
	resp, err := http.Get(srv.URL + EventsPath)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("the third stream: %d, Retry-After %q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	// The JSON is no stream: it is not limited.
	get(t, srv.URL+ContainersPath)

	open[0].close()
	eventually(t, "the closed stream to end", func() bool { return h.Streams() == 1 })
	if c, code := openStream(t, srv.URL+EventsPath); code != http.StatusOK {
		t.Errorf("after one closed, a new stream: %d", code)
	} else {
		c.next()
	}
}

// TestStreamsEndWhenTheHubStops: the end of Run's context ends every
// stream (as the exporter's shutdown does before the server's); later
// streams get 503. TestMain checks that no goroutine is left.
func TestStreamsEndWhenTheHubStops(t *testing.T) {
	src := newFakeSource(population(3, 0))
	h := New(src, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		h.Run(ctx)
	}()
	eventually(t, "the hub subscribed", func() bool { return src.subscribers() == 1 })
	srv := serve(t, h)
	streams := make([]*sseClient, 3)
	for i := range streams {
		streams[i], _ = openStream(t, srv.URL+EventsPath)
		streams[i].next()
	}
	cancel()
	select {
	case <-stopped:
	case <-time.After(waitBound):
		t.Fatal("Run did not return")
	}
	for i, s := range streams {
		select {
		case <-s.done:
		case <-time.After(waitBound):
			t.Fatalf("stream %d still open after the hub stopped", i)
		}
	}
	if n := src.subscribers(); n != 0 {
		t.Errorf("%d subscriptions left", n)
	}
	eventually(t, "every handler returned", func() bool { return h.Streams() == 0 })
	resp, err := http.Get(srv.URL + EventsPath)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("a stream after the hub stopped: %d, want 503", resp.StatusCode)
	}
}

func TestIdleStreamGetsPings(t *testing.T) {
	src := newFakeSource(population(1, 0))
	h := New(src, Config{Heartbeat: 20 * time.Millisecond})
	running(t, h, src)
	stream, _ := openStream(t, serve(t, h).URL+EventsPath)
	if ev := stream.next(); ev.Name != "snapshot" {
		t.Fatalf("first event %q, want snapshot", ev.Name)
	}
	for range 3 {
		if ev := stream.next(); ev.Name != "ping" {
			t.Fatalf("event %q on an idle stream, want a ping", ev.Name)
		}
	}
}

// TestStreamStartsWithRetryAndSnapshot reads the stream's first bytes as
// they are on the wire.
func TestStreamStartsWithRetryAndSnapshot(t *testing.T) {
	src := newFakeSource(store.Snapshot{})
	h := New(src, Config{})
	srv := serve(t, h)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+EventsPath, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if cc := resp.Header.Get("Cache-Control"); cc != "no-cache" {
		t.Errorf("Cache-Control %q", cc)
	}
	r := bufio.NewReader(resp.Body)
	var lines []string
	for range 4 {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, line)
	}
	want := []string{"retry: 3000\n", "event: snapshot\n", `data: {"containers":[],"status":{"up":false}}` + "\n", "\n"}
	if strings.Join(lines, "") != strings.Join(want, "") {
		t.Errorf("stream starts %q, want %q", lines, want)
	}
}

func TestAPIRefusesOtherMethods(t *testing.T) {
	h := New(newFakeSource(store.Snapshot{}), Config{})
	for _, serve := range []http.HandlerFunc{h.ServeContainers, h.ServeEvents} {
		rec := httptest.NewRecorder()
		serve(rec, httptest.NewRequest(http.MethodPost, "/", nil))
		if rec.Code != http.StatusMethodNotAllowed {
			t.Errorf("POST: %d, want 405", rec.Code)
		}
	}
}

// With no client the hub keeps no view (at 10,000 containers some 15 MiB):
// the first client makes it from the state then.
func TestHubKeepsNoViewWithoutClients(t *testing.T) {
	one := store.Snapshot{Containers: []*store.Container{{ID: "a", Name: "a", State: "running"}}}
	src := newFakeSource(one)
	h := New(src, Config{})
	running(t, h, src)
	srv := serve(t, h)
	hasView := func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		return h.view.entries != nil
	}
	if hasView() {
		t.Fatal("a view with no client")
	}
	c, code := openStream(t, srv.URL+EventsPath)
	if code != http.StatusOK {
		t.Fatalf("stream: %d", code)
	}
	if ev := c.next(); ev.Name != "snapshot" || !strings.Contains(ev.Data, `"id":"a"`) {
		t.Fatalf("first event %+v, want the snapshot with a", ev)
	}
	two := store.Snapshot{Containers: append(one.Containers, &store.Container{ID: "b", Name: "b", State: "created"})}
	src.set(two)
	if ev := c.next(); ev.Name != "changes" || !strings.Contains(ev.Data, `"added":[{"id":"b"`) {
		t.Fatalf("event %+v, want b added", ev)
	}
	c.close()
	eventually(t, "the view dropped with the last client", func() bool { return !hasView() })

	c, _ = openStream(t, srv.URL+EventsPath)
	if ev := c.next(); ev.Name != "snapshot" || !strings.Contains(ev.Data, `"id":"a"`) || !strings.Contains(ev.Data, `"id":"b"`) {
		t.Fatalf("a new client's snapshot %+v, want a and b", ev)
	}
}
