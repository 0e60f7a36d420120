package main

// End-to-end tests: they build the exporter, run the binary against a private
// dockerd (internal/testdaemon) the way a user would, drive real containers
// with the docker CLI and read what /metrics says.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/docker-exporter/docker_exporter/internal/countproxy"
	"github.com/docker-exporter/docker_exporter/internal/testdaemon"
)

const (
	// waitTimeout bounds every wait for the exporter to show something.
	waitTimeout  = 30 * time.Second
	pollInterval = 20 * time.Millisecond
	// exitTimeout bounds the exporter's exit after SIGTERM or a bad flag.
	exitTimeout = 20 * time.Second
	// timeSlack is how far a timestamp metric may be from docker inspect's:
	// the store may hold the event's time until its inspect lands.
	timeSlack = 2 * time.Second
)

// allStates are the states docker_container_state is one-hot over.
var allStates = []string{"created", "running", "paused", "restarting", "removing", "exited", "dead"}

// binDir holds the exporter binaries built for this run; TestMain removes it.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "docker_exporter-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type build struct {
	once sync.Once
	path string
	err  error
}

var raceBuild, plainBuild build

// exporterBinary builds the exporter once per run: with the race detector
// for the tests (a race in the child makes it exit 66, which the exit code
// check catches), without it for the benchmarks.
func exporterBinary(tb testing.TB, race bool) string {
	tb.Helper()
	b, name, flags := &plainBuild, "docker_exporter-norace", []string(nil)
	if race {
		b, name, flags = &raceBuild, "docker_exporter", []string{"-race"}
	}
	b.once.Do(func() {
		path := filepath.Join(binDir, name)
		args := append(append([]string{"build"}, flags...), "-o", path, ".")
		out, err := exec.Command("go", args...).CombinedOutput()
		if err != nil {
			b.err = fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
			return
		}
		b.path = path
	})
	if b.err != nil {
		tb.Fatal(b.err)
	}
	return b.path
}

// lockedBuffer collects the exporter's output while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// exporter is a running exporter binary.
type exporter struct {
	url     string // of /metrics
	cmd     *exec.Cmd
	log     *lockedBuffer // stdout and stderr
	exited  chan struct{} // closed once the process has exited; then waitErr is set
	waitErr error
	retired bool // exited before serving (port taken) and replaced
	client  *http.Client
}

// startExporter runs bin with args plus a free listen address and debug
// logging, waits until /metrics answers, and registers a cleanup that
// SIGTERMs it and fails the test unless it exits 0 in time.
func startExporter(tb testing.TB, bin string, args ...string) *exporter {
	tb.Helper()
	return startExporterWith(tb, bin, "http", &http.Client{Timeout: 10 * time.Second}, args...)
}

// startExporterWith is startExporter for an exporter served otherwise (TLS,
// basic auth): the scheme of its URL and the client that can scrape it.
func startExporterWith(tb testing.TB, bin, scheme string, client *http.Client, args ...string) *exporter {
	tb.Helper()
	for attempt := 1; ; attempt++ {
		e, portTaken := tryStartExporter(tb, bin, scheme, client, args)
		if !portTaken {
			return e
		}
		// Another process took the free port between our probe and the
		// exporter's bind: try another.
		if attempt == 3 {
			tb.Fatalf("exporter could not bind a free port 3 times:\n%s", e.log)
		}
	}
}

func tryStartExporter(tb testing.TB, bin, scheme string, client *http.Client, args []string) (e *exporter, portTaken bool) {
	tb.Helper()
	addr := freeAddr(tb)
	cmd := exec.Command(bin, append([]string{"--web.listen-address=" + addr, "--log.level=debug"}, args...)...)
	cmd.Env = exporterEnv()
	e = &exporter{
		url:    scheme + "://" + addr + "/metrics",
		cmd:    cmd,
		log:    &lockedBuffer{},
		exited: make(chan struct{}),
		client: client,
	}
	cmd.Stdout, cmd.Stderr = e.log, e.log
	// If the test process dies without cleanup, the exporter goes too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start exporter: %v", err)
	}
	go func() {
		e.waitErr = cmd.Wait()
		close(e.exited)
	}()
	tb.Cleanup(func() { e.stop(tb) })

	deadline := time.Now().Add(waitTimeout)
	for {
		select {
		case <-e.exited:
			if strings.Contains(e.log.String(), "address already in use") {
				e.retired = true
				return e, true
			}
			tb.Fatalf("exporter exited before serving /metrics: %v\n%s", e.waitErr, e.log)
		default:
		}
		if resp, err := e.client.Get(e.url); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return e, false
			}
		}
		if time.Now().After(deadline) {
			tb.Fatalf("exporter did not serve %s within %v\n%s", e.url, waitTimeout, e.log)
		}
		time.Sleep(pollInterval)
	}
}

// stop asserts a graceful shutdown: exit code 0 soon after SIGTERM.
func (e *exporter) stop(tb testing.TB) {
	tb.Helper()
	defer e.client.CloseIdleConnections()
	select {
	case <-e.exited:
		if !e.retired {
			tb.Errorf("exporter exited before the test ended: %v\n%s", e.waitErr, e.log)
		}
		return
	default:
	}
	if err := e.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		tb.Errorf("SIGTERM exporter: %v", err)
	}
	select {
	case <-e.exited:
	case <-time.After(exitTimeout):
		e.cmd.Process.Kill()
		<-e.exited
		tb.Errorf("exporter still running %v after SIGTERM; killed\n%s", exitTimeout, e.log)
		return
	}
	if e.waitErr != nil {
		tb.Errorf("exporter exited with %v after SIGTERM, want exit code 0 (graceful shutdown)\n%s", e.waitErr, e.log)
	} else if tb.Failed() {
		tb.Logf("exporter output:\n%s", e.log)
	}
}

// freeAddr returns a loopback address with a port nobody listened on a
// moment ago.
func freeAddr(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// exporterEnv keeps DOCKER_* settings of the test's environment away from
// the exporter: the Docker client's (DOCKER_API_VERSION, TLS) and kingpin's
// flag defaults (DOCKER_EXPORTER_*). It gets only the flags the test gives.
func exporterEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DOCKER_") {
			env = append(env, kv)
		}
	}
	return env
}

// get fetches /metrics once.
func (e *exporter) get() ([]byte, error) {
	resp, err := e.client.Get(e.url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %s", e.url, resp.Status, body)
	}
	return body, nil
}

// logTail is the end of the exporter's output, for failure messages.
func (e *exporter) logTail() string {
	lines := strings.Split(strings.TrimRight(e.log.String(), "\n"), "\n")
	if len(lines) > 40 {
		lines = lines[len(lines)-40:]
	}
	return strings.Join(lines, "\n")
}

// series is one sample of a scrape.
type series struct {
	labels map[string]string
	value  float64
}

// scrape is one parsed /metrics response.
type scrape struct {
	tb     testing.TB
	raw    []byte
	series map[string][]series // by metric name
}

func (e *exporter) scrape(tb testing.TB) *scrape {
	tb.Helper()
	raw, err := e.get()
	if err != nil {
		tb.Fatalf("scrape: %v\nexporter output (tail):\n%s", err, e.logTail())
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader(raw))
	if err != nil {
		tb.Fatalf("parse scrape: %v\n%s", err, raw)
	}
	s := &scrape{tb: tb, raw: raw, series: make(map[string][]series)}
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			var v float64
			switch {
			case m.Gauge != nil:
				v = m.GetGauge().GetValue()
			case m.Counter != nil:
				v = m.GetCounter().GetValue()
			case m.Untyped != nil:
				v = m.GetUntyped().GetValue()
			default:
				continue // summaries and histograms: the Go runtime's, not ours
			}
			labels := make(map[string]string, len(m.GetLabel()))
			for _, lp := range m.GetLabel() {
				labels[lp.GetName()] = lp.GetValue()
			}
			s.series[name] = append(s.series[name], series{labels, v})
		}
	}
	return s
}

// find returns the series of metric whose labels include the given
// name/value pairs; a pair with value "" matches an absent label.
func (s *scrape) find(metric string, kv ...string) []series {
	if len(kv)%2 != 0 {
		s.tb.Fatalf("find %s: odd label list %q", metric, kv)
	}
	var out []series
next:
	for _, se := range s.series[metric] {
		for i := 0; i < len(kv); i += 2 {
			if se.labels[kv[i]] != kv[i+1] {
				continue next
			}
		}
		out = append(out, se)
	}
	return out
}

// value is the value of the one series of metric with the given labels;
// present is false if there is none. More than one is a mistake in the test.
func (s *scrape) value(metric string, kv ...string) (v float64, present bool) {
	s.tb.Helper()
	found := s.find(metric, kv...)
	switch len(found) {
	case 0:
		return 0, false
	case 1:
		return found[0].value, true
	}
	s.tb.Fatalf("%s%q matches %d series, want at most one", metric, kv, len(found))
	return 0, false
}

// is says whether the series exists and has value want.
func (s *scrape) is(want float64, metric string, kv ...string) bool {
	s.tb.Helper()
	v, ok := s.value(metric, kv...)
	return ok && v == want
}

// atLeast says whether the series exists and has at least min.
func (s *scrape) atLeast(min float64, metric string, kv ...string) bool {
	s.tb.Helper()
	v, ok := s.value(metric, kv...)
	return ok && v >= min
}

func (s *scrape) has(metric string, kv ...string) bool { return len(s.find(metric, kv...)) > 0 }

// lines returns the scrape's docker samples containing any of show (all of
// them if show is empty), for failure messages.
func (s *scrape) lines(show ...string) string {
	var out []string
	for l := range strings.SplitSeq(string(s.raw), "\n") {
		if !strings.HasPrefix(l, "docker_") {
			continue
		}
		if len(show) == 0 || slices.ContainsFunc(show, func(sub string) bool { return strings.Contains(l, sub) }) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// must fails the test unless ok, showing the scrape's docker_* lines.
func (s *scrape) must(ok bool, format string, args ...any) {
	s.tb.Helper()
	if !ok {
		s.tb.Fatalf(format+"\nscrape:\n%s", append(args, s.lines())...)
	}
}

// waitFor scrapes until cond holds and returns that scrape. At the deadline
// it fails, showing the last scrape's lines that contain any of show.
func (e *exporter) waitFor(tb testing.TB, desc string, cond func(*scrape) bool, show ...string) *scrape {
	tb.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		s := e.scrape(tb)
		if cond(s) {
			return s
		}
		if time.Now().After(deadline) {
			tb.Fatalf("waited %v for %s; last scrape:\n%s\nexporter output (tail):\n%s", waitTimeout, desc, s.lines(show...), e.logTail())
		}
		time.Sleep(pollInterval)
	}
}

// nameOf is the label selecting a container's series.
func nameOf(name string) string { return `name="` + name + `"` }

func isUp(s *scrape) bool { return s.is(1, "docker_up") }

// inState says whether the container's one-hot state is state.
func inState(s *scrape, name, state string) bool {
	return s.is(1, "docker_container_state", "name", name, "state", state)
}

// checkOneHot fails unless name's state series are 1 for state and 0 for
// the six others.
func checkOneHot(t testing.TB, s *scrape, name, state string) {
	t.Helper()
	for _, st := range allStates {
		want := 0.0
		if st == state {
			want = 1
		}
		v, ok := s.value("docker_container_state", "name", name, "state", st)
		s.must(ok && v == want, "docker_container_state{name=%q,state=%q} = %v (present %v), want %v", name, st, v, ok, want)
	}
}

// checkTime fails unless metric for name is within timeSlack of the daemon's
// timestamp text (as docker inspect prints it).
func checkTime(t testing.TB, s *scrape, metric, name, daemonTime string) {
	t.Helper()
	want, err := time.Parse(time.RFC3339Nano, daemonTime)
	if err != nil {
		t.Fatalf("docker inspect time %q: %v", daemonTime, err)
	}
	v, ok := s.value(metric, "name", name)
	s.must(ok, "%s{name=%q} absent, want %v", metric, name, want)
	got := time.Unix(0, int64(v*1e9))
	if d := got.Sub(want); d < -timeSlack || d > timeSlack {
		t.Fatalf("%s{name=%q} = %v, docker inspect says %v: %v apart", metric, name, got.UTC(), want.UTC(), d)
	}
}

// dockerRun starts a detached container without network; args are the flags,
// image and command. It returns the full id.
func dockerRun(tb testing.TB, d *testdaemon.Daemon, name string, args ...string) string {
	tb.Helper()
	return d.Docker(tb, append([]string{"run", "-d", "--network", "none", "--name", name}, args...)...)
}

// lastEventNano is the daemon's time of the newest event it has, from its
// own event log.
func lastEventNano(tb testing.TB, d *testdaemon.Daemon) int64 {
	tb.Helper()
	now := time.Now()
	out := d.Docker(tb, "events",
		"--since", strconv.FormatInt(now.Add(-time.Hour).Unix(), 10),
		"--until", fmt.Sprintf("%d.%09d", now.Unix(), now.Nanosecond()),
		"--format", "{{.TimeNano}}")
	var last int64
	for f := range strings.FieldsSeq(out) {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			tb.Fatalf("docker events: bad TimeNano %q", f)
		}
		last = max(last, n)
	}
	return last
}

// daemonEvents lists the container events the daemon still has, for logs.
func daemonEvents(tb testing.TB, d *testdaemon.Daemon) string {
	tb.Helper()
	now := time.Now()
	return d.Docker(tb, "events", "--filter", "type=container",
		"--since", strconv.FormatInt(now.Add(-time.Hour).Unix(), 10),
		"--until", fmt.Sprintf("%d.%09d", now.Unix(), now.Nanosecond()),
		"--format", "{{.TimeNano}} {{.Actor.Attributes.name}} {{.Action}}")
}

// waitEventsApplied waits until the exporter has applied every event the
// daemon has logged so far. The store applies events in order and an event
// (with the inspect it needs) is done when docker_exporter_last_event_
// timestamp_seconds reaches its time, so after this nothing is in flight
// unless the daemon logs more. A float64 of seconds since the epoch keeps
// about a quarter of a microsecond, so the time is compared less 1µs, far
// less than lies between two events of the CLI calls here.
func waitEventsApplied(tb testing.TB, d *testdaemon.Daemon, e *exporter) {
	tb.Helper()
	last := lastEventNano(tb, d)
	if last == 0 {
		return
	}
	want := float64(last-int64(time.Microsecond)) / 1e9
	e.waitFor(tb, fmt.Sprintf("the daemon's newest event (%d) applied", last), func(s *scrape) bool {
		return s.atLeast(want, "docker_exporter_last_event_timestamp_seconds")
	}, "docker_exporter_last_event")
}

// psStates is `docker ps -a` as a name -> state map.
func psStates(tb testing.TB, d *testdaemon.Daemon) map[string]string {
	tb.Helper()
	out := d.Docker(tb, "ps", "-a", "--format", "{{.Names}} {{.State}}")
	m := make(map[string]string)
	for l := range strings.Lines(out) {
		name, state, ok := strings.Cut(strings.TrimSpace(l), " ")
		if !ok {
			tb.Fatalf("docker ps line %q", l)
		}
		m[name] = state
	}
	return m
}

// scrapeStates is the exporter's name -> state map, from the series at 1.
func scrapeStates(s *scrape) map[string]string {
	m := make(map[string]string)
	for _, se := range s.series["docker_container_state"] {
		if se.value == 1 {
			m[se.labels["name"]] = se.labels["state"]
		}
	}
	return m
}

func startProxy(tb testing.TB, d *testdaemon.Daemon) *countproxy.Proxy {
	tb.Helper()
	p, err := countproxy.Start(d.Host)
	if err != nil {
		tb.Fatalf("countproxy: %v", err)
	}
	tb.Cleanup(func() {
		if err := p.Close(); err != nil {
			tb.Errorf("countproxy close: %v", err)
		}
	})
	return p
}

func TestContainerLifecycleIsReflected(t *testing.T) {
	t.Parallel()
	d := testdaemon.Start(t)
	img := d.BusyboxImage(t)
	p := startProxy(t, d)
	e := startExporter(t, exporterBinary(t, true), "--docker.host="+p.Host, "--container.labels=com.example.team")
	e.waitFor(t, "docker_up 1", isUp, "docker_up")

	// Health checks and the restart policy take a while to play out: start
	// them now, check them further down.
	dockerRun(t, d, "healthy", "--health-cmd", "true", "--health-interval", "1s", img, "sleep", "1000")
	dockerRun(t, d, "sick", "--health-cmd", "false", "--health-interval", "1s", "--health-retries", "1", img, "sleep", "1000")
	dockerRun(t, d, "loop", "--restart=always", img, "sh", "-c", "exit 1")

	t.Run("running container has identity, allowed labels, state and times", func(t *testing.T) {
		id := dockerRun(t, d, "web",
			"--label", "com.docker.compose.project=shop", "--label", "com.docker.compose.service=web",
			"--label", "com.example.team=core", "--label", "com.example.secret=x",
			img, "sleep", "1000")
		imageID := d.Docker(t, "inspect", "-f", "{{.Image}}", id)
		// Running can show (from the create event's inspect) a moment
		// before the start event is counted; wait for both.
		s := e.waitFor(t, "web running with one start", func(s *scrape) bool {
			return inState(s, "web", "running") && s.is(1, "docker_container_starts_total", "name", "web")
		}, nameOf("web"))

		s.must(s.is(1, "docker_container_info", "name", "web", "id", id, "image", img, "image_id", imageID,
			"compose_project", "shop", "compose_service", "web"),
			"want docker_container_info{name=web,id=%s,image=%s,image_id=%s,compose_project=shop,compose_service=web} 1", id, img, imageID)
		s.must(len(s.find("docker_container_info", "name", "web")) == 1, "want exactly one info series for web")
		s.must(s.is(1, "docker_container_labels", "name", "web", "label_com_example_team", "core"),
			`want docker_container_labels{name="web",label_com_example_team="core"} 1`)
		for _, se := range s.series["docker_container_labels"] {
			if _, ok := se.labels["label_com_example_secret"]; ok {
				t.Fatalf("docker_container_labels has label_com_example_secret, which --container.labels did not allow: %v", se.labels)
			}
		}
		checkOneHot(t, s, "web", "running")
		checkTime(t, s, "docker_container_created_timestamp_seconds", "web", d.Docker(t, "inspect", "-f", "{{.Created}}", id))
		checkTime(t, s, "docker_container_started_timestamp_seconds", "web", d.Docker(t, "inspect", "-f", "{{.State.StartedAt}}", id))
		s.must(!s.has("docker_container_finished_timestamp_seconds", "name", "web"), "web never finished: want no finished timestamp")
		s.must(!s.has("docker_container_exit_code", "name", "web"), "web never exited: want no exit code")
	})

	t.Run("container without health check has no health series", func(t *testing.T) {
		s := e.waitFor(t, "web present", func(s *scrape) bool { return s.has("docker_container_info", "name", "web") }, nameOf("web"))
		s.must(!s.has("docker_container_health_status", "name", "web"), "web has no health check: want no docker_container_health_status")
		s.must(!s.has("docker_container_health_failing_streak", "name", "web"), "web has no health check: want no failing streak")
	})

	t.Run("created container has no start time", func(t *testing.T) {
		id := d.Docker(t, "create", "--network", "none", "--name", "fresh", img, "sleep", "1000")
		s := e.waitFor(t, "fresh created", func(s *scrape) bool { return inState(s, "fresh", "created") }, nameOf("fresh"))
		checkOneHot(t, s, "fresh", "created")
		checkTime(t, s, "docker_container_created_timestamp_seconds", "fresh", d.Docker(t, "inspect", "-f", "{{.Created}}", id))
		s.must(!s.has("docker_container_started_timestamp_seconds", "name", "fresh"), "fresh never started: want no started timestamp")
		s.must(!s.has("docker_container_finished_timestamp_seconds", "name", "fresh"), "want no finished timestamp")
		s.must(!s.has("docker_container_exit_code", "name", "fresh"), "want no exit code")
		s.must(s.is(0, "docker_container_starts_total", "name", "fresh"), "want starts_total 0")
	})

	t.Run("exit code 3 is reported with one death", func(t *testing.T) {
		id := dockerRun(t, d, "three", img, "sh", "-c", "exit 3")
		if code := d.Docker(t, "wait", id); code != "3" {
			t.Fatalf("docker wait = %s, want 3", code)
		}
		// The start event's inspect may already see it exited; the death
		// counts with the die event.
		s := e.waitFor(t, "three exited with code 3 and one death", func(s *scrape) bool {
			return inState(s, "three", "exited") && s.is(3, "docker_container_exit_code", "name", "three") &&
				s.is(1, "docker_container_deaths_total", "name", "three")
		}, nameOf("three"))
		checkOneHot(t, s, "three", "exited")
		checkTime(t, s, "docker_container_finished_timestamp_seconds", "three", d.Docker(t, "inspect", "-f", "{{.State.FinishedAt}}", id))
		s.must(s.is(1, "docker_container_starts_total", "name", "three"), "want starts_total 1")
	})

	t.Run("pause and unpause", func(t *testing.T) {
		dockerRun(t, d, "pauser", img, "sleep", "1000")
		e.waitFor(t, "pauser running", func(s *scrape) bool { return inState(s, "pauser", "running") }, nameOf("pauser"))
		d.Docker(t, "pause", "pauser")
		s := e.waitFor(t, "pauser paused", func(s *scrape) bool { return inState(s, "pauser", "paused") }, nameOf("pauser"))
		checkOneHot(t, s, "pauser", "paused")
		d.Docker(t, "unpause", "pauser")
		s = e.waitFor(t, "pauser running again", func(s *scrape) bool { return inState(s, "pauser", "running") }, nameOf("pauser"))
		checkOneHot(t, s, "pauser", "running")
	})

	t.Run("healthy health check", func(t *testing.T) {
		s := e.waitFor(t, "healthy is healthy", func(s *scrape) bool {
			return s.is(1, "docker_container_health_status", "name", "healthy", "status", "healthy")
		}, nameOf("healthy"))
		s.must(s.is(0, "docker_container_health_status", "name", "healthy", "status", "starting"), "want starting 0")
		s.must(s.is(0, "docker_container_health_status", "name", "healthy", "status", "unhealthy"), "want unhealthy 0")
		s.must(s.is(0, "docker_container_health_failing_streak", "name", "healthy"), "want failing streak 0")
	})

	t.Run("unhealthy health check", func(t *testing.T) {
		s := e.waitFor(t, "sick is unhealthy", func(s *scrape) bool {
			return s.is(1, "docker_container_health_status", "name", "sick", "status", "unhealthy")
		}, nameOf("sick"))
		s.must(s.is(0, "docker_container_health_status", "name", "sick", "status", "healthy"), "want healthy 0")
		s.must(s.is(0, "docker_container_health_status", "name", "sick", "status", "starting"), "want starting 0")
		s.must(s.atLeast(1, "docker_container_health_failing_streak", "name", "sick"), "want failing streak >= 1")
	})

	t.Run("restart loop counts restarts, starts and deaths", func(t *testing.T) {
		e.waitFor(t, "loop restarted twice", func(s *scrape) bool {
			return s.atLeast(2, "docker_container_restarts_total", "name", "loop") &&
				s.atLeast(3, "docker_container_starts_total", "name", "loop") &&
				s.atLeast(3, "docker_container_deaths_total", "name", "loop")
		}, nameOf("loop"))
		// Quiet from here on.
		d.Docker(t, "rm", "-f", "loop")
	})

	t.Run("OOM kill", func(t *testing.T) {
		// testdaemon's recipe: arm the OOM watch first, then let dd go.
		id := dockerRun(t, d, "oom", "-m", "8m", "--memory-swap", "8m", img,
			"sh", "-c", "until [ -e /tmp/go ]; do usleep 10000; done; exec dd if=/dev/zero of=/dev/null bs=64M count=1")
		d.Docker(t, "exec", id, "touch", "/tmp/go")
		if code := d.Docker(t, "wait", id); code != "137" {
			t.Fatalf("docker wait = %s, want 137", code)
		}
		if killed := d.Docker(t, "inspect", "-f", "{{.State.OOMKilled}}", id); killed != "true" {
			t.Fatalf("the daemon says OOMKilled = %s: the recipe did not work here", killed)
		}
		e.waitFor(t, "oom OOM-killed", func(s *scrape) bool {
			return s.is(1, "docker_container_oom_killed", "name", "oom") &&
				s.atLeast(1, "docker_container_oom_events_total", "name", "oom") &&
				s.is(137, "docker_container_exit_code", "name", "oom") &&
				inState(s, "oom", "exited")
		}, nameOf("oom"))
	})

	t.Run("rename moves the series", func(t *testing.T) {
		dockerRun(t, d, "alpha", img, "sleep", "1000")
		e.waitFor(t, "alpha running", func(s *scrape) bool { return inState(s, "alpha", "running") }, nameOf("alpha"))
		d.Docker(t, "rename", "alpha", "beta")
		s := e.waitFor(t, "alpha renamed to beta", func(s *scrape) bool {
			return s.has("docker_container_info", "name", "beta") && !s.has("docker_container_info", "name", "alpha")
		}, nameOf("alpha"), nameOf("beta"))
		checkOneHot(t, s, "beta", "running")
		s.must(!s.has("docker_container_state", "name", "alpha"), "want no state series for the old name")
	})

	var victimDeaths float64
	t.Run("docker kill shows exited with exactly one more death", func(t *testing.T) {
		dockerRun(t, d, "victim", img, "sleep", "1000")
		before := e.waitFor(t, "victim running with one start", func(s *scrape) bool {
			return inState(s, "victim", "running") && s.is(1, "docker_container_starts_total", "name", "victim")
		}, nameOf("victim"))
		deaths, ok := before.value("docker_container_deaths_total", "name", "victim")
		before.must(ok, "want deaths_total for victim before the kill")

		d.Docker(t, "kill", "victim")
		killed := time.Now()
		// The death is committed with the exited state, so the first
		// scrape showing one shows the other.
		s := e.waitFor(t, "victim exited", func(s *scrape) bool { return inState(s, "victim", "exited") }, nameOf("victim"))
		t.Logf("event-to-metric delay: %v from docker kill returning to the first scrape showing it (scraping every %v, -race build)",
			time.Since(killed).Round(time.Millisecond), pollInterval)
		victimDeaths = deaths + 1
		s.must(s.is(victimDeaths, "docker_container_deaths_total", "name", "victim"), "want deaths_total{name=victim} = %v", victimDeaths)
		checkOneHot(t, s, "victim", "exited")
	})

	t.Run("docker rm -f drops the container and keeps its counters", func(t *testing.T) {
		dockerRun(t, d, "doomed", img, "sleep", "1000")
		e.waitFor(t, "doomed running", func(s *scrape) bool { return inState(s, "doomed", "running") }, nameOf("doomed"))
		d.Docker(t, "rm", "-f", "doomed")
		s := e.waitFor(t, "doomed gone", func(s *scrape) bool { return !s.has("docker_container_info", "name", "doomed") }, nameOf("doomed"))
		// Gone in the same commit as the destroy is counted.
		s.must(s.is(1, "docker_container_destroys_total", "name", "doomed"), "want destroys_total{name=doomed} 1 (kept for --store.retention)")
		s.must(s.is(1, "docker_container_deaths_total", "name", "doomed"), "want deaths_total{name=doomed} 1: rm -f killed it")
		s.must(!s.has("docker_container_state", "name", "doomed"), "want no state series for a removed container")
	})

	t.Run("per-state totals match docker ps and the daemon series are there", func(t *testing.T) {
		ps := psStates(t, d)
		want := make(map[string]float64)
		for _, st := range ps {
			want[st]++
		}
		s := e.waitFor(t, "docker_containers equal to docker ps -a", func(s *scrape) bool {
			for _, st := range allStates {
				if !s.is(want[st], "docker_containers", "state", st) {
					return false
				}
			}
			return true
		}, "docker_containers")
		var sum float64
		for _, se := range s.series["docker_containers"] {
			sum += se.value
		}
		if n := len(s.series["docker_container_info"]); sum != float64(n) || n != len(ps) {
			t.Fatalf("docker_containers sums to %v, %d docker_container_info series, docker ps -a lists %d", sum, n, len(ps))
		}
		if got := scrapeStates(s); !maps.Equal(got, ps) {
			t.Fatalf("states in /metrics %v, docker ps -a %v", got, ps)
		}
		if victimDeaths > 0 {
			s.must(s.is(victimDeaths, "docker_container_deaths_total", "name", "victim"), "victim's deaths changed after the kill: want %v", victimDeaths)
		}

		version := d.Docker(t, "version", "-f", "{{.Server.Version}}")
		s.must(s.is(1, "docker_up"), "want docker_up 1")
		s.must(s.is(1, "docker_daemon_info", "version", version), "want docker_daemon_info{version=%q} 1", version)
		s.must(s.atLeast(1, "docker_events_total", "type", "container", "action", "die"), `want docker_events_total{type="container",action="die"} > 0`)
		s.must(s.atLeast(1, "docker_exporter_syncs_total"), "want docker_exporter_syncs_total >= 1")
		s.must(s.has("docker_exporter_build_info"), "want docker_exporter_build_info")
		t.Logf("daemon requests through the proxy: %d in all", p.Count())
	})
}

// TestScrapesNeverCallTheDaemon proves the collector serves from the cache:
// with the daemon quiet, scrapes make no request to it, and a change reaches
// /metrics by the event stream plus the inspect the event calls for.
func TestScrapesNeverCallTheDaemon(t *testing.T) {
	t.Parallel()
	d := testdaemon.Start(t)
	img := d.BusyboxImage(t)
	p := startProxy(t, d)
	e := startExporter(t, exporterBinary(t, true), "--docker.host="+p.Host)
	e.waitFor(t, "docker_up 1", isUp, "docker_up")

	// No health checks or restart policies: nothing happens unless we act.
	want := make(map[string]string)
	for i := range 2 {
		name := fmt.Sprintf("exited%d", i)
		d.Docker(t, "wait", dockerRun(t, d, name, img, "sh", "-c", fmt.Sprintf("exit %d", i+1)))
		want[name] = "exited"
	}
	ids := make(map[string]string)
	for i := range 6 {
		name := fmt.Sprintf("running%d", i)
		ids[name] = dockerRun(t, d, name, img, "sleep", "1000")
		want[name] = "running"
	}
	for i := range 2 {
		name := fmt.Sprintf("paused%d", i)
		dockerRun(t, d, name, img, "sleep", "1000")
		d.Docker(t, "pause", name)
		want[name] = "paused"
	}
	e.waitFor(t, "all 10 containers in their states", func(s *scrape) bool {
		return maps.Equal(scrapeStates(s), want)
	})
	waitEventsApplied(t, d, e)

	scrapes := func(what string) {
		t.Helper()
		before := p.Snapshot()
		for range 100 {
			if _, err := e.get(); err != nil {
				t.Fatalf("scrape: %v", err)
			}
		}
		if made := countproxy.Diff(before, p.Snapshot()); len(made) > 0 {
			t.Fatalf("100 scrapes %s made requests to the daemon: %v", what, made)
		}
	}
	scrapes("of a synced exporter")

	before := e.scrape(t)
	deaths, ok := before.value("docker_container_deaths_total", "name", "running0")
	before.must(ok, "want deaths_total for running0")
	requests := p.Snapshot()
	d.Docker(t, "kill", "running0")
	s := e.waitFor(t, "running0 exited", func(s *scrape) bool { return inState(s, "running0", "exited") }, nameOf("running0"))
	s.must(s.is(deaths+1, "docker_container_deaths_total", "name", "running0"), "want deaths_total{name=running0} = %v", deaths+1)
	waitEventsApplied(t, d, e)
	// The event stream is one long request made before; the die event may
	// cost one inspect of the dead container, and nothing else may happen.
	inspect := "GET /containers/" + ids["running0"] + "/json"
	for k, n := range countproxy.Diff(requests, p.Snapshot()) {
		if k != inspect || n > 1 {
			t.Fatalf("after docker kill the exporter made %d x %q; want at most one %q", n, k, inspect)
		}
	}
	scrapes("after the kill was applied")
}

func TestPromtoolCheckMetricsIsClean(t *testing.T) {
	t.Parallel()
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		msg := "promtool not found (apt-get install prometheus): " + err.Error()
		if os.Getenv(testdaemon.EnvRequire) == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	d := testdaemon.Start(t)
	img := d.BusyboxImage(t)
	e := startExporter(t, exporterBinary(t, true), "--docker.host="+d.Host, "--container.labels=com.example.team,com.docker.compose.project")
	dockerRun(t, d, "checked", "--label", "com.example.team=core", "--label", "com.docker.compose.project=shop",
		"--health-cmd", "true", "--health-interval", "1s", img, "sleep", "1000")
	d.Docker(t, "wait", dockerRun(t, d, "exited", img, "sh", "-c", "exit 2"))
	dockerRun(t, d, "paused", img, "sleep", "1000")
	d.Docker(t, "pause", "paused")
	// Every family this exporter has: health, exit code, finished time,
	// labels, per-state and event counters.
	s := e.waitFor(t, "all three containers with their details", func(s *scrape) bool {
		return s.is(1, "docker_container_health_status", "name", "checked", "status", "healthy") &&
			s.is(2, "docker_container_exit_code", "name", "exited") &&
			inState(s, "paused", "paused") &&
			s.has("docker_container_labels", "name", "checked", "label_com_example_team", "core")
	})

	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(s.raw)
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("promtool check metrics: %v\n%s\n--- scrape ---\n%s", err, out, s.raw)
	}
}

// TestReconnectAfterDaemonRestart stops the daemon under the exporter,
// changes things while it is down and after it is back but before the
// exporter reaches it again, and checks that the exporter converges on the
// daemon's view with every counter counted once.
//
// What it covers: a death while the daemon is down (ctr-a's process is
// killed from the host; with --live-restore the restarted daemon finds it
// exited, and dockerd 20.10 logs no event for it, so only the resync can
// count it), and changes made after the restart while the exporter is still
// kept away (the proxy refuses it, as if its backoff had not run out):
// rm -f ctr-b and run ctr-e. The resync sees those first, then the `since`
// replay brings their events again, which must not count twice.
// What it cannot cover: a real daemon loses its event buffer on restart, so
// events logged before the outage that the exporter had not yet read cannot
// be replayed here; the store's unit tests have to cover that.
func TestReconnectAfterDaemonRestart(t *testing.T) {
	t.Parallel()
	d := testdaemon.Start(t)
	img := d.BusyboxImage(t)
	p := startProxy(t, d)
	e := startExporter(t, exporterBinary(t, true), "--docker.host="+p.Host)
	e.waitFor(t, "docker_up 1", isUp, "docker_up")
	for _, name := range []string{"ctr-a", "ctr-b", "ctr-c"} {
		dockerRun(t, d, name, img, "sleep", "1000")
	}
	e.waitFor(t, "ctr-a, ctr-b, ctr-c running, each started once", func(s *scrape) bool {
		for _, name := range []string{"ctr-a", "ctr-b", "ctr-c"} {
			if !inState(s, name, "running") || !s.is(1, "docker_container_starts_total", "name", name) {
				return false
			}
		}
		return true
	})
	pidA, err := strconv.Atoi(d.Docker(t, "inspect", "-f", "{{.State.Pid}}", "ctr-a"))
	if err != nil || pidA <= 0 {
		t.Fatalf("pid of ctr-a: %v", err)
	}

	d.Stop(t)
	s := e.waitFor(t, "docker_up 0 after the daemon stopped", func(s *scrape) bool { return s.is(0, "docker_up") }, "docker_up")
	for _, name := range []string{"ctr-a", "ctr-b", "ctr-c"} {
		s.must(s.has("docker_container_info", "name", name) && inState(s, name, "running"),
			"while the daemon is down the last state must stay: want %s and running", name)
	}
	p.Refuse(true)

	// The container dies while nobody can tell the exporter.
	if err := syscall.Kill(pidA, syscall.SIGKILL); err != nil {
		t.Fatalf("kill ctr-a's process %d: %v", pidA, err)
	}
	// Wait until its shim has reaped it, so the restarted daemon finds it
	// exited rather than seeing it die later.
	deadline := time.Now().Add(waitTimeout)
	for {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pidA)); errors.Is(err, os.ErrNotExist) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ctr-a's process %d still there %v after SIGKILL", pidA, waitTimeout)
		}
		time.Sleep(pollInterval)
	}

	d.Restart(t)
	d.Docker(t, "rm", "-f", "ctr-b")
	dockerRun(t, d, "ctr-e", img, "sleep", "1000")
	ps := psStates(t, d)
	if ps["ctr-a"] != "exited" || ps["ctr-c"] != "running" || ps["ctr-e"] != "running" || len(ps) != 3 {
		t.Fatalf("docker ps -a after the restart: %v, want ctr-a exited, ctr-c and ctr-e running", ps)
	}
	s = e.scrape(t)
	s.must(s.is(0, "docker_up") && inState(s, "ctr-b", "running") && !s.has("docker_container_info", "name", "ctr-e"),
		"kept away from the daemon, the exporter must still serve docker_up 0 and the state from before the outage")

	p.Refuse(false)
	e.waitFor(t, "the exporter back up and equal to docker ps -a", func(s *scrape) bool {
		return isUp(s) && maps.Equal(scrapeStates(s), ps) && s.atLeast(1, "docker_container_starts_total", "name", "ctr-e")
	})
	// Let every replayed event land before checking for double counts.
	waitEventsApplied(t, d, e)
	s = e.scrape(t)
	for _, c := range []struct {
		metric, name string
		want         float64
	}{
		{"docker_container_deaths_total", "ctr-a", 1},
		{"docker_container_starts_total", "ctr-a", 1},
		{"docker_container_deaths_total", "ctr-b", 1},
		{"docker_container_destroys_total", "ctr-b", 1},
		{"docker_container_starts_total", "ctr-c", 1},
		{"docker_container_deaths_total", "ctr-c", 0},
		{"docker_container_starts_total", "ctr-e", 1},
		{"docker_container_deaths_total", "ctr-e", 0},
	} {
		v, ok := s.value(c.metric, "name", c.name)
		s.must(ok && v == c.want, "%s{name=%q} = %v (present %v), want %v", c.metric, c.name, v, ok, c.want)
	}
	s.must(s.atLeast(1, "docker_exporter_event_stream_reconnects_total"), "want docker_exporter_event_stream_reconnects_total >= 1")
	s.must(maps.Equal(scrapeStates(s), psStates(t, d)), "states differ from docker ps -a")
	t.Logf("container events of the restarted daemon:\n%s", daemonEvents(t, d))
}

func TestExporterStartsWithDaemonDown(t *testing.T) {
	t.Parallel()
	d := testdaemon.Start(t)
	img := d.BusyboxImage(t)
	dockerRun(t, d, "up", img, "sleep", "1000")
	d.Docker(t, "wait", dockerRun(t, d, "down", img, "sh", "-c", "exit 4"))
	d.Stop(t)

	e := startExporter(t, exporterBinary(t, true), "--docker.host="+d.Host)
	noContainers := func(s *scrape) {
		t.Helper()
		s.must(s.is(0, "docker_up"), "want docker_up 0 while the daemon is down")
		for _, m := range []string{"docker_container_info", "docker_container_state", "docker_daemon_info"} {
			s.must(!s.has(m), "want no %s before the daemon was ever reached", m)
		}
	}
	noContainers(e.scrape(t))

	// A few backoff rounds: the first failure warns, the retries only debug.
	logLines := func(substr ...string) int {
		n := 0
		for l := range strings.Lines(e.log.String()) {
			if !slices.ContainsFunc(substr, func(s string) bool { return !strings.Contains(l, s) }) {
				n++
			}
		}
		return n
	}
	deadline := time.Now().Add(waitTimeout)
	for logLines("reconnect to the Docker daemon failed") < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("no 2 failed reconnects logged within %v:\n%s", waitTimeout, e.log)
		}
		time.Sleep(pollInterval)
	}
	if n := logLines("level=WARN", "Docker daemon"); n != 1 {
		t.Fatalf("%d WARN lines about the daemon while it is down, want 1 (not one per retry):\n%s", n, e.log)
	}
	noContainers(e.scrape(t))

	d.Restart(t)
	s := e.waitFor(t, "docker_up 1 and both containers", func(s *scrape) bool {
		return isUp(s) && inState(s, "up", "running") && inState(s, "down", "exited")
	})
	s.must(s.is(4, "docker_container_exit_code", "name", "down"), "want exit code 4 for down")
	s.must(s.has("docker_daemon_info"), "want docker_daemon_info once reached")
	if n := logLines("level=WARN"); n != 1 {
		t.Fatalf("%d WARN lines, want only the one about the daemon being unreachable:\n%s", n, e.log)
	}
}

func TestBadFlagsExitWithOneLine(t *testing.T) {
	t.Parallel()
	bin := exporterBinary(t, true)
	dir := t.TempDir()
	badYAML := filepath.Join(dir, "web.yml")
	if err := os.WriteFile(badYAML, []byte("tls_server_config: [\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, flag string
		args       []string
	}{
		{"unknown flag", "--bogus", []string{"--bogus"}},
		{"bad duration", "--docker.timeout", []string{"--docker.timeout=abc"}},
		{"non-positive retention", "--store.retention", []string{"--store.retention=0s"}},
		{"negative max requests", "--web.max-requests", []string{"--web.max-requests=-1"}},
		{"relative telemetry path", "--web.telemetry-path", []string{"--web.telemetry-path=metrics"}},
		{"invalid web config YAML", "--web.config.file", []string{"--web.config.file=" + badYAML}},
		{"missing web config", "--web.config.file", []string{"--web.config.file=/nonexistent/web.yml"}},
		{"unknown docker host scheme", "--docker.host", []string{"--docker.host=bogus://x"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), exitTimeout)
			defer cancel()
			// A free port, so that a flag wrongly accepted fails on the
			// deadline rather than on a busy default port.
			cmd := exec.CommandContext(ctx, bin, append([]string{"--web.listen-address=" + freeAddr(t)}, c.args...)...)
			cmd.Env = exporterEnv()
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			if ctx.Err() != nil {
				t.Fatalf("%v: still running after %v\nstderr:\n%s", c.args, exitTimeout, &stderr)
			}
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() <= 0 {
				t.Fatalf("%v: %v, want a non-zero exit code\nstderr:\n%s", c.args, err, &stderr)
			}
			lines := strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n")
			if len(lines) != 1 || !strings.Contains(lines[0], c.flag) {
				t.Fatalf("%v: stderr is %d lines:\n%s\nwant one line naming %s", c.args, len(lines), &stderr, c.flag)
			}
			if stdout.Len() > 0 {
				t.Fatalf("%v: stdout %q, want nothing", c.args, &stdout)
			}
			t.Logf("exit %d: %s", exit.ExitCode(), lines[0])
		})
	}
}

// runConcurrently runs fn for each of n items on a few goroutines and
// fails on the first error, from the calling goroutine.
func runConcurrently(tb testing.TB, n int, fn func(i int) error) {
	tb.Helper()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	next := make(chan int)
	for range 4 {
		wg.Go(func() {
			for i := range next {
				if err := fn(i); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkScrape50Containers measures a full GET /metrics of a store
// holding 50 containers, against a binary built without -race: default
// flags, so with the exporter's own go_* and process_* metrics, and gzip, as
// Go's client (like Prometheus) asks for it; bytes/scrape is the body
// uncompressed.
func BenchmarkScrape50Containers(b *testing.B) {
	d := testdaemon.Start(b)
	img := d.BusyboxImage(b)
	e := startExporter(b, exporterBinary(b, false), "--docker.host="+d.Host, "--container.labels=com.example.team")
	e.waitFor(b, "docker_up 1", isUp, "docker_up")

	docker := func(args ...string) error {
		if out, err := d.DockerErr(args...); err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	}
	runArgs := func(name string, extra ...string) []string {
		return append([]string{"run", "-d", "--network", "none", "--name", name, "--label", "com.example.team=t" + name[len(name)-1:]}, extra...)
	}
	runConcurrently(b, 50, func(i int) error {
		switch {
		case i < 30: // running, three with a health check
			name := fmt.Sprintf("running%02d", i)
			var health []string
			if i < 3 {
				health = []string{"--health-cmd", "true", "--health-interval", "5s"}
			}
			return docker(append(runArgs(name, health...), img, "sleep", "1000")...)
		case i < 40: // exited with codes 0..9
			name := fmt.Sprintf("exited%02d", i)
			if err := docker(append(runArgs(name), img, "sh", "-c", fmt.Sprintf("exit %d", i-30))...); err != nil {
				return err
			}
			return docker("wait", name)
		case i < 45:
			name := fmt.Sprintf("paused%02d", i)
			if err := docker(append(runArgs(name), img, "sleep", "1000")...); err != nil {
				return err
			}
			return docker("pause", name)
		default:
			return docker("create", "--network", "none", "--name", fmt.Sprintf("created%02d", i), img, "sleep", "1000")
		}
	})
	want := map[string]float64{"running": 30, "exited": 10, "paused": 5, "created": 5}
	e.waitFor(b, "30 running, 10 exited, 5 paused, 5 created", func(s *scrape) bool {
		for _, st := range allStates {
			if !s.is(want[st], "docker_containers", "state", st) {
				return false
			}
		}
		return true
	}, "docker_containers")

	var total, n int64
	for b.Loop() {
		resp, err := e.client.Get(e.url)
		if err != nil {
			b.Fatal(err)
		}
		m, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("GET /metrics: %s, %v", resp.Status, err)
		}
		total += m
		n++
	}
	b.ReportMetric(float64(total)/float64(n), "bytes/scrape")
}

// BenchmarkEventToMetric measures how long a state change takes from the
// docker CLI's return (the daemon has logged the event) to the first scrape
// that shows it: pause and unpause alternately, polling /metrics every 1ms.
// The time of the CLI call itself is not counted; a scrape's own duration
// and the poll period are, so this is an upper bound on the delay. Each
// iteration also spends ~0.1s untimed in the CLI: run it with -benchtime Nx,
// or b.Loop's ramp-up to 1s of timed work takes minutes.
func BenchmarkEventToMetric(b *testing.B) {
	d := testdaemon.Start(b)
	img := d.BusyboxImage(b)
	e := startExporter(b, exporterBinary(b, false), "--docker.host="+d.Host)
	dockerRun(b, d, "flip", img, "sleep", "1000")
	e.waitFor(b, "flip running", func(s *scrape) bool { return isUp(s) && inState(s, "flip", "running") }, nameOf("flip"))

	paused := false
	for b.Loop() {
		b.StopTimer()
		action, state := "pause", "paused"
		if paused {
			action, state = "unpause", "running"
		}
		d.Docker(b, action, "flip")
		paused = !paused
		want := []byte(`docker_container_state{name="flip",state="` + state + `"} 1`)
		b.StartTimer()
		deadline := time.Now().Add(waitTimeout)
		for {
			body, err := e.get()
			if err != nil {
				b.Fatal(err)
			}
			if bytes.Contains(body, want) {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("%s not shown within %v", want, waitTimeout)
			}
			time.Sleep(time.Millisecond)
		}
	}
}
