package fakeengine

import (
	"encoding/json"
	"fmt"
	"maps"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
)

// zeroTime is how dockerd writes a time that never happened.
const zeroTime = "0001-01-01T00:00:00Z"

func formatTime(t time.Time) string {
	if t.IsZero() {
		return zeroTime
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// humanDuration words a duration the way `docker ps` shows it.
func humanDuration(d time.Duration) string {
	switch s := int(d.Seconds()); {
	case s < 1:
		return "Less than a second"
	case s == 1:
		return "1 second"
	case s < 60:
		return fmt.Sprintf("%d seconds", s)
	}
	if m := int(d.Minutes()); m == 1 {
		return "About a minute"
	} else if m < 60 {
		return fmt.Sprintf("%d minutes", m)
	}
	switch h := int(d.Hours() + 0.5); {
	case h == 1:
		return "About an hour"
	case h < 48:
		return fmt.Sprintf("%d hours", h)
	case h < 24*7*2:
		return fmt.Sprintf("%d days", h/24)
	case h < 24*30*2:
		return fmt.Sprintf("%d weeks", h/24/7)
	case h < 24*365*2:
		return fmt.Sprintf("%d months", h/24/30)
	default:
		return fmt.Sprintf("%d years", h/24/365)
	}
}

// statusText is the list's human Status, such as "Up 2 hours (healthy)".
func (e *Engine) statusText(c *ctr, now time.Time) string {
	switch c.state {
	case "running":
		return "Up " + humanDuration(now.Sub(c.started)) + e.dialect.listHealth(c)
	case "paused":
		return "Up " + humanDuration(now.Sub(c.started)) + " (Paused)"
	case "restarting":
		return fmt.Sprintf("Restarting (%d) %s ago", c.exitCode, humanDuration(now.Sub(c.finished)))
	case "exited":
		return fmt.Sprintf("Exited (%d) %s ago", c.exitCode, humanDuration(now.Sub(c.finished)))
	case "dead":
		return "Dead"
	}
	return "Created"
}

func (docker) listHealth(c *ctr) string {
	switch c.health {
	case "":
		return ""
	case "starting":
		return " (health: starting)"
	default:
		return " (" + c.health + ")"
	}
}

const command = "/docker-entrypoint.sh sleep infinity"

// summaryJSON is c's list entry; the Health field exists from API 1.52 on.
// It must be called with e.mu held.
func (e *Engine) summaryJSON(c *ctr, now time.Time, withHealth bool) []byte {
	k := 0
	if withHealth {
		k = 1
	}
	status := e.statusText(c, now)
	if cached := c.summary[k]; cached.data != nil && cached.status == status {
		return cached.data
	}
	s := container.Summary{
		ID:              c.id,
		Names:           []string{"/" + c.name},
		Image:           c.image,
		ImageID:         c.imageID,
		Command:         command,
		Created:         c.created.Unix(),
		Ports:           []container.PortSummary{},
		Labels:          c.labels,
		State:           container.ContainerState(c.state),
		Status:          status,
		NetworkSettings: &container.NetworkSettingsSummary{Networks: map[string]*network.EndpointSettings{}},
		Mounts:          []container.MountPoint{},
	}
	s.HostConfig.NetworkMode = "bridge"
	if withHealth {
		// "none" also stands for a container that is not running.
		s.Health = &container.HealthSummary{Status: container.NoHealthcheck}
		if c.health != "" && c.state == "running" {
			s.Health = &container.HealthSummary{Status: container.HealthStatus(c.health), FailingStreak: c.failingStreak}
		}
	}
	data, _ := json.Marshal(s) // plain data: cannot fail
	c.summary[k] = cachedJSON{status: status, data: data}
	return data
}

func (docker) inspectHealth(c *ctr) *container.Health {
	// dockerd has no health to show before the first start.
	if c.health == "" {
		return nil
	}
	return &container.Health{
		Status:        container.HealthStatus(c.health),
		FailingStreak: c.failingStreak,
		Log:           []*container.HealthcheckResult{},
	}
}

// inspectResponse is c as GET /containers/{id}/json shows it. It must be
// called with e.mu held; the result shares nothing with c.
func (e *Engine) inspectResponse(c *ctr) container.InspectResponse {
	state := &container.State{
		Status:     container.ContainerState(c.state),
		Running:    c.running(),
		Paused:     c.state == "paused",
		Restarting: c.state == "restarting",
		OOMKilled:  c.oomKilled,
		Dead:       c.state == "dead",
		Pid:        c.pid,
		ExitCode:   c.exitCode,
		StartedAt:  formatTime(c.started),
		FinishedAt: formatTime(c.finished),
	}
	state.Health = e.dialect.inspectHealth(c)
	config := &container.Config{
		Hostname:     c.id[:12],
		AttachStdout: true,
		AttachStderr: true,
		Env:          []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
		Cmd:          []string{"sleep", "infinity"},
		Image:        c.image,
		Entrypoint:   []string{"/docker-entrypoint.sh"},
		Labels:       maps.Clone(c.labels),
	}
	if c.healthcheck {
		config.Healthcheck = &container.HealthConfig{Test: []string{"CMD-SHELL", "true"}, Interval: 30 * time.Second, Retries: 3}
	}
	dir := "/var/lib/docker/containers/" + c.id
	return container.InspectResponse{
		ID:             c.id,
		Created:        formatTime(c.created),
		Path:           "/docker-entrypoint.sh",
		Args:           []string{"sleep", "infinity"},
		State:          state,
		Image:          c.imageID,
		ResolvConfPath: dir + "/resolv.conf",
		HostnamePath:   dir + "/hostname",
		HostsPath:      dir + "/hosts",
		LogPath:        dir + "/" + c.id + "-json.log",
		Name:           "/" + c.name,
		RestartCount:   c.restartCount,
		Driver:         "overlay2",
		Platform:       "linux",
		HostConfig: &container.HostConfig{
			LogConfig:     container.LogConfig{Type: "json-file", Config: map[string]string{}},
			NetworkMode:   "bridge",
			RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyUnlessStopped},
		},
		Mounts:          []container.MountPoint{},
		Config:          config,
		NetworkSettings: &container.NetworkSettings{Networks: map[string]*network.EndpointSettings{}},
	}
}
