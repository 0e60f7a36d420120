package fakeengine

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/system"
)

// podman is the dialect of Podman's Docker-compatible service, as Podman
// 4.3.1 answers it, with the health-check timing of the version emulated.
//
// Its actions emit these events (dockerd's in brackets where they differ):
//
//	Create   create
//	Start    init, start                                  [start]
//	Die      die, cleanup                                 [die]
//	Kill     kill (no signal), die 137, cleanup           [kill, die]
//	Stop     die 143, cleanup                             [kill, die, stop]
//	OOM      die 137, cleanup: Podman has no oom event    [oom, die]
//	Crash    die, restart                                 [die]
//	Restart  die, restart, init, start                    [die, start]
//	Destroy  stop, die 143 if it runs; remove             [kill, die 137; destroy]
//	Rename   rename, without oldName
//	Health   health_status at every check, and exec_died  [health_status: <status> on a change]
//
// A container event's attributes are its labels, image, name,
// containerExitCode and podId (the pod's id, "" for none); die adds
// exitCode. As in Podman 4.3, containerExitCode is the exit code on die
// and, with no podId, the health check's on exec_died; it is "0" on the
// others. health_status carries the health in a top-level HealthStatus and
// no ": <status>" in the action.
//
// Lists show no health in the Status text; inspects always have
// State.Health, with Podman's log of the last five checks. The libpod
// endpoints /v<version>/libpod/containers/{id}/json and
// /v<version>/libpod/pods/{id}/json tell a container's pod, by id.
type podman struct {
	release string
	// eventFirst: before 4.7 Podman writes health_status as the check
	// starts, with the health from before it, and records the result once
	// the check is over, checkTakes later. From 4.7 on it records the result
	// and then writes the event, with the new health.
	eventFirst bool
	checkTakes time.Duration
}

func newPodman(o Options) *podman {
	return &podman{release: o.Podman, eventFirst: versionLess(o.Podman, "4.7"), checkTakes: o.HealthCheckDuration}
}

// Podman's own actions.
const (
	actionInit     events.Action = "init"
	actionCleanup  events.Action = "cleanup"
	actionExecDied events.Action = "exec_died"
)

// maxHealthLog is how many checks Podman keeps in State.Health.Log.
const maxHealthLog = 5

func (p *podman) headers(e *Engine, h http.Header) {
	h.Set("Api-Version", e.opts.APIVersion)
	h.Set("Libpod-Api-Version", p.release)
	h.Set("Server", "Libpod/"+p.release+" (linux)")
}

func (p *podman) pingHeaders(h http.Header) {
	h.Set("Cache-Control", "no-cache")
	h.Set("Docker-Experimental", "true")
	h.Set("Pragma", "no-cache")
}

func (p *podman) notFound(w http.ResponseWriter, ref string) {
	if ref == "" {
		http.Error(w, "Not Found", http.StatusNotFound) // Podman's router, in plain text
		return
	}
	writePodmanError(w, "no such container", fmt.Sprintf("no container with name or ID %q found: no such container", ref))
}

// writePodmanError answers 404 as Podman does; the moby client reads the
// message.
func writePodmanError(w http.ResponseWriter, cause, msg string) {
	writeJSON(w, http.StatusNotFound, struct {
		Cause    string `json:"cause"`
		Message  string `json:"message"`
		Response int    `json:"response"`
	}{cause, msg, http.StatusNotFound})
}

func (p *podman) serve(e *Engine, w http.ResponseWriter, r *http.Request, path string) bool {
	if ref, ok := inspectRef(path, "/libpod/containers/"); ok {
		e.inspect(w, r, ref, func(c *ctr) any { return p.libpodContainer(c) })
		return true
	}
	if ref, ok := inspectRef(path, "/libpod/pods/"); ok {
		e.servePod(w, ref)
		return true
	}
	return false
}

func (p *podman) version(e *Engine) any {
	const built = "1970-01-01T00:00:00Z"
	return system.VersionResponse{
		Platform: system.PlatformInfo{Name: "linux/" + runtime.GOARCH + "/debian-12"},
		Components: []system.ComponentVersion{{
			Name:    "Podman Engine",
			Version: p.release,
			Details: map[string]string{
				"APIVersion": p.release, "Arch": runtime.GOARCH, "BuildTime": built, "Experimental": "false",
				"GitCommit": "", "GoVersion": runtime.Version(), "KernelVersion": kernelVersion,
				"MinAPIVersion": "4.0.0", "Os": "linux",
			},
		}, {
			Name:    "Conmon",
			Version: "conmon version 2.1.6, commit: unknown",
			Details: map[string]string{"Package": "conmon_2.1.6+ds1-1_amd64"},
		}, {
			Name:    "OCI Runtime (runc)",
			Version: "runc version 1.1.5+ds1\ncommit: 1.1.5+ds1-1+deb12u1\nspec: 1.0.2-dev\ngo: go1.19.8\nlibseccomp: 2.5.4",
			Details: map[string]string{"Package": "runc_1.1.5+ds1-1+deb12u1_amd64"},
		}},
		Version:       p.release,
		APIVersion:    e.opts.APIVersion,
		MinAPIVersion: "1.24",
		Os:            "linux",
		Arch:          runtime.GOARCH,
		GoVersion:     runtime.Version(),
		KernelVersion: kernelVersion,
		BuildTime:     built,
	}
}

func (p *podman) listHealth(*ctr) string { return "" }

// inspectHealth is there even without a health check: {"Status":"",
// "FailingStreak":0,"Log":null}.
func (p *podman) inspectHealth(c *ctr) *container.Health {
	h := &container.Health{Status: container.HealthStatus(c.health), FailingStreak: c.failingStreak}
	for _, r := range c.healthLog {
		r := *r
		h.Log = append(h.Log, &r)
	}
	return h
}

func (p *podman) attrs(c *ctr, action events.Action, extra map[string]string) map[string]string {
	attrs := make(map[string]string, len(c.labels)+5)
	maps.Copy(attrs, c.labels)
	attrs["image"], attrs["name"] = c.image, c.name
	attrs["containerExitCode"], attrs["podId"] = "0", c.podID
	switch action {
	case events.ActionDie:
		attrs["containerExitCode"], attrs["exitCode"] = extra["exitCode"], extra["exitCode"]
	case actionExecDied:
		attrs["containerExitCode"], attrs["podId"] = extra["exitCode"], ""
	}
	return attrs
}

func (p *podman) start(e *Engine, c *ctr) {
	e.emit(c, e.tick(), actionInit, nil)
	streak := c.failingStreak
	e.started(c)
	c.failingStreak = streak // Podman keeps it, and the log, across starts
}

func (p *podman) die(e *Engine, c *ctr, code int, restarting bool) {
	e.died(c, code, restarting)
	next := actionCleanup
	if restarting {
		next = events.ActionRestart
	}
	e.emit(c, e.tick(), next, nil)
}

func (p *podman) kill(e *Engine, c *ctr) {
	e.emit(c, e.tick(), events.ActionKill, nil)
	p.die(e, c, 137, false)
}

func (p *podman) stop(e *Engine, c *ctr) { p.die(e, c, 143, false) }

func (p *podman) oom(e *Engine, c *ctr) {
	c.oomKilled = true
	c.changed()
	p.die(e, c, 137, false)
}

// destroy is `podman rm -f`, which stops a running container first.
func (p *podman) destroy(e *Engine, c *ctr) {
	if c.state == "running" || c.state == "paused" {
		e.emit(c, e.tick(), events.ActionStop, nil)
		e.died(c, 143, false)
	}
	e.remove(c)
	e.emit(c, e.tick(), events.ActionRemove, nil)
}

// health runs one check: its exec ends with exit code 0 for healthy, 1
// otherwise ("starting" is a failure within the start period).
func (p *podman) health(e *Engine, c *ctr, status string) {
	code := "1"
	switch status {
	case "healthy":
		code = "0"
	case "unhealthy", "starting":
	default:
		panic("fakeengine: invalid health " + status)
	}
	if pending := c.pending; pending != nil {
		// A check starts once the previous one is over.
		end := e.clock()
		if end.After(pending.due) {
			end = pending.due
		}
		c.record(pending.status, pending.start, end)
	}
	if p.eventFirst {
		at := e.tick()
		p.emitHealth(e, c, at)
		e.emit(c, e.tick(), actionExecDied, map[string]string{"exitCode": code})
		c.pending = &pendingHealth{status: status, start: at.Add(-time.Millisecond), due: at.Add(p.checkTakes)}
		return
	}
	e.emit(c, e.tick(), actionExecDied, map[string]string{"exitCode": code})
	end := e.clock()
	c.record(status, end.Add(-p.checkTakes), end)
	p.emitHealth(e, c, e.tick())
}

// emitHealth publishes health_status with c's health as Podman shows it.
func (p *podman) emitHealth(e *Engine, c *ctr, at time.Time) {
	m := e.containerEvent(c, at, events.ActionHealthStatus, nil)
	m.HealthStatus = c.health
	e.publish(m)
}

// pendingHealth is the result of a check that Podman has not recorded yet;
// it shows from due on.
type pendingHealth struct {
	status     string
	start, due time.Time
}

// record writes a check's result as Podman does: the health, the failing
// streak and an entry in the log.
func (c *ctr) record(status string, start, end time.Time) {
	c.pending = nil
	code := 1
	if status == "healthy" {
		code = 0
	}
	c.healthLog = append(c.healthLog, &container.HealthcheckResult{Start: start, End: end, ExitCode: code})
	if n := len(c.healthLog); n > maxHealthLog {
		c.healthLog = slices.Clone(c.healthLog[n-maxHealthLog:])
	}
	c.checked(status)
}

// settle records c's pending health result, with its due time as the end,
// once the check is over at now. Whatever shows c calls it first, so that
// the result appears when it is due without a timer. It must be called
// with e.mu held.
func (e *Engine) settle(c *ctr, now time.Time) {
	if p := c.pending; p != nil && !now.Before(p.due) {
		c.record(p.status, p.start, p.due)
	}
}

// HealthPending says when the result of the Podman health check in progress
// on container id shows in inspects, lists and Truth, or false when no
// check is in progress: always with Docker and from Podman 4.7 on.
func (e *Engine) HealthPending(id string) (due time.Time, ok bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.lookup(id)
	if c == nil {
		return time.Time{}, false
	}
	e.settle(c, e.clock())
	if c.pending == nil {
		return time.Time{}, false
	}
	return c.pending.due, true
}

// libpodContainer is the part of the libpod inspect the exporter reads.
type libpodContainer struct {
	ID           string `json:"Id"`
	Created      time.Time
	Path         string
	Args         []string
	State        libpodState
	Image        string
	ImageName    string
	Pod          string
	Name         string
	RestartCount int
	IsInfra      bool
}

type libpodState struct {
	Status                                       string
	Running, Paused, Restarting, OOMKilled, Dead bool
	Pid, ExitCode                                int
	StartedAt, FinishedAt                        time.Time
	Health                                       *container.Health
}

// libpodContainer must be called with e.mu held.
func (p *podman) libpodContainer(c *ctr) libpodContainer {
	return libpodContainer{
		ID:      c.id,
		Created: c.created,
		Path:    "/docker-entrypoint.sh",
		Args:    []string{"sleep", "infinity"},
		State: libpodState{
			Status: c.state, Running: c.running(), Paused: c.state == "paused", Restarting: c.state == "restarting",
			OOMKilled: c.oomKilled, Dead: c.state == "dead", Pid: c.pid, ExitCode: c.exitCode,
			StartedAt: c.started, FinishedAt: c.finished, Health: p.inspectHealth(c),
		},
		Image:        strings.TrimPrefix(c.imageID, "sha256:"),
		ImageName:    c.image,
		Pod:          c.podID,
		Name:         c.name,
		RestartCount: c.restartCount,
	}
}

// pod is a pod that a container named; it stays when its containers go.
type pod struct {
	id, name string
	created  time.Time
}

// PodID is the id the engine gives the pod of that name: 64 hex digits, the
// same in every engine. The id of "" (no pod) is "".
func PodID(name string) string {
	if name == "" {
		return ""
	}
	sum := sha256.Sum256([]byte("fakeengine pod " + name))
	return hex.EncodeToString(sum[:])
}

// lookupPod finds a pod by name, id or unique id prefix, as Podman does. It
// must be called with e.mu held.
func (e *Engine) lookupPod(ref string) *pod {
	if p := e.pods[ref]; p != nil {
		return p
	}
	var found *pod
	for _, p := range e.pods {
		if ref != "" && strings.HasPrefix(p.id, ref) {
			if found != nil {
				return nil // ambiguous
			}
			found = p
		}
	}
	return found
}

type libpodPod struct {
	ID            string `json:"Id"`
	Name          string
	Created       time.Time
	State         string
	NumContainers int
	Containers    []libpodPodContainer
}

type libpodPodContainer struct {
	ID    string `json:"Id"`
	Name  string
	State string
}

func (e *Engine) servePod(w http.ResponseWriter, ref string) {
	e.mu.Lock()
	p := e.lookupPod(ref)
	if p == nil {
		e.mu.Unlock()
		writePodmanError(w, "no such pod", fmt.Sprintf("no pod with name or ID %s found: no such pod", ref))
		return
	}
	var members []*ctr
	for _, c := range e.containers {
		if c.pod == p.name {
			members = append(members, c)
		}
	}
	slices.SortFunc(members, func(a, b *ctr) int { return cmp.Compare(a.seq, b.seq) })
	resp := libpodPod{ID: p.id, Name: p.name, Created: p.created, State: podState(members), NumContainers: len(members), Containers: []libpodPodContainer{}}
	for _, c := range members {
		resp.Containers = append(resp.Containers, libpodPodContainer{ID: c.id, Name: c.name, State: c.state})
	}
	e.mu.Unlock()
	writeJSON(w, http.StatusOK, resp)
}

// podState is Podman's: the state all the members share, or Degraded. A pod
// without members is Created.
func podState(members []*ctr) string {
	count := map[string]int{}
	for _, c := range members {
		switch c.state {
		case "created":
			count["Created"]++
		case "running", "restarting":
			count["Running"]++
		case "paused":
			count["Paused"]++
		default:
			count["Exited"]++
		}
	}
	for _, s := range []string{"Created", "Running", "Paused", "Exited"} {
		if count[s] == len(members) {
			return s
		}
	}
	return "Degraded"
}
