package main

// End-to-end tests: they build the exporter, run the binary against a private
// dockerd (internal/testdaemon) the way a user would, drive real containers
// with the docker CLI and read what /metrics says.

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/docker-exporter/docker_exporter/internal/countproxy"
	"github.com/docker-exporter/docker_exporter/internal/dockercli"
	"github.com/docker-exporter/docker_exporter/internal/exporterproc"
	"github.com/docker-exporter/docker_exporter/internal/freeport"
	"github.com/docker-exporter/docker_exporter/internal/promtest"
	"github.com/docker-exporter/docker_exporter/internal/scrape"
	"github.com/docker-exporter/docker_exporter/internal/testbed"
	"github.com/docker-exporter/docker_exporter/internal/testdaemon"
	"github.com/docker-exporter/docker_exporter/internal/wait"
)

// timeSlack is how far a timestamp metric may be from docker inspect's: the
// store may hold the event's time until its inspect lands.
const timeSlack = 2 * time.Second

func TestMain(m *testing.M) { os.Exit(exporterproc.RunTests(m)) }

// imageConfigDigest is the digest of image's config, from the manifest.json
// of `docker save`: "<hex>.json" (graph driver store) or "blobs/sha256/<hex>"
// (containerd store).
func imageConfigDigest(t *testing.T, d *testdaemon.Daemon, image string) string {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(d.API(t, "/images/"+image+"/get")))
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("docker save %s: no manifest.json: %v", image, err)
		}
		if h.Name != "manifest.json" {
			continue
		}
		var manifest []struct{ Config string }
		if err := json.NewDecoder(tr).Decode(&manifest); err != nil || len(manifest) != 1 {
			t.Fatalf("docker save %s: manifest.json: %v %+v", image, err, manifest)
		}
		return "sha256:" + strings.TrimSuffix(strings.TrimPrefix(manifest[0].Config, "blobs/sha256/"), ".json")
	}
}

// checkOneHot fails unless name's state series are 1 for state and 0 for
// the six others.
func checkOneHot(t testing.TB, s *scrape.Scrape, name, state string) {
	t.Helper()
	for _, st := range scrape.ContainerStates {
		want := 0.0
		if st == state {
			want = 1
		}
		v, ok := s.Value("docker_container_state", "name", name, "state", st)
		s.Must(ok && v == want, "docker_container_state{name=%q,state=%q} = %v (present %v), want %v", name, st, v, ok, want)
	}
}

// checkTime fails unless metric for name is within timeSlack of the daemon's
// timestamp text (as docker inspect prints it).
func checkTime(t testing.TB, s *scrape.Scrape, metric, name, daemonTime string) {
	t.Helper()
	want, err := time.Parse(time.RFC3339Nano, daemonTime)
	if err != nil {
		t.Fatalf("docker inspect time %q: %v", daemonTime, err)
	}
	v, ok := s.Value(metric, "name", name)
	s.Must(ok, "%s{name=%q} absent, want %v", metric, name, want)
	got := time.Unix(0, int64(v*1e9))
	if d := got.Sub(want); d < -timeSlack || d > timeSlack {
		t.Fatalf("%s{name=%q} = %v, docker inspect says %v: %v apart", metric, name, got.UTC(), want.UTC(), d)
	}
}

func TestContainerLifecycleIsReflected(t *testing.T) {
	t.Parallel()
	testdaemon.ForEachEngine(t, containerLifecycleIsReflected)
}

func containerLifecycleIsReflected(t *testing.T, eng testdaemon.Engine) {
	t.Parallel()
	b := testbed.Start(t, eng, testbed.WithProxy)
	d, img, p := b.Daemon, b.Image, b.Proxy
	e := b.Exporter(t, "--container.labels=com.example.team")

	// Health checks and the restart policy take a while to play out: start
	// them now, check them further down.
	dockercli.Run(t, d, "healthy", "--health-cmd", "true", "--health-interval", "1s", img, "sleep", "1000")
	dockercli.Run(t, d, "sick", "--health-cmd", "false", "--health-interval", "1s", "--health-retries", "1", img, "sleep", "1000")
	dockercli.Run(t, d, "loop", "--restart=always", img, "sh", "-c", "exit 1")

	t.Run("running container has identity, allowed labels, state and times", func(t *testing.T) {
		id := dockercli.Run(t, d, "web",
			"--label", "com.docker.compose.project=shop", "--label", "com.docker.compose.service=web",
			"--label", "com.example.team=core", "--label", "com.example.secret=x",
			img, "sleep", "1000")
		imageID := d.Docker(t, "inspect", "-f", "{{.Image}}", id)
		// Running can show (from the create event's inspect) a moment
		// before the start event is counted; wait for both.
		s := e.WaitFor(t, "web running with one start", func(s *scrape.Scrape) bool {
			return s.InState("web", "running") && s.Is(1, "docker_container_starts_total", "name", "web")
		}, scrape.Named("web"))

		s.Must(s.Is(1, "docker_container_info", "name", "web", "id", id, "image", img, "image_id", imageID,
			"compose_project", "shop", "compose_service", "web"),
			"want docker_container_info{name=web,id=%s,image=%s,image_id=%s,compose_project=shop,compose_service=web} 1", id, img, imageID)
		s.Must(len(s.Find("docker_container_info", "name", "web")) == 1, "want exactly one info series for web")
		s.Must(s.Is(1, "docker_container_labels", "name", "web", "label_com_example_team", "core"),
			`want docker_container_labels{name="web",label_com_example_team="core"} 1`)
		for _, se := range s.Find("docker_container_labels") {
			if _, ok := se.Labels["label_com_example_secret"]; ok {
				t.Fatalf("docker_container_labels has label_com_example_secret, which --container.labels did not allow: %v", se.Labels)
			}
		}
		checkOneHot(t, s, "web", "running")
		checkTime(t, s, "docker_container_created_timestamp_seconds", "web", d.Docker(t, "inspect", "-f", "{{.Created}}", id))
		checkTime(t, s, "docker_container_started_timestamp_seconds", "web", d.Docker(t, "inspect", "-f", "{{.State.StartedAt}}", id))
		s.Must(!s.Has("docker_container_finished_timestamp_seconds", "name", "web"), "web never finished: want no finished timestamp")
		s.Must(!s.Has("docker_container_exit_code", "name", "web"), "web never exited: want no exit code")
	})

	t.Run("image_id is the config digest, or on the containerd image store the manifest digest", func(t *testing.T) {
		s := e.WaitFor(t, "web present", func(s *scrape.Scrape) bool { return s.Has("docker_container_info", "name", "web") }, scrape.Named("web"))
		got := s.Find("docker_container_info", "name", "web")[0].Labels["image_id"]
		if id := d.Docker(t, "image", "inspect", "-f", "{{.Id}}", img); got != id {
			t.Fatalf("image_id %q, docker image inspect says the image's id is %q", got, id)
		}
		config := imageConfigDigest(t, d, img)
		if !strings.Contains(d.Docker(t, "info", "-f", "{{json .DriverStatus}}"), "io.containerd.snapshotter") {
			if got != config {
				t.Fatalf("image_id %q, want the config digest %q (graph driver image store)", got, config)
			}
			return
		}
		var inspect struct {
			Descriptor struct{ MediaType, Digest string }
		}
		if err := json.Unmarshal(d.API(t, "/images/"+img+"/json"), &inspect); err != nil {
			t.Fatal(err)
		}
		if got == config || got != inspect.Descriptor.Digest || !strings.Contains(inspect.Descriptor.MediaType, "manifest") && !strings.Contains(inspect.Descriptor.MediaType, "index") {
			t.Fatalf("image_id %q, config digest %q, image descriptor %+v: want the descriptor's (manifest or index) digest", got, config, inspect.Descriptor)
		}
		t.Logf("containerd image store: image_id is the %s digest, not the config digest %s", inspect.Descriptor.MediaType, config)
	})

	t.Run("container without health check has no health series", func(t *testing.T) {
		s := e.WaitFor(t, "web present", func(s *scrape.Scrape) bool { return s.Has("docker_container_info", "name", "web") }, scrape.Named("web"))
		s.Must(!s.Has("docker_container_health_status", "name", "web"), "web has no health check: want no docker_container_health_status")
		s.Must(!s.Has("docker_container_health_failing_streak", "name", "web"), "web has no health check: want no failing streak")
	})

	t.Run("created container has no start time", func(t *testing.T) {
		id := d.Docker(t, "create", "--network", "none", "--name", "fresh", img, "sleep", "1000")
		s := e.WaitFor(t, "fresh created", func(s *scrape.Scrape) bool { return s.InState("fresh", "created") }, scrape.Named("fresh"))
		checkOneHot(t, s, "fresh", "created")
		checkTime(t, s, "docker_container_created_timestamp_seconds", "fresh", d.Docker(t, "inspect", "-f", "{{.Created}}", id))
		s.Must(!s.Has("docker_container_started_timestamp_seconds", "name", "fresh"), "fresh never started: want no started timestamp")
		s.Must(!s.Has("docker_container_finished_timestamp_seconds", "name", "fresh"), "want no finished timestamp")
		s.Must(!s.Has("docker_container_exit_code", "name", "fresh"), "want no exit code")
		s.Must(s.Is(0, "docker_container_starts_total", "name", "fresh"), "want starts_total 0")
	})

	t.Run("exit code 3 is reported with one death", func(t *testing.T) {
		id := dockercli.Run(t, d, "three", img, "sh", "-c", "exit 3")
		if code := d.Docker(t, "wait", id); code != "3" {
			t.Fatalf("docker wait = %s, want 3", code)
		}
		// The start event's inspect may already see it exited; the death
		// counts with the die event.
		s := e.WaitFor(t, "three exited with code 3 and one death", func(s *scrape.Scrape) bool {
			return s.InState("three", "exited") && s.Is(3, "docker_container_exit_code", "name", "three") &&
				s.Is(1, "docker_container_deaths_total", "name", "three")
		}, scrape.Named("three"))
		checkOneHot(t, s, "three", "exited")
		checkTime(t, s, "docker_container_finished_timestamp_seconds", "three", d.Docker(t, "inspect", "-f", "{{.State.FinishedAt}}", id))
		s.Must(s.Is(1, "docker_container_starts_total", "name", "three"), "want starts_total 1")
	})

	t.Run("pause and unpause", func(t *testing.T) {
		dockercli.Run(t, d, "pauser", img, "sleep", "1000")
		e.WaitFor(t, "pauser running", func(s *scrape.Scrape) bool { return s.InState("pauser", "running") }, scrape.Named("pauser"))
		d.Docker(t, "pause", "pauser")
		s := e.WaitFor(t, "pauser paused", func(s *scrape.Scrape) bool { return s.InState("pauser", "paused") }, scrape.Named("pauser"))
		checkOneHot(t, s, "pauser", "paused")
		d.Docker(t, "unpause", "pauser")
		s = e.WaitFor(t, "pauser running again", func(s *scrape.Scrape) bool { return s.InState("pauser", "running") }, scrape.Named("pauser"))
		checkOneHot(t, s, "pauser", "running")
	})

	t.Run("healthy health check", func(t *testing.T) {
		s := e.WaitFor(t, "healthy is healthy", func(s *scrape.Scrape) bool {
			return s.Is(1, "docker_container_health_status", "name", "healthy", "status", "healthy")
		}, scrape.Named("healthy"))
		s.Must(s.Is(0, "docker_container_health_status", "name", "healthy", "status", "starting"), "want starting 0")
		s.Must(s.Is(0, "docker_container_health_status", "name", "healthy", "status", "unhealthy"), "want unhealthy 0")
		s.Must(s.Is(0, "docker_container_health_failing_streak", "name", "healthy"), "want failing streak 0")
	})

	t.Run("unhealthy health check", func(t *testing.T) {
		s := e.WaitFor(t, "sick is unhealthy", func(s *scrape.Scrape) bool {
			return s.Is(1, "docker_container_health_status", "name", "sick", "status", "unhealthy")
		}, scrape.Named("sick"))
		s.Must(s.Is(0, "docker_container_health_status", "name", "sick", "status", "healthy"), "want healthy 0")
		s.Must(s.Is(0, "docker_container_health_status", "name", "sick", "status", "starting"), "want starting 0")
		s.Must(s.AtLeast(1, "docker_container_health_failing_streak", "name", "sick"), "want failing streak >= 1")
	})

	t.Run("restart loop counts restarts, starts and deaths", func(t *testing.T) {
		e.WaitFor(t, "loop restarted twice", func(s *scrape.Scrape) bool {
			return s.AtLeast(2, "docker_container_restarts_total", "name", "loop") &&
				s.AtLeast(3, "docker_container_starts_total", "name", "loop") &&
				s.AtLeast(3, "docker_container_deaths_total", "name", "loop")
		}, scrape.Named("loop"))
		// Quiet from here on.
		d.Docker(t, "rm", "-f", "loop")
	})

	t.Run("OOM kill", func(t *testing.T) {
		// testdaemon's recipe: arm the OOM watch first, then let dd go.
		id := dockercli.Run(t, d, "oom", "-m", "8m", "--memory-swap", "8m", img,
			"sh", "-c", "until [ -e /tmp/go ]; do usleep 10000; done; exec dd if=/dev/zero of=/dev/null bs=64M count=1")
		d.Docker(t, "exec", id, "touch", "/tmp/go")
		if code := d.Docker(t, "wait", id); code != "137" {
			t.Fatalf("docker wait = %s, want 137", code)
		}
		if killed := d.Docker(t, "inspect", "-f", "{{.State.OOMKilled}}", id); killed != "true" {
			t.Fatalf("the daemon says OOMKilled = %s: the recipe did not work here", killed)
		}
		e.WaitFor(t, "oom OOM-killed", func(s *scrape.Scrape) bool {
			return s.Is(1, "docker_container_oom_killed", "name", "oom") &&
				s.AtLeast(1, "docker_container_oom_events_total", "name", "oom") &&
				s.Is(137, "docker_container_exit_code", "name", "oom") &&
				s.InState("oom", "exited")
		}, scrape.Named("oom"))
	})

	t.Run("OOM kill of a child process: docker_container_oom_killed says what the daemon says", func(t *testing.T) {
		// Since Docker 24 the daemon sets OOMKilled when any process of the
		// container is OOM-killed, and clears it on the next start; 20.10
		// may say otherwise. The exporter must agree with its daemon.
		id := dockercli.Run(t, d, "oomchild", "-m", "8m", "--memory-swap", "8m", img, "sh", "-c",
			"until [ -e /tmp/go ]; do usleep 10000; done; if [ ! -e /tmp/done ]; then touch /tmp/done; dd if=/dev/zero of=/dev/null bs=64M count=1; fi; exec sleep 1000")
		d.Docker(t, "exec", id, "touch", "/tmp/go")
		e.WaitFor(t, "oomchild's oom event", func(s *scrape.Scrape) bool {
			return s.Is(1, "docker_container_oom_events_total", "name", "oomchild")
		}, scrape.Named("oomchild"))
		agree := func(when string) {
			t.Helper()
			testbed.WaitEventsApplied(t, d, e)
			daemon := d.Docker(t, "inspect", "-f", "{{.State.Status}} {{.State.OOMKilled}}", id)
			if daemon != "running true" && daemon != "running false" {
				t.Fatalf("%s: the daemon says %q, want the container running", when, daemon)
			}
			want := 0.0
			if daemon == "running true" {
				want = 1
			}
			s := e.Scrape(t)
			s.Must(s.InState("oomchild", "running") && s.Is(want, "docker_container_oom_killed", "name", "oomchild"),
				"%s: the daemon says State.Status, State.OOMKilled = %s: want running and docker_container_oom_killed %v", when, daemon, want)
			t.Logf("%s: the daemon says OOMKilled %s", when, strings.Fields(daemon)[1])
		}
		agree("after the child's OOM kill")
		d.Docker(t, "restart", "-t", "0", "oomchild")
		e.WaitFor(t, "oomchild started again", func(s *scrape.Scrape) bool {
			return s.Is(2, "docker_container_starts_total", "name", "oomchild")
		}, scrape.Named("oomchild"))
		agree("after a restart")
	})

	t.Run("rename moves the series", func(t *testing.T) {
		dockercli.Run(t, d, "alpha", img, "sleep", "1000")
		e.WaitFor(t, "alpha running", func(s *scrape.Scrape) bool { return s.InState("alpha", "running") }, scrape.Named("alpha"))
		d.Docker(t, "rename", "alpha", "beta")
		s := e.WaitFor(t, "alpha renamed to beta", func(s *scrape.Scrape) bool {
			return s.Has("docker_container_info", "name", "beta") && !s.Has("docker_container_info", "name", "alpha")
		}, scrape.Named("alpha"), scrape.Named("beta"))
		checkOneHot(t, s, "beta", "running")
		s.Must(!s.Has("docker_container_state", "name", "alpha"), "want no state series for the old name")
	})

	var victimDeaths float64
	t.Run("docker kill shows exited with exactly one more death", func(t *testing.T) {
		dockercli.Run(t, d, "victim", img, "sleep", "1000")
		before := e.WaitFor(t, "victim running with one start", func(s *scrape.Scrape) bool {
			return s.InState("victim", "running") && s.Is(1, "docker_container_starts_total", "name", "victim")
		}, scrape.Named("victim"))
		deaths, ok := before.Value("docker_container_deaths_total", "name", "victim")
		before.Must(ok, "want deaths_total for victim before the kill")

		d.Docker(t, "kill", "victim")
		killed := time.Now()
		// The death is committed with the exited state, so the first
		// scrape showing one shows the other.
		s := e.WaitFor(t, "victim exited", func(s *scrape.Scrape) bool { return s.InState("victim", "exited") }, scrape.Named("victim"))
		t.Logf("event-to-metric delay: %v from docker kill returning to the first scrape showing it (scraping every %v, -race build)",
			time.Since(killed).Round(time.Millisecond), wait.Interval)
		victimDeaths = deaths + 1
		s.Must(s.Is(victimDeaths, "docker_container_deaths_total", "name", "victim"), "want deaths_total{name=victim} = %v", victimDeaths)
		checkOneHot(t, s, "victim", "exited")
	})

	t.Run("docker rm -f drops the container and keeps its counters", func(t *testing.T) {
		dockercli.Run(t, d, "doomed", img, "sleep", "1000")
		e.WaitFor(t, "doomed running", func(s *scrape.Scrape) bool { return s.InState("doomed", "running") }, scrape.Named("doomed"))
		d.Docker(t, "rm", "-f", "doomed")
		s := e.WaitFor(t, "doomed gone", func(s *scrape.Scrape) bool { return !s.Has("docker_container_info", "name", "doomed") }, scrape.Named("doomed"))
		// Gone in the same commit as the destroy is counted.
		s.Must(s.Is(1, "docker_container_destroys_total", "name", "doomed"), "want destroys_total{name=doomed} 1 (kept for --store.retention)")
		s.Must(s.Is(1, "docker_container_deaths_total", "name", "doomed"), "want deaths_total{name=doomed} 1: rm -f killed it")
		s.Must(!s.Has("docker_container_state", "name", "doomed"), "want no state series for a removed container")
	})

	t.Run("per-state totals match docker ps and the daemon series are there", func(t *testing.T) {
		ps := dockercli.States(t, d)
		want := make(map[string]float64)
		for _, st := range ps {
			want[st]++
		}
		s := e.WaitFor(t, "docker_containers equal to docker ps -a", func(s *scrape.Scrape) bool {
			for _, st := range scrape.ContainerStates {
				if !s.Is(want[st], "docker_containers", "state", st) {
					return false
				}
			}
			return true
		}, "docker_containers")
		var sum float64
		for _, se := range s.Find("docker_containers") {
			sum += se.Value
		}
		if n := len(s.Find("docker_container_info")); sum != float64(n) || n != len(ps) {
			t.Fatalf("docker_containers sums to %v, %d docker_container_info series, docker ps -a lists %d", sum, n, len(ps))
		}
		if got := s.States(); !maps.Equal(got, ps) {
			t.Fatalf("states in /metrics %v, docker ps -a %v", got, ps)
		}
		if victimDeaths > 0 {
			s.Must(s.Is(victimDeaths, "docker_container_deaths_total", "name", "victim"), "victim's deaths changed after the kill: want %v", victimDeaths)
		}

		version := d.Docker(t, "version", "-f", "{{.Server.Version}}")
		apiVersion := d.Docker(t, "version", "-f", "{{.Server.APIVersion}}")
		s.Must(s.Is(1, "docker_up"), "want docker_up 1")
		s.Must(s.Is(1, "docker_daemon_info", "version", version, "api_version", apiVersion),
			"want docker_daemon_info{version=%q,api_version=%q} 1", version, apiVersion)
		s.Must(s.AtLeast(1, "docker_events_total", "type", "container", "action", "die"), `want docker_events_total{type="container",action="die"} > 0`)
		s.Must(s.AtLeast(1, "docker_exporter_syncs_total"), "want docker_exporter_syncs_total >= 1")
		s.Must(s.Has("docker_exporter_build_info"), "want docker_exporter_build_info")
		t.Logf("daemon requests through the proxy: %d in all", p.Count())
	})
}

// TestScrapesNeverCallTheDaemon proves the collector serves from the cache:
// with the daemon quiet, scrapes make no request to it, and a change reaches
// /metrics by the event stream plus the inspect the event calls for.
func TestScrapesNeverCallTheDaemon(t *testing.T) {
	t.Parallel()
	testdaemon.ForEachEngine(t, scrapesNeverCallTheDaemon)
}

func scrapesNeverCallTheDaemon(t *testing.T, eng testdaemon.Engine) {
	t.Parallel()
	b := testbed.Start(t, eng, testbed.WithProxy)
	d, img, p := b.Daemon, b.Image, b.Proxy
	// A resync lists the containers every second here (every minute by
	// default): that list, and nothing else, is what an idle exporter asks.
	e := b.Exporter(t, "--store.resync-interval=1s")

	// No health checks or restart policies: nothing happens unless we act.
	want := make(map[string]string)
	for i := range 2 {
		name := fmt.Sprintf("exited%d", i)
		d.Docker(t, "wait", dockercli.Run(t, d, name, img, "sh", "-c", fmt.Sprintf("exit %d", i+1)))
		want[name] = "exited"
	}
	ids := make(map[string]string)
	for i := range 6 {
		name := fmt.Sprintf("running%d", i)
		ids[name] = dockercli.Run(t, d, name, img, "sleep", "1000")
		want[name] = "running"
	}
	for i := range 2 {
		name := fmt.Sprintf("paused%d", i)
		dockercli.Run(t, d, name, img, "sleep", "1000")
		d.Docker(t, "pause", name)
		want[name] = "paused"
	}
	e.WaitFor(t, "all 10 containers in their states", func(s *scrape.Scrape) bool {
		return maps.Equal(s.States(), want)
	})
	testbed.WaitEventsApplied(t, d, e)

	resyncs := func(s *scrape.Scrape) int {
		v, _ := s.Value("docker_exporter_resyncs_total", "reason", "interval")
		return int(v)
	}
	// afterResync waits for the next resync and returns the count of
	// resyncs and of the proxy's requests just after it: the next list is a
	// second away.
	afterResync := func() (int, map[string]int) {
		t.Helper()
		n := resyncs(e.Scrape(t))
		s := e.WaitFor(t, "the next resync", func(s *scrape.Scrape) bool { return resyncs(s) > n }, "docker_exporter_resync")
		return resyncs(s), p.Snapshot()
	}
	const lists = "GET /containers/json"
	scrapes := func(what string) {
		t.Helper()
		n0, before := afterResync()
		for range 100 {
			if _, err := e.Get(); err != nil {
				t.Fatalf("scrape: %v", err)
			}
		}
		n1, after := afterResync()
		made := countproxy.Diff(before, after)
		// The next resync's list may be on its way already.
		if made[lists] == n1-n0+1 {
			made[lists] = n1 - n0
		}
		if want := map[string]int{lists: n1 - n0}; !maps.Equal(made, want) {
			t.Fatalf("100 scrapes %s and %d resyncs made %v; want only the resyncs' lists, %v (or one more, in flight)", what, n1-n0, made, want)
		}
	}
	scrapes("of a synced exporter")

	before := e.Scrape(t)
	deaths, ok := before.Value("docker_container_deaths_total", "name", "running0")
	before.Must(ok, "want deaths_total for running0")
	// Just after a resync, so that the die event, not the next resync,
	// tells the exporter.
	n0, requests := afterResync()
	d.Docker(t, "kill", "running0")
	s := e.WaitFor(t, "running0 exited", func(s *scrape.Scrape) bool { return s.InState("running0", "exited") }, scrape.Named("running0"))
	s.Must(s.Is(deaths+1, "docker_container_deaths_total", "name", "running0"), "want deaths_total{name=running0} = %v", deaths+1)
	testbed.WaitEventsApplied(t, d, e)
	n1, after := afterResync()
	// The event stream is one long request made before; the die event may
	// cost one inspect of the dead container, the resyncs a list each, and
	// nothing else may happen.
	inspect := "GET /containers/" + ids["running0"] + "/json"
	for k, n := range countproxy.Diff(requests, after) {
		if !(k == inspect && n <= 1) && !(k == lists && (n == n1-n0 || n == n1-n0+1)) {
			t.Fatalf("after docker kill the exporter made %d x %q; want at most one %q and %d x %q (the resyncs)", n, k, inspect, n1-n0, lists)
		}
	}
	s = e.Scrape(t)
	s.Must(s.Sum("docker_exporter_resync_corrections_total") == 0, "idle resyncs corrected something")
	scrapes("after the kill was applied")
}

func TestPromtoolCheckMetricsIsClean(t *testing.T) {
	t.Parallel()
	testdaemon.ForEachEngine(t, promtoolCheckMetricsIsClean)
}

func promtoolCheckMetricsIsClean(t *testing.T, eng testdaemon.Engine) {
	t.Parallel()
	promtool := promtest.Tool(t, "promtool", "apt-get install prometheus")
	b := testbed.Start(t, eng)
	d, img := b.Daemon, b.Image
	e := b.Exporter(t, "--container.labels=com.example.team,com.docker.compose.project")
	dockercli.Run(t, d, "checked", "--label", "com.example.team=core", "--label", "com.docker.compose.project=shop",
		"--health-cmd", "true", "--health-interval", "1s", img, "sleep", "1000")
	d.Docker(t, "wait", dockercli.Run(t, d, "exited", img, "sh", "-c", "exit 2"))
	dockercli.Run(t, d, "paused", img, "sleep", "1000")
	d.Docker(t, "pause", "paused")
	// Every family this exporter has: health, exit code, finished time,
	// labels, per-state and event counters.
	s := e.WaitFor(t, "all three containers with their details", func(s *scrape.Scrape) bool {
		return s.Is(1, "docker_container_health_status", "name", "checked", "status", "healthy") &&
			s.Is(2, "docker_container_exit_code", "name", "exited") &&
			s.InState("paused", "paused") &&
			s.Has("docker_container_labels", "name", "checked", "label_com_example_team", "core")
	})

	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(s.Raw)
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("promtool check metrics: %v\n%s\n--- scrape ---\n%s", err, out, s.Raw)
	}
}

// TestReconnectAfterDaemonRestart stops the daemon under the exporter,
// changes things while it is down and after it is back but before the
// exporter reaches it again, and checks that the exporter converges on the
// daemon's view with every counter counted once.
//
// What it covers: a death while the daemon is down (ctr-a's process is
// killed from the host; with --live-restore the restarted daemon finds it
// exited, and dockerd 20.10 logs no event for it, so only the resync can
// count it), and changes made after the restart while the exporter is still
// kept away (the proxy refuses it, as if its backoff had not run out):
// rm -f ctr-b and run ctr-e. The resync sees those first, then the `since`
// replay brings their events again, which must not count twice.
// What it cannot cover: a real daemon loses its event buffer on restart, so
// events logged before the outage that the exporter had not yet read cannot
// be replayed here; the store's unit tests have to cover that.
func TestReconnectAfterDaemonRestart(t *testing.T) {
	t.Parallel()
	testdaemon.ForEachEngine(t, reconnectAfterDaemonRestart)
}

func reconnectAfterDaemonRestart(t *testing.T, eng testdaemon.Engine) {
	t.Parallel()
	b := testbed.Start(t, eng, testbed.WithProxy)
	d, img, p := b.Daemon, b.Image, b.Proxy
	e := b.Exporter(t)
	for _, name := range []string{"ctr-a", "ctr-b", "ctr-c"} {
		dockercli.Run(t, d, name, img, "sleep", "1000")
	}
	e.WaitFor(t, "ctr-a, ctr-b, ctr-c running, each started once", func(s *scrape.Scrape) bool {
		for _, name := range []string{"ctr-a", "ctr-b", "ctr-c"} {
			if !s.InState(name, "running") || !s.Is(1, "docker_container_starts_total", "name", name) {
				return false
			}
		}
		return true
	})
	pidA, err := strconv.Atoi(d.Docker(t, "inspect", "-f", "{{.State.Pid}}", "ctr-a"))
	if err != nil || pidA <= 0 {
		t.Fatalf("pid of ctr-a: %v", err)
	}

	d.Stop(t)
	s := e.WaitFor(t, "docker_up 0 after the daemon stopped", func(s *scrape.Scrape) bool { return s.Is(0, "docker_up") }, "docker_up")
	for _, name := range []string{"ctr-a", "ctr-b", "ctr-c"} {
		s.Must(s.Has("docker_container_info", "name", name) && s.InState(name, "running"),
			"while the daemon is down the last state must stay: want %s and running", name)
	}
	p.Refuse(true)

	// The container dies while nobody can tell the exporter.
	if err := syscall.Kill(pidA, syscall.SIGKILL); err != nil {
		t.Fatalf("kill ctr-a's process %d: %v", pidA, err)
	}
	// Wait until its shim has reaped it, so the restarted daemon finds it
	// exited rather than seeing it die later.
	wait.For(t, wait.Timeout, fmt.Sprintf("ctr-a's process %d to be gone after SIGKILL", pidA), func() bool {
		_, err := os.Stat(fmt.Sprintf("/proc/%d", pidA))
		return errors.Is(err, os.ErrNotExist)
	}, nil)

	d.Restart(t)
	d.Docker(t, "rm", "-f", "ctr-b")
	dockercli.Run(t, d, "ctr-e", img, "sleep", "1000")
	ps := dockercli.States(t, d)
	if ps["ctr-a"] != "exited" || ps["ctr-c"] != "running" || ps["ctr-e"] != "running" || len(ps) != 3 {
		t.Fatalf("docker ps -a after the restart: %v, want ctr-a exited, ctr-c and ctr-e running", ps)
	}
	s = e.Scrape(t)
	s.Must(s.Is(0, "docker_up") && s.InState("ctr-b", "running") && !s.Has("docker_container_info", "name", "ctr-e"),
		"kept away from the daemon, the exporter must still serve docker_up 0 and the state from before the outage")

	p.Refuse(false)
	e.WaitFor(t, "the exporter back up and equal to docker ps -a", func(s *scrape.Scrape) bool {
		return s.Up() && maps.Equal(s.States(), ps) && s.AtLeast(1, "docker_container_starts_total", "name", "ctr-e")
	})
	// Let every replayed event land before checking for double counts.
	testbed.WaitEventsApplied(t, d, e)
	s = e.Scrape(t)
	for _, c := range []struct {
		metric, name string
		want         float64
	}{
		{"docker_container_deaths_total", "ctr-a", 1},
		{"docker_container_starts_total", "ctr-a", 1},
		{"docker_container_deaths_total", "ctr-b", 1},
		{"docker_container_destroys_total", "ctr-b", 1},
		{"docker_container_starts_total", "ctr-c", 1},
		{"docker_container_deaths_total", "ctr-c", 0},
		{"docker_container_starts_total", "ctr-e", 1},
		{"docker_container_deaths_total", "ctr-e", 0},
	} {
		v, ok := s.Value(c.metric, "name", c.name)
		s.Must(ok && v == c.want, "%s{name=%q} = %v (present %v), want %v", c.metric, c.name, v, ok, c.want)
	}
	s.Must(s.AtLeast(1, "docker_exporter_event_stream_reconnects_total"), "want docker_exporter_event_stream_reconnects_total >= 1")
	s.Must(maps.Equal(s.States(), dockercli.States(t, d)), "states differ from docker ps -a")
	t.Logf("container events of the restarted daemon:\n%s", dockercli.ContainerEvents(t, d))
}

func TestExporterStartsWithDaemonDown(t *testing.T) {
	t.Parallel()
	testdaemon.ForEachEngine(t, exporterStartsWithDaemonDown)
}

func exporterStartsWithDaemonDown(t *testing.T, eng testdaemon.Engine) {
	t.Parallel()
	b := testbed.Start(t, eng)
	d, img := b.Daemon, b.Image
	dockercli.Run(t, d, "up", img, "sleep", "1000")
	d.Docker(t, "wait", dockercli.Run(t, d, "down", img, "sh", "-c", "exit 4"))
	d.Stop(t)

	e := exporterproc.Start(t, exporterproc.Build(t, true), "--docker.host="+d.Host)
	noContainers := func(s *scrape.Scrape) {
		t.Helper()
		s.Must(s.Is(0, "docker_up"), "want docker_up 0 while the daemon is down")
		for _, m := range []string{"docker_container_info", "docker_container_state", "docker_daemon_info"} {
			s.Must(!s.Has(m), "want no %s before the daemon was ever reached", m)
		}
	}
	noContainers(e.Scrape(t))

	// A few backoff rounds: the first failure warns, the retries only debug.
	logLines := func(substr ...string) int { return len(e.Output.Lines(substr...)) }
	wait.For(t, wait.Timeout, "2 failed reconnects logged", func() bool {
		return logLines("reconnect to the Docker daemon failed") >= 2
	}, e.Output.String)
	if n := logLines("level=WARN", "Docker daemon"); n != 1 {
		t.Fatalf("%d WARN lines about the daemon while it is down, want 1 (not one per retry):\n%s", n, e.Output)
	}
	noContainers(e.Scrape(t))

	d.Restart(t)
	s := e.WaitFor(t, "docker_up 1 and both containers", func(s *scrape.Scrape) bool {
		return s.Up() && s.InState("up", "running") && s.InState("down", "exited")
	})
	s.Must(s.Is(4, "docker_container_exit_code", "name", "down"), "want exit code 4 for down")
	s.Must(s.Has("docker_daemon_info"), "want docker_daemon_info once reached")
	if n := logLines("level=WARN"); n != 1 {
		t.Fatalf("%d WARN lines, want only the one about the daemon being unreachable:\n%s", n, e.Output)
	}
}

func TestBadFlagsExitWithOneLine(t *testing.T) {
	t.Parallel()
	bin := exporterproc.Build(t, true)
	dir := t.TempDir()
	badYAML := filepath.Join(dir, "web.yml")
	if err := os.WriteFile(badYAML, []byte("tls_server_config: [\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, flag string
		args       []string
	}{
		{"unknown flag", "--bogus", []string{"--bogus"}},
		{"bad duration", "--docker.timeout", []string{"--docker.timeout=abc"}},
		{"non-positive retention", "--store.retention", []string{"--store.retention=0s"}},
		{"negative max requests", "--web.max-requests", []string{"--web.max-requests=-1"}},
		{"relative telemetry path", "--web.telemetry-path", []string{"--web.telemetry-path=metrics"}},
		{"invalid web config YAML", "--web.config.file", []string{"--web.config.file=" + badYAML}},
		{"missing web config", "--web.config.file", []string{"--web.config.file=/nonexistent/web.yml"}},
		{"unknown docker host scheme", "--docker.host", []string{"--docker.host=bogus://x"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), exporterproc.ExitTimeout)
			defer cancel()
			// A free port, so that a flag wrongly accepted fails on the
			// deadline rather than on a busy default port.
			cmd := exec.CommandContext(ctx, bin, append([]string{"--web.listen-address=" + freeport.Addr(t)}, c.args...)...)
			cmd.Env = exporterproc.Env()
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			if ctx.Err() != nil {
				t.Fatalf("%v: still running after %v\nstderr:\n%s", c.args, exporterproc.ExitTimeout, &stderr)
			}
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() <= 0 {
				t.Fatalf("%v: %v, want a non-zero exit code\nstderr:\n%s", c.args, err, &stderr)
			}
			lines := strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n")
			if len(lines) != 1 || !strings.Contains(lines[0], c.flag) {
				t.Fatalf("%v: stderr is %d lines:\n%s\nwant one line naming %s", c.args, len(lines), &stderr, c.flag)
			}
			if stdout.Len() > 0 {
				t.Fatalf("%v: stdout %q, want nothing", c.args, &stdout)
			}
			t.Logf("exit %d: %s", exit.ExitCode(), lines[0])
		})
	}
}

// runConcurrently runs fn for each of n items on a few goroutines and
// fails on the first error, from the calling goroutine.
func runConcurrently(tb testing.TB, n int, fn func(i int) error) {
	tb.Helper()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	next := make(chan int)
	for range 4 {
		wg.Go(func() {
			for i := range next {
				if err := fn(i); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkScrape50Containers measures a full GET /metrics of a store
// holding 50 containers, against a binary built without -race: default
// flags, so with the exporter's own go_* and process_* metrics, and gzip, as
// Go's client (like Prometheus) asks for it; bytes/scrape is the body
// uncompressed.
func BenchmarkScrape50Containers(b *testing.B) {
	d := testdaemon.Start(b)
	img := d.BusyboxImage(b)
	e := exporterproc.Start(b, exporterproc.Build(b, false), "--docker.host="+d.Host, "--container.labels=com.example.team")
	e.WaitFor(b, "docker_up 1", (*scrape.Scrape).Up, "docker_up")

	docker := func(args ...string) error {
		if out, err := d.DockerErr(args...); err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	}
	runArgs := func(name string, extra ...string) []string {
		return append([]string{"run", "-d", "--network", "none", "--name", name, "--label", "com.example.team=t" + name[len(name)-1:]}, extra...)
	}
	runConcurrently(b, 50, func(i int) error {
		switch {
		case i < 30: // running, three with a health check
			name := fmt.Sprintf("running%02d", i)
			var health []string
			if i < 3 {
				health = []string{"--health-cmd", "true", "--health-interval", "5s"}
			}
			return docker(append(runArgs(name, health...), img, "sleep", "1000")...)
		case i < 40: // exited with codes 0..9
			name := fmt.Sprintf("exited%02d", i)
			if err := docker(append(runArgs(name), img, "sh", "-c", fmt.Sprintf("exit %d", i-30))...); err != nil {
				return err
			}
			return docker("wait", name)
		case i < 45:
			name := fmt.Sprintf("paused%02d", i)
			if err := docker(append(runArgs(name), img, "sleep", "1000")...); err != nil {
				return err
			}
			return docker("pause", name)
		default:
			return docker("create", "--network", "none", "--name", fmt.Sprintf("created%02d", i), img, "sleep", "1000")
		}
	})
	want := map[string]float64{"running": 30, "exited": 10, "paused": 5, "created": 5}
	e.WaitFor(b, "30 running, 10 exited, 5 paused, 5 created", func(s *scrape.Scrape) bool {
		for _, st := range scrape.ContainerStates {
			if !s.Is(want[st], "docker_containers", "state", st) {
				return false
			}
		}
		return true
	}, "docker_containers")

	var total, n int64
	for b.Loop() {
		resp, err := e.Client.Get(e.URL)
		if err != nil {
			b.Fatal(err)
		}
		m, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("GET /metrics: %s, %v", resp.Status, err)
		}
		total += m
		n++
	}
	b.ReportMetric(float64(total)/float64(n), "bytes/scrape")
}

// BenchmarkEventToMetric measures how long a state change takes from the
// docker CLI's return (the daemon has logged the event) to the first scrape
// that shows it: pause and unpause alternately, polling /metrics every 1ms.
// The time of the CLI call itself is not counted; a scrape's own duration
// and the poll period are, so this is an upper bound on the delay. Each
// iteration also spends ~0.1s untimed in the CLI: run it with -benchtime Nx,
// or b.Loop's ramp-up to 1s of timed work takes minutes.
func BenchmarkEventToMetric(b *testing.B) {
	d := testdaemon.Start(b)
	img := d.BusyboxImage(b)
	e := exporterproc.Start(b, exporterproc.Build(b, false), "--docker.host="+d.Host)
	dockercli.Run(b, d, "flip", img, "sleep", "1000")
	e.WaitFor(b, "flip running", func(s *scrape.Scrape) bool { return s.Up() && s.InState("flip", "running") }, scrape.Named("flip"))

	paused := false
	for b.Loop() {
		b.StopTimer()
		action, state := "pause", "paused"
		if paused {
			action, state = "unpause", "running"
		}
		d.Docker(b, action, "flip")
		paused = !paused
		want := []byte(`docker_container_state{name="flip",state="` + state + `"} 1`)
		b.StartTimer()
		deadline := time.Now().Add(wait.Timeout)
		for {
			body, err := e.Get()
			if err != nil {
				b.Fatal(err)
			}
			if bytes.Contains(body, want) {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("%s not shown within %v", want, wait.Timeout)
			}
			time.Sleep(time.Millisecond)
		}
	}
}
