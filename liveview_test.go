package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/crypto/bcrypt"

	"github.com/docker-exporter/docker_exporter/internal/exporterproc"
	"github.com/docker-exporter/docker_exporter/liveview"
	"github.com/docker-exporter/docker_exporter/store"
)

// liveViewMux is newMux as run builds it from args, with the live view's
// hub running until the test ends, over a store that never reached a
// daemon.
func liveViewMux(t *testing.T, args ...string) *httptest.Server {
	t.Helper()
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	opts, code, done := parseFlags(append([]string{"--docker.host=unix:///nonexistent/docker.sock"}, args...), &bytes.Buffer{}, &bytes.Buffer{})
	if done {
		t.Fatalf("flags %q: exit %d", args, code)
	}
	logger := slog.New(slog.DiscardHandler)
	st := store.New(nil, store.Config{}) // never Run: no daemon is asked
	live := newLiveView(st, opts, logger)
	if live != nil {
		ctx, cancel := context.WithCancel(context.Background())
		stopped := make(chan struct{})
		go func() {
			defer close(stopped)
			live.Run(ctx)
		}()
		t.Cleanup(func() {
			cancel()
			<-stopped
		})
	}
	srv := httptest.NewServer(newMux(st, nil, live, opts, logger))
	t.Cleanup(srv.Close)
	return srv
}

func getStatus(t *testing.T, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, string(body)
}

// firstEvent opens the event stream at url and returns its status and its
// first event's name and data; the stream is closed after.
func firstEvent(t *testing.T, c *http.Client, url string) (code int, name, data string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, "", ""
	}
	name, data = readEvent(t, bufio.NewReader(resp.Body))
	return resp.StatusCode, name, data
}

func readEvent(t *testing.T, r *bufio.Reader) (name, data string) {
	t.Helper()
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the event stream: %v", err)
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "" && name != "":
			return name, data
		case strings.HasPrefix(line, "event: "):
			name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			data += strings.TrimPrefix(line, "data: ")
		}
	}
}

func TestMuxServesTheLiveView(t *testing.T) {
	srv := liveViewMux(t, "--container.labels=team")
	c := srv.Client()

	code, body := getStatus(t, c, srv.URL+liveview.ContainersPath)
	var snap liveview.Snapshot
	if code != http.StatusOK || json.Unmarshal([]byte(body), &snap) != nil {
		t.Fatalf("GET %s: %d %s", liveview.ContainersPath, code, body)
	}
	if snap.Status.Up || len(snap.Containers) != 0 {
		t.Errorf("a store that never reached the daemon: %s", body)
	}

	code, name, data := firstEvent(t, c, srv.URL+liveview.EventsPath)
	if code != http.StatusOK || name != "snapshot" || data != `{"containers":[],"status":{"up":false}}` {
		t.Errorf("GET %s: %d, first event %q %s", liveview.EventsPath, code, name, data)
	}

	code, body = getStatus(t, c, srv.URL+"/")
	for _, want := range []string{`<table id="containers"`, `id="daemon-status" data-up="0">not connected<`, `<a href="/metrics">Metrics</a>`, `<a href="/api/containers">Containers</a>`} {
		if code != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("GET /: %d, lacks %s", code, want)
		}
	}
	// The metrics are still where they were.
	if code, body := getStatus(t, c, srv.URL+"/metrics"); code != http.StatusOK || !strings.Contains(body, "docker_up 0") {
		t.Errorf("GET /metrics: %d", code)
	}
}

func TestMuxWithoutLiveViewServesThePlainLandingPage(t *testing.T) {
	srv := liveViewMux(t, "--no-web.live-view")
	c := srv.Client()
	for _, path := range []string{liveview.ContainersPath, liveview.EventsPath, "/api/"} {
		if code, _ := getStatus(t, c, srv.URL+path); code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, code)
		}
	}
	code, body := getStatus(t, c, srv.URL+"/")
	if code != http.StatusOK || !strings.Contains(body, `<a href="/metrics">Metrics</a>`) {
		t.Errorf("GET /: %d:\n%s", code, body)
	}
	for _, absent := range []string{`id="containers"`, "api/containers", "<script", "daemon-status"} {
		if strings.Contains(body, absent) {
			t.Errorf("the plain landing page has %q:\n%s", absent, body)
		}
	}
}

func TestFlagsOfTheLiveView(t *testing.T) {
	opts, _, done := parseFlags(nil, &bytes.Buffer{}, &bytes.Buffer{})
	if done || !opts.liveView.enabled || opts.liveView.maxClients != 64 {
		t.Errorf("defaults: %+v, want on with 64 clients", opts.liveView)
	}
	t.Setenv("DOCKER_EXPORTER_WEB_LIVE_VIEW_MAX_CLIENTS", "5")
	opts, _, done = parseFlags([]string{"--no-web.live-view"}, &bytes.Buffer{}, &bytes.Buffer{})
	if done || opts.liveView.enabled || opts.liveView.maxClients != 5 {
		t.Errorf("--no-web.live-view and the variable: %+v", opts.liveView)
	}
	for _, tt := range []struct {
		args []string
		flag string
	}{
		{[]string{"--web.live-view.max-clients=0"}, "--web.live-view.max-clients"},
		{[]string{"--web.live-view.max-clients=many"}, "--web.live-view.max-clients"},
		{[]string{"--web.telemetry-path=" + liveview.EventsPath}, "--web.telemetry-path"},
	} {
		var stderr bytes.Buffer
		code := run(tt.args, &bytes.Buffer{}, &stderr)
		lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
		if code == 0 || len(lines) != 1 || !strings.Contains(lines[0], tt.flag) {
			t.Errorf("%q: exit %d, stderr %q; want non-zero and one line naming %s", tt.args, code, stderr.String(), tt.flag)
		}
	}
	// Without the live view, its paths are free.
	if _, _, done := parseFlags([]string{"--no-web.live-view", "--web.telemetry-path=" + liveview.ContainersPath}, &bytes.Buffer{}, &bytes.Buffer{}); done {
		t.Errorf("--web.telemetry-path=%s refused with --no-web.live-view", liveview.ContainersPath)
	}
}

// TestLiveViewIsBehindBasicAuth runs the exporter binary with basic auth in
// its --web.config.file: the page, the JSON and the event stream refuse a
// client without the password, as /metrics does, and serve one with it. A
// stream still open at SIGTERM ends, and the exporter exits 0.
func TestLiveViewIsBehindBasicAuth(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	webConfig := filepath.Join(dir, "web.yml")
	writeFile(t, webConfig, "basic_auth_users:\n  prometheus: "+string(hash)+"\n")
	transport := &http.Transport{}
	t.Cleanup(transport.CloseIdleConnections)
	anonymous := &http.Client{Transport: transport}
	wrong := &http.Client{Transport: basicAuth{"prometheus", "guess", transport}}
	authed := &http.Client{Transport: basicAuth{"prometheus", "s3cret", transport}}

	// Registered before the exporter's stop, so it runs after it.
	streamEnded := make(chan error, 1)
	var stream io.Closer
	t.Cleanup(func() {
		if stream == nil {
			return
		}
		defer stream.Close()
		select {
		case err := <-streamEnded:
			if err != nil {
				t.Errorf("the open event stream broke at shutdown: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("the event stream outlived the exporter")
		}
	})
	e := exporterproc.StartWith(t, exporterproc.Build(t, true), "http", authed,
		"--docker.host=unix:///nonexistent/docker.sock", "--web.config.file="+webConfig)
	base := strings.TrimSuffix(e.URL, "/metrics")

	for _, path := range []string{"/", liveview.ContainersPath, liveview.EventsPath} {
		for _, c := range []*http.Client{anonymous, wrong} {
			if code, _, _ := firstEvent(t, c, base+path); code != http.StatusUnauthorized {
				t.Errorf("GET %s without the password: %d, want 401", path, code)
			}
		}
	}
	if code, body := getStatus(t, authed, base+"/"); code != http.StatusOK || !strings.Contains(body, `<table id="containers"`) {
		t.Errorf("GET / with the password: %d", code)
	}
	if code, body := getStatus(t, authed, base+liveview.ContainersPath); code != http.StatusOK || !strings.Contains(body, `"up":false`) {
		t.Errorf("GET %s with the password: %d %s", liveview.ContainersPath, code, body)
	}

	resp, err := authed.Get(base + liveview.EventsPath)
	if err != nil {
		t.Fatal(err)
	}
	stream = resp.Body
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s with the password: %d", liveview.EventsPath, resp.StatusCode)
	}
	r := bufio.NewReader(resp.Body)
	if name, data := readEvent(t, r); name != "snapshot" || !strings.Contains(data, `"up":false`) {
		t.Errorf("first event %q %s", name, data)
	}
	go func() {
		_, err := io.Copy(io.Discard, r)
		streamEnded <- err
	}()
}
