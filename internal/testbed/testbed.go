// Package testbed sets up what the end-to-end tests start from: a private
// daemon of one engine with the busybox image, optionally a counting proxy
// in front of it, and the exporter binary following it.
package testbed

import (
	"fmt"
	"testing"
	"time"

	"github.com/docker-exporter/docker_exporter/internal/countproxy"
	"github.com/docker-exporter/docker_exporter/internal/dockercli"
	"github.com/docker-exporter/docker_exporter/internal/exporterproc"
	"github.com/docker-exporter/docker_exporter/internal/scrape"
	"github.com/docker-exporter/docker_exporter/internal/testdaemon"
)

// Bed is a private daemon ready for containers.
type Bed struct {
	Daemon *testdaemon.Daemon
	Image  string // the busybox image, testdaemon's BusyboxImage
	// Proxy, if Start was asked for one, is where Exporter points the
	// exporter: it counts (and may filter) the requests to the daemon.
	Proxy *countproxy.Proxy
}

// Option changes what Start sets up.
type Option func(*Bed, testing.TB)

// WithProxy puts a countproxy between the exporter and the daemon.
func WithProxy(b *Bed, tb testing.TB) { b.Proxy = StartProxy(tb, b.Daemon.Host) }

// Start starts a daemon of eng and imports the busybox image.
func Start(tb testing.TB, eng testdaemon.Engine, opts ...Option) *Bed {
	tb.Helper()
	d := eng.Start(tb)
	b := &Bed{Daemon: d, Image: d.BusyboxImage(tb)}
	for _, o := range opts {
		o(b, tb)
	}
	return b
}

// Host is the address the exporter should follow: the proxy's, if any.
func (b *Bed) Host() string {
	if b.Proxy != nil {
		return b.Proxy.Host
	}
	return b.Daemon.Host
}

// Exporter starts the exporter binary (built with -race) with flags, on
// Host, and waits for docker_up 1.
func (b *Bed) Exporter(tb testing.TB, flags ...string) *exporterproc.Exporter {
	tb.Helper()
	e := exporterproc.Start(tb, exporterproc.Build(tb, true), append([]string{"--docker.host=" + b.Host()}, flags...)...)
	e.WaitFor(tb, "docker_up 1", (*scrape.Scrape).Up, "docker_up")
	return e
}

// WaitEventsApplied waits until e has applied every event d has logged so
// far. The store applies events in order and an event (with the
// inspect it needs) is done when docker_exporter_last_event_timestamp_seconds
// reaches its time, so after this nothing is in flight unless the daemon
// logs more. A float64 of seconds since the epoch keeps about a quarter of a
// microsecond, so the time is compared less 1µs, far less than lies between
// two events of the CLI calls here.
func WaitEventsApplied(tb testing.TB, d *testdaemon.Daemon, e *exporterproc.Exporter) {
	tb.Helper()
	last := dockercli.LastEventNano(tb, d)
	if last == 0 {
		return
	}
	want := float64(last-int64(time.Microsecond)) / 1e9
	e.WaitFor(tb, fmt.Sprintf("the daemon's newest event (%d) applied", last), func(s *scrape.Scrape) bool {
		return s.AtLeast(want, "docker_exporter_last_event_timestamp_seconds")
	}, "docker_exporter_last_event")
}

// StartProxy starts a countproxy in front of the daemon on host (a unix
// socket), closed in cleanup.
func StartProxy(tb testing.TB, host string) *countproxy.Proxy {
	tb.Helper()
	p, err := countproxy.Start(host)
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
