package fakeengine

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fakeClock is a clock that moves only when told, to prove that event times
// stay strictly increasing even when the clock stands still.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// start serves a new engine on a unix socket in a short directory (sun_path
// holds 107 bytes) and returns it with a real moby client; both close at
// the end of the test.
func start(t *testing.T, opts Options) (*Engine, *client.Client) {
	t.Helper()
	dir, err := os.MkdirTemp("", "fe")
	if err != nil {
		t.Fatal(err)
	}
	e := New(opts)
	if err := e.ListenUnix(filepath.Join(dir, "docker.sock")); err != nil {
		t.Fatal(err)
	}
	cli, err := client.New(client.WithHost(e.Host()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cli.Close()
		if err := e.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		_ = os.RemoveAll(dir)
	})
	return e, cli
}

func timeout(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// subscribe opens an event stream and waits until the engine has it.
func subscribe(t *testing.T, e *Engine, cli *client.Client, opts client.EventsListOptions) client.EventsResult {
	t.Helper()
	ctx, cancel := context.WithCancel(timeout(t))
	t.Cleanup(cancel)
	before := e.Streams()
	res := cli.Events(ctx, opts)
	if err := e.WaitStreams(timeout(t), before+1); err != nil {
		t.Fatalf("stream not open: %v", err)
	}
	return res
}

// receive reads n events, failing on an error or a timeout.
func receive(t *testing.T, res client.EventsResult, n int) []events.Message {
	t.Helper()
	out := make([]events.Message, 0, n)
	deadline := time.After(10 * time.Second)
	for len(out) < n {
		select {
		case m := <-res.Messages:
			out = append(out, m)
		case err := <-res.Err:
			t.Fatalf("after %d of %d events: %v", len(out), n, err)
		case <-deadline:
			t.Fatalf("timed out after %d of %d events", len(out), n)
		}
	}
	return out
}

// streamErr waits for the stream's error, failing if an event comes first.
func streamErr(t *testing.T, res client.EventsResult) error {
	t.Helper()
	select {
	case m := <-res.Messages:
		t.Fatalf("unexpected event %s %s", m.Type, m.Action)
	case err := <-res.Err:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("stream did not end")
	}
	return nil
}

func actions(msgs []events.Message) string {
	var b strings.Builder
	for i, m := range msgs {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(string(m.Action))
	}
	return b.String()
}

// rawLines GETs path over the engine's socket and returns the lines of the
// body, for what the moby client does not show (such as legacy fields).
func rawLines(t *testing.T, e *Engine, path string) (*http.Response, []string) {
	t.Helper()
	sock := strings.TrimPrefix(e.Host(), "unix://")
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(timeout(t), http.MethodGet, "http://docker"+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var lines []string
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return resp, lines
}
