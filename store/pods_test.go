package store

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// podEngine is a fakeEngine whose daemon has pods, as Podman's has.
type podEngine struct {
	*fakeEngine
	mu    sync.Mutex
	pods  map[string]string // container id -> pod name
	asked map[string]int
	fail  bool
}

func (p *podEngine) ContainerPod(_ context.Context, id string) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.asked[id]++
	if p.fail {
		return "", errors.New("libpod: 500")
	}
	return p.pods[id], nil
}

func (p *podEngine) askedFor(id string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.asked[id]
}

func TestPodIsAskedOnceAContainerAndKept(t *testing.T) {
	f := newFakeEngine()
	f.set("a", "api", "running", at(1), time.Time{}, 0)
	f.set("s", "solo", "running", at(1), time.Time{}, 0)
	p := &podEngine{fakeEngine: f, pods: map[string]string{"a": "shop"}, asked: map[string]int{}}
	s := New(p, Config{})
	runStore(t, s)
	snap := waitFor(t, s, "first sync", synced(1))
	if c := find(snap, "api"); c == nil || c.Pod != "shop" {
		t.Fatalf("api's pod: %+v, want shop", c)
	}
	if c := find(snap, "solo"); c == nil || c.Pod != "" {
		t.Fatalf("solo's pod: %+v, want none", c)
	}

	// Events that inspect again keep the pod without asking again.
	f.set("a", "api", "exited", at(1), at(2), 0)
	f.emit(ev("a", "die", 2, map[string]string{"exitCode": "0"}))
	f.set("a", "api", "running", at(3), time.Time{}, 0)
	f.emit(ev("a", "start", 3, nil))
	snap = waitFor(t, s, "api restarted", func(s Snapshot) bool { return s.Counts["api"].Starts == 1 })
	if c := find(snap, "api"); c.Pod != "shop" {
		t.Errorf("after the restart api's pod is %q, want shop", c.Pod)
	}

	// A container met in an event gets its pod with its first inspect.
	p.mu.Lock()
	p.pods["n"] = "shop"
	p.mu.Unlock()
	f.set("n", "web", "created", time.Time{}, time.Time{}, 0)
	f.emit(ev("n", "create", 4, map[string]string{"name": "web", "image": "busybox"}))
	snap = waitFor(t, s, "web with its pod", func(s Snapshot) bool { c := find(s, "web"); return c != nil && c.Pod == "shop" })
	for id, want := range map[string]int{"a": 1, "s": 1, "n": 1} {
		if got := p.askedFor(id); got != want {
			t.Errorf("asked %d times for the pod of %s, want %d", got, id, want)
		}
	}
}

func TestPodThatCannotBeToldIsAskedAgain(t *testing.T) {
	f := newFakeEngine()
	f.set("a", "api", "running", at(1), time.Time{}, 0)
	p := &podEngine{fakeEngine: f, pods: map[string]string{"a": "shop"}, asked: map[string]int{}, fail: true}
	s := New(p, Config{})
	runStore(t, s)
	snap := waitFor(t, s, "first sync", synced(1))
	if c := find(snap, "api"); c == nil || c.Pod != "" {
		t.Fatalf("api: %+v, want it without a pod", c)
	}
	p.mu.Lock()
	p.fail = false
	p.mu.Unlock()
	f.set("a", "api", "exited", at(1), at(2), 0)
	f.emit(ev("a", "die", 2, map[string]string{"exitCode": "0"}))
	waitFor(t, s, "api's pod on the next inspect", func(s Snapshot) bool { c := find(s, "api"); return c != nil && c.Pod == "shop" })
}
