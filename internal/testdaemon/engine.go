package testdaemon

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// The engines the tests run against, by environment variable (`make test`
// sets them; see the Makefile's engines target):
//   - EnvDockerd: the dockerd of the distribution's engine (Debian's 20.10),
//     by default the one on PATH or in an sbin directory;
//   - EnvCurrentDockerd and EnvCurrentRunc: the current Engine, built from
//     source, and the runc it needs, put first on its PATH.
//
// An engine whose binary is not there is skipped, or fails the test when
// EnvRequire is "1".
const (
	EnvDockerd        = "DOCKER_EXPORTER_DOCKERD"
	EnvCurrentDockerd = "DOCKER_EXPORTER_CURRENT_DOCKERD"
	EnvCurrentRunc    = "DOCKER_EXPORTER_CURRENT_RUNC"
)

// CurrentName is the name of the current Engine.
const CurrentName = "dockerd-current"

// Engine is a dockerd build to run a private daemon of.
type Engine struct {
	// Name says which engine a test ran on: the name of its subtest in
	// ForEachEngine, e.g. "dockerd-20.10" or "dockerd-current".
	Name string
	// Dockerd is the dockerd binary; "" if it was not found.
	Dockerd string
	// Runc, if set, is put first on the PATH of the daemon and its
	// containerd, so that their shims run it.
	Runc string
	// missing says why Dockerd (or Runc) is unavailable.
	missing string
}

// Default is the engine Start uses: EnvDockerd, else the dockerd on PATH,
// named after its version ("dockerd-20.10").
func Default() Engine {
	if p := os.Getenv(EnvDockerd); p != "" {
		return engineAt(p, "", EnvDockerd)
	}
	p, err := lookPath("dockerd", withSbin(os.Getenv("PATH")))
	if err != nil {
		return Engine{Name: "dockerd", missing: err.Error() + " (apt-get install docker.io)"}
	}
	return engineAt(p, "", "PATH")
}

// Current is the current Engine of EnvCurrentDockerd and EnvCurrentRunc.
func Current() Engine {
	dockerd, runc := os.Getenv(EnvCurrentDockerd), os.Getenv(EnvCurrentRunc)
	e := Engine{Name: CurrentName, Dockerd: dockerd, Runc: runc}
	switch {
	case dockerd == "" || runc == "":
		e.missing = fmt.Sprintf("%s and %s are not both set (make engines builds them; make test sets them)", EnvCurrentDockerd, EnvCurrentRunc)
	case !isExecutable(dockerd):
		e.missing = fmt.Sprintf("%s=%s is not an executable (make engines)", EnvCurrentDockerd, dockerd)
	case !isExecutable(runc):
		e.missing = fmt.Sprintf("%s=%s is not an executable (make engines)", EnvCurrentRunc, runc)
	}
	if e.missing != "" {
		e.Dockerd = ""
	}
	return e
}

// Engines are every engine the tests cover: Default and Current.
func Engines() []Engine { return []Engine{Default(), Current()} }

// ForEachEngine runs fn as a subtest per engine, named after it, so that the
// output says which daemon each ran on. fn calls t.Parallel if it may.
func ForEachEngine(t *testing.T, fn func(t *testing.T, eng Engine)) {
	t.Helper()
	for _, eng := range Engines() {
		t.Run(eng.Name, func(t *testing.T) { fn(t, eng) })
	}
}

// Start starts a private daemon of this engine; see the package's Start.
func (e Engine) Start(tb testing.TB) *Daemon {
	tb.Helper()
	return start(tb, e)
}

func engineAt(dockerd, runc, from string) Engine {
	e := Engine{Name: "dockerd", Dockerd: dockerd, Runc: runc}
	if !isExecutable(dockerd) {
		return Engine{Name: "dockerd", missing: fmt.Sprintf("dockerd %s (from %s) is not an executable", dockerd, from)}
	}
	if v, err := dockerdVersion(dockerd); err == nil {
		if m := majorMinor.FindString(v); m != "" {
			e.Name = "dockerd-" + m
		}
	}
	return e
}

var majorMinor = regexp.MustCompile(`\d+\.\d+`)

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// dockerdFacts caches what a dockerd binary says of itself.
var dockerdFacts = struct {
	sync.Mutex
	version, help map[string]string
}{version: map[string]string{}, help: map[string]string{}}

// dockerdVersion is the version `dockerd --version` prints: "20.10.24+dfsg1"
// of "Docker version 20.10.24+dfsg1, build 5d6db84".
func dockerdVersion(dockerd string) (string, error) {
	dockerdFacts.Lock()
	defer dockerdFacts.Unlock()
	if v, ok := dockerdFacts.version[dockerd]; ok {
		return v, nil
	}
	out, err := exec.Command(dockerd, "--version").Output()
	if err != nil {
		return "", fmt.Errorf("%s --version: %w", dockerd, err)
	}
	v := strings.TrimSpace(string(out))
	v = strings.TrimPrefix(v, "Docker version ")
	v, _, _ = strings.Cut(v, ",")
	dockerdFacts.version[dockerd] = v
	return v, nil
}

// dockerdHasFlag says whether dockerd's --help lists flag: the current
// Engine dropped some flags that 20.10 has (--oom-score-adjust).
func dockerdHasFlag(dockerd, flag string) bool {
	dockerdFacts.Lock()
	defer dockerdFacts.Unlock()
	help, ok := dockerdFacts.help[dockerd]
	if !ok {
		out, _ := exec.Command(dockerd, "--help").CombinedOutput()
		help = string(out)
		dockerdFacts.help[dockerd] = help
	}
	return strings.Contains(help, flag+" ") || strings.Contains(help, flag+"=")
}
