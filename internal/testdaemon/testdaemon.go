// Package testdaemon starts a private Docker daemon for integration tests.
//
// The daemon is fully separate from the system's: it runs its own containerd,
// keeps all state in a fresh directory under /tmp and listens on its own unix
// socket. It needs root, dockerd, containerd, containerd-shim-runc-v2 and runc;
// on Debian: apt-get install docker.io busybox-static.
//
// A daemon runs one Engine: Debian's dockerd 20.10 from PATH (Start), or
// another dockerd with a runc of its own (Engine.Start), such as the current
// Engine that `make engines` builds. ForEachEngine runs a test on each.
//
// Linux only.
package testdaemon

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// EnvRequire is set to "1" by .ci/run: then a missing dockerd (or one that
// fails to start) fails the test via t.Fatal instead of t.Skip.
const EnvRequire = "DOCKER_EXPORTER_REQUIRE_DOCKERD"

const (
	startTimeout = 60 * time.Second
	stopGrace    = 30 * time.Second
	pollEvery    = 20 * time.Millisecond
	imageRef     = "dx-busybox:test"
	// sun_path is 108 bytes including the NUL. The longest socket under our
	// dir is dockerd's <exec-root>/libnetwork/<12 hex>.sock.
	maxSockPath    = 107
	longestSockRel = "/exec/libnetwork/0123456789ab.sock"
)

// Daemon is a running private dockerd.
type Daemon struct {
	Host   string // e.g. "unix:///tmp/dx123/docker.sock", usable as DOCKER_HOST / client.WithHost
	Engine Engine // what it runs
	// Version and APIVersion are the daemon's, from GET /version.
	Version, APIVersion string

	dir      string
	lock     *os.File // flocked while the Daemon is in use; see sweepStale
	sock     string
	ctrdSock string
	bins     binaries
	env      []string // for dockerd and containerd
	cliEnv   []string
	cli      string // docker CLI verified to work against this daemon

	mu         sync.Mutex // guards the processes
	dockerd    *proc
	containerd *proc

	imgMu sync.Mutex
	image string
}

type binaries struct {
	dockerd, containerd, runc string
}

// Start starts a private daemon of the Default engine and registers a
// t.Cleanup that removes all its containers, stops it and deletes its
// directories. It skips the test (or fails it when EnvRequire is "1") if
// dockerd is unavailable or won't start. Engine.Start does the same for
// another engine.
func Start(tb testing.TB) *Daemon {
	tb.Helper()
	return start(tb, Default())
}

func start(t testing.TB, eng Engine) *Daemon {
	t.Helper()
	if os.Geteuid() != 0 {
		unavailable(t, "dockerd needs root (euid %d)", os.Geteuid())
	}
	if eng.Dockerd == "" {
		unavailable(t, "engine %s: %s", eng.Name, eng.missing)
	}
	bins := binaries{dockerd: eng.Dockerd, runc: eng.Runc}
	searchPath := withSbin(os.Getenv("PATH"))
	for _, b := range []struct {
		name string
		dst  *string
	}{
		{"containerd", &bins.containerd},
		{"containerd-shim-runc-v2", new(string)}, // started by containerd via PATH
		{"runc", &bins.runc},
	} {
		if *b.dst != "" {
			continue
		}
		p, err := lookPath(b.name, searchPath)
		if err != nil {
			unavailable(t, "%v (apt-get install docker.io)", err)
		}
		*b.dst = p
	}

	sweepStale(t, bins.runc)
	dir, lock, err := newDir()
	if err != nil {
		t.Fatalf("testdaemon: %v", err)
	}
	if eng.Runc != "" {
		// Only runc goes before PATH, as a link in a directory of its own.
		if err := os.Mkdir(filepath.Join(dir, "bin"), 0o700); err != nil {
			t.Fatalf("testdaemon: %v", err)
		}
		if err := os.Symlink(eng.Runc, filepath.Join(dir, "bin", "runc")); err != nil {
			t.Fatalf("testdaemon: %v", err)
		}
		searchPath = filepath.Join(dir, "bin") + ":" + searchPath
	}
	env := append(cleanEnv(), "PATH="+searchPath)
	d := &Daemon{
		Host:     "unix://" + filepath.Join(dir, "docker.sock"),
		Engine:   eng,
		dir:      dir,
		lock:     lock,
		sock:     filepath.Join(dir, "docker.sock"),
		ctrdSock: filepath.Join(dir, "containerd.sock"),
		bins:     bins,
		env:      env,
		cliEnv: append(env[:len(env):len(env)],
			"DOCKER_HOST=unix://"+filepath.Join(dir, "docker.sock"),
			"DOCKER_CONFIG="+filepath.Join(dir, "cli")),
	}
	t.Cleanup(func() { d.cleanup(t) })
	if err := d.writeConfigs(); err != nil {
		t.Fatalf("testdaemon: %v", err)
	}

	begin := time.Now()
	d.mu.Lock()
	err = d.startLocked()
	d.mu.Unlock()
	if err != nil {
		unavailable(t, "start private %s: %v", eng.Name, err)
	}
	if d.cli, err = d.pickCLI(); err != nil {
		unavailable(t, "%v", err)
	}
	if d.Version, d.APIVersion, err = d.serverVersion(); err != nil {
		t.Fatalf("testdaemon: %v", err)
	}
	t.Logf("testdaemon: %s %s (API %s) ready on %s after %v (CLI %s)", eng.Name, d.Version, d.APIVersion, d.Host, time.Since(begin).Round(time.Millisecond), d.cli)
	return d
}

// Stop stops the daemon, keeping its data root, for reconnect tests.
// Containers keep running (the daemon uses --live-restore) and are picked up
// again by Restart.
func (d *Daemon) Stop(t testing.TB) {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.dockerd == nil || d.dockerd.exited() {
		t.Fatalf("testdaemon: Stop: dockerd is not running")
	}
	if err := d.dockerd.stop(stopGrace); err != nil {
		t.Fatalf("testdaemon: stop dockerd: %v\n%s", err, d.logTail("dockerd.log"))
	}
}

// Restart starts the daemon again on the same socket and data root (stopping
// it first if it is running) and waits until it answers /_ping.
func (d *Daemon) Restart(t testing.TB) {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.dockerd != nil && !d.dockerd.exited() {
		if err := d.dockerd.stop(stopGrace); err != nil {
			t.Fatalf("testdaemon: stop dockerd: %v\n%s", err, d.logTail("dockerd.log"))
		}
	}
	if err := d.startLocked(); err != nil {
		t.Fatalf("testdaemon: restart dockerd: %v", err)
	}
}

// Docker runs the docker CLI against this daemon and returns its trimmed
// stdout. A non-zero exit fails the test, showing stderr.
func (d *Daemon) Docker(t testing.TB, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if err := d.run(nil, &stdout, &stderr, args...); err != nil {
		t.Fatalf("testdaemon: %v\nstderr: %s\nstdout: %s", err, stderr.Bytes(), stdout.Bytes())
	}
	return strings.TrimSpace(stdout.String())
}

// DockerErr is like Docker but returns the trimmed combined output and the
// error (an *exec.ExitError can be reached with errors.As).
func (d *Daemon) DockerErr(args ...string) (string, error) {
	var out bytes.Buffer
	err := d.run(nil, &out, &out, args...)
	return strings.TrimSpace(out.String()), err
}

// BusyboxImage imports, once per Daemon, a tiny image made of a static
// busybox and its applet symlinks, tagged "dx-busybox:test", and returns the
// image reference. Its CMD is ["sh"].
func (d *Daemon) BusyboxImage(t testing.TB) string {
	t.Helper()
	d.imgMu.Lock()
	defer d.imgMu.Unlock()
	if d.image != "" {
		return d.image
	}
	tarball := busyboxImageTar(t)
	var stdout, stderr bytes.Buffer
	if err := d.run(bytes.NewReader(tarball), &stdout, &stderr, "import", "--change", `CMD ["sh"]`, "-", imageRef); err != nil {
		t.Fatalf("testdaemon: %v\nstderr: %s", err, stderr.Bytes())
	}
	d.image = imageRef
	return d.image
}

// busyboxImageTar is the root filesystem of the busybox test image, as a
// tar for an import: a static busybox and its applet symlinks.
func busyboxImageTar(t testing.TB) []byte {
	t.Helper()
	bb, err := findStaticBusybox(withSbin(os.Getenv("PATH")))
	if err != nil {
		unavailable(t, "%v (apt-get install busybox-static)", err)
	}
	tarball, err := busyboxTar(bb)
	if err != nil {
		t.Fatalf("testdaemon: %v", err)
	}
	return tarball
}

func unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := "testdaemon: " + fmt.Sprintf(format, args...)
	if os.Getenv(EnvRequire) == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg + " (set " + EnvRequire + "=1 to fail instead)")
}

func (d *Daemon) path(elem ...string) string {
	return filepath.Join(append([]string{d.dir}, elem...)...)
}

func (d *Daemon) writeConfigs() error {
	for _, sub := range []string{"data", "exec", "cli", "containerd"} {
		if err := os.Mkdir(d.path(sub), 0o700); err != nil {
			return err
		}
	}
	// containerd would otherwise default to /var/lib/containerd, /run/containerd
	// and /opt/containerd. Only the shims' sockets stay in the shared
	// /run/containerd/s (hard-coded in containerd 1.6; named by a hash of our
	// socket path, namespace and container id, so they cannot collide).
	// The CRI plugin is of no use to dockerd.
	ctrd := fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = %q

[plugins."io.containerd.internal.v1.opt"]
  path = %q
`, d.path("containerd", "root"), d.path("containerd", "state"), d.ctrdSock, d.path("containerd", "opt"))
	if err := os.WriteFile(d.path("containerd.toml"), []byte(ctrd), 0o600); err != nil {
		return err
	}
	// Our own --config-file keeps /etc/docker/daemon.json out. dockerd 20.10
	// otherwise creates /etc/docker/key.json; this (config-file only) key
	// moves it into our dir. The current Engine has no key.json and rejects
	// unknown keys, but ignores this deprecated one by name.
	cfg := fmt.Sprintf(`{"deprecated-key-path": %q}`, d.path("key.json"))
	return os.WriteFile(d.path("daemon.json"), []byte(cfg), 0o600)
}

func (d *Daemon) dockerdArgs() []string {
	args := []string{
		"--config-file", d.path("daemon.json"),
		"--data-root", d.path("data"),
		"--exec-root", d.path("exec"),
		"--pidfile", d.path("docker.pid"),
		"--host", d.Host,
		// Without --containerd, dockerd uses the system containerd whenever
		// /run/containerd/containerd.sock exists (it only lstat()s it), which
		// would put our containers into the system's "moby" namespace.
		"--containerd", d.ctrdSock,
		// No host networking changes: no docker0, no iptables rules, and
		// --ip-forward=false, else the bridge driver sets net.ipv4.ip_forward=1.
		"--bridge=none", "--iptables=false", "--ip6tables=false", "--ip-masq=false", "--ip-forward=false",
		// Containers survive Stop/Restart, and Stop is fast: without it
		// dockerd stops each container on shutdown and waits 10s for
		// processes that ignore SIGTERM (e.g. "sleep" as PID 1).
		"--live-restore",
		// cgroupfs also on cgroup v2 hosts with systemd (20.10's default there
		// is the systemd driver, which talks to the host's systemd).
		"--exec-opt", "native.cgroupdriver=cgroupfs",
		// The storage driver is left to dockerd: overlay2 where /tmp supports
		// it (ext4 here), vfs otherwise (e.g. /tmp on overlayfs). The current
		// Engine uses the containerd image store, in our containerd.
	}
	// 20.10 lowers its own OOM score to -500 unless told otherwise; the
	// current Engine no longer does, and has no such flag.
	if dockerdHasFlag(d.bins.dockerd, "--oom-score-adjust") {
		args = append(args, "--oom-score-adjust=0")
	}
	return args
}

// startLocked starts containerd (unless it is running) and dockerd and waits
// until both answer. d.mu must be held.
func (d *Daemon) startLocked() error {
	if d.containerd == nil || d.containerd.exited() {
		p, err := startProc(d.bins.containerd, []string{"--config", d.path("containerd.toml")}, d.env, d.path("containerd.log"))
		if err != nil {
			return err
		}
		d.containerd = p
		if err := d.waitReady(p, "containerd", func() error { return dialUnix(d.ctrdSock) }); err != nil {
			return err
		}
	}
	// A SIGKILLed dockerd leaves its pidfile; its pid might be reused.
	_ = os.Remove(d.path("docker.pid"))
	p, err := startProc(d.bins.dockerd, d.dockerdArgs(), d.env, d.path("dockerd.log"))
	if err != nil {
		return err
	}
	d.dockerd = p
	return d.waitReady(p, "dockerd", d.ping)
}

func (d *Daemon) waitReady(p *proc, name string, check func() error) error {
	deadline := time.Now().Add(startTimeout)
	for {
		err := check()
		if err == nil {
			return nil
		}
		if p.exited() {
			return fmt.Errorf("%s exited (%s) before it was ready\n%s", name, p.describe(), d.logTail(name+".log"))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %v: %v\n%s", name, startTimeout, err, d.logTail(name+".log"))
		}
		time.Sleep(pollEvery)
	}
}

// ping checks that dockerd answers GET /_ping.
func (d *Daemon) ping() error {
	_, err := d.get("/_ping", 512)
	return err
}

// API GETs path (e.g. "/v1.41/images/x/json") from the daemon's Engine API,
// for what the docker CLI does not show, and returns the body of a 200.
func (d *Daemon) API(tb testing.TB, path string) []byte {
	tb.Helper()
	body, err := d.get(path, 16<<20)
	if err != nil {
		tb.Fatalf("testdaemon: %v", err)
	}
	return body
}

// serverVersion is what GET /version says of the daemon.
func (d *Daemon) serverVersion() (version, apiVersion string, err error) {
	body, err := d.get("/version", 64<<10)
	if err != nil {
		return "", "", err
	}
	var v struct{ Version, APIVersion string }
	if err := json.Unmarshal(body, &v); err != nil {
		return "", "", fmt.Errorf("GET /version: %w: %s", err, body)
	}
	return v.Version, v.APIVersion, nil
}

// get GETs path over the daemon's socket and returns up to limit bytes of
// the body of a 200.
func (d *Daemon) get(path string, limit int64) ([]byte, error) {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var dl net.Dialer
			return dl.DialContext(ctx, "unix", d.sock)
		},
		DisableKeepAlives: true, // leave no idle connections (and goroutines) behind
	}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	resp, err := c.Get("http://docker" + path)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %s", path, resp.Status, body)
	}
	return body, nil
}

func dialUnix(path string) error {
	c, err := net.DialTimeout("unix", path, 2*time.Second)
	if err != nil {
		return err
	}
	return c.Close()
}

// pickCLI returns the first docker CLI that can talk to the daemon; see
// cliCandidates.
func (d *Daemon) pickCLI() (string, error) {
	cands := cliCandidates()
	if len(cands) == 0 {
		return "", errors.New("no docker CLI found")
	}
	var errs []error
	for _, c := range cands {
		cmd := exec.Command(c, "version", "--format", "{{.Server.APIVersion}}")
		cmd.Env = d.cliEnv
		out, err := cmd.CombinedOutput()
		if err == nil {
			return c, nil
		}
		errs = append(errs, fmt.Errorf("%s version: %v: %s", c, err, bytes.TrimSpace(out)))
	}
	return "", errors.Join(errs...)
}

// cliCandidates are the docker CLIs to try, in order: docker from PATH (may
// be a newer CLI), then every other docker in the usual bin directories,
// such as Debian's /usr/bin/docker (API 1.41). Each negotiates the API
// version with the daemon: 1.41 with 20.10; with the current Engine (API
// 1.56, down to 1.40) its own.
func cliCandidates() []string {
	var cands []string
	if p, err := exec.LookPath("docker"); err == nil {
		cands = append(cands, p)
	}
	for _, dir := range filepath.SplitList(withSbin("")) {
		p := filepath.Join(dir, "docker")
		if isExecutable(p) && !slices.ContainsFunc(cands, func(c string) bool { return sameFile(c, p) }) {
			cands = append(cands, p)
		}
	}
	return cands
}

func sameFile(a, b string) bool {
	fa, err1 := os.Stat(a)
	fb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(fa, fb)
}

// CLI is the docker CLI that Docker runs, for tools that need one (make
// docker, docker-compose's neighbours).
func (d *Daemon) CLI() string { return d.cli }

func (d *Daemon) run(stdin io.Reader, stdout, stderr io.Writer, args ...string) error {
	cmd := exec.Command(d.cli, args...)
	cmd.Env = d.cliEnv
	cmd.Stdin = stdin
	cmd.Stdout = stdout
	cmd.Stderr = stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("docker %s: %w", strings.Join(args, " "), err)
	}
	return nil
}

func (d *Daemon) logTail(name string) string {
	const maxLines = 40
	b, err := os.ReadFile(d.path(name))
	if err != nil {
		return fmt.Sprintf("(no %s: %v)", name, err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > maxLines {
		lines = lines[len(lines)-maxLines:]
	}
	return "--- tail of " + d.path(name) + " ---\n" + strings.Join(lines, "\n")
}

func (d *Daemon) cleanup(t testing.TB) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if t.Failed() && d.dockerd != nil {
		t.Logf("testdaemon: %s", d.logTail("dockerd.log"))
	}
	// Stopped without Restart: bring dockerd back so that it removes the
	// live-restored containers and their shims cleanly.
	if d.dockerd != nil && d.dockerd.exited() && d.containerd != nil && !d.containerd.exited() && len(runcContainers(d.dir)) > 0 {
		if err := d.startLocked(); err != nil {
			t.Logf("testdaemon: restart dockerd for cleanup: %v", err)
		}
	}
	if d.dockerd != nil && !d.dockerd.exited() && d.cli != "" {
		if ids, err := d.DockerErr("ps", "-aq"); err != nil {
			t.Logf("testdaemon: %v: %s", err, ids)
		} else if ids != "" {
			if out, err := d.DockerErr(append([]string{"rm", "-f", "-v"}, strings.Fields(ids)...)...); err != nil {
				t.Logf("testdaemon: %v: %s", err, out)
			}
		}
	}
	if d.dockerd != nil {
		if err := d.dockerd.stop(stopGrace); err != nil {
			t.Errorf("testdaemon: stop dockerd: %v", err)
		}
	}
	if d.containerd != nil {
		if err := d.containerd.stop(stopGrace); err != nil {
			t.Errorf("testdaemon: stop containerd: %v", err)
		}
	}
	if err := errors.Join(reap(d.dir, d.bins.runc)...); err != nil {
		t.Errorf("testdaemon: %v", err)
	}
	d.lock.Close()
}

// runcRoot is where dockerd tells runc (via the shim) to keep state:
// <exec-root>/runtime-runc/<containerd namespace>, on 20.10 as on the
// current Engine.
func runcRoot(dir string) string { return filepath.Join(dir, "exec", "runtime-runc", "moby") }

// runcContainers lists the containers runc still has state for.
func runcContainers(dir string) []string {
	ents, _ := os.ReadDir(runcRoot(dir))
	var ids []string
	for _, e := range ents {
		if e.IsDir() {
			ids = append(ids, e.Name())
		}
	}
	return ids
}

// reap removes what is left of a daemon whose dockerd and containerd are
// gone: containers dockerd did not remove (it died, or was Stopped and would
// not restart), their shims (which outlive containerd by design), mounts and
// finally dir itself.
func reap(dir, runc string) []error {
	// The runc of the daemon's engine, if it had one, reads its own state.
	if own := filepath.Join(dir, "bin", "runc"); isExecutable(own) {
		runc = own
	}
	var errs []error
	for _, id := range runcContainers(dir) {
		if out, err := exec.Command(runc, "--root", runcRoot(dir), "delete", "--force", id).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("runc delete %s: %v: %s", id, err, bytes.TrimSpace(out)))
		}
	}
	if err := killStrays(dir); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, unmountUnder(dir)...)
	if err := os.RemoveAll(dir); err != nil {
		errs = append(errs, err)
	}
	return errs
}

// sweepStale reaps the directories of daemons whose test process died
// without cleanup (go test -timeout, SIGKILL): Pdeathsig took dockerd and
// containerd down, but containers, shims and mounts survive. A directory is
// stale when nobody holds the flock on its lock file; the owner takes it
// before writing containerd.toml, so a daemon still starting up is never
// mistaken for a stale one.
func sweepStale(t testing.TB, runc string) {
	t.Helper()
	sweepStaleDirs(t, "containerd.toml", func(dir string) []error { return reap(dir, runc) })
}

// sweepStaleDirs reaps, with reap, every unlocked dx* directory under the
// temporary directories that holds marker, a file its owner writes after
// taking the lock.
func sweepStaleDirs(t testing.TB, marker string, reap func(dir string) []error) {
	t.Helper()
	parents := []string{os.TempDir()}
	if parents[0] != "/tmp" {
		parents = append(parents, "/tmp")
	}
	for _, parent := range parents {
		ents, _ := os.ReadDir(parent)
		for _, e := range ents {
			dir := filepath.Join(parent, e.Name())
			if !e.IsDir() || !strings.HasPrefix(e.Name(), "dx") {
				continue
			}
			if _, err := os.Stat(filepath.Join(dir, marker)); err != nil {
				continue
			}
			f, err := os.Open(filepath.Join(dir, "lock"))
			if err != nil {
				continue
			}
			if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil {
				if err := errors.Join(reap(dir)...); err != nil {
					t.Logf("testdaemon: cleaning up stale %s: %v", dir, err)
				} else {
					t.Logf("testdaemon: cleaned up stale %s", dir)
				}
			}
			f.Close()
		}
	}
}

// proc is a started process. It is reaped by polling wait4(WNOHANG) rather
// than by a goroutine blocked in Wait, so a running daemon leaves no goroutine
// that goleak.VerifyNone would report.
type proc struct {
	cmd    *exec.Cmd
	done   bool
	status syscall.WaitStatus
}

func startProc(bin string, args, env []string, logPath string) (*proc, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer f.Close() // the child has its own copy
	cmd := exec.Command(bin, args...)
	// In its private directory, beside its log: what it and its children
	// write to their working directory (conmon 2.1.6 writes a container's
	// "oom" file there) stays out of the test's.
	cmd.Dir = filepath.Dir(logPath)
	cmd.Env = env
	cmd.Stdout = f // an *os.File, so os/exec starts no copying goroutine
	cmd.Stderr = f
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid: true, // a ^C meant for go test does not hit the daemon first
		// If the test binary dies without cleanup (panic, -timeout), take the
		// daemon down too. (Strictly this fires when the forking OS thread
		// exits, which Go only does for goroutines that exit while locked to
		// their thread.)
		Pdeathsig: syscall.SIGKILL,
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return &proc{cmd: cmd}, nil
}

func (p *proc) exited() bool {
	if p.done {
		return true
	}
	pid := p.cmd.Process.Pid
	var ws syscall.WaitStatus
	got, err := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
	if got == pid || errors.Is(err, syscall.ECHILD) {
		p.done, p.status = true, ws
		_ = p.cmd.Process.Release()
	}
	return p.done
}

func (p *proc) describe() string {
	switch {
	case !p.done:
		return "running"
	case p.status.Signaled():
		return "killed by " + p.status.Signal().String()
	default:
		return fmt.Sprintf("exit status %d", p.status.ExitStatus())
	}
}

func (p *proc) waitExit(timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for !p.exited() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(pollEvery)
	}
	return true
}

// stop sends SIGTERM, then SIGKILL after grace, and reaps the process.
func (p *proc) stop(grace time.Duration) error {
	if p.exited() {
		return nil
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	if p.waitExit(grace) {
		return nil
	}
	_ = p.cmd.Process.Kill()
	if p.waitExit(10 * time.Second) {
		return fmt.Errorf("%s ignored SIGTERM for %v; killed", filepath.Base(p.cmd.Path), grace)
	}
	return fmt.Errorf("%s (pid %d) survived SIGKILL", filepath.Base(p.cmd.Path), p.cmd.Process.Pid)
}

// killStrays SIGKILLs processes whose command line mentions dir: mostly
// containerd-shim-runc-v2 (-address <dir>/containerd.sock), which outlives
// containerd by design, once dockerd could not delete its container.
func killStrays(dir string) error {
	needle := []byte(dir + "/")
	find := func() []int {
		var pids []int
		ents, _ := os.ReadDir("/proc")
		for _, e := range ents {
			pid, err := strconv.Atoi(e.Name())
			if err != nil || pid == os.Getpid() {
				continue
			}
			if cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline")); err == nil && bytes.Contains(cmdline, needle) {
				pids = append(pids, pid)
			}
		}
		return pids
	}
	for _, pid := range find() {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		left := find() // zombies have an empty cmdline, so reaped or not, they drop out
		if len(left) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes using %s survived SIGKILL: %v", dir, left)
		}
		time.Sleep(pollEvery)
	}
}

// unmountUnder lazily unmounts everything mounted at or below dir, deepest
// first: overlay2's private bind mount of its home, container rootfs and
// netns mounts are left behind if dockerd is killed or containers were
// live-restored.
func unmountUnder(dir string) []error {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return []error{err}
	}
	defer f.Close()
	var mps []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMount(fields[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			mps = append(mps, mp)
		}
	}
	sort.Slice(mps, func(i, j int) bool { return len(mps[i]) > len(mps[j]) })
	var errs []error
	for _, mp := range mps {
		if err := syscall.Unmount(mp, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", mp, err))
		}
	}
	return errs
}

// unescapeMount undoes mountinfo's octal escapes (\040 for space etc.).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// newDir makes a fresh directory whose socket paths fit into sun_path
// (t.TempDir(), or a long $TMPDIR, would not) and locks it.
func newDir() (string, *os.File, error) {
	dir, err := os.MkdirTemp("", "dx")
	if err == nil && len(dir)+len(longestSockRel) > maxSockPath {
		os.Remove(dir)
		dir, err = os.MkdirTemp("/tmp", "dx")
	}
	if err != nil {
		return "", nil, err
	}
	// O_CLOEXEC (as os.OpenFile always sets): the daemons must not inherit
	// the lock, or it would outlive a killed test process.
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return "", nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return "", nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	return dir, f, nil
}

// withSbin appends the usual sbin and bin directories: Debian installs
// dockerd in /usr/sbin, which is not on every PATH.
func withSbin(path string) string {
	extra := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	if path == "" {
		return extra
	}
	return path + ":" + extra
}

func lookPath(name, path string) (string, error) {
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			continue
		}
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found in %s", name, path)
}

// cleanEnv is the test's environment minus anything that would point the
// daemon or the CLI elsewhere (DOCKER_HOST, DOCKER_CONTEXT, DOCKER_CONFIG,
// DOCKER_TLS_VERIFY, ...) or make dockerd talk to systemd (NOTIFY_SOCKET).
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "DOCKER_") || k == "NOTIFY_SOCKET" || k == "PATH" {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// findStaticBusybox returns a statically linked busybox: the image has no
// libc. Debian's busybox-static installs /bin/busybox (= /usr/bin/busybox with
// merged /usr); the plain "busybox" package's binary is dynamic and won't do.
func findStaticBusybox(searchPath string) (string, error) {
	cands := []string{"/bin/busybox", "/usr/bin/busybox"}
	if p, err := lookPath("busybox", searchPath); err == nil {
		cands = append(cands, p)
	}
	for _, c := range cands {
		if static, err := isStatic(c); err == nil && static {
			return c, nil
		}
	}
	return "", fmt.Errorf("no statically linked busybox in %v", cands)
}

func isStatic(path string) (bool, error) {
	f, err := elf.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return false, nil
		}
	}
	return true, nil
}

// busyboxTar builds the root filesystem: bin/busybox, a symlink per applet,
// a few empty directories and a minimal passwd/group.
func busyboxTar(busybox string) ([]byte, error) {
	list, err := exec.Command(busybox, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --list: %w", busybox, err)
	}
	applets := strings.Fields(string(list))
	have := make(map[string]bool, len(applets))
	for _, a := range applets {
		have[a] = true
	}
	for _, need := range []string{"sh", "sleep", "true", "false", "echo", "cat", "kill", "ls", "head", "yes", "dd", "tail"} {
		if !have[need] {
			return nil, fmt.Errorf("%s lacks the %q applet", busybox, need)
		}
	}
	bin, err := os.ReadFile(busybox)
	if err != nil {
		return nil, err
	}

	mtime := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(h *tar.Header, body []byte) error {
		h.ModTime = mtime
		h.Format = tar.FormatPAX
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		_, err := tw.Write(body)
		return err
	}
	for _, dir := range []string{"bin", "dev", "etc", "proc", "root", "sys"} {
		if err := add(&tar.Header{Typeflag: tar.TypeDir, Name: dir + "/", Mode: 0o755}, nil); err != nil {
			return nil, err
		}
	}
	if err := add(&tar.Header{Typeflag: tar.TypeDir, Name: "tmp/", Mode: 0o1777}, nil); err != nil {
		return nil, err
	}
	files := []struct {
		name string
		mode int64
		body []byte
	}{
		{"bin/busybox", 0o755, bin},
		{"etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n")},
		{"etc/group", 0o644, []byte("root:x:0:\nnogroup:x:65534:\n")},
	}
	for _, f := range files {
		if err := add(&tar.Header{Typeflag: tar.TypeReg, Name: f.name, Mode: f.mode, Size: int64(len(f.body))}, f.body); err != nil {
			return nil, err
		}
	}
	for _, a := range applets {
		if a == "busybox" || strings.Contains(a, "/") {
			continue
		}
		if err := add(&tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/" + a, Linkname: "busybox", Mode: 0o777}, nil); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
