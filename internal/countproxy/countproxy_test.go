package countproxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"
)

const deadline = 10 * time.Second

// fakeDaemon serves HTTP on a unix socket: "/v1.41/events" streams one line,
// then a second once release is closed, then holds the stream open until the
// request's context ends (reported on aborted); anything else answers with
// its request URI.
type fakeDaemon struct {
	sock     string
	srv      *http.Server
	release  chan struct{}
	aborted  chan struct{}
	served   chan error
	stopOnce sync.Once
	mu       sync.Mutex
	received []string
}

func startFakeDaemon(t *testing.T) *fakeDaemon {
	t.Helper()
	dir, err := os.MkdirTemp("", "cpup")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	f := &fakeDaemon{
		sock:    filepath.Join(dir, "d.sock"),
		release: make(chan struct{}),
		aborted: make(chan struct{}),
		served:  make(chan error, 1),
	}
	ln, err := net.Listen("unix", f.sock)
	if err != nil {
		t.Fatal(err)
	}
	f.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.received = append(f.received, r.Method+" "+r.URL.RequestURI())
		f.mu.Unlock()
		if r.URL.Path != "/v1.41/events" {
			fmt.Fprint(w, r.URL.RequestURI())
			return
		}
		fmt.Fprintln(w, `{"Action":"start"}`)
		w.(http.Flusher).Flush()
		<-f.release
		fmt.Fprintln(w, `{"Action":"die"}`)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
		close(f.aborted)
	})}
	go func() { f.served <- f.srv.Serve(ln) }()
	t.Cleanup(f.stop)
	return f
}

func (f *fakeDaemon) stop() {
	f.stopOnce.Do(func() {
		f.srv.Close()
		<-f.served
	})
}

func unixClient(sock string) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}}
}

func get(t *testing.T, c *http.Client, method, path string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://docker"+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp.StatusCode, string(body)
}

// startProxied starts a fake daemon and a proxy in front of it, whose
// upstream is the daemon's socket path with prefix, and a client of the
// proxy; the test's cleanup closes them.
func startProxied(t *testing.T, prefix string) (*fakeDaemon, *Proxy, *http.Client) {
	t.Helper()
	up := startFakeDaemon(t)
	p, err := Start(prefix + up.sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	c := unixClient(p.Socket)
	t.Cleanup(c.CloseIdleConnections)
	return up, p, c
}

func TestCountsRequestsPerMethodAndPathWithoutAPIVersion(t *testing.T) {
	_, p, c := startProxied(t, "unix://")

	before := p.Snapshot()
	for _, r := range []struct{ method, path string }{
		{"HEAD", "/_ping"},
		{"GET", "/v1.41/info"},
		{"GET", "/v1.41/containers/abc/json?size=0"},
		{"GET", "/v1.41/containers/abc/json"},
		{"GET", "/v1.41"},
	} {
		code, body := get(t, c, r.method, r.path)
		if code != http.StatusOK {
			t.Fatalf("%s %s: status %d", r.method, r.path, code)
		}
		// The daemon must see the request as the client sent it.
		if r.method == "GET" && body != r.path {
			t.Fatalf("%s %s reached the daemon as %q", r.method, r.path, body)
		}
	}
	want := map[string]int{
		"HEAD /_ping":              1,
		"GET /info":                1,
		"GET /containers/abc/json": 2,
		"GET /":                    1,
	}
	if got := p.Snapshot(); !maps.Equal(got, want) {
		t.Fatalf("Snapshot() = %v, want %v", got, want)
	}
	if got := p.Count(); got != 5 {
		t.Fatalf("Count() = %d, want 5", got)
	}
	if d := Diff(before, p.Snapshot()); !maps.Equal(d, want) {
		t.Fatalf("Diff(empty, now) = %v, want %v", d, want)
	}
}

func TestAnswersBadGatewayWhileTheDaemonIsDown(t *testing.T) {
	p, err := Start(filepath.Join(t.TempDir(), "absent.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c := unixClient(p.Socket)
	defer c.CloseIdleConnections()
	if code, body := get(t, c, "GET", "/v1.41/info"); code != http.StatusBadGateway {
		t.Fatalf("status %d (%s), want 502", code, body)
	}
	if got := p.Count(); got != 1 {
		t.Fatalf("Count() = %d, want 1: a failed request is still a request", got)
	}
}

func TestRefuseAnswersBadGatewayUntilLifted(t *testing.T) {
	up, p, c := startProxied(t, "")

	p.Refuse(true)
	if code, body := get(t, c, "GET", "/v1.41/info"); code != http.StatusBadGateway {
		t.Fatalf("while refusing: status %d (%s), want 502", code, body)
	}
	up.mu.Lock()
	reached := len(up.received)
	up.mu.Unlock()
	if reached != 0 {
		t.Fatalf("a refused request reached the daemon")
	}
	p.Refuse(false)
	if code, body := get(t, c, "GET", "/v1.41/info"); code != http.StatusOK {
		t.Fatalf("after Refuse(false): status %d (%s), want 200", code, body)
	}
	if got := p.Snapshot()["GET /info"]; got != 2 {
		t.Fatalf("GET /info counted %d times, want 2: refused requests count too", got)
	}
}

// TestStreamsEventsAndCloseEndsEverything proves that a streamed response is
// passed on as it comes (the first event arrives while the daemon still holds
// the response open), that Close aborts the stream at both ends, and that the
// proxy leaves no goroutine behind.
// followEvents GETs /events through c and sends each line it reads; at the
// end of the stream it closes lines after sending the read error on readErr.
func followEvents(t *testing.T, c *http.Client) (lines <-chan string, readErr <-chan error) {
	t.Helper()
	resp, err := c.Get("http://docker/v1.41/events")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	out, errs := make(chan string), make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			out <- sc.Text()
		}
		errs <- sc.Err()
		close(out)
	}()
	return out, errs
}

func TestStreamsEventsAndCloseEndsEverything(t *testing.T) {
	baseline := runtime.NumGoroutine()
	func() {
		up := startFakeDaemon(t)
		defer up.stop()
		p, err := Start(up.sock)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		c := unixClient(p.Socket)
		defer c.CloseIdleConnections()
		lines, readErr := followEvents(t, c)
		next := func(want string) {
			t.Helper()
			select {
			case l := <-lines:
				if l != want {
					t.Fatalf("streamed line %q, want %q", l, want)
				}
			case <-time.After(deadline):
				t.Fatalf("no streamed line %q within %v: the proxy buffers", want, deadline)
			}
		}
		next(`{"Action":"start"}`)
		close(up.release)
		next(`{"Action":"die"}`)

		closed := make(chan error, 1)
		go func() { closed <- p.Close() }()
		select {
		case err := <-closed:
			if err != nil {
				t.Fatalf("Close: %v", err)
			}
		case <-time.After(deadline):
			t.Fatalf("Close did not return within %v with a stream open", deadline)
		}
		select {
		case <-up.aborted:
		case <-time.After(deadline):
			t.Fatal("the daemon's side of the stream stayed open after Close")
		}
		select {
		case l, ok := <-lines:
			if ok {
				t.Fatalf("read %q after Close", l)
			}
			<-readErr // either EOF or an error: the stream ended
		case <-time.After(deadline):
			t.Fatal("the client's side of the stream stayed open after Close")
		}
		if _, err := os.Stat(p.Socket); !os.IsNotExist(err) {
			t.Fatalf("socket still there after Close: %v", err)
		}
	}()
	// Connection goroutines exit just after their connection is closed.
	end := time.Now().Add(deadline)
	for runtime.NumGoroutine() > baseline {
		if time.Now().After(end) {
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			t.Fatalf("%d goroutines, %d before the test:\n%s", runtime.NumGoroutine(), baseline, buf[:n])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestStallEventsHoldsTheStreamUntilLifted proves a stall keeps what the
// daemon sends from the client, and the stream goes on once it is lifted.
func TestStallEventsHoldsTheStreamUntilLifted(t *testing.T) {
	up, p, c := startProxied(t, "")
	lines, _ := followEvents(t, c)
	if l := <-lines; l != `{"Action":"start"}` {
		t.Fatalf("first line %q", l)
	}
	p.StallEvents(true)
	close(up.release)
	// The daemon has written the second line; a stalled proxy must sit on
	// it. A bounded wait: nothing can signal that nothing happened.
	select {
	case l := <-lines:
		t.Fatalf("read %q through a stalled proxy", l)
	case <-time.After(300 * time.Millisecond):
	}
	p.StallEvents(false)
	select {
	case l := <-lines:
		if l != `{"Action":"die"}` {
			t.Fatalf("after the stall, %q", l)
		}
	case <-time.After(deadline):
		t.Fatal("the stream did not go on after the stall was lifted")
	}
}

func TestKeyDropsTheAPIVersionPrefix(t *testing.T) {
	for path, want := range map[string]string{
		"/v1.41/containers/json":         "GET /containers/json",
		"/containers/json":               "GET /containers/json",
		"/v4.3.1/libpod/pods/abc/json":   "GET /libpod/pods/abc/json",
		"/v1.41":                         "GET /",
		"/v1.41x/containers/json":        "GET /v1.41x/containers/json",
		"/volumes/v1.41/containers/json": "GET /volumes/v1.41/containers/json",
	} {
		r := httptest.NewRequest(http.MethodGet, path+"?all=1", nil)
		if got := Key(r); got != want {
			t.Errorf("Key(GET %s) = %q, want %q", path, got, want)
		}
	}
}
