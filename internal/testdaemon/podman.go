package testdaemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
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
)

// Podman is a running private `podman system service`: Podman's Docker-
// compatible API, for tests of the exporter against Podman. It needs root,
// podman, conmon and runc; on Debian: apt-get install podman busybox-static.
//
// Like a Daemon it keeps everything in a fresh directory under /tmp: the
// service and every CLI call share its global flags (podmanFlags) and its
// containers.conf and storage.conf, so nothing touches the system's Podman
// state (/var/lib/containers, /run/containers, /run/libpod, /run/runc,
// /dev/shm/libpod_lock, /etc/containers/networks). Two things are shared:
// the containers' cgroups sit under the host's libpod_parent cgroup (and go
// with the containers), and an image copied through the API (POST
// /images/create, /images/load) would record its blobs in
// /var/lib/containers/cache; BusyboxImage keeps its import out of there.
//
// Containers get no network unless a test asks for one (netns = "none"): a
// network would have netavark set up a bridge and firewall rules on the host.
// Pods need --infra=false, as there is no catatonit for an infra container.
//
// Linux only.
type Podman struct {
	Host string // "unix:///tmp/dx123/podman.sock", usable as DOCKER_HOST / client.WithHost / --docker.host
	// Version is Podman's ("4.3.1"), APIVersion the Docker API version it
	// serves ("1.41"), from GET /version.
	Version, APIVersion string

	dir  string
	lock *os.File // flocked while the Podman is in use; see sweepStalePodman
	sock string
	bin  string   // podman
	runc string   // the runc that bin/runc wraps
	env  []string // for the service and the CLI

	mu      sync.Mutex // guards service and started
	service *proc
	started bool // the service answered once: the CLI works, containers may exist

	imgMu sync.Mutex
	image string
}

// podmanImageRef is imageRef as Podman names it.
const podmanImageRef = "localhost/" + imageRef

// StartPodman starts a private Podman service and registers a t.Cleanup
// that removes all its containers and pods, stops it and deletes its
// directory. It skips the test (or fails it when EnvRequire is "1") if
// podman is unavailable or its service won't start.
func StartPodman(tb testing.TB) *Podman {
	tb.Helper()
	if os.Geteuid() != 0 {
		unavailable(tb, "podman needs root (euid %d)", os.Geteuid())
	}
	searchPath := withSbin(os.Getenv("PATH"))
	bin, err := lookPath("podman", searchPath)
	if err != nil {
		unavailable(tb, "%v (apt-get install podman)", err)
	}
	runc, err := lookPath("runc", searchPath)
	if err != nil {
		unavailable(tb, "%v (apt-get install podman)", err)
	}

	sweepStalePodman(tb, runc)
	dir, lock, err := newDir()
	if err != nil {
		tb.Fatalf("testdaemon: %v", err)
	}
	p := &Podman{
		Host: "unix://" + filepath.Join(dir, "podman.sock"),
		dir:  dir,
		lock: lock,
		sock: filepath.Join(dir, "podman.sock"),
		bin:  bin,
		runc: runc,
	}
	tb.Cleanup(func() { p.cleanup(tb) })
	if err := p.writeConfigs(); err != nil {
		tb.Fatalf("testdaemon: %v", err)
	}

	begin := time.Now()
	p.mu.Lock()
	err = p.startLocked()
	p.mu.Unlock()
	if err != nil {
		unavailable(tb, "start private podman service: %v", err)
	}
	if p.Version, p.APIVersion, err = p.serverVersion(); err != nil {
		tb.Fatalf("testdaemon: %v", err)
	}
	tb.Logf("testdaemon: podman %s (API %s) ready on %s after %v", p.Version, p.APIVersion, p.Host, time.Since(begin).Round(time.Millisecond))
	return p
}

func (p *Podman) path(elem ...string) string {
	return filepath.Join(append([]string{p.dir}, elem...)...)
}

// podmanFlags are the global flags of the service and of every CLI call.
// Podman passes them on to the exit command that conmon runs when a
// container exits (podman container cleanup); what has no flag is in
// containers.conf and storage.conf, found through the environment, which
// conmon passes on too.
func (p *Podman) podmanFlags() []string {
	return []string{
		"--root", p.path("root"),
		"--runroot", p.path("run"),
		"--tmpdir", p.path("tmp"), // locks, exit files, the events log
		"--events-backend=file",
		"--cgroup-manager=cgroupfs", // there is no systemd
		"--network-config-dir", p.path("net"),
	}
}

func (p *Podman) writeConfigs() error {
	for _, sub := range []string{"bin", "tmp", "net"} {
		if err := os.Mkdir(p.path(sub), 0o700); err != nil {
			return err
		}
	}
	// Podman runs runc with its default --root, the system's /run/runc;
	// --runtime-flag root=... would not reach the exit command. So the
	// runtime is a wrapper that sets it.
	wrapper := fmt.Sprintf("#!/bin/sh\nexec %s --root %s \"$@\"\n", shellQuote(p.runc), shellQuote(p.path("runc")))
	if err := os.WriteFile(p.path("bin", "runc"), []byte(wrapper), 0o700); err != nil {
		return err
	}
	var nofile, nproc syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &nofile); err != nil {
		return fmt.Errorf("getrlimit nofile: %w", err)
	}
	if err := syscall.Getrlimit(rlimitNproc, &nproc); err != nil {
		return fmt.Errorf("getrlimit nproc: %w", err)
	}
	nprocMax := min(nproc.Max, 32768)
	// Podman's default ulimits (nofile=1048576) exceed a lower hard limit,
	// and runc fails to set them; ours are the hard limits (nproc at most
	// 32768). netns "none": see Podman. lock_type "file" keeps the locks in
	// the tmpdir instead of the shared /dev/shm/libpod_lock.
	// image_copy_tmp_dir is otherwise /var/tmp.
	conf := fmt.Sprintf(`[containers]
default_ulimits = ["nofile=%d:%d", "nproc=%d:%d"]
netns = "none"

[engine]
lock_type = "file"
runtime = "runc"
image_copy_tmp_dir = %q
events_logfile_path = %q

[engine.runtimes]
runc = [%q]
`, nofile.Max, nofile.Max, nprocMax, nprocMax, p.path("tmp"), p.eventsLog(), p.path("bin", "runc"))
	if err := os.WriteFile(p.path("containers.conf"), []byte(conf), 0o600); err != nil {
		return err
	}
	// Our own storage.conf keeps /etc/containers/storage.conf (options,
	// additional image stores) out. It must name a driver: overlay, unless
	// /tmp is itself an overlayfs (as in a container), which overlay cannot
	// sit on.
	driver := "overlay"
	var fs syscall.Statfs_t
	if err := syscall.Statfs(p.dir, &fs); err == nil && fs.Type == overlayfsMagic {
		driver = "vfs"
	}
	storage := fmt.Sprintf("[storage]\ndriver = %q\ngraphroot = %q\nrunroot = %q\n", driver, p.path("root"), p.path("run"))
	if err := os.WriteFile(p.path("storage.conf"), []byte(storage), 0o600); err != nil {
		return err
	}
	p.env = podmanEnv(p.path("containers.conf"), p.path("storage.conf"), p.path("tmp"))
	return nil
}

const (
	overlayfsMagic = 0x794c7630 // statfs f_type
	rlimitNproc    = 6          // RLIMIT_NPROC, which package syscall does not name
)

// eventsLog is the file events backend's log, Podman's default place for it
// under the tmpdir, set explicitly.
func (p *Podman) eventsLog() string { return p.path("tmp", "events", "events.log") }

// podmanEnv is the test's environment minus anything that would point
// Podman elsewhere (CONTAINER_HOST, CONTAINERS_REGISTRIES_CONF,
// _CONTAINERS_ROOTLESS_UID, ...), plus our configs and a private TMPDIR
// (where image imports stage their layers).
func podmanEnv(conf, storage, tmp string) []string {
	var env []string
	for _, kv := range cleanEnv() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "CONTAINER") || strings.HasPrefix(k, "_CONTAINERS_") || strings.HasPrefix(k, "PODMAN_") ||
			strings.HasPrefix(k, "XDG_") || k == "TMPDIR" || k == "REGISTRY_AUTH_FILE" {
			continue
		}
		env = append(env, kv)
	}
	return append(env,
		"PATH="+withSbin(os.Getenv("PATH")),
		"CONTAINERS_CONF="+conf,
		"CONTAINERS_STORAGE_CONF="+storage,
		"TMPDIR="+tmp)
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// startLocked starts the service and waits until it answers /_ping. p.mu
// must be held.
func (p *Podman) startLocked() error {
	// The service removes its socket when it exits, but not when killed.
	if err := os.Remove(p.sock); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	args := append(p.podmanFlags(), "system", "service", "--time=0", p.Host)
	pr, err := startProc(p.bin, args, p.env, p.path("podman.log"))
	if err != nil {
		return err
	}
	p.service = pr
	// waitReady and logTail only need the directory.
	if err := (&Daemon{dir: p.dir}).waitReady(pr, "podman", p.ping); err != nil {
		return err
	}
	p.started = true
	return nil
}

func (p *Podman) logTail() string { return (&Daemon{dir: p.dir}).logTail("podman.log") }

// StopService stops the service, for reconnect tests. Containers keep
// running: conmon, not the service, holds them.
func (p *Podman) StopService(tb testing.TB) {
	tb.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.service == nil || p.service.exited() {
		tb.Fatalf("testdaemon: StopService: the podman service is not running")
	}
	if err := p.service.stop(stopGrace); err != nil {
		tb.Fatalf("testdaemon: stop podman service: %v\n%s", err, p.logTail())
	}
}

// StartService starts the stopped service again on the same socket and
// waits until it answers /_ping.
func (p *Podman) StartService(tb testing.TB) {
	tb.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.service != nil && !p.service.exited() {
		tb.Fatalf("testdaemon: StartService: the podman service is running")
	}
	if err := p.startLocked(); err != nil {
		tb.Fatalf("testdaemon: restart podman service: %v", err)
	}
}

// Podman runs the podman CLI (locally, not through the service) with the
// private flags and returns its trimmed stdout. A non-zero exit fails the
// test, showing stderr.
func (p *Podman) Podman(tb testing.TB, args ...string) string {
	tb.Helper()
	var stdout, stderr strings.Builder
	if err := p.run(&stdout, &stderr, args...); err != nil {
		tb.Fatalf("testdaemon: %v\nstderr: %s\nstdout: %s", err, stderr.String(), stdout.String())
	}
	return strings.TrimSpace(stdout.String())
}

// PodmanErr is like Podman but returns the trimmed combined output and the
// error (an *exec.ExitError can be reached with errors.As).
func (p *Podman) PodmanErr(args ...string) (string, error) {
	var out strings.Builder
	err := p.run(&out, &out, args...)
	return strings.TrimSpace(out.String()), err
}

func (p *Podman) run(stdout, stderr io.Writer, args ...string) error {
	return p.runWrapped(nil, stdout, stderr, args...)
}

// runWrapped runs podman with the private flags, through wrap (a command
// that ends by running its arguments) if given.
func (p *Podman) runWrapped(wrap []string, stdout, stderr io.Writer, args ...string) error {
	argv := append(append(append(wrap[:len(wrap):len(wrap)], p.bin), p.podmanFlags()...), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = p.dir // conmon inherits it, and writes a container's "oom" file there
	cmd.Env = p.env
	cmd.Stdout = stdout
	cmd.Stderr = stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("podman %s: %w", strings.Join(args, " "), err)
	}
	return nil
}

// BusyboxImage imports, once per Podman, the image of Daemon.BusyboxImage
// (a static busybox and its applet symlinks, CMD ["sh"]) and returns its
// reference, "localhost/dx-busybox:test".
func (p *Podman) BusyboxImage(tb testing.TB) string {
	tb.Helper()
	p.imgMu.Lock()
	defer p.imgMu.Unlock()
	if p.image != "" {
		return p.image
	}
	tarPath := p.path("tmp", "busybox.tar")
	if err := os.WriteFile(tarPath, busyboxImageTar(tb), 0o600); err != nil {
		tb.Fatalf("testdaemon: %v", err)
	}
	defer os.Remove(tarPath)
	// Every image copy records its blobs in /var/lib/containers/cache
	// (4.3.1 has no setting for that place), so the import runs in a mount
	// namespace of its own with a tmpfs over /var/lib.
	var wrap []string
	if unshare, err := lookPath("unshare", withSbin(os.Getenv("PATH"))); err == nil {
		wrap = []string{unshare, "--mount", "--propagation", "private", "--", "sh", "-c", `mount -t tmpfs dx-varlib /var/lib && exec "$@"`, "sh"}
	} else {
		tb.Logf("testdaemon: %v: podman import will write to /var/lib/containers/cache", err)
	}
	var stdout, stderr strings.Builder
	if err := p.runWrapped(wrap, &stdout, &stderr, "import", "--quiet", "--change", `CMD ["sh"]`, tarPath, podmanImageRef); err != nil {
		tb.Fatalf("testdaemon: %v\nstderr: %s", err, stderr.String())
	}
	p.image = podmanImageRef
	return p.image
}

// States maps each container's name to its state ("created", "running",
// "paused", "exited", ...), as `podman ps -a` says.
func (p *Podman) States(tb testing.TB) map[string]string {
	tb.Helper()
	out := p.Podman(tb, "ps", "-a", "--format", "json")
	var ctrs []struct {
		Names []string
		State string
	}
	if err := json.Unmarshal([]byte(out), &ctrs); err != nil {
		tb.Fatalf("testdaemon: podman ps: %v: %s", err, out)
	}
	states := make(map[string]string, len(ctrs))
	for _, c := range ctrs {
		for _, n := range c.Names {
			states[n] = c.State
		}
	}
	return states
}

// LastEventNano is the time, in Unix nanoseconds, of the newest event in the
// service's events log, 0 if there is none: the timeNano that an API client
// gets for it (GET /events, like `podman events`, reads that log, whose
// times have nanoseconds). Newest means latest: the log is in the order the
// events were written, which is not always the order of their times (the
// image "pull" event of a `podman run` comes after the container's "create"
// and "start", with an earlier time).
func (p *Podman) LastEventNano(tb testing.TB) int64 {
	tb.Helper()
	out := p.Podman(tb, "events", "--stream=false", "--format", "{{.Time.UnixNano}}")
	var last int64
	for _, f := range strings.Fields(out) {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			tb.Fatalf("testdaemon: podman events: %v", err)
		}
		last = max(last, n)
	}
	return last
}

// ping checks that the service answers GET /_ping.
func (p *Podman) ping() error {
	_, err := p.get(context.Background(), "/_ping", 512)
	return err
}

// API GETs path (e.g. "/v1.41/containers/json?all=1") from the service's
// Docker-compatible API and returns the body of a 2xx answer; anything else
// fails the test. A GET that streams (/events without an until in the past)
// may take up to a minute.
func (p *Podman) API(tb testing.TB, path string) []byte {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	body, err := p.get(ctx, path, 16<<20)
	if err != nil {
		tb.Fatalf("testdaemon: %v", err)
	}
	return body
}

func (p *Podman) serverVersion() (version, apiVersion string, err error) {
	body, err := p.get(context.Background(), "/version", 64<<10)
	if err != nil {
		return "", "", err
	}
	var v struct{ Version, APIVersion string } // "ApiVersion" in the JSON
	if err := json.Unmarshal(body, &v); err != nil {
		return "", "", fmt.Errorf("GET /version: %w: %s", err, body)
	}
	if v.Version == "" || v.APIVersion == "" {
		return "", "", fmt.Errorf("GET /version: no Version or ApiVersion: %s", body)
	}
	return v.Version, v.APIVersion, nil
}

// get GETs path over the service's socket and returns up to limit bytes of
// the body of a 2xx answer. Without a deadline in ctx it gives up after 5s.
func (p *Podman) get(ctx context.Context, path string, limit int64) ([]byte, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
	}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var dl net.Dialer
			return dl.DialContext(ctx, "unix", p.sock)
		},
		DisableKeepAlives: true, // leave no idle connections (and goroutines) behind
	}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://podman"+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", path, err)
	}
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("GET %s: %s: %s", path, resp.Status, body)
	}
	return body, nil
}

func (p *Podman) cleanup(tb testing.TB) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if tb.Failed() && p.service != nil {
		tb.Logf("testdaemon: %s", p.logTail())
	}
	// The CLI needs no service. Where the service never started there is
	// nothing to remove, and podman may be the reason it did not start.
	if p.started {
		if out, err := p.PodmanErr("rm", "--all", "--force", "--time", "0"); err != nil {
			tb.Errorf("testdaemon: %v: %s", err, out)
		}
		if out, err := p.PodmanErr("pod", "rm", "--all", "--force"); err != nil {
			tb.Errorf("testdaemon: %v: %s", err, out)
		}
	}
	if p.service != nil {
		if err := p.service.stop(stopGrace); err != nil {
			tb.Errorf("testdaemon: stop podman service: %v", err)
		}
	}
	// conmon runs a removed container's exit command (podman container
	// cleanup) after rm has returned; let them finish rather than kill them
	// halfway.
	if left := waitProcsUnder(p.dir, 10*time.Second); len(left) > 0 {
		tb.Logf("testdaemon: processes using %s still there after 10s: %v; killing them", p.dir, left)
	}
	if err := errors.Join(reapPodman(p.dir, p.runc)...); err != nil {
		tb.Errorf("testdaemon: %v", err)
	}
	p.lock.Close()
}

// procsUnder lists the processes, other than this one, whose command line
// mentions dir, as killStrays does.
func procsUnder(dir string) []int {
	needle := dir + "/"
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		if cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline")); err == nil && strings.Contains(string(cmdline), needle) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// waitProcsUnder waits until no process mentions dir and returns those that
// still do after timeout.
func waitProcsUnder(dir string, timeout time.Duration) []int {
	deadline := time.Now().Add(timeout)
	for {
		left := procsUnder(dir)
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		time.Sleep(pollEvery)
	}
}

// reapPodman removes what is left of a Podman whose service is gone:
// conmons (and the exit commands they started), containers that were not
// removed, their mounts and finally dir itself. conmon goes first, so that
// no exit command starts while the containers are deleted.
func reapPodman(dir, runc string) []error {
	var errs []error
	if err := killStrays(dir); err != nil {
		errs = append(errs, err)
	}
	root := filepath.Join(dir, "runc")
	ents, _ := os.ReadDir(root)
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		if out, err := exec.Command(runc, "--root", root, "delete", "--force", e.Name()).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("runc delete %s: %v: %s", e.Name(), err, strings.TrimSpace(string(out))))
		}
	}
	errs = append(errs, unmountUnder(dir)...)
	if err := os.RemoveAll(dir); err != nil {
		errs = append(errs, err)
	}
	return errs
}

// sweepStalePodman reaps the directories of Podmans whose test process died
// without cleanup; see sweepStale, which leaves them alone (they have a
// containers.conf, not a containerd.toml). The owner holds the lock before
// it writes containers.conf.
func sweepStalePodman(tb testing.TB, runc string) {
	tb.Helper()
	sweepStaleDirs(tb, "containers.conf", func(dir string) []error { return reapPodman(dir, runc) })
}
