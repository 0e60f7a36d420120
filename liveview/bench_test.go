package liveview_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"
	"go.uber.org/goleak"

	"github.com/docker-exporter/docker_exporter/collector"
	"github.com/docker-exporter/docker_exporter/internal/fakeengine"
	"github.com/docker-exporter/docker_exporter/liveview"
	"github.com/docker-exporter/docker_exporter/store"
)

// BenchmarkStreamClientsDuringStorm: event-stream clients follow a hub fed
// by a real store, which follows a fake daemon of 1,000 containers through
// a storm of 1,000 random actions a second (create, start, die, health,
// destroy, ...) for 3 s, with the default coalescing (100 ms). Reports:
//
//   - p50-ms, p99-ms: from an event's time at the daemon to the moment a
//     client reads the changes message that contains it (the first whose
//     status.last_event_at is at or after it), over every event and client;
//   - scrape-p50-ms, scrape-max-ms: a gzipped /metrics scrape every 100 ms
//     meanwhile, as Prometheus makes it; compare clients=0 with clients=100,
//     and both with BenchmarkScrape/containers=1000/gzip=true (collector);
//   - heap-MiB: the heap in use after the storm, the clients still
//     connected (fake daemon, store and all: compare clients=0);
//   - msgs/client: changes messages each client got; events: in the storm.
//
// It fails if a client was dropped, or if a goroutine is left once the
// clients have gone.
func BenchmarkStreamClientsDuringStorm(b *testing.B) {
	for _, clients := range []int{0, 100} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) { stormWithClients(b, clients) })
	}
}

func stormWithClients(b *testing.B, clients int) {
	const (
		containers = 1000
		rate       = 1000
		stormFor   = 3 * time.Second
		deadline   = time.Minute
	)
	ignore := goleak.IgnoreCurrent()
	st, e, cli, stopEngine := followedEngine(b, containers)

	hub := liveview.New(st, liveview.Config{MaxClients: clients + 1})
	hubCtx, stopHub := context.WithCancel(context.Background())
	hubDone := make(chan struct{})
	go func() {
		defer close(hubDone)
		hub.Run(hubCtx)
	}()
	mux := http.NewServeMux()
	mux.HandleFunc(liveview.EventsPath, hub.ServeEvents)
	mux.Handle("/metrics", collector.Handler(collector.New(st, collector.Config{}), collector.HandlerOpts{}))
	srv := httptest.NewServer(mux)
	transport := &http.Transport{MaxIdleConnsPerHost: clients + 4}
	hc := &http.Client{Transport: transport}

	// The daemon's own event times, read from a stream of its own.
	daemon := &eventTimes{}
	evCtx, stopEvents := context.WithCancel(context.Background())
	evDone := make(chan struct{})
	res := cli.Events(evCtx, client.EventsListOptions{})
	go func() {
		defer close(evDone)
		for {
			select {
			case m := <-res.Messages:
				if m.Type == events.ContainerEventType {
					daemon.add(m.TimeNano)
				}
			case <-res.Err:
				return
			case <-evCtx.Done():
				return
			}
		}
	}()
	if err := e.WaitStreams(ctxFor(b, deadline), 2); err != nil { // the store's and ours
		b.Fatal(err)
	}

	followers := make([]*follower, clients)
	for i := range followers {
		followers[i] = follow(b, hc, srv.URL+liveview.EventsPath)
	}
	for _, f := range followers {
		f.waitFor(b, 1, deadline)
	}

	rng := rand.New(rand.NewPCG(7, 11))
	var scrapes []time.Duration
	for b.Loop() {
		ctx, cancel := context.WithTimeout(context.Background(), stormFor)
		scrapeDone := make(chan []time.Duration)
		go func() { scrapeDone <- scrapeEvery(b, ctx, hc, srv.URL+"/metrics", 100*time.Millisecond) }()
		e.Storm(ctx, rate, rng)
		cancel()
		scrapes = append(scrapes, <-scrapeDone...)
	}
	b.StopTimer()

	// Every event reached every client.
	var last int64
	waitUntil(b, deadline, "the daemon's events read", func() bool {
		last = daemon.newest()
		return daemon.count() >= e.Emitted()
	})
	var latencies []time.Duration
	messages := 0
	for _, f := range followers {
		f.waitFor(b, last, deadline)
		latencies = append(latencies, f.latencies(daemon.all())...)
		messages += f.changes()
	}
	runtime.GC()
	var mem runtime.MemStats
	runtime.ReadMemStats(&mem)
	if n := hub.Streams(); n != clients {
		b.Errorf("%d streams open after the storm, want %d: the hub dropped clients", n, clients)
	}

	for _, f := range followers {
		f.close()
	}
	waitUntil(b, deadline, "every stream closed", func() bool { return hub.Streams() == 0 })
	stopHub()
	<-hubDone
	srv.Close()
	transport.CloseIdleConnections()
	stopEvents()
	<-evDone
	stopEngine()
	var leaked error
	end := time.Now().Add(10 * time.Second)
	for leaked = goleak.Find(ignore); leaked != nil && time.Now().Before(end); leaked = goleak.Find(ignore) {
		time.Sleep(10 * time.Millisecond)
	}
	if leaked != nil {
		b.Errorf("goroutines left after the clients, the hub, the store and the daemon stopped: %v", leaked)
	}

	slices.Sort(scrapes)
	b.ReportMetric(ms(scrapes[len(scrapes)/2]), "scrape-p50-ms")
	b.ReportMetric(ms(scrapes[len(scrapes)-1]), "scrape-max-ms")
	b.ReportMetric(float64(mem.HeapInuse)/(1<<20), "heap-MiB")
	b.ReportMetric(float64(daemon.count()), "events")
	if clients > 0 {
		slices.Sort(latencies)
		b.ReportMetric(ms(latencies[len(latencies)/2]), "p50-ms")
		b.ReportMetric(ms(latencies[len(latencies)*99/100]), "p99-ms")
		b.ReportMetric(float64(messages)/float64(clients), "msgs/client")
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// followedEngine starts a fake daemon of n containers and a store that
// follows it, and waits for the store's sync; stop (or the benchmark's
// end) stops both.
func followedEngine(b *testing.B, n int) (st *store.Store, e *fakeengine.Engine, cli *client.Client, stop func()) {
	b.Helper()
	dir, err := os.MkdirTemp("", "lv") // short: a socket path holds 107 bytes
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = os.RemoveAll(dir) })
	e = fakeengine.New(fakeengine.Options{StreamBuffer: 1 << 16})
	e.Populate(n, 1)
	if err := e.ListenUnix(filepath.Join(dir, "docker.sock")); err != nil {
		b.Fatal(err)
	}
	cli, err = client.New(client.WithHost(e.Host()))
	if err != nil {
		b.Fatal(err)
	}
	st = store.New(cli, store.Config{InspectConcurrency: 16})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		st.Run(ctx)
	}()
	stop = sync.OnceFunc(func() {
		cancel()
		<-done
		_ = cli.Close()
		_ = e.Close()
	})
	b.Cleanup(stop)
	changed, unsubscribe := st.Subscribe()
	defer unsubscribe()
	timeout := time.After(time.Minute)
	for !st.Status().Up {
		select {
		case <-changed:
		case <-timeout:
			b.Fatal("the store did not sync within a minute")
		}
	}
	return st, e, cli, stop
}

func ctxFor(b *testing.B, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	b.Cleanup(cancel)
	return ctx
}

func waitUntil(b *testing.B, d time.Duration, what string, cond func() bool) {
	b.Helper()
	end := time.Now().Add(d)
	for !cond() {
		if time.Now().After(end) {
			b.Fatalf("waited %v for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// eventTimes are the daemon's event times, in the order it sent them.
type eventTimes struct {
	mu    sync.Mutex
	times []int64
}

func (t *eventTimes) add(nano int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.times = append(t.times, nano)
}

func (t *eventTimes) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.times)
}

func (t *eventTimes) newest() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.times) == 0 {
		return 0
	}
	return t.times[len(t.times)-1]
}

func (t *eventTimes) all() []int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.times)
}

// follower is one event-stream client. It records, for each message, when
// it read it and the status.last_event_at the message carries: every event
// up to that time is in the state the client has from then on.
type follower struct {
	resp   *http.Response
	cancel context.CancelFunc
	done   chan struct{}

	mu   sync.Mutex
	msgs []received
}

type received struct {
	at        time.Time
	lastEvent int64 // 0 when the message has no status
}

func follow(b *testing.B, hc *http.Client, url string) *follower {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		b.Fatal(err)
	}
	resp, err := hc.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		cancel()
		b.Fatalf("GET %s: %v %v", url, err, resp)
	}
	f := &follower{resp: resp, cancel: cancel, done: make(chan struct{})}
	go f.read()
	return f
}

var lastEventKey = []byte(`"last_event_at":"`)

func (f *follower) read() {
	defer close(f.done)
	r := bufio.NewReaderSize(f.resp.Body, 64<<10) // longer lines: see below
	for {
		line, err := r.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			// A line longer than the buffer (a snapshot): keep the start,
			// which the next read overwrites, and read the rest.
			start := slices.Clone(line)
			rest, err := r.ReadBytes('\n')
			if err != nil {
				return
			}
			line = append(start, rest...)
		} else if err != nil {
			return
		}
		if !bytes.HasPrefix(line, []byte("data: ")) {
			continue
		}
		m := received{at: time.Now()}
		// The status, when a message has one, is its last field, and no
		// container has a field of that name.
		if i := bytes.LastIndex(line, lastEventKey); i >= 0 {
			v := line[i+len(lastEventKey):]
			if j := bytes.IndexByte(v, '"'); j >= 0 {
				if t, err := time.Parse(time.RFC3339Nano, string(v[:j])); err == nil {
					m.lastEvent = t.UnixNano()
				}
			}
		}
		f.mu.Lock()
		f.msgs = append(f.msgs, m)
		f.mu.Unlock()
	}
}

// waitFor waits until the client has a message whose status is at or after
// the event time nano (1: any message at all).
func (f *follower) waitFor(b *testing.B, nano int64, d time.Duration) {
	b.Helper()
	waitUntil(b, d, "a client to catch up", func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		n := len(f.msgs)
		return n > 0 && (nano == 1 || f.msgs[n-1].lastEvent >= nano)
	})
}

// latencies are, for each event time (ascending), how long after it the
// client read the first message that contains it.
func (f *follower) latencies(times []int64) []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]time.Duration, 0, len(times))
	j := 0
	for _, te := range times {
		// A message without a status tells nothing; those with one come
		// in the order of their times.
		for j < len(f.msgs) && f.msgs[j].lastEvent < te {
			j++
		}
		if j == len(f.msgs) {
			break
		}
		out = append(out, f.msgs[j].at.Sub(time.Unix(0, te)))
	}
	return out
}

func (f *follower) changes() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.msgs) - 1 // the first is the snapshot
}

func (f *follower) close() {
	f.cancel()
	f.resp.Body.Close()
	<-f.done
}

// scrapeEvery scrapes url every period until ctx ends, and returns how long
// each scrape took, its body read to the end.
func scrapeEvery(b *testing.B, ctx context.Context, hc *http.Client, url string, period time.Duration) []time.Duration {
	var took []time.Duration
	tick := time.NewTicker(period)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return took
		case <-tick.C:
		}
		start := time.Now()
		resp, err := hc.Get(url)
		if err != nil {
			b.Errorf("scrape: %v", err)
			return took
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Errorf("scrape: %d %v", resp.StatusCode, err)
			return took
		}
		took = append(took, time.Since(start))
	}
}
