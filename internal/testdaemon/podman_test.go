package testdaemon

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestPodmanContainerSurvivesServiceRestart(t *testing.T) {
	t.Parallel()
	p := StartPodman(t)
	img := p.BusyboxImage(t)
	if again := p.BusyboxImage(t); again != img {
		t.Fatalf("second BusyboxImage = %q, want %q", again, img)
	}
	id := p.Podman(t, "run", "-d", "--name", "sleeper", "--network", "none", img, "sleep", "1000")
	if s := p.States(t)["sleeper"]; s != "running" {
		t.Fatalf("sleeper is %q, want running", s)
	}
	if _, err := os.Stat(filepath.Join("/run/runc", id)); err == nil {
		t.Errorf("runc keeps the state of %s in the system's /run/runc", id)
	}

	p.StopService(t)
	if err := p.ping(); err == nil {
		t.Fatal("service still answers /_ping after StopService")
	}
	p.StartService(t)
	if s := p.States(t)["sleeper"]; s != "running" {
		t.Fatalf("sleeper is %q after StartService, want running", s)
	}
	var ctrs []struct {
		Names []string
		State string
	}
	if err := json.Unmarshal(p.API(t, "/v"+p.APIVersion+"/containers/json?all=1"), &ctrs); err != nil {
		t.Fatal(err)
	}
	if len(ctrs) != 1 || len(ctrs[0].Names) != 1 || ctrs[0].Names[0] != "/sleeper" || ctrs[0].State != "running" {
		t.Fatalf("GET /containers/json after StartService = %+v, want only /sleeper, running", ctrs)
	}
}

// TestPodmanLastEventNanoIsTheNewestEventOfTheAPI: LastEventNano is exactly
// the greatest timeNano that GET /events?since=0&until=... hands an API
// client, though the events do not come in the order of their times.
func TestPodmanLastEventNanoIsTheNewestEventOfTheAPI(t *testing.T) {
	t.Parallel()
	p := StartPodman(t)
	img := p.BusyboxImage(t)
	p.Podman(t, "run", "-d", "--name", "sleeper", "--network", "none", img, "sleep", "1000")
	p.Podman(t, "run", "-d", "--name", "exited", "--network", "none", img, "sh", "-c", "exit 3")
	if code := p.Podman(t, "wait", "exited"); code != "3" {
		t.Fatalf("podman wait = %q, want 3", code)
	}
	p.Podman(t, "pause", "sleeper")
	// The exited container's cleanup event comes from its exit command.
	waitFor(t, 30*time.Second, "events of exited", func() (bool, string) {
		out := p.Podman(t, "events", "--stream=false", "--filter", "container=exited", "--format", "{{.Status}}")
		return strings.Contains(out, "cleanup"), out
	})

	// until must be in the future: with the file events backend, 4.3.1
	// stops reading the log at once for an until in the past, and returns
	// none or some of the events.
	until := time.Now().Unix() + 2
	body := p.API(t, fmt.Sprintf("/v%s/events?since=0&until=%d", p.APIVersion, until))
	var newest, last int64
	var n, backwards int
	for dec := json.NewDecoder(bytes.NewReader(body)); ; n++ {
		var ev struct{ TimeNano int64 }
		if err := dec.Decode(&ev); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("GET /events: %v\n%s", err, body)
		}
		if ev.TimeNano < last {
			backwards++
		}
		newest, last = max(newest, ev.TimeNano), ev.TimeNano
	}
	if n < 6 {
		t.Fatalf("GET /events returned %d events, want create, start, die, ... of two containers:\n%s", n, body)
	}
	if got := p.LastEventNano(t); got != newest {
		t.Fatalf("LastEventNano = %d, newest timeNano from GET /events = %d (last one %d)", got, newest, last)
	}
	t.Logf("%d events (%d earlier than the one before), newest at %d, last one at %d", n, backwards, newest, last)
}

// TestPodmanCleanupLeavesNothing: after a test with running, paused and
// exited containers and a pod, no process mentions the Podman's directory,
// nothing is mounted there, it is gone, and so are the containers' cgroups.
func TestPodmanCleanupLeavesNothing(t *testing.T) {
	t.Parallel()
	var dir string
	var ids []string
	t.Run("containers", func(t *testing.T) {
		p := StartPodman(t)
		dir = p.dir
		img := p.BusyboxImage(t)
		run := func(args ...string) {
			ids = append(ids, p.Podman(t, append(append([]string{"run", "-d", "--network", "none"}, args...), img, "sleep", "1000")...))
		}
		run("--name", "running")
		run("--name", "paused")
		p.Podman(t, "pause", "paused")
		run("--name", "healthy", "--health-cmd", "true", "--health-interval", "0")
		p.Podman(t, "healthcheck", "run", "healthy")
		p.Podman(t, "pod", "create", "--infra=false", "--name", "pod")
		run("--name", "inpod", "--pod", "pod")
		ids = append(ids, p.Podman(t, "create", "--name", "created", "--network", "none", img))
		p.Podman(t, "run", "--name", "exited", "--network", "none", img, "true")
		want := map[string]string{"running": "running", "paused": "paused", "healthy": "running", "inpod": "running", "created": "created", "exited": "exited"}
		if got := p.States(t); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("States = %v, want %v", got, want)
		}
		if mounts := mountsUnder(t, dir); len(mounts) == 0 {
			t.Fatalf("nothing mounted under %s while containers run", dir)
		}
	})
	if dir == "" {
		t.Skip("no Podman")
	}
	if left := procsUnder(dir); len(left) > 0 {
		t.Errorf("processes using %s after cleanup: %v", dir, left)
	}
	if mounts := mountsUnder(t, dir); len(mounts) > 0 {
		t.Errorf("still mounted after cleanup: %v", mounts)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s after cleanup: %v, want it gone", dir, err)
	}
	for _, id := range ids {
		for _, pattern := range []string{"/sys/fs/cgroup/*/libpod_parent/libpod-" + id, "/sys/fs/cgroup/libpod_parent/libpod-" + id} {
			if left, _ := filepath.Glob(pattern); len(left) > 0 {
				t.Errorf("cgroups left after cleanup: %v", left)
			}
		}
	}
}

// mountsUnder lists the mount points at or below dir.
func mountsUnder(t *testing.T, dir string) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var mps []string
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 5 {
			if mp := unescapeMount(f[4]); mp == dir || strings.HasPrefix(mp, dir+"/") {
				mps = append(mps, mp)
			}
		}
	}
	return mps
}
