// Package dockercli is what the integration tests ask of a private daemon
// through the docker CLI, beyond testdaemon's Docker: run a container, list
// states, read the daemon's event log.
package dockercli

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker-exporter/docker_exporter/internal/testdaemon"
)

// Run starts a detached container without network; args are the flags,
// image and command. It returns the full id.
func Run(tb testing.TB, d *testdaemon.Daemon, name string, args ...string) string {
	tb.Helper()
	return d.Docker(tb, append([]string{"run", "-d", "--network", "none", "--name", name}, args...)...)
}

// States is `docker ps -a` as a name -> state map.
func States(tb testing.TB, d *testdaemon.Daemon) map[string]string {
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

// LastEventNano is the daemon's time of the newest event it has, from its
// own event log.
func LastEventNano(tb testing.TB, d *testdaemon.Daemon) int64 {
	tb.Helper()
	var last int64
	for f := range strings.FieldsSeq(events(tb, d, "{{.TimeNano}}")) {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			tb.Fatalf("docker events: bad TimeNano %q", f)
		}
		last = max(last, n)
	}
	return last
}

// ContainerEvents lists the container events the daemon still has, for logs.
func ContainerEvents(tb testing.TB, d *testdaemon.Daemon) string {
	tb.Helper()
	return events(tb, d, "{{.TimeNano}} {{.Actor.Attributes.name}} {{.Action}}", "--filter", "type=container")
}

// events is the daemon's event log of the last hour up to now, one line per
// event in format.
func events(tb testing.TB, d *testdaemon.Daemon, format string, filters ...string) string {
	tb.Helper()
	now := time.Now()
	args := append([]string{"events"}, filters...)
	return d.Docker(tb, append(args,
		"--since", strconv.FormatInt(now.Add(-time.Hour).Unix(), 10),
		"--until", fmt.Sprintf("%d.%09d", now.Unix(), now.Nanosecond()),
		"--format", format)...)
}
