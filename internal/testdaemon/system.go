package testdaemon

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// System wraps a daemon the test did not start and must not stop, such as
// the one a test machine's init system runs (the cgroup v2 guest's), so
// that Docker, BusyboxImage and the rest work on it. host is its address
// (unix:///var/run/docker.sock). It waits up to startTimeout for the daemon
// to answer. A cleanup removes the containers the test left, but not
// images or networks.
func System(tb testing.TB, host string) *Daemon {
	tb.Helper()
	sock, ok := strings.CutPrefix(host, "unix://")
	if !ok {
		tb.Fatalf("testdaemon: System wants a unix:// host, got %q", host)
	}
	env := append(cleanEnv(), "PATH="+withSbin(os.Getenv("PATH")))
	d := &Daemon{
		Host:   host,
		Engine: Engine{Name: "system"},
		sock:   sock,
		cliEnv: append(env, "DOCKER_HOST="+host, "DOCKER_CONFIG="+filepath.Join(tb.TempDir(), "cli")),
	}
	begin := time.Now()
	var err error
	for {
		if err = d.ping(); err == nil {
			break
		}
		if time.Since(begin) > startTimeout {
			tb.Fatalf("testdaemon: the daemon at %s does not answer after %v: %v", host, startTimeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if d.cli, err = d.pickCLI(); err != nil {
		tb.Fatalf("testdaemon: %v", err)
	}
	if d.Version, d.APIVersion, err = d.serverVersion(); err != nil {
		tb.Fatalf("testdaemon: %v", err)
	}
	before, err := d.DockerErr("ps", "-aq")
	if err != nil {
		tb.Fatalf("testdaemon: %v: %s", err, before)
	}
	tb.Cleanup(func() {
		// Remove what the test made, and nothing that was there before.
		after, err := d.DockerErr("ps", "-aq")
		if err != nil {
			tb.Logf("testdaemon: %v: %s", err, after)
			return
		}
		var made []string
		for _, id := range strings.Fields(after) {
			if !strings.Contains(before, id) {
				made = append(made, id)
			}
		}
		if len(made) > 0 {
			if out, err := d.DockerErr(append([]string{"rm", "-f", "-v"}, made...)...); err != nil {
				tb.Logf("testdaemon: %v: %s", err, out)
			}
		}
	})
	tb.Logf("testdaemon: the system's daemon %s (API %s) on %s (CLI %s)", d.Version, d.APIVersion, host, d.cli)
	return d
}
