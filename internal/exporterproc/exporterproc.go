// Package exporterproc builds the exporter binary and runs it as a user
// would: on a free port, with its output kept, and stopped with SIGTERM,
// which it must answer by exiting 0.
package exporterproc

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/docker-exporter/docker_exporter/internal/freeport"
	"github.com/docker-exporter/docker_exporter/internal/logbuf"
	"github.com/docker-exporter/docker_exporter/internal/scrape"
	"github.com/docker-exporter/docker_exporter/internal/wait"
)

// ExitTimeout bounds the exporter's exit after SIGTERM or a bad flag.
const ExitTimeout = 20 * time.Second

// binDir holds the binaries Build made; RunTests removes it.
var binDir struct {
	once sync.Once
	path string
	err  error
}

type build struct {
	once sync.Once
	path string
	err  error
}

var raceBuild, plainBuild build

// RunTests runs the tests of m and then removes the binaries Build made:
// call it from TestMain, as os.Exit(exporterproc.RunTests(m)).
func RunTests(m *testing.M) int {
	code := m.Run()
	if binDir.path != "" {
		os.RemoveAll(binDir.path)
	}
	return code
}

// Build builds the main package in the working directory, the exporter
// under test, once per run: with the race detector for the tests (a race in
// the child makes it exit 66, which Stop's exit code check catches), without
// it for the benchmarks.
func Build(tb testing.TB, race bool) string {
	tb.Helper()
	binDir.once.Do(func() { binDir.path, binDir.err = os.MkdirTemp("", "docker_exporter-e2e") })
	if binDir.err != nil {
		tb.Fatal(binDir.err)
	}
	b, name, flags := &plainBuild, "docker_exporter-norace", []string(nil)
	if race {
		b, name, flags = &raceBuild, "docker_exporter", []string{"-race"}
	}
	b.once.Do(func() {
		path := filepath.Join(binDir.path, name)
		args := append(append([]string{"build"}, flags...), "-o", path, ".")
		out, err := exec.Command("go", args...).CombinedOutput()
		if err != nil {
			b.err = fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
			return
		}
		b.path = path
	})
	if b.err != nil {
		tb.Fatal(b.err)
	}
	return b.path
}

// Exporter is a running exporter binary.
type Exporter struct {
	*scrape.Target
	Output *logbuf.Buffer // stdout and stderr

	cmd     *exec.Cmd
	exited  chan struct{} // closed once the process has exited; then waitErr is set
	waitErr error
	retired bool // exited before serving (port taken) and replaced
}

// Start runs bin with args plus a free listen address and debug logging,
// waits until /metrics answers, and registers a cleanup that SIGTERMs it and
// fails the test unless it exits 0 in time.
func Start(tb testing.TB, bin string, args ...string) *Exporter {
	tb.Helper()
	return StartWith(tb, bin, "http", &http.Client{Timeout: 10 * time.Second}, args...)
}

// StartWith is Start for an exporter served otherwise (TLS, basic auth): the
// scheme of its URL and the client that can scrape it.
func StartWith(tb testing.TB, bin, scheme string, client *http.Client, args ...string) *Exporter {
	tb.Helper()
	for attempt := 1; ; attempt++ {
		e, portTaken := tryStart(tb, bin, scheme, client, args)
		if !portTaken {
			return e
		}
		// Another process took the free port between our probe and the
		// exporter's bind: try another.
		if attempt == 3 {
			tb.Fatalf("exporter could not bind a free port 3 times:\n%s", e.Output)
		}
	}
}

func tryStart(tb testing.TB, bin, scheme string, client *http.Client, args []string) (e *Exporter, portTaken bool) {
	tb.Helper()
	addr := freeport.Addr(tb)
	cmd := exec.Command(bin, append([]string{"--web.listen-address=" + addr, "--log.level=debug"}, args...)...)
	cmd.Env = Env()
	log := &logbuf.Buffer{}
	e = &Exporter{
		Target: &scrape.Target{URL: scheme + "://" + addr + "/metrics", Client: client, Log: func() string { return log.Tail(40) }},
		Output: log,
		cmd:    cmd,
		exited: make(chan struct{}),
	}
	cmd.Stdout, cmd.Stderr = log, log
	// If the test process dies without cleanup, the exporter goes too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start exporter: %v", err)
	}
	go func() {
		e.waitErr = cmd.Wait()
		close(e.exited)
	}()
	tb.Cleanup(func() { e.stop(tb) })

	wait.For(tb, wait.Timeout, "the exporter to serve "+e.URL, func() bool {
		select {
		case <-e.exited:
			if strings.Contains(log.String(), "address already in use") {
				e.retired, portTaken = true, true
				return true
			}
			tb.Fatalf("exporter exited before serving /metrics: %v\n%s", e.waitErr, log)
		default:
		}
		resp, err := e.Client.Get(e.URL)
		if err != nil {
			return false
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, log.String)
	return e, portTaken
}

// Pid is the exporter's process id.
func (e *Exporter) Pid() int { return e.cmd.Process.Pid }

// stop asserts a graceful shutdown: exit code 0 soon after SIGTERM.
func (e *Exporter) stop(tb testing.TB) {
	tb.Helper()
	defer e.Client.CloseIdleConnections()
	select {
	case <-e.exited:
		if !e.retired {
			tb.Errorf("exporter exited before the test ended: %v\n%s", e.waitErr, e.Output)
		}
		return
	default:
	}
	if err := e.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		tb.Errorf("SIGTERM exporter: %v", err)
	}
	select {
	case <-e.exited:
	case <-time.After(ExitTimeout):
		e.cmd.Process.Kill()
		<-e.exited
		tb.Errorf("exporter still running %v after SIGTERM; killed\n%s", ExitTimeout, e.Output)
		return
	}
	if e.waitErr != nil {
		tb.Errorf("exporter exited with %v after SIGTERM, want exit code 0 (graceful shutdown)\n%s", e.waitErr, e.Output)
	} else if tb.Failed() {
		tb.Logf("exporter output:\n%s", e.Output)
	}
}

// Env keeps DOCKER_* settings of the test's environment away from the
// exporter: the Docker client's (DOCKER_API_VERSION, TLS) and kingpin's flag
// defaults (DOCKER_EXPORTER_*). It gets only the flags the test gives.
func Env() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DOCKER_") {
			env = append(env, kv)
		}
	}
	return env
}
