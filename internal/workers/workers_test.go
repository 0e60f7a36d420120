package workers

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestEachCallsEveryIndexOnceWithinTheLimit(t *testing.T) {
	var (
		mu         sync.Mutex
		seen       = make(map[int]int)
		busy, peak atomic.Int32
	)
	Each(context.Background(), 100, 3, func(i int) {
		if n := busy.Add(1); n > peak.Load() {
			peak.Store(n)
		}
		mu.Lock()
		seen[i]++
		mu.Unlock()
		busy.Add(-1)
	})
	if len(seen) != 100 {
		t.Fatalf("%d indices called, want 100", len(seen))
	}
	for i, n := range seen {
		if n != 1 {
			t.Fatalf("index %d called %d times", i, n)
		}
	}
	if peak.Load() > 3 {
		t.Fatalf("%d calls at once, want at most 3", peak.Load())
	}
}

func TestEachStopsHandingOutWorkWhenTheContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var calls atomic.Int32
	Each(ctx, 1000, 2, func(i int) {
		if calls.Add(1) == 5 {
			cancel()
		}
	})
	if n := calls.Load(); n < 5 || n > 7 {
		t.Fatalf("%d calls after the context ended at the 5th, want at most one more per worker", n)
	}
}
