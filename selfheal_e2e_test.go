package main

// Self-healing against a real dockerd: the daemon is made to drop events
// for the exporter for real, by a reader that falls behind during a burst,
// and the exporter must find out and mend its state without a reconnect.

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/docker-exporter/docker_exporter/internal/dockercli"
	"github.com/docker-exporter/docker_exporter/internal/exporterproc"
	"github.com/docker-exporter/docker_exporter/internal/scrape"
	"github.com/docker-exporter/docker_exporter/internal/testbed"
	"github.com/docker-exporter/docker_exporter/internal/testdaemon"
	"github.com/docker-exporter/docker_exporter/internal/wait"
)

// fillDaemonBuffer makes volume events until the daemon's buffer for the
// stalled subscriber is full: dockerd's publisher then waits 100ms for it
// on every event, which shows as requests that are all slow. A busy CPU
// makes a request slow now and then, not five in a row, so it waits for
// that. From then on the daemon drops every event for that subscriber. It
// gives up after 20,000 events.
func fillDaemonBuffer(tb testing.TB, d *testdaemon.Daemon) int {
	tb.Helper()
	const slowInARow = 5
	cli, err := client.New(client.WithHost(d.Host))
	if err != nil {
		tb.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var (
		n    atomic.Int64
		full atomic.Bool
		wg   sync.WaitGroup
		errs = make(chan error, 4)
	)
	for w := range 4 {
		wg.Go(func() {
			slow := 0
			// One event a request: a volume made, then removed.
			for i := 0; !full.Load() && n.Load() < 20_000; i++ {
				name := fmt.Sprintf("filler-%d-%d", w, i/2)
				begin := time.Now()
				var err error
				if i%2 == 0 {
					_, err = cli.VolumeCreate(ctx, client.VolumeCreateOptions{Name: name})
				} else {
					_, err = cli.VolumeRemove(ctx, name, client.VolumeRemoveOptions{})
				}
				if err != nil {
					errs <- err
					return
				}
				if time.Since(begin) < 95*time.Millisecond {
					slow = 0
				} else if slow++; slow == slowInARow && n.Load() > 1024 {
					full.Store(true)
				}
				n.Add(1)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		tb.Fatalf("filling the daemon's event buffer: %v", err)
	}
	if !full.Load() {
		tb.Fatalf("%d events and the daemon never waited for the stalled reader", n.Load())
	}
	return int(n.Load())
}

func TestRealDaemonDroppingEventsIsHealedWithoutReconnect(t *testing.T) {
	t.Parallel()
	testdaemon.ForEachEngine(t, realDaemonDroppingEventsIsHealed)
}

func realDaemonDroppingEventsIsHealed(t *testing.T, eng testdaemon.Engine) {
	for _, way := range []struct {
		name string
		// hold makes the exporter's reading of the stream fall behind;
		// release lets it catch up.
		hold, release func(*testbed.Bed, *exporterproc.Exporter)
	}{
		{"the stream stalls between daemon and exporter",
			func(b *testbed.Bed, _ *exporterproc.Exporter) { b.Proxy.StallEvents(true) },
			func(b *testbed.Bed, _ *exporterproc.Exporter) { b.Proxy.StallEvents(false) }},
		{"the exporter process is stopped (SIGSTOP)",
			func(_ *testbed.Bed, e *exporterproc.Exporter) { sendSignal(t, e, syscall.SIGSTOP) },
			func(_ *testbed.Bed, e *exporterproc.Exporter) { sendSignal(t, e, syscall.SIGCONT) }},
	} {
		t.Run(way.name, func(t *testing.T) {
			t.Parallel()
			b := testbed.Start(t, eng, testbed.WithProxy)
			d, img, p := b.Daemon, b.Image, b.Proxy
			// No periodic resync: only the signs of falling behind heal.
			e := b.Exporter(t, "--store.resync-interval=0")
			names := []string{"keep", "doomed-1", "doomed-2", "victim-1", "victim-2"}
			for _, name := range names {
				dockercli.Run(t, d, name, img, "sleep", "1000")
			}
			e.WaitFor(t, "every container running", func(s *scrape.Scrape) bool {
				for _, name := range names {
					if !s.InState(name, "running") {
						return false
					}
				}
				return s.Up()
			})
			testbed.WaitEventsApplied(t, d, e)
			before := e.Scrape(t)
			streams := p.Snapshot()["GET /events"]

			way.hold(b, e)
			filled := fillDaemonBuffer(t, d)
			held := time.Now()
			// What the exporter cannot hear: two removed, two killed, two new.
			d.Docker(t, "rm", "-f", "doomed-1", "doomed-2")
			d.Docker(t, "kill", "victim-1", "victim-2")
			dockercli.Run(t, d, "newbie-1", img, "sleep", "1000")
			dockercli.Run(t, d, "newbie-2", img, "sleep", "1000")
			// The disturbance itself: the reader stays behind this long.
			time.Sleep(time.Until(held.Add(1500 * time.Millisecond)))
			ps := dockercli.States(t, d)
			way.release(b, e)
			released := time.Now()

			var s *scrape.Scrape
			wait.For(t, healBound, "the exporter equal to docker ps -a after the disturbance", func() bool {
				s = e.Scrape(t)
				return s.Up() && maps.Equal(s.States(), ps)
			}, func() string {
				return fmt.Sprintf("docker ps -a: %v\n%s\nexporter output:\n%s", ps, s.Lines("docker_container_state", "docker_exporter_resync"), e.Output)
			})
			t.Logf("%d filler events; the exporter equals docker ps -a %v after the disturbance ended",
				filled, time.Since(released).Round(time.Millisecond))
			// Late events must not count again. The daemon's newest events
			// were dropped, so a marker is the newest to wait for.
			d.Docker(t, "volume", "create", "marker")
			testbed.WaitEventsApplied(t, d, e)
			s = e.Scrape(t)
			for _, c := range []struct {
				metric, name string
				add          float64
			}{
				{"docker_container_deaths_total", "doomed-1", 1}, {"docker_container_destroys_total", "doomed-1", 1},
				{"docker_container_deaths_total", "doomed-2", 1}, {"docker_container_destroys_total", "doomed-2", 1},
				{"docker_container_deaths_total", "victim-1", 1}, {"docker_container_deaths_total", "victim-2", 1},
				{"docker_container_deaths_total", "keep", 0},
			} {
				was, _ := before.Value(c.metric, "name", c.name)
				s.Must(s.Is(was+c.add, c.metric, "name", c.name), "%s{name=%q} want %v", c.metric, c.name, was+c.add)
			}
			for _, name := range []string{"newbie-1", "newbie-2"} {
				s.Must(s.Is(0, "docker_container_deaths_total", "name", name), "want no death for %s", name)
			}
			s.Must(s.Is(0, "docker_exporter_event_stream_reconnects_total"), "healed by a reconnect, want by a resync")
			if got := p.Snapshot()["GET /events"]; got != streams {
				t.Fatalf("the exporter opened %d new event streams, want none", got-streams)
			}
			s.Must(s.AtLeast(1, "docker_exporter_resyncs_total", "reason", "fell_behind"), "want a fell_behind resync")
			// Proof that the daemon did drop events: otherwise the
			// stream, not the resync, would have told.
			s.Must(s.Sum("docker_exporter_resync_corrections_total") > 0, "want resync corrections: did the daemon drop nothing?")
		})
	}
}

func sendSignal(t *testing.T, e *exporterproc.Exporter, sig syscall.Signal) {
	t.Helper()
	if err := syscall.Kill(e.Pid(), sig); err != nil {
		t.Fatalf("signal %v to the exporter: %v", sig, err)
	}
}
