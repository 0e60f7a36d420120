package store_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/docker-exporter/docker_exporter/internal/fakeengine"
	"github.com/docker-exporter/docker_exporter/store"
)

// engine starts a fake Engine with n containers on a unix socket and a
// real client for it.
func engine(b *testing.B, n int, opts fakeengine.Options) (*fakeengine.Engine, *client.Client) {
	b.Helper()
	e := fakeengine.New(opts)
	e.Populate(n, 1)
	if err := e.ListenUnix(filepath.Join(b.TempDir(), "docker.sock")); err != nil {
		b.Fatal(err)
	}
	cli, err := client.New(client.WithHost(e.Host()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		cli.Close()
		e.Close()
	})
	return e, cli
}

// following runs a store against cli until the benchmark ends and waits
// for its first sync.
func following(b *testing.B, cli *client.Client) *store.Store {
	return followingWith(b, cli, store.Config{InspectConcurrency: 16})
}

func followingWith(b *testing.B, cli *client.Client, cfg store.Config) *store.Store {
	b.Helper()
	st := store.New(cli, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		st.Run(ctx)
	}()
	b.Cleanup(func() {
		cancel()
		<-done
	})
	waitSnapshot(b, st, 30*time.Second, func(s store.Snapshot) bool { return s.Status.Up })
	return st
}

func waitSnapshot(b *testing.B, st *store.Store, timeout time.Duration, cond func(store.Snapshot) bool) store.Snapshot {
	b.Helper()
	changed, cancel := st.Subscribe()
	defer cancel()
	deadline := time.After(timeout)
	for {
		if snap := st.Snapshot(); cond(snap) {
			return snap
		}
		select {
		case <-changed:
		case <-deadline:
			b.Fatalf("store did not get there within %v", timeout)
		}
	}
}

// BenchmarkInitialSync: from Run to the first complete sync (a list, then
// an inspect of every container, each answered after 1 ms).
func BenchmarkInitialSync(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("containers=%d", n), func(b *testing.B) {
			_, cli := engine(b, n, fakeengine.Options{InspectLatency: time.Millisecond})
			for b.Loop() {
				st := store.New(cli, store.Config{})
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan struct{})
				go func() {
					defer close(done)
					st.Run(ctx)
				}()
				snap := waitSnapshot(b, st, time.Minute, func(s store.Snapshot) bool { return s.Status.Up })
				cancel()
				<-done
				if len(snap.Containers) != n {
					b.Fatalf("synced %d containers, want %d", len(snap.Containers), n)
				}
			}
		})
	}
}

// BenchmarkEventToSnapshot: from the fake daemon writing a pause or unpause
// event to the change being visible in a snapshot, with 1,000 containers.
// Reports the median and 99th percentile.
func BenchmarkEventToSnapshot(b *testing.B) {
	e, cli := engine(b, 1000, fakeengine.Options{})
	st := following(b, cli)
	var id string
	for _, c := range e.Truth() {
		if c.State == "running" {
			id = c.ID
			break
		}
	}
	if id == "" {
		b.Fatal("no running container")
	}
	find := func(s store.Snapshot) *store.Container {
		for _, c := range s.Containers {
			if c.ID == id {
				return c
			}
		}
		return nil
	}
	var delays []time.Duration
	paused := false
	for b.Loop() {
		want := "paused"
		start := time.Now()
		if paused {
			want = "running"
			_ = e.Unpause(id)
		} else {
			_ = e.Pause(id)
		}
		paused = !paused
		waitSnapshot(b, st, 10*time.Second, func(s store.Snapshot) bool { return find(s).State == want })
		delays = append(delays, time.Since(start))
	}
	slices.Sort(delays)
	b.ReportMetric(float64(delays[len(delays)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(delays[len(delays)*99/100].Microseconds())/1000, "p99-ms")
}

// BenchmarkEventRate: how many events a second the store absorbs, sent as
// fast as the fake daemon can: pause/unpause (no inspect needed) and a
// random mix (starts and deaths are followed by an inspect each).
func BenchmarkEventRate(b *testing.B) {
	for _, mix := range []string{"pause-unpause", "random"} {
		b.Run(mix, func(b *testing.B) {
			e, cli := engine(b, 1000, fakeengine.Options{StreamBuffer: 1 << 20})
			st := following(b, cli)
			var running []string
			for _, c := range e.Truth() {
				if c.State == "running" {
					running = append(running, c.ID)
				}
			}
			rng := rand.New(rand.NewPCG(1, 2))
			const batch = 5000
			var total int
			var elapsed time.Duration
			for b.Loop() {
				before, base := e.Emitted(), st.Status().Events
				start := time.Now()
				for i := range batch / 2 {
					if mix == "random" {
						e.Random(rng)
						e.Random(rng)
						continue
					}
					id := running[i%len(running)]
					_ = e.Pause(id)
					_ = e.Unpause(id)
				}
				sent := e.Emitted() - before
				target := base + uint64(sent)
				waitStatus(b, st, time.Minute, func(s store.Status) bool { return s.Events >= target })
				elapsed += time.Since(start)
				total += sent
			}
			if e.Drops() > 0 {
				b.Fatalf("the fake daemon dropped %d events: the store fell behind", e.Drops())
			}
			b.ReportMetric(float64(total)/elapsed.Seconds(), "events/s")
		})
	}
}

// waitStatus is waitSnapshot for the status alone, cheap enough not to
// weigh on a rate benchmark.
func waitStatus(b *testing.B, st *store.Store, timeout time.Duration, cond func(store.Status) bool) {
	b.Helper()
	changed, cancel := st.Subscribe()
	defer cancel()
	deadline := time.After(timeout)
	for !cond(st.Status()) {
		select {
		case <-changed:
		case <-deadline:
			b.Fatalf("store did not get there within %v: %+v", timeout, st.Status())
		}
	}
}

// BenchmarkIdleResync: one resync with nothing to mend, back to back: a
// list of every container over the socket, decoded and compared with the
// store. Nothing is inspected. The fake daemon's side of the list shares
// the CPU.
func BenchmarkIdleResync(b *testing.B) {
	for _, n := range []int{100, 1000, 10000} {
		b.Run(fmt.Sprintf("containers=%d", n), func(b *testing.B) {
			e, cli := engine(b, n, fakeengine.Options{})
			st := followingWith(b, cli, store.Config{ResyncInterval: time.Nanosecond})
			waitStatus(b, st, time.Minute, func(s store.Status) bool { return s.Resyncs.Interval > 0 })
			inspects := e.Requests()["GET /containers/{id}/json"]
			for b.Loop() {
				next := st.Status().Resyncs.Interval + 1
				waitStatus(b, st, time.Minute, func(s store.Status) bool { return s.Resyncs.Interval >= next })
			}
			if got := e.Requests()["GET /containers/{id}/json"]; got != inspects {
				b.Fatalf("idle resyncs inspected %d containers, want none", got-inspects)
			}
			if c := st.Status().Corrections; c != (store.Corrections{}) {
				b.Fatalf("idle resyncs corrected %+v", c)
			}
		})
	}
}
