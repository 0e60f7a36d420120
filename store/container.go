package store

import (
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
)

// States lists every container state the Engine reports, in its own order.
var States = []string{"created", "running", "paused", "restarting", "removing", "exited", "dead"}

// HealthStatuses lists the health states of a container that has a health check.
var HealthStatuses = []string{"starting", "healthy", "unhealthy"}

const (
	composeProjectLabel = "com.docker.compose.project"
	composeServiceLabel = "com.docker.compose.service"
)

// Container is what the store knows of one container. Values are never
// changed in place: a change makes a new Container, so a snapshot taken by a
// reader stays whole.
type Container struct {
	ID      string
	Name    string // without the leading slash
	Image   string // as the operator gave it
	ImageID string
	Labels  map[string]string

	State         string
	Health        string // empty when the container has no health check
	FailingStreak int
	RestartCount  int
	OOMKilled     bool

	// ExitCode is meaningful only when HasExitCode: a running container that
	// the store did not see die has no known last exit code (the daemon resets
	// it to 0 on start).
	ExitCode    int
	HasExitCode bool

	// Zero when the daemon has no such time.
	Created  time.Time
	Started  time.Time
	Finished time.Time

	// Pid is the host pid of the container's init process while it runs
	// (0 otherwise), and NetworkMode its HostConfig.NetworkMode ("host",
	// "none", "bridge", "container:<id>", a network's name): what a reader
	// of the kernel's figures for it needs.
	Pid         int
	NetworkMode string

	// Pod is the name of the Podman pod the container belongs to; "" for
	// Docker's containers and for Podman's outside a pod. podKnown says the
	// daemon was asked: a container never changes pods, so once is enough.
	Pod      string
	podKnown bool

	// deathCountedAt is the FinishedAt of a death that reconciliation counted;
	// a die event for that same death, replayed later, must not count again.
	deathCountedAt time.Time
}

// ComposeProject is the compose project label, or "".
func (c *Container) ComposeProject() string { return c.Labels[composeProjectLabel] }

// ComposeService is the compose service label, or "".
func (c *Container) ComposeService() string { return c.Labels[composeServiceLabel] }

// running says whether the container has a live process: a restarting
// container's last process has already died.
func (c *Container) running() bool {
	return c.State == "running" || c.State == "paused"
}

// effect is what one event counts for the container it names.
type effect struct {
	start, death, oom, destroy bool
}

// baseAction strips the ": detail" suffix the Engine puts on some actions
// ("health_status: healthy", "exec_start: sh -c ...").
func baseAction(a events.Action) string {
	s := string(a)
	if i := strings.IndexByte(s, ':'); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSpace(s)
}

// eventTime is the Engine's own time of the event.
func eventTime(ev events.Message) time.Time {
	if ev.TimeNano != 0 {
		return time.Unix(0, ev.TimeNano).UTC()
	}
	return time.Unix(ev.Time, 0).UTC()
}

// apply returns the container as it is after ev, and what ev counts. It does
// no I/O: details an event lacks are filled in afterwards by an inspect.
func apply(c Container, ev events.Message) (Container, effect) {
	var eff effect
	at := eventTime(ev)
	attrs := ev.Actor.Attributes
	switch baseAction(ev.Action) {
	case "create":
		c.State = "created"
		c.Created = at
		if name := attrs["name"]; name != "" {
			c.Name = strings.TrimPrefix(name, "/")
		}
		if image := attrs["image"]; image != "" {
			c.Image = image
		}
		c.Labels = labelsFromAttributes(attrs)
	case "start":
		eff.start = true
		if at.After(c.deathCountedAt) {
			c.deathCountedAt = time.Time{}
		}
		// A replayed start older than the last known death is history: it
		// counts, but the state the store has is newer.
		if at.After(c.Finished) {
			c.State = "running"
			c.Started = at
			c.OOMKilled = false
			if c.Health != "" {
				c.Health = "starting"
				c.FailingStreak = 0
			}
		}
	case "die":
		// A replayed die for the death reconciliation already counted has a
		// time at or after that death's FinishedAt, and no start came between.
		if c.deathCountedAt.IsZero() || at.Before(c.deathCountedAt) {
			eff.death = true
		}
		if !at.Before(c.Started) && !at.Before(c.Finished) {
			c.State = "exited"
			c.Finished = at
			c.Pid = 0
			if code, err := strconv.Atoi(attrs["exitCode"]); err == nil {
				c.ExitCode, c.HasExitCode = code, true
			}
		}
	case "oom":
		c.OOMKilled = true
		eff.oom = true
	case "pause":
		c.State = "paused"
	case "unpause":
		c.State = "running"
	case "rename":
		if name := attrs["name"]; name != "" {
			c.Name = strings.TrimPrefix(name, "/")
		}
	case "health_status":
		if status := healthFromAction(ev.Action); status != "" {
			c.Health = status
			if status == "healthy" {
				c.FailingStreak = 0
			}
		}
	case "destroy":
		c.State = "removing"
		eff.destroy = true
	}
	return c, eff
}

func healthFromAction(a events.Action) string {
	s := string(a)
	i := strings.IndexByte(s, ':')
	if i < 0 {
		return ""
	}
	switch status := strings.TrimSpace(s[i+1:]); status {
	case "starting", "healthy", "unhealthy":
		return status
	}
	return ""
}

// labelsFromAttributes recovers a container's labels from a create event:
// the Engine sends them as attributes beside "image" and "name".
func labelsFromAttributes(attrs map[string]string) map[string]string {
	labels := make(map[string]string, len(attrs))
	for k, v := range attrs {
		if k == "image" || k == "name" {
			continue
		}
		labels[k] = v
	}
	return labels
}

// needsInspect says whether an event leaves out something the store shows:
// image id (create), restart count and health (start), restarting state and
// exit details (die), failing streak (health_status), and what the daemon
// makes of an oom: from Engine 24 on, OOMKilled is set when any process of
// the container is killed; before, only when the container's exit was.
func needsInspect(action string) bool {
	switch action {
	case "create", "start", "die", "health_status", "oom":
		return true
	}
	return false
}

// fromInspect makes a Container from the daemon's full view of it. Only
// these few fields are kept: a sync of 10,000 containers must not hold
// 10,000 full inspect answers at once.
func fromInspect(r container.InspectResponse) Container {
	c := Container{
		ID:           r.ID,
		Name:         strings.TrimPrefix(r.Name, "/"),
		ImageID:      r.Image,
		RestartCount: r.RestartCount,
		Created:      parseTime(r.Created),
	}
	if r.Config != nil {
		c.Image = r.Config.Image
		c.Labels = r.Config.Labels
	}
	if r.HostConfig != nil {
		c.NetworkMode = string(r.HostConfig.NetworkMode)
	}
	if s := r.State; s != nil {
		c.State = string(s.Status)
		c.OOMKilled = s.OOMKilled
		c.Started = parseTime(s.StartedAt)
		c.Finished = parseTime(s.FinishedAt)
		if c.running() {
			c.Pid = s.Pid
		}
		if s.Health != nil && s.Health.Status != container.NoHealthcheck && s.Health.Status != "" {
			c.Health = string(s.Health.Status)
			c.FailingStreak = s.Health.FailingStreak
		}
		// The daemon resets ExitCode to 0 on start, so only a stopped
		// container's code is a real last exit code.
		if !c.running() && !c.Finished.IsZero() {
			c.ExitCode, c.HasExitCode = s.ExitCode, true
		}
	}
	return c
}

// since returns c, a fresh view from the daemon, with what only the store
// knows from prev, the same container's earlier state: the death it counted
// by reconciliation, the last exit code seen in a die event, which the
// daemon no longer tells once the container runs again, and its pod.
func (c Container) since(prev Container) Container {
	c.deathCountedAt = prev.deathCountedAt
	if !c.podKnown {
		c.Pod, c.podKnown = prev.Pod, prev.podKnown
	}
	if c.running() {
		c.ExitCode, c.HasExitCode = prev.ExitCode, prev.HasExitCode
	}
	return c
}

// parseTime reads a daemon timestamp; the zero value ("0001-01-01T00:00:00Z")
// and garbage both mean "no such time".
func parseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || t.Year() <= 1 {
		return time.Time{}
	}
	return t
}
