package main

// The exporter against a real `podman system service`, through the
// counting proxy: what it shows must equal what Podman says, with the
// differences of Podman's dialect mapped away.

import (
	"fmt"
	"maps"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker-exporter/docker_exporter/internal/countproxy"
	"github.com/docker-exporter/docker_exporter/internal/exporterproc"
	"github.com/docker-exporter/docker_exporter/internal/scrape"
	"github.com/docker-exporter/docker_exporter/internal/testbed"
	"github.com/docker-exporter/docker_exporter/internal/testdaemon"
)

// podmanBed is a private Podman service with the busybox image, a counting
// proxy in front of it and an exporter following the proxy.
type podmanBed struct {
	p     *testdaemon.Podman
	img   string
	proxy *countproxy.Proxy
	e     *exporterproc.Exporter
}

func startPodmanBed(t *testing.T, flags ...string) *podmanBed {
	t.Helper()
	p := testdaemon.StartPodman(t)
	b := &podmanBed{p: p, img: p.BusyboxImage(t)}
	b.proxy = testbed.StartProxy(t, p.Host)
	b.e = exporterproc.Start(t, exporterproc.Build(t, true), append([]string{"--docker.host=" + b.proxy.Host}, flags...)...)
	b.e.WaitFor(t, "docker_up 1", (*scrape.Scrape).Up, "docker_up")
	return b
}

// run starts a detached container without a network; it returns its id.
func (b *podmanBed) run(t *testing.T, name string, args ...string) string {
	t.Helper()
	return b.p.Podman(t, append([]string{"run", "-d", "--network", "none", "--name", name}, args...)...)
}

// waitEventsApplied waits until the exporter has applied every event the
// service has logged so far (see testbed.WaitEventsApplied).
func (b *podmanBed) waitEventsApplied(t *testing.T) {
	t.Helper()
	last := b.p.LastEventNano(t)
	if last == 0 {
		return
	}
	want := float64(last-int64(time.Microsecond)) / 1e9
	b.e.WaitFor(t, fmt.Sprintf("the service's newest event (%d) applied", last), func(s *scrape.Scrape) bool {
		return s.AtLeast(want, "docker_exporter_last_event_timestamp_seconds")
	}, "docker_exporter_last_event")
}

// checkTruth fails unless the exporter shows exactly the containers and
// states Podman lists.
func (b *podmanBed) checkTruth(t *testing.T) *scrape.Scrape {
	t.Helper()
	b.waitEventsApplied(t)
	want := b.p.States(t)
	return b.e.WaitFor(t, fmt.Sprintf("the exporter's states equal podman ps -a: %v", want), func(s *scrape.Scrape) bool {
		return maps.Equal(s.States(), want)
	}, "docker_container_state")
}

func TestPodmanLifecycleIsReflected(t *testing.T) {
	t.Parallel()
	b := startPodmanBed(t, "--container.labels=*")
	p, e := b.p, b.e

	t.Run("daemon info says podman", func(t *testing.T) {
		s := e.Scrape(t)
		s.Must(s.Is(1, "docker_daemon_info", "flavor", "podman", "version", p.Version, "api_version", p.APIVersion),
			"want docker_daemon_info{flavor=podman,version=%s,api_version=%s} 1", p.Version, p.APIVersion)
	})

	t.Run("running container with its labels and no pod", func(t *testing.T) {
		id := b.run(t, "web", "--label", "com.example.team=core", b.img, "sleep", "1000")
		s := e.WaitFor(t, "web running with one start", func(s *scrape.Scrape) bool {
			return s.InState("web", "running") && s.Is(1, "docker_container_starts_total", "name", "web")
		}, scrape.Named("web"))
		checkOneHot(t, s, "web", "running")
		s.Must(s.Is(1, "docker_container_info", "name", "web", "id", id, "image", b.img, "pod", ""),
			"want docker_container_info{name=web,id=%s,image=%s,pod=\"\"} 1", id, b.img)
		s.Must(s.Is(1, "docker_container_labels", "name", "web", "label_com_example_team", "core"),
			`want docker_container_labels{name="web",label_com_example_team="core"} 1`)
		checkTime(t, s, "docker_container_started_timestamp_seconds", "web", p.Podman(t, "inspect", "-f", `{{.State.StartedAt.Format "2006-01-02T15:04:05.999999999Z07:00"}}`, id))
	})

	t.Run("resource usage from the container's cgroup", func(t *testing.T) {
		e.WaitFor(t, "web's memory and CPU usage sampled", func(s *scrape.Scrape) bool {
			mem, ok := s.Value("docker_container_memory_usage_bytes", "name", "web")
			return ok && mem > 0 && s.Has("docker_container_cpu_usage_seconds_total", "name", "web")
		}, scrape.Named("web"))
	})

	t.Run("exit code 3 with one death", func(t *testing.T) {
		id := b.run(t, "three", b.img, "sh", "-c", "exit 3")
		if code := p.Podman(t, "wait", id); code != "3" {
			t.Fatalf("podman wait = %s, want 3", code)
		}
		s := e.WaitFor(t, "three exited with code 3 and one death", func(s *scrape.Scrape) bool {
			return s.InState("three", "exited") && s.Is(3, "docker_container_exit_code", "name", "three") &&
				s.Is(1, "docker_container_deaths_total", "name", "three")
		}, scrape.Named("three"))
		checkOneHot(t, s, "three", "exited")
	})

	t.Run("pause and unpause", func(t *testing.T) {
		b.run(t, "napper", b.img, "sleep", "1000")
		p.Podman(t, "pause", "napper")
		e.WaitFor(t, "napper paused", func(s *scrape.Scrape) bool { return s.InState("napper", "paused") }, scrape.Named("napper"))
		p.Podman(t, "unpause", "napper")
		e.WaitFor(t, "napper running again", func(s *scrape.Scrape) bool { return s.InState("napper", "running") }, scrape.Named("napper"))
	})

	t.Run("kill counts one death", func(t *testing.T) {
		b.run(t, "victim", b.img, "sleep", "1000")
		e.WaitFor(t, "victim running", func(s *scrape.Scrape) bool { return s.InState("victim", "running") }, scrape.Named("victim"))
		p.Podman(t, "kill", "victim")
		e.WaitFor(t, "victim exited with exit code 137", func(s *scrape.Scrape) bool {
			return s.InState("victim", "exited") && s.Is(137, "docker_container_exit_code", "name", "victim")
		}, scrape.Named("victim"))
		b.waitEventsApplied(t)
		s := e.Scrape(t)
		s.Must(s.Is(1, "docker_container_deaths_total", "name", "victim"), "want exactly one death for victim (kill, die, cleanup)")
	})

	// Under conmon 2.1.6 (Debian 12) Podman reports an OOM kill as a plain
	// exit 137: no oom event, OOMKilled false. The exporter shows what
	// Podman says, and counts the death.
	t.Run("OOM kill as Podman reports it", func(t *testing.T) {
		id := b.run(t, "hog", "--memory", "16m", b.img, "sh", "-c", `x=$(head -c 100000000 /dev/zero | tr "\0" a)`)
		if code := p.Podman(t, "wait", id); code != "137" {
			t.Fatalf("podman wait = %s, want 137 (killed)", code)
		}
		oom := p.Podman(t, "inspect", "-f", "{{.State.OOMKilled}}", id)
		want := 0.0
		if oom == "true" {
			want = 1
		}
		s := e.WaitFor(t, "hog exited 137 with one death", func(s *scrape.Scrape) bool {
			return s.InState("hog", "exited") && s.Is(137, "docker_container_exit_code", "name", "hog") &&
				s.Is(1, "docker_container_deaths_total", "name", "hog")
		}, scrape.Named("hog"))
		s.Must(s.Is(want, "docker_container_oom_killed", "name", "hog"), "want docker_container_oom_killed %v, as podman inspect says OOMKilled=%s", want, oom)
		t.Logf("podman inspect: OOMKilled=%s; oom events counted: %v", oom, s.Find("docker_container_oom_events_total", "name", "hog"))
	})

	t.Run("rename", func(t *testing.T) {
		b.run(t, "before", b.img, "sleep", "1000")
		e.WaitFor(t, "before running", func(s *scrape.Scrape) bool { return s.InState("before", "running") }, scrape.Named("before"))
		p.Podman(t, "rename", "before", "after")
		e.WaitFor(t, "after running and before gone", func(s *scrape.Scrape) bool {
			return s.InState("after", "running") && !s.Has("docker_container_info", "name", "before")
		}, scrape.Named("before"), scrape.Named("after"))
	})

	t.Run("rm is gone at once, with its destroy counted", func(t *testing.T) {
		b.run(t, "doomed", b.img, "sleep", "1000")
		e.WaitFor(t, "doomed running", func(s *scrape.Scrape) bool { return s.InState("doomed", "running") }, scrape.Named("doomed"))
		p.Podman(t, "rm", "-f", "-t", "0", "doomed")
		s := e.WaitFor(t, "doomed gone with one destroy", func(s *scrape.Scrape) bool {
			return !s.Has("docker_container_info", "name", "doomed") && s.Is(1, "docker_container_destroys_total", "name", "doomed")
		}, scrape.Named("doomed"))
		s.Must(s.Is(1, "docker_container_deaths_total", "name", "doomed"), "want one death for doomed")
		// Long before any resync could have found it (1m): the event did.
		s.Must(s.Sum("docker_exporter_resyncs_total") == 0, "a resync ran; the remove event should have been enough")
	})

	t.Run("a container in a pod shows its pod", func(t *testing.T) {
		p.Podman(t, "pod", "create", "--infra=false", "--name", "shop")
		id := b.run(t, "api", "--pod", "shop", b.img, "sleep", "1000")
		s := e.WaitFor(t, "api running", func(s *scrape.Scrape) bool { return s.InState("api", "running") }, scrape.Named("api"))
		s.Must(s.Is(1, "docker_container_info", "name", "api", "id", id, "pod", "shop"), `want docker_container_info{name="api",pod="shop"} 1`)
	})

	t.Run("Podman's extra attributes are never labels", func(t *testing.T) {
		s := b.checkTruth(t)
		for _, se := range s.Find("docker_container_labels") {
			for k := range se.Labels {
				if l := strings.ToLower(k); strings.Contains(l, "containerexitcode") || strings.Contains(l, "podid") {
					t.Fatalf("docker_container_labels has %s, an attribute of Podman's events, not a label: %v", k, se.Labels)
				}
			}
		}
	})

	t.Run("Podman's own actions are counted and ignored", func(t *testing.T) {
		s := e.Scrape(t)
		for _, action := range []string{"init", "cleanup", "destroy"} {
			s.Must(s.AtLeast(1, "docker_events_total", "type", "container", "action", action),
				"want docker_events_total{type=container,action=%s} >= 1", action)
		}
		s.Must(!s.Has("docker_events_total", "type", "container", "action", "remove"), "remove is counted as destroy")
	})
}

// Podman runs health checks only when asked here (no systemd): each
// `podman healthcheck run` toggles the status, and the exporter must show
// what podman inspect shows, every time.
func TestPodmanHealthIsFollowedEveryTime(t *testing.T) {
	t.Parallel()
	b := startPodmanBed(t)
	p, e := b.p, b.e
	b.run(t, "doc", "--health-cmd", "test -e /tmp/ok", "--health-interval", "0", "--health-retries", "1", b.img, "sleep", "1000")
	e.WaitFor(t, "doc running", func(s *scrape.Scrape) bool { return s.InState("doc", "running") }, scrape.Named("doc"))

	const toggles = 20
	before := b.proxy.Snapshot()
	for i := range toggles {
		if i%2 == 0 {
			p.Podman(t, "exec", "doc", "touch", "/tmp/ok")
		} else {
			p.Podman(t, "exec", "doc", "rm", "/tmp/ok")
		}
		out, err := p.PodmanErr("healthcheck", "run", "doc")
		if healthy := err == nil; healthy != (i%2 == 0) {
			t.Fatalf("toggle %d: podman healthcheck run: %v %s", i, err, out)
		}
		want := p.Podman(t, "inspect", "-f", "{{.State.Health.Status}}", "doc")
		streak := p.Podman(t, "inspect", "-f", "{{.State.Health.FailingStreak}}", "doc")
		n, err := strconv.Atoi(streak)
		if err != nil {
			t.Fatalf("failing streak %q: %v", streak, err)
		}
		e.WaitFor(t, fmt.Sprintf("toggle %d: doc %s with failing streak %s", i, want, streak), func(s *scrape.Scrape) bool {
			return s.Is(1, "docker_container_health_status", "name", "doc", "status", want) &&
				s.Is(float64(n), "docker_container_health_failing_streak", "name", "doc")
		}, scrape.Named("doc"))
	}
	b.waitEventsApplied(t)
	s := e.Scrape(t)
	s.Must(s.Is(toggles, "docker_events_total", "type", "container", "action", "health_status"),
		"want %d health_status events, one per check", toggles)
	t.Logf("requests for %d checks (and the execs that toggle them): %v", toggles, countproxy.Diff(before, b.proxy.Snapshot()))
}

func TestPodmanScrapesNeverCallTheDaemon(t *testing.T) {
	t.Parallel()
	// No periodic resync: then an idle exporter asks nothing at all.
	b := startPodmanBed(t, "--store.resync-interval=0")
	p := b.p
	for i := range 3 {
		b.run(t, fmt.Sprintf("running%d", i), b.img, "sleep", "1000")
	}
	p.Podman(t, "pod", "create", "--infra=false", "--name", "pod0")
	b.run(t, "inpod", "--pod", "pod0", b.img, "sleep", "1000")
	b.run(t, "exited", b.img, "true")
	p.Podman(t, "wait", "exited")
	b.checkTruth(t)

	before := b.proxy.Snapshot()
	for range 100 {
		if _, err := b.e.Get(); err != nil {
			t.Fatalf("scrape: %v", err)
		}
	}
	if made := countproxy.Diff(before, b.proxy.Snapshot()); len(made) > 0 {
		t.Fatalf("100 scrapes made %v; want no request to the daemon", made)
	}
}

// While the service is down, containers die and are removed with the
// podman CLI, which works without it. After the restart Podman replays
// those events from its log and the exporter syncs: each counts once.
func TestPodmanServiceRestartCountsOnce(t *testing.T) {
	t.Parallel()
	b := startPodmanBed(t)
	p, e := b.p, b.e
	for _, name := range []string{"killed", "removed", "stays"} {
		b.run(t, name, b.img, "sleep", "1000")
	}
	b.checkTruth(t)

	p.StopService(t)
	e.WaitFor(t, "docker_up 0", func(s *scrape.Scrape) bool { return s.Is(0, "docker_up") }, "docker_up")
	p.Podman(t, "kill", "killed")
	p.Podman(t, "wait", "killed")
	p.Podman(t, "rm", "-f", "-t", "0", "removed")
	p.StartService(t)

	e.WaitFor(t, "docker_up 1 after a reconnect", func(s *scrape.Scrape) bool {
		return s.Up() && s.AtLeast(1, "docker_exporter_event_stream_reconnects_total")
	}, "docker_up", "docker_exporter_event_stream")
	s := b.checkTruth(t)
	want := map[string][2]float64{"killed": {1, 0}, "removed": {1, 1}, "stays": {0, 0}}
	for name, w := range want {
		s.Must(s.Is(w[0], "docker_container_deaths_total", "name", name) && s.Is(w[1], "docker_container_destroys_total", "name", name),
			"%s: want deaths %v and destroys %v, exactly once each", name, w[0], w[1])
	}
	s.Must(!s.Has("docker_container_info", "name", "removed"), "removed is gone")
}
