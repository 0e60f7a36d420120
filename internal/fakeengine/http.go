package fakeengine

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/common"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/api/types/system"
)

const kernelVersion = "6.1.0-fake-amd64"

var (
	versionPrefix = regexp.MustCompile(`^/v([0-9]+\.[0-9]+)(/|$)`)
	// libpodPrefix is Podman's own API version, such as /v4.3.1/libpod/.
	libpodPrefix = regexp.MustCompile(`^/v[0-9]+\.[0-9]+\.[0-9]+(/libpod/)`)
)

// splitVersion splits "/v1.41/info" into "1.41" and "/info", and
// "/v4.3.1/libpod/x" into "" and "/libpod/x".
func splitVersion(path string) (version, rest string) {
	if m := libpodPrefix.FindStringSubmatch(path); m != nil {
		return "", path[len(m[0])-len(m[1]):]
	}
	m := versionPrefix.FindStringSubmatch(path)
	if m == nil {
		return "", path
	}
	return m[1], path[len(m[0])-len(m[2]):]
}

// routeKey names a path for Requests: a container's or pod's id or name
// becomes {id}.
func routeKey(path string) string {
	for _, prefix := range []string{"/containers/", "/libpod/containers/", "/libpod/pods/"} {
		rest, ok := strings.CutPrefix(path, prefix)
		if !ok {
			continue
		}
		if rest == "json" {
			return path
		}
		if _, tail, found := strings.Cut(rest, "/"); found {
			return prefix + "{id}/" + tail
		}
		return prefix + "{id}"
	}
	return path
}

// versionLess compares dotted API versions numerically.
func versionLess(a, b string) bool {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := range max(len(as), len(bs)) {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			return x < y
		}
	}
	return false
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError answers as dockerd does; the client turns the status into an
// errdefs class (404 is NotFound) and shows the message.
func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, common.ErrorResponse{Message: msg})
}

// ServeHTTP answers the Engine API with or without the /vX.Y prefix.
func (e *Engine) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	version, path := splitVersion(r.URL.Path)
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		writeError(w, http.StatusServiceUnavailable, "fakeengine: closed")
		return
	}
	// Add under the lock, before Close can see closed: Close waits for it.
	e.handlers.Add(1)
	e.requests[r.Method+" "+routeKey(path)]++
	e.total++
	e.mu.Unlock()
	defer e.handlers.Done()

	h := w.Header()
	e.dialect.headers(e, h)
	if version == "" {
		version = e.opts.APIVersion
	} else if versionLess(e.opts.APIVersion, version) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("client version %s is too new. Maximum supported API version is %s", version, e.opts.APIVersion))
		return
	}

	if path == "/_ping" && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		e.dialect.pingHeaders(h)
		h.Set("Content-Type", "text/plain; charset=utf-8")
		if r.Method == http.MethodGet {
			_, _ = w.Write([]byte("OK"))
		}
		return
	}
	if r.Method != http.MethodGet {
		e.dialect.notFound(w, "")
		return
	}
	switch path {
	case "/version":
		writeJSON(w, http.StatusOK, e.dialect.version(e))
	case "/info":
		writeJSON(w, http.StatusOK, e.info())
	case "/events":
		e.serveEvents(w, r, version)
	case "/containers/json":
		e.serveList(w, r, version)
	default:
		if ref, ok := inspectRef(path, "/containers/"); ok {
			e.serveInspect(w, r, ref)
			return
		}
		if !e.dialect.serve(e, w, r, path) {
			e.dialect.notFound(w, "")
		}
	}
}

// dockerd sets these on every answer.
func (docker) headers(e *Engine, h http.Header) {
	h.Set("Api-Version", e.opts.APIVersion)
	h.Set("Docker-Experimental", "false")
	h.Set("Ostype", "linux")
	h.Set("Server", "Docker/"+e.opts.Version+" (linux)")
}

func (docker) pingHeaders(h http.Header) {
	h.Set("Cache-Control", "no-cache, no-store, must-revalidate")
	h.Set("Pragma", "no-cache")
	h.Set("Swarm", "inactive")
}

func (docker) notFound(w http.ResponseWriter, ref string) {
	if ref == "" {
		writeError(w, http.StatusNotFound, "page not found")
		return
	}
	writeError(w, http.StatusNotFound, "No such container: "+ref)
}

func (docker) serve(*Engine, http.ResponseWriter, *http.Request, string) bool { return false }

// inspectRef returns the id or name in prefix+"{ref}/json".
func inspectRef(path, prefix string) (string, bool) {
	ref, ok := strings.CutPrefix(path, prefix)
	if !ok {
		return "", false
	}
	ref, ok = strings.CutSuffix(ref, "/json")
	return ref, ok && ref != "" && !strings.Contains(ref, "/")
}

// wait sleeps d, or less if the request or the engine ends first.
func (e *Engine) wait(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
	case <-e.closing:
	}
	return false
}

// fault applies a hang, then a failure, injected for list or inspect. It
// returns false when the request has been answered or abandoned.
func (e *Engine) fault(w http.ResponseWriter, r *http.Request, what string, status *int, hang *chan struct{}) bool {
	e.mu.Lock()
	lifted := *hang
	e.mu.Unlock()
	if lifted != nil {
		select {
		case <-lifted:
		case <-r.Context().Done():
			return false
		case <-e.closing:
			return false
		}
	}
	e.mu.Lock()
	code := *status
	e.mu.Unlock()
	if code != 0 {
		writeError(w, code, "fakeengine: injected "+what+" failure")
		return false
	}
	return true
}

// boolValue reads a boolean query value as dockerd does.
func boolValue(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "", "0", "no", "false", "none":
		return false
	}
	return true
}

func (e *Engine) serveList(w http.ResponseWriter, r *http.Request, version string) {
	if !e.wait(r.Context(), e.opts.ListLatency) || !e.fault(w, r, "list", &e.failList, &e.hangList) {
		return
	}
	q := r.URL.Query()
	limit := 0
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("invalid limit %q", v))
			return
		}
		limit = n
	}
	lf, err := newListFilter(q.Get("filters"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	// dockerd lists stopped containers with all, a limit or a status filter.
	all := boolValue(q.Get("all")) || limit > 0 || lf.allImplied
	withHealth := !versionLess(version, "1.52")

	e.mu.Lock()
	now := e.clock()
	picked := make([]*ctr, 0, len(e.containers))
	for _, c := range e.containers {
		e.settle(c, now)
		if (all || c.running()) && lf.match(c) {
			picked = append(picked, c)
		}
	}
	// Newest first, as dockerd lists them.
	slices.SortFunc(picked, func(a, b *ctr) int { return cmp.Compare(b.seq, a.seq) })
	if limit > 0 && len(picked) > limit {
		picked = picked[:limit]
	}
	entries := make([][]byte, len(picked))
	size := 3
	for i, c := range picked {
		entries[i] = e.summaryJSON(c, now, withHealth)
		size += len(entries[i]) + 1
	}
	e.mu.Unlock()

	body := make([]byte, 0, size)
	body = append(body, '[')
	for i, b := range entries {
		if i > 0 {
			body = append(body, ',')
		}
		body = append(body, b...)
	}
	body = append(body, ']', '\n')
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

func (e *Engine) serveInspect(w http.ResponseWriter, r *http.Request, ref string) {
	e.inspect(w, r, ref, func(c *ctr) any { return e.inspectResponse(c) })
}

// inspect answers an inspect of the container ref with render(c), which is
// called with e.mu held. Latency and inspect faults apply.
func (e *Engine) inspect(w http.ResponseWriter, r *http.Request, ref string, render func(*ctr) any) {
	if !e.wait(r.Context(), e.opts.InspectLatency) || !e.fault(w, r, "inspect", &e.failInspect, &e.hangInspect) {
		return
	}
	e.mu.Lock()
	c := e.lookup(ref)
	if c == nil || e.vanished[c.id] {
		e.mu.Unlock()
		e.dialect.notFound(w, ref)
		return
	}
	e.settle(c, e.clock())
	resp := render(c)
	e.mu.Unlock()
	writeJSON(w, http.StatusOK, resp)
}

// arch is the machine name dockerd reports, as uname -m gives it.
func arch() string {
	switch runtime.GOARCH {
	case "amd64":
		return "x86_64"
	case "arm64":
		return "aarch64"
	}
	return runtime.GOARCH
}

func (e *Engine) info() system.Info {
	e.mu.Lock()
	defer e.mu.Unlock()
	info := system.Info{
		ID:                 "FAKE:ENGI:NE00:0000:0000:0000:0000:0000:0000:0000:0000:0000",
		Containers:         len(e.containers),
		Images:             len(e.imageIDs),
		Driver:             "overlay2",
		DriverStatus:       [][2]string{{"Backing Filesystem", "extfs"}, {"Supports d_type", "true"}},
		MemoryLimit:        true,
		SwapLimit:          true,
		CPUCfsPeriod:       true,
		CPUCfsQuota:        true,
		CPUShares:          true,
		CPUSet:             true,
		PidsLimit:          true,
		IPv4Forwarding:     true,
		NFd:                40 + len(e.open),
		NGoroutines:        30 + len(e.open),
		SystemTime:         e.clock().Format(time.RFC3339Nano),
		LoggingDriver:      "json-file",
		CgroupDriver:       "systemd",
		CgroupVersion:      "2",
		NEventsListener:    len(e.streams),
		KernelVersion:      kernelVersion,
		OperatingSystem:    "Debian GNU/Linux 12 (bookworm)",
		OSVersion:          "12",
		OSType:             "linux",
		Architecture:       arch(),
		IndexServerAddress: "https://index.docker.io/v1/",
		NCPU:               runtime.NumCPU(),
		MemTotal:           16 << 30,
		DockerRootDir:      "/var/lib/docker",
		Name:               "fakeengine",
		ServerVersion:      e.opts.Version,
		DefaultRuntime:     "runc",
		Swarm:              swarm.Info{LocalNodeState: swarm.LocalNodeStateInactive},
		SecurityOptions:    []string{"name=seccomp,profile=builtin", "name=cgroupns"},
		Warnings:           []string{},
	}
	for _, c := range e.containers {
		switch c.state {
		case "running", "restarting":
			info.ContainersRunning++
		case "paused":
			info.ContainersPaused++
		default:
			info.ContainersStopped++
		}
	}
	return info
}

func (docker) version(e *Engine) any {
	const minAPI, commit, built = "1.12", "fakeeng", "2023-04-14T10:32:03.000000000+00:00"
	return system.VersionResponse{
		Platform: system.PlatformInfo{Name: "Docker Engine - Community"},
		Components: []system.ComponentVersion{{
			Name:    "Engine",
			Version: e.opts.Version,
			Details: map[string]string{
				"ApiVersion": e.opts.APIVersion, "Arch": runtime.GOARCH, "BuildTime": built,
				"Experimental": "false", "GitCommit": commit, "GoVersion": runtime.Version(),
				"KernelVersion": kernelVersion, "MinAPIVersion": minAPI, "Os": "linux",
			},
		}},
		Version:       e.opts.Version,
		APIVersion:    e.opts.APIVersion,
		MinAPIVersion: minAPI,
		Os:            "linux",
		Arch:          runtime.GOARCH,
		GitCommit:     commit,
		GoVersion:     runtime.Version(),
		KernelVersion: kernelVersion,
		BuildTime:     built,
	}
}

// Requests counts the requests served by "METHOD /path", without the
// version prefix and with a container's or pod's id or name as {id}:
// "GET /containers/json", "GET /containers/{id}/json", "HEAD /_ping", and
// Podman's "GET /libpod/containers/{id}/json", "GET /libpod/pods/{id}/json".
func (e *Engine) Requests() map[string]int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return maps.Clone(e.requests)
}

// TotalRequests counts every request served.
func (e *Engine) TotalRequests() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.total
}

// ResetRequests sets the request counts to zero.
func (e *Engine) ResetRequests() {
	e.mu.Lock()
	defer e.mu.Unlock()
	clear(e.requests)
	e.total = 0
}
