// Package fakeengine emulates the part of the Docker Engine API that the
// exporter uses (ping, version, info, container list and inspect, events), so
// that tests and benchmarks can run the real moby client against thousands of
// containers, inject faults and count every request exactly.
//
// It models the daemon's documented behaviour with the API's own JSON types;
// it is no substitute for the tests against a real dockerd.
//
// With Options.Podman it speaks the dialect of Podman's Docker-compatible
// service instead (`podman system service`, see podman.go): Podman's version
// answers, event names and attributes, health-check timing, and the libpod
// endpoints that tell a container's pod.
//
// A test typically does:
//
//	e := fakeengine.New(fakeengine.Options{})
//	defer e.Close()
//	if err := e.ListenUnix(filepath.Join(dir, "docker.sock")); err != nil { ... }
//	e.Populate(10_000, 1)
//	cli, _ := client.New(client.WithHost(e.Host()))
//	// ... run the code under test against cli, then drive e.Start, e.Kill,
//	// e.Storm, e.DropStreams and friends, and compare with e.Truth().
package fakeengine

import (
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Options configure an Engine. Zero values take the defaults noted.
type Options struct {
	// APIVersion is the highest API version served, announced by /_ping
	// (default "1.41", the version of Docker 20.10).
	APIVersion string
	// Version is the daemon version /version and /info report (default
	// "20.10.24").
	Version string
	// Now is the engine's clock (default time.Now). Event times come from it,
	// bumped by a nanosecond when it has not moved since the previous event.
	Now func() time.Time
	// InspectLatency and ListLatency delay every inspect or list answer.
	InspectLatency time.Duration
	ListLatency    time.Duration
	// StreamBuffer is how many events may wait for a slow /events client
	// (default 1024, as in dockerd).
	StreamBuffer int
	// DropTimeout is how long an event waits for room in a full stream
	// buffer before it is dropped for that stream, which stays open
	// (default 100ms, as in dockerd). The wait holds up the action that
	// emitted the event, as dockerd's does.
	DropTimeout time.Duration
	// EventBuffer is how many past events a `since` request can replay
	// (default 256, as in dockerd).
	EventBuffer int
	// Podman, when set, is the Podman version to emulate, such as "4.3.1"
	// or "4.9.4", instead of dockerd; it is then also the Version. APIVersion
	// stays the Docker API version Podman serves.
	Podman string
	// HealthCheckDuration is how long a Podman health check runs (default
	// 50ms): before Podman 4.7 its result shows in inspects only after it.
	HealthCheckDuration time.Duration
}

func (o Options) withDefaults() Options {
	if o.APIVersion == "" {
		o.APIVersion = "1.41"
	}
	if o.Version == "" {
		o.Version = "20.10.24"
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.StreamBuffer <= 0 {
		o.StreamBuffer = 1024
	}
	if o.DropTimeout <= 0 {
		o.DropTimeout = 100 * time.Millisecond
	}
	if o.EventBuffer <= 0 {
		o.EventBuffer = 256
	}
	if o.Podman != "" {
		o.Version = o.Podman
	}
	if o.HealthCheckDuration <= 0 {
		o.HealthCheckDuration = 50 * time.Millisecond
	}
	return o
}

// Engine is a fake Docker daemon. All its methods are safe for concurrent use.
type Engine struct {
	opts    Options
	dialect dialect
	srv     *http.Server

	// closing is closed by Close; everything that waits selects on it.
	closing chan struct{}
	// serving counts Serve loops, handlers the requests in progress and conns
	// the open connections, so that Close can wait for all of them.
	serving, handlers, conns sync.WaitGroup

	mu          sync.Mutex
	closed      bool
	unreachable bool
	listeners   []*listener
	open        map[net.Conn]struct{}

	containers map[string]*ctr
	names      map[string]*ctr
	ids        []string // every id once, for a random pick in O(1)
	seq        uint64   // creation order; the list shows newest first
	lastNano   int64    // time of the newest event this engine made

	ring    []*event // the last EventBuffer events, oldest at ringPos once full
	ringPos int
	streams map[*stream]struct{}
	emitted int
	drops   int
	muted   bool
	// stalled, while set, holds every stream's writer: a client that
	// stopped reading. Atomic, so that a writer never waits for e.mu,
	// which an emitting action holds while it waits for the writer.
	stalled atomic.Pointer[chan struct{}]

	requests map[string]int
	total    int

	failList, failInspect int
	hangList, hangInspect chan struct{} // closed to lift the hang
	vanished              map[string]bool
	imageIDs              map[string]string
	pods                  map[string]*pod // by name
}

type listener struct {
	network, addr string
	ln            net.Listener // nil while unreachable
}

// New makes an engine with no containers. It serves nothing until ListenUnix
// or ListenTCP.
func New(opts Options) *Engine {
	opts = opts.withDefaults()
	e := &Engine{
		opts:       opts,
		dialect:    newDialect(opts),
		closing:    make(chan struct{}),
		open:       make(map[net.Conn]struct{}),
		containers: make(map[string]*ctr),
		names:      make(map[string]*ctr),
		streams:    make(map[*stream]struct{}),
		requests:   make(map[string]int),
		vanished:   make(map[string]bool),
		imageIDs:   make(map[string]string),
		pods:       make(map[string]*pod),
	}
	e.srv = &http.Server{
		Handler:   e,
		ConnState: e.connState,
		// Aborted streams are the point, not news.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	return e
}

// ListenUnix serves on a new unix socket at path.
func (e *Engine) ListenUnix(path string) error {
	_, err := e.listen("unix", path)
	return err
}

// ListenTCP serves on addr ("127.0.0.1:0" picks a port) and returns the
// address it listens on.
func (e *Engine) ListenTCP(addr string) (string, error) {
	return e.listen("tcp", addr)
}

func (e *Engine) listen(network, addr string) (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return "", errors.New("fakeengine: closed")
	}
	l := &listener{network: network, addr: addr}
	if !e.unreachable {
		if err := e.startListener(l); err != nil {
			return "", err
		}
	}
	e.listeners = append(e.listeners, l)
	return l.addr, nil
}

// startListener must be called with e.mu held.
func (e *Engine) startListener(l *listener) error {
	ln, err := net.Listen(l.network, l.addr)
	if err != nil {
		return fmt.Errorf("fakeengine: %w", err)
	}
	// A port picked by the system stays the same across SetUnreachable.
	l.addr, l.ln = ln.Addr().String(), ln
	e.serving.Go(func() { _ = e.srv.Serve(ln) })
	return nil
}

// Host is the first listener's address for client.WithHost, such as
// "unix:///tmp/x/docker.sock", or "" before any Listen.
func (e *Engine) Host() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.listeners) == 0 {
		return ""
	}
	l := e.listeners[0]
	return l.network + "://" + l.addr
}

// Close stops the listeners, ends every request and stream, and returns once
// no goroutine of the engine is left.
func (e *Engine) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	close(e.closing)
	e.mu.Unlock()

	err := e.srv.Close()
	if errors.Is(err, net.ErrClosed) {
		err = nil // a listener SetUnreachable closed first
	}
	e.serving.Wait() // after this no connection can be added
	e.handlers.Wait()
	e.conns.Wait()
	return err
}

// connState keeps the open connections, to cut them when the daemon goes
// down and to wait for their goroutines in Close.
func (e *Engine) connState(c net.Conn, state http.ConnState) {
	switch state {
	case http.StateNew:
		e.conns.Add(1)
		e.mu.Lock()
		e.open[c] = struct{}{}
		down := e.unreachable
		e.mu.Unlock()
		if down {
			// Accepted just before the listener closed.
			_ = c.Close()
		}
	case http.StateClosed, http.StateHijacked:
		e.mu.Lock()
		delete(e.open, c)
		e.mu.Unlock()
		e.conns.Done()
	}
}

// closeConns must be called with e.mu held.
func (e *Engine) closeConns() {
	for c := range e.open {
		_ = c.Close()
	}
}

// SetUnreachable(true) takes the daemon off the network: the listeners close
// (a unix socket file disappears, so the client gets "no such file"), every
// connection and stream is cut. SetUnreachable(false) listens again on the
// same addresses.
func (e *Engine) SetUnreachable(down bool) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed || e.unreachable == down {
		return nil
	}
	e.unreachable = down
	if down {
		for _, l := range e.listeners {
			if l.ln != nil {
				_ = l.ln.Close()
				l.ln = nil
			}
		}
		e.endStreams(endClean)
		e.closeConns()
		return nil
	}
	var errs []error
	for _, l := range e.listeners {
		errs = append(errs, e.startListener(l))
	}
	return errors.Join(errs...)
}
