package main

// The in-process rig of the reliability tests: the store and newMux, wired
// as run wires them, against internal/fakeengine. It lives in package main
// because it needs parseFlags and newMux.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"
	"go.uber.org/goleak"

	"github.com/docker-exporter/docker_exporter/internal/fakeengine"
	"github.com/docker-exporter/docker_exporter/internal/logbuf"
	"github.com/docker-exporter/docker_exporter/internal/scrape"
	"github.com/docker-exporter/docker_exporter/internal/truth"
	"github.com/docker-exporter/docker_exporter/internal/wait"
	"github.com/docker-exporter/docker_exporter/store"
)

// relWait bounds every wait of these tests: generous, for -race on 2 busy
// cores.
const relWait = 60 * time.Second

// rig is one exporter in process: a fake daemon, the real client, the store
// following it and newMux serving /metrics.
type rig struct {
	t     *testing.T
	e     *fakeengine.Engine
	cli   *client.Client
	st    *store.Store
	srv   *httptest.Server
	http  *http.Client
	logs  *logbuf.Buffer
	marks int
	// settles names the sentinel containers settle made, which the tests'
	// expected counters leave out.
	settles []string
}

type rigConfig struct {
	engine fakeengine.Options
	// flags are command-line flags beside --docker.host; the store takes
	// --docker.timeout and --store.retention from them, as run does.
	flags []string
	// before runs once the engine listens, before the exporter starts.
	before func(e *fakeengine.Engine)
}

func startRig(t *testing.T, cfg rigConfig) *rig {
	t.Helper()
	// Registered first, so it runs last: after the server, the store, the
	// client and the engine are closed, no goroutine of this test is left.
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })

	dir, err := os.MkdirTemp("", "rel") // short: a socket path holds 107 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	e := fakeengine.New(cfg.engine)
	if err := e.ListenUnix(filepath.Join(dir, "docker.sock")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Errorf("closing the engine: %v", err)
		}
	})
	if cfg.before != nil {
		cfg.before(e)
	}
	cli, err := client.New(client.WithHost(e.Host()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cli.Close() })

	var stdout, stderr bytes.Buffer
	// No limit on parallel scrapes: TestConcurrentScrapesDuringEventStorm
	// runs 50, and past the default 40 the handler answers 503 by design.
	args := append([]string{"--docker.host=" + e.Host(), "--web.max-requests=0"}, cfg.flags...)
	opts, code, done := parseFlags(args, &stdout, &stderr)
	if done {
		t.Fatalf("flags %q: exit %d: %s", args, code, stderr.String())
	}
	logs := &logbuf.Buffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	st := store.New(cli, store.Config{
		Retention:      opts.retention,
		Timeout:        opts.dockerTimeout,
		ResyncInterval: opts.resyncInterval,
		MinBackoff:     5 * time.Millisecond,
		MaxBackoff:     50 * time.Millisecond,
		Logger:         logger.With("component", "store"),
	})
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		st.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-stopped
	})
	srv := httptest.NewServer(newMux(st, nil, nil, opts, logger))
	t.Cleanup(srv.Close)
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: relWait}
	t.Cleanup(hc.CloseIdleConnections)
	return &rig{t: t, e: e, cli: cli, st: st, srv: srv, http: hc, logs: logs}
}

// waitStore waits, on the store's change signal, until cond holds.
func (r *rig) waitStore(what string, cond func(store.Snapshot) bool) store.Snapshot {
	r.t.Helper()
	changed, cancel := r.st.Subscribe()
	defer cancel()
	deadline := time.NewTimer(relWait)
	defer deadline.Stop()
	for {
		snap := r.st.Snapshot()
		if cond(snap) {
			return snap
		}
		select {
		case <-changed:
		case <-deadline.C:
			r.t.Fatalf("waited %v for %s; store: %s\nlog:\n%s", relWait, what, describeSnapshot(snap), r.logTail())
		}
	}
}

// poll waits until cond holds, for what the store does not signal: the
// engine's request counts, the log, the clock.
func (r *rig) poll(what string, cond func() bool) {
	r.t.Helper()
	wait.Every(r.t, relWait, 2*time.Millisecond, what, cond, func() string {
		return "store: " + describeSnapshot(r.st.Snapshot()) + "\nlog:\n" + r.logTail()
	})
}

func (r *rig) logTail() string { return r.logs.Tail(30) }

func syncedAtLeast(n uint64) func(store.Snapshot) bool {
	return func(s store.Snapshot) bool { return s.Status.Up && s.Status.Syncs >= n }
}

func describeSnapshot(s store.Snapshot) string {
	names := make([]string, 0, len(s.Containers))
	for _, c := range s.Containers {
		names = append(names, c.Name+"/"+c.State)
	}
	sort.Strings(names)
	if len(names) > 40 {
		names = append(names[:40], fmt.Sprintf("... %d more", len(names)-40))
	}
	return fmt.Sprintf("status %+v, %d containers: %s", s.Status, len(s.Containers), strings.Join(names, " "))
}

var markKind = store.EventKind{Type: string(events.NetworkEventType), Action: "reliability_mark"}

// mark publishes an event after everything the engine published so far and
// waits until the store has applied it, and so every event before it, with
// the daemon up. What an event counts is committed with the event; what
// only an inspect tells may come later: settle waits for that too.
func (r *rig) mark() store.Snapshot {
	r.t.Helper()
	r.marks++
	n := uint64(r.marks)
	r.e.Emit(events.Message{Type: events.NetworkEventType, Action: events.Action(markKind.Action), Actor: events.Actor{ID: fmt.Sprint("mark-", n)}})
	return r.waitStore(fmt.Sprintf("mark %d", n), func(s store.Snapshot) bool { return s.Status.Up && s.Events[markKind] >= n })
}

// settle waits until the store has applied every event the engine
// published so far, with the inspects that follow them. mark alone is not
// enough (an inspect comes after its batch), nor a sentinel container
// alone (a resync may list it before the replay that precedes its create
// is applied). So: mark, then, in the session that applied the mark, a
// sentinel whose image id only the inspect after its create can tell;
// batches are applied and refreshed in order.
func (r *rig) settle() store.Snapshot {
	r.t.Helper()
	r.mark()
	name := fmt.Sprintf("settle-%d", len(r.settles))
	r.settles = append(r.settles, name)
	id := r.e.Create(fakeengine.Spec{Name: name, Image: "settle:1"})
	return r.waitStore("sentinel "+name+" inspected", func(s store.Snapshot) bool {
		if !s.Status.Up {
			return false
		}
		for _, c := range s.Containers {
			if c.ID == id {
				return c.ImageID != ""
			}
		}
		return false
	})
}

// exposition is one parsed /metrics response.
type exposition = scrape.Scrape

// scrape GETs /metrics. It fails unless the answer is a 200 that parses as
// the text format and is consistent in itself (see exposition.check).
func (r *rig) scrape(acceptEncoding string) (*exposition, error) {
	body, err := r.fetch(acceptEncoding)
	if err != nil {
		return nil, err
	}
	return parseExposition(body)
}

// fetch GETs /metrics and returns the body of a 200.
func (r *rig) fetch(acceptEncoding string) ([]byte, error) {
	req, err := http.NewRequest(http.MethodGet, r.srv.URL+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	if acceptEncoding != "" {
		// Set by hand, the transport leaves the body as it comes.
		req.Header.Set("Accept-Encoding", acceptEncoding)
	}
	resp, err := r.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d: %s", resp.StatusCode, body)
	}
	if enc := resp.Header.Get("Content-Encoding"); acceptEncoding != "" && enc != "" {
		return nil, fmt.Errorf("asked for %q, got Content-Encoding %q", acceptEncoding, enc)
	}
	return body, nil
}

func parseExposition(body []byte) (*exposition, error) {
	x, err := scrape.Parse(body)
	if err != nil {
		return nil, err
	}
	if err := x.Check(); err != nil {
		return nil, fmt.Errorf("%w\n%s", err, x.Lines())
	}
	return x, nil
}

func (r *rig) mustScrape() *exposition {
	r.t.Helper()
	x, err := r.scrape("")
	if err != nil {
		r.t.Fatalf("scrape: %v", err)
	}
	return x
}

// truthDiff lists how the store differs from the engine; see truth.Diff.
func truthDiff(engine []fakeengine.Spec, snap store.Snapshot) []string {
	return truth.Diff(engine, snap)
}

func (r *rig) requireTruth(snap store.Snapshot) {
	r.t.Helper()
	if d := truthDiff(r.e.Truth(), snap); len(d) > 0 {
		if len(d) > 30 {
			d = append(d[:30], fmt.Sprintf("... %d more", len(d)-30))
		}
		r.t.Fatalf("the store differs from the engine:\n%s", strings.Join(d, "\n"))
	}
}

// ledger keeps the counters each name must end with, from the actions the
// test takes on the engine; each action emits the events dockerd would.
type ledger struct {
	t    *testing.T
	e    *fakeengine.Engine
	want map[string]store.Counts
	// events of each action the engine emitted
	events map[string]uint64
}

func newLedger(t *testing.T, e *fakeengine.Engine, names ...string) *ledger {
	l := &ledger{t: t, e: e, want: make(map[string]store.Counts), events: make(map[string]uint64)}
	for _, n := range names {
		l.want[n] = store.Counts{}
	}
	return l
}

func (l *ledger) do(err error, name string, add store.Counts, actions ...string) {
	l.t.Helper()
	if err != nil {
		l.t.Fatalf("%s: %v", name, err)
	}
	c := l.want[name]
	c.Starts += add.Starts
	c.Deaths += add.Deaths
	c.OOMs += add.OOMs
	c.Destroys += add.Destroys
	l.want[name] = c
	for _, a := range actions {
		l.events[a]++
	}
}

func (l *ledger) kill(name string) {
	l.t.Helper()
	l.do(l.e.Kill(name), name, store.Counts{Deaths: 1}, "kill", "die")
}

func (l *ledger) start(name string) {
	l.t.Helper()
	l.do(l.e.Start(name), name, store.Counts{Starts: 1}, "start")
}

// checkCounts compares the store's counters and the scrape's
// docker_container_*_total with want, name by name.
func checkCounts(t *testing.T, snap store.Snapshot, x *exposition, want map[string]store.Counts) {
	t.Helper()
	families := []string{"docker_container_starts_total", "docker_container_deaths_total", "docker_container_oom_events_total", "docker_container_destroys_total"}
	scraped := make([]map[string]float64, len(families))
	for i, f := range families {
		scraped[i] = x.ByName(f)
	}
	for _, name := range slices.Sorted(maps.Keys(want)) {
		w := want[name]
		got, ok := snap.Counts[name]
		if !ok || got != w {
			t.Errorf("%s: store counts %+v (present %v), want %+v", name, got, ok, w)
		}
		for i, v := range []uint64{w.Starts, w.Deaths, w.OOMs, w.Destroys} {
			if g, ok := scraped[i][name]; !ok || g != float64(v) {
				t.Errorf("%s{name=%q} = %v (present %v), want %d", families[i], name, g, ok, v)
			}
		}
	}
}

func containerEvents(snap store.Snapshot, action string) uint64 {
	return snap.Events[store.EventKind{Type: string(events.ContainerEventType), Action: action}]
}
