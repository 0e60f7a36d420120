package stats

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
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
	mu    sync.Mutex
	usage map[string]Usage
	errs  map[string]error
	reads int
}

func (f *fakeSource) Name() string { return "fake" }

func (f *fakeSource) Read(_ context.Context, c *store.Container) (Usage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
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
	st := newFakeStore(ctr("gone", "running", t0), ctr("broken", "running", t0), ctr("fine", "running", t0))
	src := &fakeSource{usage: map[string]Usage{}, errs: map[string]error{
		"gone":   ErrGone,
		"broken": errors.New("permission denied"),
	}}
	src.setCPU("fine", 1)
	s := New(st, src, Config{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	for range 3 {
		s.sample(context.Background(), false)
	}
	if got := s.Latest().ByID; len(got) != 1 || !got["fine"].HasCPU {
		t.Fatalf("sample %v, want only the container that could be read", got)
	}
	if n := strings.Count(logs.String(), "level=WARN"); n != 1 || !strings.Contains(logs.String(), "permission denied") {
		t.Fatalf("log:\n%s\nwant one WARN, about the failure that is no stop", logs.String())
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
