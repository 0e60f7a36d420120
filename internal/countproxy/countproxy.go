// Package countproxy is an HTTP reverse proxy from a unix socket of its own to
// a Docker daemon's unix socket that counts the requests it forwards, so that
// a test can prove which requests a client made to the daemon, and when.
//
// Responses are flushed as they arrive, so the daemon's /events stream, which
// never ends on its own, reaches the client event by event.
package countproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"maps"
	"net"
	"net/http"
	"net/http/httputil"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"
)

// Proxy is a running proxy. Its zero value is not usable; call Start.
type Proxy struct {
	// Host is the proxy's address for a Docker client: "unix://" + Socket.
	Host string
	// Socket is the path of the unix socket the proxy listens on.
	Socket string

	dir    string
	ln     net.Listener
	srv    *http.Server
	tr     *http.Transport
	served chan error

	mu       sync.Mutex
	closed   bool
	refusing bool
	stall    chan struct{}                  // non-nil while event streams are held; closed to lift
	lifted   chan struct{}                  // closed by Close, to let held streams go
	allow    func(method, path string) bool // nil: everything
	rejected map[string]int
	counts   map[string]int
	total    int
	active   sync.WaitGroup // handlers in progress; Add only under mu while !closed

	closeOnce sync.Once
	closeErr  error
}

// Start listens on a new unix socket in a fresh temporary directory (short,
// so the path fits in sun_path) and forwards every request to the daemon on
// upstream, a socket path with or without "unix://". The upstream need not be
// up: while it is not, the proxy answers 502 Bad Gateway.
func Start(upstream string) (*Proxy, error) {
	upstream = strings.TrimPrefix(upstream, "unix://")
	dir, err := os.MkdirTemp("", "cproxy")
	if err != nil {
		return nil, err
	}
	sock := filepath.Join(dir, "docker.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	p := &Proxy{
		Host:   "unix://" + sock,
		Socket: sock,
		dir:    dir,
		ln:     ln,
		served: make(chan error, 1),
		lifted: make(chan struct{}),
		counts: make(map[string]int),
		tr: &http.Transport{
			DialContext: (&unixDialer{path: upstream}).dial,
			// Pass the daemon's bytes through unchanged.
			DisableCompression: true,
		},
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme = "http"
			pr.Out.URL.Host = "docker"
		},
		Transport: p.tr,
		ModifyResponse: func(resp *http.Response) error {
			if strings.HasSuffix(resp.Request.URL.Path, "/events") {
				resp.Body = &heldBody{ReadCloser: resp.Body, p: p, ctx: resp.Request.Context()}
			}
			return nil
		},
		// Negative: flush after every write, which /events needs.
		FlushInterval: -1,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if r.Context().Err() != nil {
				return // the client went away; nobody to answer
			}
			http.Error(w, "countproxy: "+err.Error(), http.StatusBadGateway)
		},
		// Copy errors of an aborted stream are expected (daemon stopped,
		// client gone) and say nothing a test needs.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	p.srv = &http.Server{
		Handler:           p.count(rp),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	go func() { p.served <- p.srv.Serve(ln) }()
	return p, nil
}

type unixDialer struct{ path string }

func (d *unixDialer) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	var nd net.Dialer
	return nd.DialContext(ctx, "unix", d.path)
}

// apiVersion is the "/v1.41" prefix a Docker client puts on most paths, or
// Podman's "/v4.3.1" before its own "/libpod" paths.
var apiVersion = regexp.MustCompile(`^/v[0-9]+\.[0-9]+(\.[0-9]+)?(/|$)`)

// Key is how a request is counted: "METHOD path", without the API version
// prefix and the query, e.g. "GET /containers/<id>/json".
func Key(r *http.Request) string {
	path := r.URL.Path
	if loc := apiVersion.FindStringIndex(path); loc != nil {
		path = "/" + path[loc[1]:]
	}
	return r.Method + " " + path
}

func (p *Proxy) count(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			http.Error(w, "countproxy: closed", http.StatusServiceUnavailable)
			return
		}
		key := Key(r)
		p.counts[key]++
		p.total++
		if p.allow != nil && !p.allow(r.Method, strings.TrimPrefix(key, r.Method+" ")) {
			p.rejected[key]++
			p.mu.Unlock()
			http.Error(w, "countproxy: "+key+" is not allowed", http.StatusForbidden)
			return
		}
		if p.refusing {
			p.mu.Unlock()
			http.Error(w, "countproxy: refusing requests", http.StatusBadGateway)
			return
		}
		p.active.Add(1)
		p.mu.Unlock()
		defer p.active.Done()
		next.ServeHTTP(w, r)
	})
}

// Refuse makes the proxy answer every new request with 502 Bad Gateway, as
// it does while the daemon is down, until Refuse(false). It keeps the client
// away from a daemon that is up. Refused requests are counted; requests
// already forwarded (a stream) go on.
func (p *Proxy) Refuse(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refusing = on
}

// StallEvents, while on, stops reading the daemon's /events responses, as a
// client that falls behind does: the daemon's writes back up until its
// buffer for that subscriber is full, and then it drops events for it,
// keeping the stream open. Off, the proxy reads and forwards again.
func (p *Proxy) StallEvents(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case on && p.stall == nil:
		p.stall = make(chan struct{})
	case !on && p.stall != nil:
		close(p.stall)
		p.stall = nil
	}
}

// heldBody is an /events response body that StallEvents can hold.
type heldBody struct {
	io.ReadCloser
	p   *Proxy
	ctx context.Context
}

// Read waits out a stall before it reads, and again before it hands over
// what a read already under way when the stall began brought.
func (b *heldBody) Read(buf []byte) (int, error) {
	if err := b.wait(); err != nil {
		return 0, err
	}
	n, err := b.ReadCloser.Read(buf)
	if werr := b.wait(); werr != nil {
		return 0, werr
	}
	return n, err
}

func (b *heldBody) wait() error {
	b.p.mu.Lock()
	stall := b.p.stall
	b.p.mu.Unlock()
	if stall == nil {
		return nil
	}
	select {
	case <-stall:
		return nil
	case <-b.p.lifted:
		return nil
	case <-b.ctx.Done():
		return b.ctx.Err()
	}
}

// AllowOnly makes the proxy answer 403 Forbidden to every request for which
// allow (given the method and the path without its version prefix) is
// false, as a socket proxy in front of a daemon does; Rejected lists them.
func (p *Proxy) AllowOnly(allow func(method, path string) bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.allow = allow
	p.rejected = make(map[string]int)
}

// Rejected returns the requests AllowOnly turned away, per Key.
func (p *Proxy) Rejected() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.rejected)
}

// Count returns how many requests the proxy has received in all.
func (p *Proxy) Count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.total
}

// Snapshot returns the number of requests received so far per Key.
func (p *Proxy) Snapshot() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.counts)
}

// Diff returns the counts in after that exceed those in before, the requests
// made between two snapshots.
func Diff(before, after map[string]int) map[string]int {
	d := make(map[string]int)
	for k, n := range after {
		if n > before[k] {
			d[k] = n - before[k]
		}
	}
	return d
}

// Close stops listening, cuts every connection (ending streams in progress),
// waits for the handlers to return, closes the connections to the daemon and
// removes the socket's directory. It is safe to call more than once.
func (p *Proxy) Close() error {
	p.closeOnce.Do(func() {
		p.mu.Lock()
		p.closed = true
		p.mu.Unlock()
		close(p.lifted)
		var errs []error
		// Closing a client's connection cancels its request's context, which
		// aborts the proxied request, so a streaming handler returns too.
		if err := p.srv.Close(); err != nil {
			errs = append(errs, err)
		}
		if err := <-p.served; err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, fmt.Errorf("serve: %w", err))
		}
		p.active.Wait()
		p.tr.CloseIdleConnections()
		if err := os.RemoveAll(p.dir); err != nil {
			errs = append(errs, err)
		}
		p.closeErr = errors.Join(errs...)
	})
	return p.closeErr
}
