package stats

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/docker-exporter/docker_exporter/store"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeStore is a store whose snapshot the test sets.
type fakeStore struct {
	mu         sync.Mutex
	containers []*store.Container
	changed    chan struct{}
}

func newFakeStore(cs ...*store.Container) *fakeStore {
	return &fakeStore{containers: cs, changed: make(chan struct{}, 1)}
}

func (f *fakeStore) Snapshot() store.Snapshot {
	f.mu.Lock()
	defer f.mu.Unlock()
	return store.Snapshot{Containers: append([]*store.Container(nil), f.containers...)}
}

func (f *fakeStore) Subscribe() (<-chan struct{}, func()) { return f.changed, func() {} }

func (f *fakeStore) set(cs ...*store.Container) {
	f.mu.Lock()
	f.containers = cs
	f.mu.Unlock()
	select {
	case f.changed <- struct{}{}:
	default:
	}
}

// fakeSource answers each container's figures, or its error.
type fakeSource struct {
	name   string // default "fake"
	mu     sync.Mutex
	usage  map[string]Usage
	errs   map[string]error
	reads  int
	onRead func(id string) // called by each Read, if set
}

func (f *fakeSource) Name() string {
	if f.name == "" {
		return "fake"
	}
	return f.name
}

func (f *fakeSource) Read(_ context.Context, c *store.Container) (Usage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	if f.onRead != nil {
		f.onRead(c.ID)
	}
	if err := f.errs[c.ID]; err != nil {
		return Usage{}, err
	}
	return f.usage[c.ID], nil
}

func (f *fakeSource) setCPU(id string, seconds float64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.usage[id] = Usage{CPUSeconds: seconds, HasCPU: true}
}

var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func ctr(id, state string, started time.Time) *store.Container {
	return &store.Container{ID: id, Name: "n-" + id, State: state, Started: started, Pid: 100}
}

func TestSampleHasOnlyRunningAndPausedContainers(t *testing.T) {
	st := newFakeStore(ctr("r", "running", t0), ctr("p", "paused", t0), ctr("x", "exited", t0), ctr("c", "created", time.Time{}), ctr("s", "restarting", t0))
	src := &fakeSource{usage: map[string]Usage{}}
	for _, id := range []string{"r", "p", "x", "c", "s"} {
		src.setCPU(id, 1)
	}
	s := New(st, src, Config{})
	s.sample(context.Background(), false)
	got := s.Latest()
	if len(got.ByID) != 2 || got.Seq != 1 || got.Source != "fake" {
		t.Fatalf("sample %+v, want seq 1 with r and p only", got)
	}
	for _, id := range []string{"r", "p"} {
		if _, ok := got.ByID[id]; !ok || !got.Started[id].Equal(t0) {
			t.Errorf("%s missing from the sample, or without its start", id)
		}
	}
	if src.reads != 2 {
		t.Errorf("%d reads, want only the two that run", src.reads)
	}
}

func TestCountersNeverGoBackWithinOneRun(t *testing.T) {
	st := newFakeStore(ctr("a", "running", t0))
	src := &fakeSource{usage: map[string]Usage{}}
	s := New(st, src, Config{})
	src.setCPU("a", 5)
	s.sample(context.Background(), false)
	src.setCPU("a", 4) // read mid-update, say
	s.sample(context.Background(), false)
	if got := s.Latest().ByID["a"].CPUSeconds; got != 5 {
		t.Fatalf("CPU %v after reading less within the same run, want it kept at 5", got)
	}
	st.set(ctr("a", "running", t0.Add(time.Minute))) // restarted: a new cgroup
	src.setCPU("a", 1)
	s.sample(context.Background(), false)
	if got := s.Latest().ByID["a"].CPUSeconds; got != 1 {
		t.Fatalf("CPU %v after a restart, want the new run's 1", got)
	}
}

func TestGoneContainersAreLeftOutWithoutAWord(t *testing.T) {
	var logs bytes.Buffer
	st := newFakeStore(ctr("gone", "running", t0), ctr("fine", "running", t0))
	src := &fakeSource{usage: map[string]Usage{}, errs: map[string]error{"gone": ErrGone}}
	src.setCPU("fine", 1)
	// It stops as it is read, as the store learns a moment later.
	src.onRead = func(id string) {
		if id == "gone" {
			st.set(ctr("gone", "exited", t0), ctr("fine", "running", t0))
		}
	}
	s := New(st, src, Config{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	for range 3 {
		s.sample(context.Background(), false)
	}
	got := s.Latest()
	if len(got.ByID) != 1 || !got.ByID["fine"].HasCPU || got.Unsampled != 0 || got.ReadErrors != (ReadErrors{}) {
		t.Fatalf("sample %+v, want only the container that runs, nothing unsampled, no error", got)
	}
	if logs.Len() != 0 {
		t.Fatalf("log:\n%s\nwant nothing: a container that stops is no failure", logs.String())
	}
}

// logTo returns a logger that writes to buf at INFO and above.
func logTo(buf *bytes.Buffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

func TestFailedReadsAreCountedByReasonAndSaidOncePerReason(t *testing.T) {
	var logs bytes.Buffer
	st := newFakeStore(ctr("a", "running", t0), ctr("b", "running", t0), ctr("c", "running", t0), ctr("fine", "running", t0))
	src := &fakeSource{usage: map[string]Usage{}, errs: map[string]error{
		"a": readError(ReasonNoCgroup, errors.New("a: not under the root")),
		"b": readError(ReasonNoCgroup, errors.New("b: not under the root")),
		"c": fmt.Errorf("c: %w", fs.ErrPermission), // no ReadError: unreadable
	}}
	src.setCPU("fine", 1)
	s := New(st, src, Config{Logger: logTo(&logs), Hints: map[string]string{ReasonNoCgroup: "mount the host's tree"}})
	for range 3 {
		s.sample(context.Background(), false)
	}
	got := s.Latest()
	var want ReadErrors
	want[slices.Index(Reasons[:], ReasonNoCgroup)] = 6
	want[slices.Index(Reasons[:], ReasonUnreadable)] = 3
	if got.ReadErrors != want || got.Unsampled != 3 || len(got.ByID) != 1 {
		t.Fatalf("errors %v, unsampled %d, figures of %d; want %v, 3 and 1", got.ReadErrors, got.Unsampled, len(got.ByID), want)
	}
	out := logs.String()
	if strings.Count(out, "level=WARN") != 2 || strings.Count(out, "reason=cgroup_not_found") != 1 ||
		!strings.Contains(out, `hint="mount the host's tree"`) || strings.Count(out, "reason=unreadable") != 1 {
		t.Fatalf("log:\n%s\nwant one WARN per reason, with its hint", out)
	}
	if strings.Contains(out, "logged_source") {
		t.Errorf("log:\n%s\nan attribute clashes with slog's source", out)
	}
}

func TestAFailureOfAContainerThatStoppedMeanwhileIsNotCounted(t *testing.T) {
	st := newFakeStore(ctr("a", "running", t0))
	src := &fakeSource{usage: map[string]Usage{}, errs: map[string]error{"a": readError(ReasonNoCgroup, errors.New("its cgroup went"))}}
	src.onRead = func(string) { st.set(ctr("a", "exited", t0)) }
	s := New(st, src, Config{})
	s.sample(context.Background(), false)
	if got := s.Latest(); got.ReadErrors != (ReadErrors{}) || got.Unsampled != 0 {
		t.Fatalf("errors %v, unsampled %d; want none", got.ReadErrors, got.Unsampled)
	}
}

// A read that says gone while the daemon still says the container runs,
// twice in a row, is a proc root that does not show the host's processes.
func TestAContainerThatRunsButWhoseProcessIsNotThereIsAMissingPid(t *testing.T) {
	var logs bytes.Buffer
	st := newFakeStore(ctr("a", "running", t0))
	src := &fakeSource{usage: map[string]Usage{}, errs: map[string]error{"a": fmt.Errorf("a: %w", ErrGone)}}
	s := New(st, src, Config{Logger: logTo(&logs), Hints: map[string]string{ReasonNoPid: "mount the host's /proc"}})
	s.sample(context.Background(), false)
	if got := s.Latest(); got.ReadErrors != (ReadErrors{}) || got.Unsampled != 1 || logs.Len() != 0 {
		t.Fatalf("first sample: errors %v, unsampled %d, log %q; want it unsampled, not yet counted: it may have just ended",
			got.ReadErrors, got.Unsampled, logs.String())
	}
	s.sample(context.Background(), false)
	got := s.Latest()
	var want ReadErrors
	want[slices.Index(Reasons[:], ReasonNoPid)] = 1
	if got.ReadErrors != want || got.Unsampled != 1 {
		t.Fatalf("second sample: errors %v, unsampled %d; want one pid_not_found", got.ReadErrors, got.Unsampled)
	}
	if !strings.Contains(logs.String(), "reason=pid_not_found") || !strings.Contains(logs.String(), "mount the host's /proc") {
		t.Fatalf("log:\n%s\nwant the reason and its hint", logs.String())
	}
}

func TestAutoFallsBackWhenNoRunningContainerCanBeRead(t *testing.T) {
	for _, tc := range []struct {
		name     string
		errs     map[string]error
		fallBack bool
	}{
		{"no cgroup found for any", map[string]error{
			"a": readError(ReasonNoCgroup, errors.New("a")), "b": readError(ReasonNoCgroup, errors.New("b"))}, true},
		{"permission denied for any", map[string]error{
			"a": readError(ReasonPermission, errors.New("a")), "b": readError(ReasonPermission, errors.New("b"))}, true},
		{"one of two read", map[string]error{"a": readError(ReasonNoCgroup, errors.New("a"))}, false},
		{"a failure the API would share", map[string]error{
			"a": readError(ReasonUnreadable, errors.New("a")), "b": readError(ReasonUnreadable, errors.New("b"))}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			st := newFakeStore(ctr("a", "running", t0), ctr("b", "running", t0))
			primary := &fakeSource{name: "cgroup", usage: map[string]Usage{}, errs: tc.errs}
			primary.setCPU("a", 1)
			primary.setCPU("b", 1)
			fallback := &fakeSource{name: "api", usage: map[string]Usage{}}
			fallback.setCPU("a", 2)
			fallback.setCPU("b", 3)
			s := New(st, primary, Config{Fallback: fallback, Logger: logTo(&logs)})
			s.sample(context.Background(), false)
			got := s.Latest()
			if !tc.fallBack {
				if got.Source != "cgroup" || fallback.reads != 0 {
					t.Fatalf("source %q, %d reads of the fallback; want no fallback", got.Source, fallback.reads)
				}
				return
			}
			if got.Source != "api" || got.ByID["a"].CPUSeconds != 2 || got.ByID["b"].CPUSeconds != 3 || got.Unsampled != 0 {
				t.Fatalf("sample %+v; want both read through the fallback at once", got)
			}
			if !strings.Contains(logs.String(), "using the api source from now on") {
				t.Fatalf("log:\n%s\nwant the fallback said", logs.String())
			}
			s.sample(context.Background(), false)
			if primary.reads != 2 {
				t.Errorf("%d reads of the first source, want only the 2 of the first sample", primary.reads)
			}
		})
	}
}

func TestAContainerThatStartsIsReadSoonNotAtTheNextInterval(t *testing.T) {
	st := newFakeStore()
	src := &fakeSource{usage: map[string]Usage{}}
	src.setCPU("new", 2)
	s := New(st, src, Config{Interval: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Run(ctx)
	}()
	defer func() {
		cancel()
		<-done
	}()
	started := time.Now()
	st.set(ctr("new", "running", t0))
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, ok := s.Latest().ByID["new"]; ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a container that started was not read within 10s, with an hour's interval")
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("read %v after it started", time.Since(started).Round(time.Millisecond))
	st.set() // it stopped
	deadline = time.Now().Add(10 * time.Second)
	for len(s.Latest().ByID) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("a container that stopped kept its figures")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
