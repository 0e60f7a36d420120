package main

// The half of the cgroup v2 test that runs inside the guest (see
// cgroupv2_test.go): Debian's own kernel with the pure unified hierarchy,
// systemd as init and Debian's docker.io with the systemd cgroup driver,
// Docker's defaults there. The exporter runs on the host and, as the README
// deploys it, as a container in a cgroup namespace of its own; each with
// the cgroup source and the stats API. Every figure is held to the kernel's
// own files for the container's cgroup.

import (
	"fmt"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker-exporter/docker_exporter/internal/exporterproc"
	"github.com/docker-exporter/docker_exporter/internal/scrape"
	"github.com/docker-exporter/docker_exporter/internal/testdaemon"
	"github.com/docker-exporter/docker_exporter/internal/wait"
)

// The guest's environment, set by its payload's run script.
const (
	envInsideGuest = "DOCKER_EXPORTER_INSIDE_GUEST" // "1" inside the guest
	envGuestBin    = "DOCKER_EXPORTER_BIN"          // the exporter binary, built on the host
	envGuestOut    = "DOCKER_EXPORTER_GUEST_OUT"    // where files for the host go
)

const (
	// guestWait bounds a wait in the guest, where software emulation makes
	// each docker command take seconds.
	guestWait = 3 * time.Minute
	// guestInterval is the exporters' --stats.interval there.
	guestInterval = 2 * time.Second
	systemSocket  = "unix:///var/run/docker.sock"
)

// guestExporter is one exporter under test in the guest.
type guestExporter struct {
	name   string // for messages
	source string // the source it must use: cgroup or api
	*scrape.Target
}

// waitFor scrapes, every half second, until cond holds.
func (g *guestExporter) waitFor(t *testing.T, what string, cond func(*scrape.Scrape) bool, show ...string) *scrape.Scrape {
	t.Helper()
	var s *scrape.Scrape
	var err error
	wait.Every(t, guestWait, 500*time.Millisecond, g.name+": "+what, func() bool {
		var body []byte
		if body, err = g.Get(); err != nil {
			return false
		}
		s = scrape.MustParse(t, body)
		return cond(s)
	}, func() string {
		if err != nil {
			return err.Error()
		}
		return s.Lines(show...) + "\nexporter output (tail):\n" + g.Log()
	})
	return s
}

// sampleAfter waits for a usage sample newer than at.
func (g *guestExporter) sampleAfter(t *testing.T, at float64) (*scrape.Scrape, float64) {
	t.Helper()
	var ts float64
	s := g.waitFor(t, "a newer usage sample", func(s *scrape.Scrape) bool {
		ts, _ = s.Value("docker_exporter_stats_last_sample_timestamp_seconds")
		return ts > at
	}, "docker_exporter_stats")
	return s, ts
}

// kernelCgroup is a container's cgroup directory on the guest, found as a
// reader on the host finds it: its init process's /proc/<pid>/cgroup.
func kernelCgroup(t *testing.T, d *testdaemon.Daemon, name string) string {
	t.Helper()
	pid := d.Docker(t, "inspect", "-f", "{{.State.Pid}}", name)
	data, err := os.ReadFile("/proc/" + pid + "/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	path, ok := strings.CutPrefix(strings.TrimSpace(string(data)), "0::")
	if !ok || strings.Contains(path, "\n") {
		t.Fatalf("/proc/%s/cgroup of %s is not a v2 line: %q", pid, name, data)
	}
	return filepath.Join("/sys/fs/cgroup", path)
}

// kernelValue reads a figure of a cgroup's file: a single value, or the
// value of key in a flat-keyed file, or (io.stat) key summed over devices.
func kernelValue(t *testing.T, dir, file, key string) float64 {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		t.Fatal(err)
	}
	if key == "" {
		v, err := strconv.ParseFloat(strings.TrimSpace(string(data)), 64)
		if err != nil {
			t.Fatalf("%s/%s: %v", dir, file, err)
		}
		return v
	}
	parse := func(v string) float64 {
		n, err := strconv.ParseFloat(v, 64)
		if err != nil {
			t.Fatalf("%s/%s: %s: %v", dir, file, key, err)
		}
		return n
	}
	sum, found := 0.0, false
	for line := range strings.Lines(string(data)) {
		fields := strings.Fields(line)
		if len(fields) == 2 && fields[0] == key { // flat-keyed: "key value"
			return parse(fields[1])
		}
		for _, f := range fields { // nested-keyed: "8:0 rbytes=1 wbytes=2 ..."
			if k, v, ok := strings.Cut(f, "="); ok && k == key {
				sum, found = sum+parse(v), true
			}
		}
	}
	if !found && file != "io.stat" { // an io.stat without a device line is a cgroup that did no I/O
		t.Fatalf("%s/%s has no %s:\n%s", dir, file, key, data)
	}
	return sum
}

// readmeDockerRun is the README's `docker run` line of the exporter, as
// arguments of the docker CLI (after "docker"), with its shell expansion of
// the socket's group done.
func readmeDockerRun(t *testing.T, socketGID string) []string {
	t.Helper()
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)### docker run\n\n```sh\n(docker run .*?)\n```").FindSubmatch(readme)
	if m == nil {
		t.Fatal("README.md: no ```sh block under ### docker run")
	}
	line := strings.ReplaceAll(string(m[1]), "\\\n", " ")
	line = strings.ReplaceAll(line, `"$(stat -c %g /var/run/docker.sock)"`, socketGID)
	if strings.ContainsAny(line, "$`\"'") {
		t.Fatalf("README's docker run line has shell syntax this test does not expand: %s", line)
	}
	return strings.Fields(line)[1:]
}

// withFlag places docker flags before the image and exporter flags after
// it in a `run` line whose image is image.
func withFlags(t *testing.T, run []string, image string, dockerFlags, exporterFlags []string) []string {
	t.Helper()
	i := slices.Index(run, image)
	if i < 0 {
		t.Fatalf("no image %s in %q", image, run)
	}
	out := append(append(slices.Clone(run[:i]), dockerFlags...), run[i])
	return append(append(out, run[i+1:]...), exporterFlags...)
}

func TestInsideACgroupV2Guest(t *testing.T) {
	if os.Getenv(envInsideGuest) != "1" {
		t.Skip("runs inside the cgroup v2 guest only (TestUsageOnACgroupV2Host boots it)")
	}
	if fs := strings.TrimSpace(output(t, "stat", "-fc", "%T", "/sys/fs/cgroup")); fs != "cgroup2fs" {
		t.Fatalf("/sys/fs/cgroup is %s, want cgroup2fs: not the pure unified hierarchy", fs)
	}
	d := testdaemon.System(t, systemSocket)
	if info := d.Docker(t, "info", "--format", "{{.CgroupDriver}} {{.CgroupVersion}}"); info != "systemd 2" {
		t.Fatalf("docker info: cgroup driver and version %q, want \"systemd 2\": Docker's defaults on a v2 host with systemd", info)
	}
	img := d.BusyboxImage(t)
	begin := time.Now()
	step := func(what string) { t.Logf("%6.1fs %s", time.Since(begin).Seconds(), what) }

	// The README's image: its Dockerfile on the local busybox.
	ctx := t.TempDir()
	copyFile(t, "Dockerfile", filepath.Join(ctx, "Dockerfile"))
	copyFile(t, os.Getenv(envGuestBin), filepath.Join(ctx, ".build", "linux-amd64", "docker_exporter"))
	buildCmd := exec.Command(d.CLI(), "build", "--build-arg", "BASE_IMAGE="+img, "-t", "docker_exporter:latest", ctx)
	buildCmd.Env = append(os.Environ(), "DOCKER_HOST="+systemSocket, "DOCKER_BUILDKIT=0")
	if out, err := buildCmd.CombinedOutput(); err != nil {
		t.Fatalf("docker build: %v\n%s", err, out)
	}
	step("image built")

	// What the exporters must see: a busy loop with and without a quota,
	// memory held, bytes written, processes, a --cgroup-parent slice, and
	// bytes moved on a user network.
	burn := []string{img, "sh", "-c", "while :; do :; done"}
	runC := func(name string, args ...string) {
		t.Helper()
		d.Docker(t, append([]string{"run", "-d", "--name", name}, args...)...)
	}
	runC("burn", append([]string{"--network", "none"}, burn...)...)
	runC("half", append([]string{"--network", "none", "--cpus", "0.5"}, burn...)...)
	const held = 32 << 20
	runC("mem", "--network", "none", "-m", "64m", img, "sh", "-c", "dd if=/dev/zero of=/dev/shm/fill bs=1M count=32 && exec sleep 100000")
	const written = 16 << 20
	runC("io", "--network", "none", img, "sh", "-c", "dd if=/dev/zero of=/f bs=1M count=16 conv=fsync && sync && exec sleep 100000")
	runC("procs", "--network", "none", img, "sh", "-c", "sleep 100000 & sleep 100000 & sleep 100000 & wait")
	runC("sliced", "--network", "none", "--cgroup-parent", "dxtest.slice", img, "sleep", "100000")
	d.Docker(t, "network", "create", "dxnet")
	t.Cleanup(func() { _, _ = d.DockerErr("network", "rm", "dxnet") })
	t.Cleanup(func() { _, _ = d.DockerErr("rm", "-f", "srv", "cli") }) // before the network
	const sent = 512 << 10
	runC("srv", "--network", "dxnet", img, "sh", "-c",
		fmt.Sprintf("mkdir /www && dd if=/dev/zero of=/www/f bs=1024 count=%d && exec httpd -f -p 8000 -h /www", sent/1024))
	runC("cli", "--network", "dxnet", img, "sh", "-c", "until wget -q -O /dev/null http://srv:8000/f; do sleep 1; done; exec sleep 100000")
	step("test containers started")
	if cg := kernelCgroup(t, d, "sliced"); !strings.Contains(cg, "/dxtest.slice/") {
		t.Fatalf("sliced's cgroup is %s, want it under dxtest.slice", cg)
	}

	// The exporters: on the host with each source, and as the README
	// deploys it, in a container of Docker's default (private) cgroup
	// namespace, with each source.
	bin := os.Getenv(envGuestBin)
	interval := "--stats.interval=" + guestInterval.String()
	var exporters []*guestExporter
	for _, source := range []string{"cgroup", "api"} {
		e := exporterproc.Start(t, bin, "--docker.host="+systemSocket, "--stats.source="+source, interval)
		exporters = append(exporters, &guestExporter{name: "on the host, " + source, source: source, Target: e.Target})
	}
	gid := strings.TrimSpace(output(t, "stat", "-c", "%g", "/var/run/docker.sock"))
	readme := readmeDockerRun(t, gid)
	for i, c := range []struct{ name, port, source string }{
		{"docker_exporter", "9417", "cgroup"}, // auto: the README's line as it is
		{"docker_exporter_api", "9418", "api"},
	} {
		args := slices.Clone(readme)
		if i > 0 {
			args[slices.Index(args, "--name")+1] = c.name
			args[slices.Index(args, "9417:9417")] = c.port + ":9417"
		}
		flags := []string{interval}
		if c.source == "api" {
			flags = append(flags, "--stats.source=api")
		}
		d.Docker(t, withFlags(t, args, "docker_exporter:latest", nil, flags)...)
		name := c.name
		exporters = append(exporters, &guestExporter{name: "in a container, " + c.source, source: c.source, Target: &scrape.Target{
			URL:    "http://127.0.0.1:" + c.port + "/metrics",
			Client: &http.Client{Timeout: 30 * time.Second},
			Log:    func() string { out, _ := d.DockerErr("logs", "--tail", "40", name); return out },
		}})
	}
	if mode := d.Docker(t, "inspect", "-f", "{{.HostConfig.CgroupnsMode}}", "docker_exporter"); mode != "private" {
		t.Fatalf("the README's container runs in cgroupns mode %q, want Docker's default on v2, private", mode)
	}
	pid := d.Docker(t, "inspect", "-f", "{{.State.Pid}}", "docker_exporter")
	own, _ := os.Readlink("/proc/" + pid + "/ns/cgroup")
	hosts, _ := os.Readlink("/proc/1/ns/cgroup")
	if own == "" || own == hosts {
		t.Fatalf("the exporter's container shares the host's cgroup namespace (%q, %q)", own, hosts)
	}
	seen := d.Docker(t, "exec", "docker_exporter", "cat", "/host/proc/"+d.Docker(t, "inspect", "-f", "{{.State.Pid}}", "half")+"/cgroup")
	if !strings.Contains(seen, "/..") {
		t.Fatalf("from inside the exporter's container, half's cgroup reads %q: want a path outside its namespace", seen)
	}
	t.Logf("from inside the exporter's container, half's /proc/<pid>/cgroup reads %q", seen)
	step("exporters started")

	names := []string{"burn", "half", "mem", "io", "procs", "sliced", "srv", "cli"}
	for _, e := range exporters {
		e.waitFor(t, "every test container's usage", func(s *scrape.Scrape) bool {
			for _, n := range names {
				if !s.Has("docker_container_memory_usage_bytes", "name", n) {
					return false
				}
			}
			rx, _ := s.Value("docker_container_network_receive_bytes_total", "name", "cli", "interface", "eth0")
			wb, _ := s.Value("docker_container_blkio_write_bytes_total", "name", "io")
			return rx >= sent && wb >= written
		}, "docker_exporter_stats", "docker_container_memory_usage_bytes")
	}
	step("every exporter has every container's usage")

	t.Run("cpu", func(t *testing.T) { guestCPU(t, d, exporters) })
	t.Run("memory, I/O, pids, network", func(t *testing.T) { guestFigures(t, d, exporters, held, written, sent) })
	t.Run("a container that stops and starts again", func(t *testing.T) { guestRestart(t, d, exporters) })
	for _, e := range exporters {
		s := e.Scrape(t)
		s.Must(s.Is(1, "docker_exporter_stats_source_info", "source", e.source), "%s: want the %s source", e.name, e.source)
		s.Must(s.Is(0, "docker_exporter_stats_unsampled_containers"), "%s: unsampled containers", e.name)
		for _, series := range s.Find("docker_exporter_stats_read_errors_total") {
			if series.Value != 0 {
				t.Errorf("%s: %v failed reads", e.name, series)
			}
		}
		if log := e.Log(); strings.Contains(log, "level=WARN") || strings.Contains(log, "level=ERROR") {
			t.Errorf("%s logged a warning:\n%s", e.name, log)
		}
	}
	step("done")
	keepKernelFiles(t, d)
}

// guestCPU holds each exporter's CPU rates to the kernel's cpu.stat over
// the same window.
func guestCPU(t *testing.T, d *testdaemon.Daemon, exporters []*guestExporter) {
	dirs := map[string]string{"burn": kernelCgroup(t, d, "burn"), "half": kernelCgroup(t, d, "half")}
	kernel := func() map[string]float64 {
		return map[string]float64{
			"burn": kernelValue(t, dirs["burn"], "cpu.stat", "usage_usec") / 1e6,
			"half": kernelValue(t, dirs["half"], "cpu.stat", "usage_usec") / 1e6,
		}
	}
	type mark struct {
		s  *scrape.Scrape
		at float64
	}
	first := make([]mark, len(exporters))
	for i, e := range exporters {
		first[i].s, first[i].at = e.sampleAfter(t, 0)
		first[i].s, first[i].at = e.sampleAfter(t, first[i].at)
	}
	k0, w0 := kernel(), time.Now()
	time.Sleep(5 * guestInterval) // the measurement itself: a window of samples
	last := make([]mark, len(exporters))
	for i, e := range exporters {
		last[i].s, last[i].at = e.sampleAfter(t, first[i].at+4*guestInterval.Seconds())
	}
	k1, w1 := kernel(), time.Now()
	for name := range dirs {
		t.Logf("the kernel: %s used %.3f cores over %.1fs", name, (k1[name]-k0[name])/w1.Sub(w0).Seconds(), w1.Sub(w0).Seconds())
	}
	for i, e := range exporters {
		a, b := first[i], last[i]
		rate := func(metric, name string) float64 {
			v0, _ := a.s.Value(metric, "name", name)
			v1, _ := b.s.Value(metric, "name", name)
			return (v1 - v0) / (b.at - a.at)
		}
		for name := range dirs {
			got, want := rate("docker_container_cpu_usage_seconds_total", name), (k1[name]-k0[name])/w1.Sub(w0).Seconds()
			t.Logf("%s: %s used %.3f cores", e.name, name, got)
			if !within(got, want, 0.05) {
				t.Errorf("%s: %s used %.3f cores, the kernel says %.3f: more than 5%% apart", e.name, name, got, want)
			}
		}
		if half := rate("docker_container_cpu_usage_seconds_total", "half"); !within(half, 0.5, 0.10) {
			t.Errorf("%s: half used %.3f cores, want 0.5 within 10%% (--cpus 0.5)", e.name, half)
		}
		if th := rate("docker_container_cpu_throttled_seconds_total", "half"); th <= 0 {
			t.Errorf("%s: half's throttled time did not grow", e.name)
		}
		if b.s.Has("docker_container_cpu_throttled_seconds_total", "name", "burn") {
			t.Errorf("%s: burn has no quota, yet a throttled series", e.name)
		}
	}
	// cpu.stat's throttled_usec is the truth for the quota.
	if th := kernelValue(t, dirs["half"], "cpu.stat", "throttled_usec"); th <= 0 {
		t.Errorf("the kernel says half was never throttled (%v µs)", th)
	}
}

// guestFigures holds memory, block I/O, pids and network to the kernel's
// files.
func guestFigures(t *testing.T, d *testdaemon.Daemon, exporters []*guestExporter, held, written, sent float64) {
	mem, io, procs, sliced := kernelCgroup(t, d, "mem"), kernelCgroup(t, d, "io"), kernelCgroup(t, d, "procs"), kernelCgroup(t, d, "sliced")
	near := func(got, want float64) bool { return within(got, want, 0.05) || math.Abs(got-want) <= 1<<20 }
	for _, e := range exporters {
		s, _ := e.sampleAfter(t, 0)
		value := func(metric, name string, kv ...string) float64 {
			v, ok := s.Value(metric, append([]string{"name", name}, kv...)...)
			if !ok {
				t.Errorf("%s: no %s of %s", e.name, metric, name)
			}
			return v
		}
		current := kernelValue(t, mem, "memory.current", "")
		ws := current - kernelValue(t, mem, "memory.stat", "inactive_file")
		if got := value("docker_container_memory_usage_bytes", "mem"); !near(got, current) {
			t.Errorf("%s: mem's memory usage %.0f, the kernel's memory.current %.0f", e.name, got, current)
		}
		if got := value("docker_container_memory_working_set_bytes", "mem"); !near(got, ws) || got < held {
			t.Errorf("%s: mem's working set %.0f, the kernel's %.0f; want at least the %.0f held", e.name, got, ws, held)
		}
		if got, want := value("docker_container_memory_limit_bytes", "mem"), kernelValue(t, mem, "memory.max", ""); got != want || got != 64<<20 {
			t.Errorf("%s: mem's limit %.0f, memory.max %.0f, want 64 MiB", e.name, got, want)
		}
		if s.Has("docker_container_memory_limit_bytes", "name", "io") {
			t.Errorf("%s: io is unlimited, yet has a limit series", e.name)
		}
		if got, want := value("docker_container_blkio_write_bytes_total", "io"), kernelValue(t, io, "io.stat", "wbytes"); got != want || got < written {
			t.Errorf("%s: io wrote %.0f bytes, io.stat says %.0f; want at least %.0f", e.name, got, want, written)
		}
		if got, want := value("docker_container_pids", "procs"), kernelValue(t, procs, "pids.current", ""); got != want || got != 4 {
			t.Errorf("%s: procs has %.0f pids, pids.current %.0f, want 4", e.name, got, want)
		}
		if got, want := value("docker_container_memory_usage_bytes", "sliced"), kernelValue(t, sliced, "memory.current", ""); !near(got, want) {
			t.Errorf("%s: sliced (--cgroup-parent) memory %.0f, the kernel's %.0f", e.name, got, want)
		}
		if rx := value("docker_container_network_receive_bytes_total", "cli", "interface", "eth0"); rx < sent {
			t.Errorf("%s: cli received %.0f bytes, want at least %.0f", e.name, rx, sent)
		}
		if tx := value("docker_container_network_transmit_bytes_total", "srv", "interface", "eth0"); tx < sent {
			t.Errorf("%s: srv sent %.0f bytes, want at least %.0f", e.name, tx, sent)
		}
		if s.Has("docker_container_network_receive_bytes_total", "name", "mem") {
			t.Errorf("%s: mem runs with --network none, yet has network series", e.name)
		}
	}
}

// guestRestart stops a container and starts it again: its series go, then
// come back counting from its new run.
func guestRestart(t *testing.T, d *testdaemon.Daemon, exporters []*guestExporter) {
	before := make([]float64, len(exporters))
	for i, e := range exporters {
		s := e.Scrape(t)
		before[i], _ = s.Value("docker_container_cpu_usage_seconds_total", "name", "burn")
	}
	d.Docker(t, "stop", "-t", "1", "burn")
	for _, e := range exporters {
		e.waitFor(t, "burn's usage gone once it stopped", func(s *scrape.Scrape) bool {
			return s.InState("burn", "exited") && !s.Has("docker_container_cpu_usage_seconds_total", "name", "burn") &&
				!s.Has("docker_container_memory_usage_bytes", "name", "burn")
		}, scrape.Named("burn"))
	}
	d.Docker(t, "start", "burn")
	for i, e := range exporters {
		s := e.waitFor(t, "burn's usage back once it started", func(s *scrape.Scrape) bool {
			return s.InState("burn", "running") && s.Has("docker_container_cpu_usage_seconds_total", "name", "burn")
		}, scrape.Named("burn"))
		if cpu, _ := s.Value("docker_container_cpu_usage_seconds_total", "name", "burn"); cpu >= before[i] {
			t.Errorf("%s: burn's CPU %.2fs after a restart, %.2fs before: want the new run's", e.name, cpu, before[i])
		}
	}
}

// keepKernelFiles copies the real v2 files of two containers, as the kernel
// wrote them, for cgroupstats/testdata (copied there by hand; see its
// README).
func keepKernelFiles(t *testing.T, d *testdaemon.Daemon) {
	out := os.Getenv(envGuestOut)
	if out == "" {
		return
	}
	for _, name := range []string{"half", "mem"} {
		dir := kernelCgroup(t, d, name)
		dst := filepath.Join(out, "kernel-files", name, strings.TrimPrefix(dir, "/"))
		for _, f := range []string{"cgroup.controllers", "cpu.max", "cpu.stat", "io.stat", "memory.current", "memory.max", "memory.stat", "pids.current"} {
			copyFile(t, filepath.Join(dir, f), filepath.Join(dst, f))
		}
		pid := d.Docker(t, "inspect", "-f", "{{.State.Pid}}", name)
		procDst := filepath.Join(out, "kernel-files", name, "proc", pid)
		copyFile(t, "/proc/"+pid+"/cgroup", filepath.Join(procDst, "cgroup"))
		copyFile(t, "/proc/"+pid+"/net/dev", filepath.Join(procDst, "net", "dev"))
		seen := d.Docker(t, "exec", "docker_exporter", "cat", "/host/proc/"+pid+"/cgroup")
		if err := os.WriteFile(filepath.Join(procDst, "cgroup.from-exporter-container"), []byte(seen+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		t.Fatal(err)
	}
	mode := os.FileMode(0o644)
	if fi, err := os.Stat(from); err == nil {
		mode = fi.Mode().Perm() | 0o600
	}
	if err := os.WriteFile(to, data, mode); err != nil {
		t.Fatal(err)
	}
}

// output runs a command and returns its stdout; a failure fails t.
func output(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		t.Fatalf("%s %s: %v", name, strings.Join(args, " "), err)
	}
	return string(out)
}
