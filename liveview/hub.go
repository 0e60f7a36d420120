package liveview

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/docker-exporter/docker_exporter/collector"
)

// Hub follows a Source and pushes what changes to every event stream. One
// goroutine (Run) computes the changes, once for all clients, and hands each
// client the same encoded message; a client's own goroutine (its handler)
// writes it. The Run goroutine never waits for a client: a client whose
// queue is full is dropped.
type Hub struct {
	src   Source
	cfg   Config
	allow collector.LabelAllowlist
	log   *slog.Logger

	mu sync.Mutex
	// view is what the clients have once they took every message sent. It
	// is kept only while there are clients: with none it is empty, and
	// the first to join makes it again (at 10,000 containers it holds
	// some 15 MiB of encoded containers).
	view     view
	snapshot []byte // view.message(), made when a client first needs it
	clients  map[*client]struct{}
	streams  int // stream handlers running, a dropped one until it returns
	closed   bool
	done     chan struct{} // closed when Run returns: every stream ends
}

type client struct {
	queue   chan []byte
	dropped chan struct{} // closed when the hub dropped the client
}

// New makes a hub showing src; Run keeps it current.
func New(src Source, cfg Config) *Hub {
	cfg = cfg.withDefaults()
	return &Hub{
		src:     src,
		cfg:     cfg,
		allow:   collector.NewLabelAllowlist(cfg.Labels),
		log:     cfg.Logger,
		clients: make(map[*client]struct{}),
		done:    make(chan struct{}),
	}
}

// Run follows the source's change signal until ctx ends, then ends every
// stream and refuses new ones. The first change after a quiet spell is sent
// at once; while changes keep coming, they are gathered into one message
// per Config.Coalesce.
func (h *Hub) Run(ctx context.Context) {
	changed, cancel := h.src.Subscribe()
	defer cancel()
	defer h.close()
	h.refresh() // what changed between New and the subscription
	last := time.Now()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	var due <-chan time.Time // the timer's channel while a refresh is pending
	for {
		select {
		case <-ctx.Done():
			return
		case <-changed:
			if due != nil {
				continue
			}
			if wait := h.cfg.Coalesce - time.Since(last); wait > 0 {
				timer.Reset(wait)
				due = timer.C
				continue
			}
		case <-due:
			due = nil
		}
		h.refresh()
		last = time.Now()
	}
}

// refresh brings the view up to date with the source and queues what
// changed for every client; with no client there is nothing to keep. It
// holds the lock throughout, which only a client joining or leaving waits
// for.
func (h *Hub) refresh() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.clients) == 0 {
		return
	}
	next, cs := h.view.advance(h.src.Snapshot(), h.allow)
	if cs.empty() {
		return
	}
	msg := cs.message()
	h.view, h.snapshot = next, nil
	for c := range h.clients {
		select {
		case c.queue <- msg:
		default:
			delete(h.clients, c)
			close(c.dropped)
			h.log.Debug("dropped a live view client that fell behind", "queued", len(c.queue))
		}
	}
}

func (h *Hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	close(h.done)
}

// Streams is the number of event streams open.
func (h *Hub) Streams() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.streams
}

var (
	errFull   = errors.New("too many live view clients")
	errClosed = errors.New("shutting down")
)

// join registers a new client, whose first message is the snapshot of the
// view: every changes message queued after it applies to that view.
func (h *Hub) join() (*client, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, errClosed
	}
	if h.streams >= h.cfg.MaxClients {
		return nil, errFull
	}
	if len(h.clients) == 0 {
		h.view, _ = view{}.advance(h.src.Snapshot(), h.allow)
		h.snapshot = nil
	}
	if h.snapshot == nil {
		h.snapshot = h.view.message()
	}
	// One more than QueueLen: the snapshot does not count.
	c := &client{queue: make(chan []byte, h.cfg.QueueLen+1), dropped: make(chan struct{})}
	c.queue <- h.snapshot
	h.clients[c] = struct{}{}
	h.streams++
	return c, nil
}

func (h *Hub) leave(c *client) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.clients, c)
	h.streams--
	if len(h.clients) == 0 {
		h.view, h.snapshot = view{}, nil
	}
}

// ServeEvents serves the event stream (see the package documentation).
func (h *Hub) ServeEvents(w http.ResponseWriter, r *http.Request) {
	if !allowMethod(w, r) {
		return
	}
	c, err := h.join()
	if err != nil {
		w.Header().Set("Retry-After", "10")
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	defer h.leave(c)
	header := w.Header()
	header.Set("Content-Type", "text/event-stream")
	header.Set("Cache-Control", "no-cache")
	header.Set("X-Accel-Buffering", "no") // nginx: pass each message on at once
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}

	// A write deadline frees this goroutine from a client that stopped
	// reading; the hub has dropped it already when its queue filled.
	rc := http.NewResponseController(w)
	defer func() { _ = rc.SetWriteDeadline(time.Time{}) }()
	write := func(msg []byte) error {
		_ = rc.SetWriteDeadline(time.Now().Add(h.cfg.WriteTimeout)) // unsupported: no deadline, as before
		if _, err := w.Write(msg); err != nil {
			return err
		}
		return rc.Flush()
	}
	ping := time.NewTimer(h.cfg.Heartbeat)
	defer ping.Stop()
	for {
		var msg []byte
		select {
		case msg = <-c.queue:
		case <-ping.C:
			msg = []byte(pingMessage)
		case <-c.dropped:
			return
		case <-h.done:
			return
		case <-r.Context().Done():
			return
		}
		if err := write(msg); err != nil {
			h.log.Debug("live view client gone", "remote", r.RemoteAddr, "err", err)
			return
		}
		ping.Reset(h.cfg.Heartbeat)
	}
}

// ServeContainers serves the store's snapshot now as JSON (see the package
// documentation).
func (h *Hub) ServeContainers(w http.ResponseWriter, r *http.Request) {
	if !allowMethod(w, r) {
		return
	}
	body := marshal(snapshotOf(h.src.Snapshot(), h.allow))
	header := w.Header()
	header.Set("Content-Type", "application/json")
	header.Set("Cache-Control", "no-store")
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(append(body, '\n'))
}

// allowMethod answers 405 to anything but GET and HEAD.
func allowMethod(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return true
	}
	w.Header().Set("Allow", "GET, HEAD")
	http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
	return false
}
