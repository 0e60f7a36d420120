package main

// Tests of what ships around the binary: `make build` (promu) and
// `make tarball`, the images `make docker` builds from Dockerfile and
// Dockerfile.distroless, and examples/compose. Images are built and run on
// the private dockerd of internal/testdaemon, FROM its busybox image: the
// default bases (quay.io/prometheus/busybox, gcr.io/distroless) cannot be
// pulled here, and the tests must not depend on a registry anyway.

import (
	"archive/tar"
	"compress/gzip"
	"debug/buildinfo"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker-exporter/docker_exporter/internal/dockercli"
	"github.com/docker-exporter/docker_exporter/internal/freeport"
	"github.com/docker-exporter/docker_exporter/internal/scrape"
	"github.com/docker-exporter/docker_exporter/internal/testdaemon"
	"github.com/docker-exporter/docker_exporter/internal/wait"
)

// imageBuildDir is where `make build` puts the binary for this platform.
var imageBuildDir = filepath.Join(".build", runtime.GOOS+"-"+runtime.GOARCH)

// imageEnv is the test's environment without what would point the docker
// CLI, docker-compose or make elsewhere (DOCKER_*, COMPOSE_*, a calling
// make's flags, GOOS and GOARCH, SOURCE_DATE_EPOCH which fixes promu's build
// date and user), plus extra.
func imageEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "DOCKER_") || strings.HasPrefix(k, "COMPOSE_") ||
			k == "MAKEFLAGS" || k == "MFLAGS" || k == "MAKELEVEL" || k == "GOOS" || k == "GOARCH" || k == "SOURCE_DATE_EPOCH" {
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

// imageMake runs make in the repository root for this platform and returns
// its output; a failure fails the test.
func imageMake(tb testing.TB, env []string, args ...string) string {
	tb.Helper()
	args = append([]string{"--no-print-directory", "GOOS=" + runtime.GOOS, "GOARCH=" + runtime.GOARCH}, args...)
	cmd := exec.Command("make", args...)
	cmd.Env = env
	begin := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		tb.Fatalf("make %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	tb.Logf("make %s: %v", strings.Join(args[3:], " "), time.Since(begin).Round(time.Millisecond))
	return string(out)
}

// imageDockerEnv is the environment for the docker CLI (and make docker,
// docker-compose) against d: the classic builder, which dockerd 20.10 has
// without BuildKit, and a config directory of the test's own.
func imageDockerEnv(tb testing.TB, d *testdaemon.Daemon, extra ...string) []string {
	return imageEnv(append([]string{
		"DOCKER_HOST=" + d.Host,
		"DOCKER_BUILDKIT=0",
		"DOCKER_CONFIG=" + tb.TempDir(),
	}, extra...)...)
}

// buildImage builds dockerfile with `make docker` on d, FROM d's busybox
// image, as name:test (make docker also tags name:latest).
func buildImage(tb testing.TB, d *testdaemon.Daemon, dockerfile, name string) string {
	tb.Helper()
	base := d.BusyboxImage(tb)
	imageMake(tb, imageDockerEnv(tb, d), "docker",
		"DOCKER="+d.CLI(),
		"DOCKERFILE="+dockerfile,
		"DOCKER_IMAGE_NAME="+name,
		"DOCKER_IMAGE_TAG=test",
		"DOCKER_BUILD_ARGS=--build-arg BASE_IMAGE="+base)
	return name + ":test"
}

// socketGroup returns the group of d's socket, which must give the group
// (and nobody else but root) access. dockerd gives it to the group "docker"
// where that exists; if it is root's, it is moved to a group nobody has, so
// that the container's user gets access only through --group-add.
func socketGroup(tb testing.TB, d *testdaemon.Daemon) (sock string, gid int) {
	tb.Helper()
	sock = strings.TrimPrefix(d.Host, "unix://")
	fi, err := os.Stat(sock)
	if err != nil {
		tb.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm&0o007 != 0 || perm&0o060 != 0o060 {
		tb.Fatalf("%s has mode %v, want group read-write and no access for others", sock, perm)
	}
	gid = int(fi.Sys().(*syscall.Stat_t).Gid)
	if gid == 0 {
		groups, err := os.ReadFile("/etc/group")
		if err != nil {
			tb.Fatal(err)
		}
		gid = 40000
		for strings.Contains(string(groups), ":"+strconv.Itoa(gid)+":") {
			gid++
		}
		if err := os.Chown(sock, -1, gid); err != nil {
			tb.Fatal(err)
		}
	}
	if gid == 65534 || gid == 65532 {
		tb.Fatalf("%s belongs to group %d, the image user's own group", sock, gid)
	}
	return sock, gid
}

// imageContainer is an exporter running in a container.
type imageContainer struct {
	*scrape.Target
	d    *testdaemon.Daemon
	name string
}

// runImage starts image as container name with d's socket mounted read-only
// at /var/run/docker.sock, --group-add for each of groups, and args after
// a free loopback listen address; it waits until /metrics answers. The
// container is removed in cleanup, its log shown if the test failed.
func runImage(tb testing.TB, d *testdaemon.Daemon, image, name, sock string, groups []int, args ...string) *imageContainer {
	tb.Helper()
	for attempt := 1; ; attempt++ {
		c, portTaken := tryRunImage(tb, d, image, fmt.Sprintf("%s-%d", name, attempt), sock, groups, args)
		if !portTaken {
			return c
		}
		if attempt == 3 {
			tb.Fatalf("exporter container could not bind a free port 3 times")
		}
	}
}

func tryRunImage(tb testing.TB, d *testdaemon.Daemon, image, name, sock string, groups []int, args []string) (c *imageContainer, portTaken bool) {
	tb.Helper()
	addr := freeport.Addr(tb)
	run := []string{"run", "-d", "--name", name,
		// The private daemon has no bridge (--bridge=none).
		"--network", "host",
		"-v", sock + ":/var/run/docker.sock:ro"}
	for _, g := range groups {
		run = append(run, "--group-add", strconv.Itoa(g))
	}
	run = append(run, image, "--web.listen-address="+addr, "--log.level=debug")
	d.Docker(tb, append(run, args...)...)
	c = &imageContainer{
		Target: &scrape.Target{URL: "http://" + addr + "/metrics", Client: &http.Client{Timeout: 10 * time.Second}},
		d:      d,
		name:   name,
	}
	c.Log = c.logs
	tb.Cleanup(func() {
		c.Client.CloseIdleConnections()
		if tb.Failed() {
			tb.Logf("docker logs %s:\n%s", name, c.logs())
		}
		if out, err := d.DockerErr("rm", "-f", name); err != nil {
			tb.Errorf("remove container %s: %v: %s", name, err, out)
		}
	})
	wait.For(tb, wait.Timeout, "exporter container "+name+" to serve "+c.URL, func() bool {
		if _, err := c.Get(); err == nil {
			return true
		}
		if state := d.Docker(tb, "inspect", "-f", "{{.State.Status}}", name); state != "running" {
			logs := c.logs()
			if strings.Contains(logs, "address already in use") {
				portTaken = true
				return true
			}
			tb.Fatalf("exporter container %s is %s before serving %s:\n%s", name, state, c.URL, logs)
		}
		return false
	}, c.logs)
	return c, portTaken
}

func (c *imageContainer) logs() string {
	out, err := c.d.DockerErr("logs", c.name)
	if err != nil {
		return fmt.Sprintf("(docker logs: %v) %s", err, out)
	}
	return out
}

// waitLog polls the container's log until it contains sub.
func (c *imageContainer) waitLog(tb testing.TB, sub string) {
	tb.Helper()
	wait.For(tb, wait.Timeout, fmt.Sprintf("container %s to log %q", c.name, sub), func() bool {
		return strings.Contains(c.logs(), sub)
	}, c.logs)
}

// procIDs is what the kernel says of the container's main process: real,
// effective, saved and filesystem uid and gid, supplementary groups, and
// effective capabilities.
type procIDs struct {
	uid, gid []int
	groups   []int
	capEff   string
}

func (c *imageContainer) procIDs(tb testing.TB) procIDs {
	tb.Helper()
	pid := c.d.Docker(tb, "inspect", "-f", "{{.State.Pid}}", c.name)
	data, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		tb.Fatal(err)
	}
	ints := func(s string) []int {
		var out []int
		for f := range strings.FieldsSeq(s) {
			n, err := strconv.Atoi(f)
			if err != nil {
				tb.Fatalf("/proc/%s/status: %q", pid, s)
			}
			out = append(out, n)
		}
		return out
	}
	var p procIDs
	for line := range strings.Lines(string(data)) {
		k, v, _ := strings.Cut(strings.TrimSpace(line), ":")
		switch k {
		case "Uid":
			p.uid = ints(v)
		case "Gid":
			p.gid = ints(v)
		case "Groups":
			p.groups = ints(v)
		case "CapEff":
			p.capEff = strings.TrimSpace(v)
		}
	}
	return p
}

// TestMakeBuildMakesAStaticBinaryStampedWithItsVersion proves that
// `make build` (promu from tools/go.mod, .promu.yml) writes
// .build/<os>-<arch>/docker_exporter without cgo and with netgo, so that it
// runs on the busybox and distroless bases, and stamps it with VERSION, the
// git revision and branch, the build user and the time of this build.
func TestMakeBuildMakesAStaticBinaryStampedWithItsVersion(t *testing.T) {
	begin := time.Now().UTC().Truncate(time.Second)
	imageMake(t, imageEnv(), "build")
	bin := filepath.Join(imageBuildDir, "docker_exporter")

	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s has a program interpreter: dynamically linked", bin)
		}
	}
	f.Close()
	bi, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	for k, want := range map[string]string{"CGO_ENABLED": "0", "-tags": "netgo", "-trimpath": "true"} {
		if settings[k] != want {
			t.Errorf("build setting %s = %q, want %q", k, settings[k], want)
		}
	}

	out, err := exec.Command(bin, "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("%s --version: %v\n%s", bin, err, out)
	}
	version := string(out)
	versionFile, err := os.ReadFile("VERSION")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"docker_exporter, version " + strings.TrimSpace(string(versionFile)) + " "}
	if rev, err := exec.Command("git", "rev-parse", "HEAD").Output(); err == nil {
		branch, err := exec.Command("git", "rev-parse", "--abbrev-ref", "HEAD").Output()
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, fmt.Sprintf("(branch: %s, revision: %s)", imageTrim(branch), imageTrim(rev)))
	}
	want = append(want, "tags:             netgo")
	for _, w := range want {
		if !strings.Contains(version, w) {
			t.Errorf("--version lacks %q:\n%s", w, version)
		}
	}
	m := regexp.MustCompile(`build user:\s+(\S+)\n\s+build date:\s+(\S+)`).FindStringSubmatch(version)
	if m == nil {
		t.Fatalf("--version has no build user and date:\n%s", version)
	}
	if user, host, ok := strings.Cut(m[1], "@"); !ok || user == "" || host == "" {
		t.Errorf("build user %q, want user@host", m[1])
	}
	built, err := time.Parse("20060102-15:04:05", m[2])
	if err != nil {
		t.Fatalf("build date %q: %v", m[2], err)
	}
	if now := time.Now().UTC(); built.Before(begin) || built.After(now) {
		t.Errorf("build date %v, want the time of this make build (between %v and %v)", built, begin, now)
	}
}

func imageTrim(b []byte) string { return strings.TrimSpace(string(b)) }

// TestMakeTarballPacksTheBinaryAndDocs proves that `make tarball` writes
// .tarballs/docker_exporter-<VERSION>.<os>-<arch>.tar.gz with exactly the
// binary and the files .promu.yml lists, under one directory, and that the
// packed binary runs.
func TestMakeTarballPacksTheBinaryAndDocs(t *testing.T) {
	imageMake(t, imageEnv(), "tarball")
	versionFile, err := os.ReadFile("VERSION")
	if err != nil {
		t.Fatal(err)
	}
	dir := fmt.Sprintf("docker_exporter-%s.%s-%s", strings.TrimSpace(string(versionFile)), runtime.GOOS, runtime.GOARCH)
	f, err := os.Open(filepath.Join(".tarballs", dir+".tar.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	var names []string
	unpacked := t.TempDir()
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		if h.Name == dir+"/docker_exporter" {
			if h.Mode&0o111 == 0 {
				t.Errorf("%s has mode %o, want executable", h.Name, h.Mode)
			}
			out, err := os.OpenFile(filepath.Join(unpacked, "docker_exporter"), os.O_CREATE|os.O_WRONLY, 0o755)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(out, tr); err != nil {
				t.Fatal(err)
			}
			if err := out.Close(); err != nil {
				t.Fatal(err)
			}
		}
	}
	slices.Sort(names)
	want := []string{dir + "/", dir + "/CHANGELOG.md", dir + "/README.md", dir + "/docker_exporter"}
	if !slices.Equal(names, want) {
		t.Fatalf("tarball holds %q, want %q", names, want)
	}
	out, err := exec.Command(filepath.Join(unpacked, "docker_exporter"), "--version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "docker_exporter, version "+strings.TrimSpace(string(versionFile))) {
		t.Fatalf("packed binary --version: %v\n%s", err, out)
	}
}

// TestImageRunsAsNonRootWithOnlyTheSocketGroup proves, for the image of
// Dockerfile and of Dockerfile.distroless, that the exporter runs as its
// non-root user with no capabilities, that this user cannot read the
// daemon's socket by itself (docker_up 0, "permission denied"), and that
// adding the socket's group, and no other, is enough: docker_up 1 and the
// daemon's containers in /metrics.
func TestImageRunsAsNonRootWithOnlyTheSocketGroup(t *testing.T) {
	testdaemon.ForEachEngine(t, imageRunsAsNonRootWithOnlyTheSocketGroup)
}

func imageRunsAsNonRootWithOnlyTheSocketGroup(t *testing.T, eng testdaemon.Engine) {
	d := eng.Start(t)
	busybox := d.BusyboxImage(t)
	sock, gid := socketGroup(t, d)
	const target = "image-test-target"
	dockercli.Run(t, d, target, busybox, "sleep", "1000")
	t.Cleanup(func() { d.DockerErr("rm", "-f", target) })

	for _, tc := range []struct {
		dockerfile string
		user       string // as the image says
		uid, gid   int
	}{
		{"Dockerfile", "nobody", 65534, 65534}, // nobody in the base's /etc/passwd
		{"Dockerfile.distroless", "65532:65532", 65532, 65532},
	} {
		t.Run(tc.dockerfile, func(t *testing.T) {
			name := "dx-exporter-" + strings.ToLower(strings.ReplaceAll(tc.dockerfile, ".", "-"))
			image := buildImage(t, d, tc.dockerfile, name)
			t.Cleanup(func() { d.DockerErr("rmi", "-f", image, name+":latest") })

			cfg := d.Docker(t, "inspect", "-f", "{{.Config.User}}|{{json .Config.Entrypoint}}|{{json .Config.ExposedPorts}}", image)
			if want := tc.user + `|["/bin/docker_exporter"]|{"9417/tcp":{}}`; cfg != want {
				t.Fatalf("image config (user|entrypoint|ports) = %s, want %s", cfg, want)
			}

			denied := runImage(t, d, image, "exporter-without-group", sock, nil)
			denied.waitLog(t, "permission denied")
			s := denied.Scrape(t)
			s.Must(s.Is(0, "docker_up"), "without the socket's group: docker_up is not 0")
			s.Must(!s.Has("docker_container_info", "name", target), "without the socket's group the exporter sees %s", target)
			// The kernel lists the primary group among the supplementary
			// ones too, as docker sets them.
			ids := denied.procIDs(t)
			if !slices.Equal(ids.groups, []int{tc.gid}) {
				t.Errorf("without --group-add the process has groups %v, want only its own %d", ids.groups, tc.gid)
			}

			allowed := runImage(t, d, image, "exporter-with-group", sock, []int{gid})
			allowed.WaitFor(t, "docker_up 1 and "+target+" listed", func(s *scrape.Scrape) bool {
				return s.Up() && s.Is(1, "docker_container_info", "name", target, "image", busybox)
			}, "docker_up", scrape.Named(target))
			ids = allowed.procIDs(t)
			for _, id := range ids.uid {
				if id != tc.uid {
					t.Errorf("process uids %v, want all %d", ids.uid, tc.uid)
					break
				}
			}
			for _, id := range ids.gid {
				if id != tc.gid {
					t.Errorf("process gids %v, want all %d", ids.gid, tc.gid)
					break
				}
			}
			want := []int{gid, tc.gid}
			slices.Sort(want)
			if slices.Sort(ids.groups); !slices.Equal(ids.groups, want) {
				t.Errorf("process supplementary groups %v, want only the socket's %d and its own %d", ids.groups, gid, tc.gid)
			}
			if strings.Trim(ids.capEff, "0") != "" {
				t.Errorf("process effective capabilities %s, want none", ids.capEff)
			}
		})
	}
}

// composeCommand is docker-compose (Debian's, 1.29) or, where absent, a skip
// (a failure with testdaemon.EnvRequire=1).
func composeCommand(tb testing.TB) string {
	tb.Helper()
	p, err := exec.LookPath("docker-compose")
	if err != nil {
		msg := "docker-compose not found (apt-get install docker-compose)"
		if os.Getenv(testdaemon.EnvRequire) == "1" {
			tb.Fatal(msg)
		}
		tb.Skip(msg + " (set " + testdaemon.EnvRequire + "=1 to fail instead)")
	}
	return p
}

const composeFile = "examples/compose/docker-compose.yml"

func runCompose(tb testing.TB, compose string, env []string, args ...string) (string, error) {
	tb.Helper()
	cmd := exec.Command(compose, args...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("docker-compose %s: %w", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(out)), nil
}

// TestComposeExampleMountsFilesThatExist proves that every file the compose
// example mounts from the repository (../prometheus/..., ../grafana/... and
// so on) is there: docker would otherwise create an empty directory in its
// place at `up`, which `docker-compose config` does not check.
func TestComposeExampleMountsFilesThatExist(t *testing.T) {
	data, err := os.ReadFile(composeFile)
	if err != nil {
		t.Fatal(err)
	}
	sources := regexp.MustCompile(`(?m)^\s*-\s*["']?(\.\.?/[^:"'\s]+):`).FindAllStringSubmatch(string(data), -1)
	if len(sources) < 5 {
		t.Fatalf("found %d relative bind mounts in %s, want the prometheus, alertmanager and grafana files", len(sources), composeFile)
	}
	for _, m := range sources {
		p := filepath.Join(filepath.Dir(composeFile), m[1])
		if fi, err := os.Stat(p); err != nil {
			t.Errorf("%s mounts %s: %v", composeFile, m[1], err)
		} else if !fi.Mode().IsRegular() {
			t.Errorf("%s mounts %s: not a regular file", composeFile, m[1])
		}
	}
}

// execTransport fetches URLs from inside a container, with the wget of its
// busybox base: the compose test's exporter has no network the test could
// reach.
type execTransport struct {
	cli       string
	env       []string
	container string
}

func (x execTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	cmd := exec.Command(x.cli, "exec", x.container, "wget", "-q", "-O", "-", r.URL.String())
	cmd.Env = x.env
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("docker exec %s wget %s: %v: %s", x.container, r.URL, err, strings.TrimSpace(stderr.String()))
	}
	return &http.Response{
		Status:     "200 OK",
		StatusCode: http.StatusOK,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     http.Header{},
		Body:       io.NopCloser(strings.NewReader(stdout.String())),
		Request:    r,
	}, nil
}

// TestComposeExampleIsValidAndStartsTheExporter proves that docker-compose
// accepts examples/compose with its four services, and that its
// docker_exporter service, run with the image `make docker` tags as the
// file's default (docker_exporter:latest), starts as nobody with the
// socket's group, the socket read-only and its restart policy, serves on its
// default port and sees the daemon: docker_up 1, with its own container and
// compose labels.
//
// Only that service is started: prometheus, alertmanager and grafana are
// Docker Hub images, which cannot be pulled here. The private daemon has no
// bridge networking (--bridge=none) and must not change the host's network,
// so an override file takes the exporter off the network (the compose file's
// port publishing is then ignored; host networking would refuse it), makes
// the project's default network the predefined "none" so that compose
// creates no bridge, and mounts the private daemon's socket. The test then
// scrapes from inside the container.
func TestComposeExampleIsValidAndStartsTheExporter(t *testing.T) {
	compose := composeCommand(t)

	services, err := runCompose(t, compose, imageEnv(), "-f", composeFile, "config", "--services")
	if err != nil {
		t.Fatalf("%v\n%s", err, services)
	}
	got := strings.Fields(services)
	slices.Sort(got)
	if want := []string{"alertmanager", "docker_exporter", "grafana", "prometheus"}; !slices.Equal(got, want) {
		t.Fatalf("services %q, want %q", got, want)
	}
	testdaemon.ForEachEngine(t, func(t *testing.T, eng testdaemon.Engine) {
		composeExampleStartsTheExporter(t, eng, compose)
	})
}

func composeExampleStartsTheExporter(t *testing.T, eng testdaemon.Engine, compose string) {
	d := eng.Start(t)
	sock, gid := socketGroup(t, d)
	buildImage(t, d, "Dockerfile", "docker_exporter")

	override := filepath.Join(t.TempDir(), "test-override.yml")
	err := os.WriteFile(override, []byte(fmt.Sprintf(`services:
  docker_exporter:
    network_mode: none
    volumes:
      - %s:/var/run/docker.sock:ro
networks:
  default:
    external: true
    name: none
`, sock)), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	const project = "dxcompose"
	env := imageDockerEnv(t, d, "DOCKER_GID="+strconv.Itoa(gid))
	args := []string{"-p", project, "-f", composeFile, "-f", override}
	t.Cleanup(func() {
		if out, err := runCompose(t, compose, env, append(args, "down", "--volumes", "--remove-orphans")...); err != nil {
			t.Errorf("%v\n%s", err, out)
		}
	})
	if out, err := runCompose(t, compose, env, append(args, "up", "-d", "docker_exporter")...); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	id, err := runCompose(t, compose, env, append(args, "ps", "-q", "docker_exporter")...)
	if err != nil || id == "" {
		t.Fatalf("docker-compose ps: %v %q", err, id)
	}
	name := strings.TrimPrefix(d.Docker(t, "inspect", "-f", "{{.Name}}", id), "/")
	c := &imageContainer{
		Target: &scrape.Target{
			URL:    "http://127.0.0.1:9417/metrics", // the image's default port, in the container
			Client: &http.Client{Transport: execTransport{d.CLI(), env, id}},
		},
		d:    d,
		name: name,
	}
	c.Log = c.logs
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("docker logs %s:\n%s", name, c.logs())
		}
	})

	cfg := d.Docker(t, "inspect", "-f",
		`{{.Config.Image}}|{{.Config.User}}|{{.HostConfig.RestartPolicy.Name}}|{{json .HostConfig.GroupAdd}}|{{json .Config.Cmd}}`, id)
	if want := fmt.Sprintf(`docker_exporter:latest|nobody|unless-stopped|["%d"]|["--container.labels=org.opencontainers.image.version,com.example.team",`+
		`"--stats.cgroup-root=/host/sys/fs/cgroup","--stats.proc-root=/host/proc"]`, gid); cfg != want {
		t.Errorf("container config (image|user|restart|group_add|cmd) =\n%s\nwant\n%s", cfg, want)
	}
	mounts := strings.Fields(d.Docker(t, "inspect", "-f", `{{range .Mounts}}{{.Destination}}:rw={{.RW}} {{end}}`, id))
	slices.Sort(mounts)
	if want := []string{"/host/proc:rw=false", "/host/sys/fs/cgroup:rw=false", "/var/run/docker.sock:rw=false"}; !slices.Equal(mounts, want) {
		t.Errorf("mounts %q, want %q", mounts, want)
	}

	wait.For(t, wait.Timeout, "compose's exporter to serve "+c.URL, func() bool {
		_, err = c.Get()
		return err == nil
	}, func() string { return err.Error() })
	// Its own usage, from the host's files mounted into it, read as nobody.
	c.WaitFor(t, "docker_up 1, its own container with compose labels, and its usage", func(s *scrape.Scrape) bool {
		return s.Up() && s.Is(1, "docker_container_info", "name", name, "compose_project", project, "compose_service", "docker_exporter") &&
			s.AtLeast(1, "docker_container_memory_usage_bytes", "name", name) && s.AtLeast(1, "docker_container_pids", "name", name) &&
			s.Is(1, "docker_exporter_stats_source_info", "source", "cgroup")
	}, "docker_up", scrape.Named(name), "docker_exporter_stats")
}
