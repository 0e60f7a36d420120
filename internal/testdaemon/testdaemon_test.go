package testdaemon

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// waitFor polls cond until it reports true, failing the test at the deadline.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still %q after %v", what, state, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestPrivateDaemonRunsContainers(t *testing.T) {
	t.Parallel()
	ForEachEngine(t, func(t *testing.T, eng Engine) {
		t.Parallel()
		privateDaemonRunsContainers(t, eng)
	})
}

func privateDaemonRunsContainers(t *testing.T, eng Engine) {
	d := eng.Start(t)
	img := d.BusyboxImage(t)
	if again := d.BusyboxImage(t); again != img {
		t.Fatalf("second BusyboxImage = %q, want %q", again, img)
	}
	inspect := func(format, id string) string { return d.Docker(t, "inspect", "-f", format, id) }

	sleeper := d.Docker(t, "run", "-d", "--network", "none", img, "sleep", "1000")
	if ps := d.Docker(t, "ps", "-q", "--no-trunc"); !strings.Contains(ps, sleeper) {
		t.Fatalf("docker ps = %q, want it to list %s", ps, sleeper)
	}

	exited := d.Docker(t, "run", "-d", "--network", "none", img, "sh", "-c", "exit 3")
	if code := d.Docker(t, "wait", exited); code != "3" {
		t.Fatalf("docker wait = %q, want 3", code)
	}
	if code := inspect("{{.State.ExitCode}}", exited); code != "3" {
		t.Fatalf("State.ExitCode = %q, want 3", code)
	}

	healthy := d.Docker(t, "run", "-d", "--network", "none", "--health-cmd", "true", "--health-interval", "1s", img, "sleep", "1000")
	waitFor(t, 30*time.Second, "health status", func() (bool, string) {
		s := inspect("{{.State.Health.Status}}", healthy)
		return s == "healthy", s
	})

	// dd allocates its 64M block buffer and faults it in on read, far over
	// the 8M limit. --memory-swap = -m so swap (where the host has it and
	// swap accounting is on) cannot absorb it; docker drops it with a warning
	// where swap limits are unsupported.
	// dd must not start right away: the shim arms its OOM watch (cgroup v1
	// memory.oom_control eventfd) only after the process has started, and
	// dockerd 20.10 sets OOMKilled only if the OOM event beats the exit
	// event, so an instant OOM left OOMKilled false in 3 of 12 runs under
	// load. "docker run -d" returns after the watch is armed; then we let
	// dd go.
	oom := d.Docker(t, "run", "-d", "--network", "none", "-m", "8m", "--memory-swap", "8m", img,
		"sh", "-c", "until [ -e /tmp/go ]; do usleep 10000; done; exec dd if=/dev/zero of=/dev/null bs=64M count=1")
	d.Docker(t, "exec", oom, "touch", "/tmp/go")
	if code := d.Docker(t, "wait", oom); code != "137" {
		t.Fatalf("OOM container exit code %q, want 137", code)
	}
	// Final once "docker wait" has returned: it is set with the exit state.
	if killed := inspect("{{.State.OOMKilled}}", oom); killed != "true" {
		t.Fatalf("State.OOMKilled = %s, want true", killed)
	}

	d.Stop(t)
	if err := d.ping(); err == nil {
		t.Fatal("daemon still answers /_ping after Stop")
	}
	if _, err := d.DockerErr("ps"); err == nil {
		t.Fatal("docker ps succeeded after Stop")
	}
	d.Restart(t)
	if err := d.ping(); err != nil {
		t.Fatalf("/_ping after Restart: %v", err)
	}
	if running := inspect("{{.State.Running}}", sleeper); running != "true" {
		t.Fatalf("sleeper Running = %s after Restart, want true (live-restore)", running)
	}
}

// TestTwoDaemonsAreIndependent runs a daemon of each engine side by side,
// in parallel with the test above, so four daemons run at once, as when
// several packages' tests use testdaemon.
func TestTwoDaemonsAreIndependent(t *testing.T) {
	t.Parallel()
	a, b := Default().Start(t), Current().Start(t)
	if a.Host == b.Host {
		t.Fatalf("both daemons on %s", a.Host)
	}
	id := a.Docker(t, "run", "-d", "--network", "none", a.BusyboxImage(t), "sleep", "1000")
	if ps := b.Docker(t, "ps", "-aq"); ps != "" {
		t.Fatalf("second daemon lists containers %q", ps)
	}
	b.Docker(t, "run", "--rm", "--network", "none", b.BusyboxImage(t), "true")
	if ps := a.Docker(t, "ps", "-q", "--no-trunc"); ps != id {
		t.Fatalf("first daemon lists %q, want only %s", ps, id)
	}
}

// TestEveryCLIWorksWithEveryEngine: each docker CLI testdaemon may pick
// (Debian's 20.10, API 1.41, and a newer one on PATH) negotiates an API
// version with each engine and can import, run and inspect there.
func TestEveryCLIWorksWithEveryEngine(t *testing.T) {
	t.Parallel()
	ForEachEngine(t, func(t *testing.T, eng Engine) {
		t.Parallel()
		d := eng.Start(t)
		bb, err := findStaticBusybox(withSbin(os.Getenv("PATH")))
		if err != nil {
			unavailable(t, "%v (apt-get install busybox-static)", err)
		}
		tarball, err := busyboxTar(bb)
		if err != nil {
			t.Fatal(err)
		}
		for i, cli := range cliCandidates() {
			d.cli = cli
			tag := fmt.Sprintf("dx-cli%d:test", i)
			var stdout, stderr bytes.Buffer
			if err := d.run(bytes.NewReader(tarball), &stdout, &stderr, "import", "--change", `CMD ["sh"]`, "-", tag); err != nil {
				t.Fatalf("%s: %v\n%s", cli, err, stderr.Bytes())
			}
			if api := d.Docker(t, "version", "-f", "{{.Server.APIVersion}}"); api != d.APIVersion {
				t.Errorf("%s: server API %q, GET /version says %q", cli, api, d.APIVersion)
			}
			id := d.Docker(t, "run", "-d", "--network", "none", tag, "sleep", "1000")
			if img := d.Docker(t, "inspect", "-f", "{{.Config.Image}} {{.State.Status}}", id); img != tag+" running" {
				t.Errorf("%s: inspect says %q, want %q", cli, img, tag+" running")
			}
			if ev := d.Docker(t, "events", "--since", "0", "--until", strconv.FormatInt(time.Now().Unix()+1, 10), "--filter", "container="+id, "--format", "{{.Action}}"); !strings.Contains(ev, "start") {
				t.Errorf("%s: events of %s: %q, want a start", cli, id, ev)
			}
			t.Logf("%s: %s", cli, d.Docker(t, "version", "-f", "client API {{.Client.APIVersion}}, server API {{.Server.APIVersion}} (min {{.Server.MinAPIVersion}})"))
		}
	})
}

// TestCurrentEngineWithoutItsBinariesIsUnavailable: a current Engine whose
// dockerd or runc is not there has no Dockerd, so that Start skips, or fails
// under EnvRequire, saying which variable to fix.
func TestCurrentEngineWithoutItsBinariesIsUnavailable(t *testing.T) {
	for _, c := range []struct{ dockerd, runc, want string }{
		{"", "", EnvCurrentDockerd + " and " + EnvCurrentRunc + " are not both set"},
		{"/nonexistent/dockerd", "/bin/sh", EnvCurrentDockerd + "=/nonexistent/dockerd is not an executable"},
		{"/bin/sh", "/nonexistent/runc", EnvCurrentRunc + "=/nonexistent/runc is not an executable"},
	} {
		t.Setenv(EnvCurrentDockerd, c.dockerd)
		t.Setenv(EnvCurrentRunc, c.runc)
		e := Current()
		if e.Name != CurrentName || e.Dockerd != "" || !strings.Contains(e.missing, c.want) {
			t.Errorf("dockerd %q, runc %q: %+v, want no Dockerd and a reason with %q", c.dockerd, c.runc, e, c.want)
		}
	}
}
