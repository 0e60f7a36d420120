// Package truth compares what the store holds with what internal/fakeengine
// knows to be true, for the in-process reliability tests.
package truth

import (
	"fmt"
	"maps"
	"sort"
	"strings"
	"time"

	"github.com/docker-exporter/docker_exporter/internal/fakeengine"
	"github.com/docker-exporter/docker_exporter/store"
)

// Diff lists how the store differs from the engine. The store equals
// the engine when it has the same container ids and, for each, the same
// name, image, labels, state, health, restart count, OOM flag, and created,
// started and finished times, and:
//   - the exit code wherever the daemon has one, that is, the container has
//     finished and is not running or paused; when it never finished, the
//     store has no exit code either. A running container's exit code is
//     left out: the daemon resets it to 0 on start, while the store keeps
//     the last exit's code on purpose (see store.Container.ExitCode).
//   - the failing streak, except while unhealthy: the daemon counts further
//     failures of an unhealthy container without any event, so the store
//     holds the streak of its last inspect, which is at least 3 (the
//     failures that made it unhealthy) and at most the daemon's.
//
// ImageID is left out because Spec has none; it is the engine's digest of
// the image, which is compared.
func Diff(engine []fakeengine.Spec, snap store.Snapshot) []string {
	var out []string
	byID := make(map[string]*store.Container, len(snap.Containers))
	for _, c := range snap.Containers {
		if byID[c.ID] != nil {
			out = append(out, "the store holds "+c.ID+" twice")
		}
		byID[c.ID] = c
	}
	for _, s := range engine {
		c := byID[s.ID]
		delete(byID, s.ID)
		if c == nil {
			out = append(out, fmt.Sprintf("missing %s (%s)", s.Name, s.State))
			continue
		}
		var d []string
		diff := func(field string, got, want any) {
			d = append(d, fmt.Sprintf("%s %v, engine %v", field, got, want))
		}
		if c.Name != s.Name {
			diff("name", c.Name, s.Name)
		}
		if c.Image != s.Image {
			diff("image", c.Image, s.Image)
		}
		if !maps.Equal(c.Labels, s.Labels) {
			diff("labels", c.Labels, s.Labels)
		}
		if c.State != s.State {
			diff("state", c.State, s.State)
		}
		if c.Health != s.Health {
			diff("health", c.Health, s.Health)
		}
		if s.Health == "unhealthy" {
			if c.FailingStreak < 3 || c.FailingStreak > s.FailingStreak {
				diff("failing streak (unhealthy)", c.FailingStreak, s.FailingStreak)
			}
		} else if c.FailingStreak != s.FailingStreak {
			diff("failing streak", c.FailingStreak, s.FailingStreak)
		}
		if c.RestartCount != s.RestartCount {
			diff("restart count", c.RestartCount, s.RestartCount)
		}
		if c.OOMKilled != s.OOMKilled {
			diff("OOM killed", c.OOMKilled, s.OOMKilled)
		}
		switch {
		case s.State == "running" || s.State == "paused":
		case s.Finished.IsZero():
			if c.HasExitCode {
				diff("exit code of a container that never finished", c.ExitCode, "none")
			}
		case !c.HasExitCode || c.ExitCode != s.ExitCode:
			diff("exit code", fmt.Sprint(c.ExitCode, " known ", c.HasExitCode), s.ExitCode)
		}
		for _, tt := range []struct {
			field     string
			got, want time.Time
		}{{"created", c.Created, s.Created}, {"started", c.Started, s.Started}, {"finished", c.Finished, s.Finished}} {
			if !tt.got.Equal(tt.want) {
				diff(tt.field, tt.got, tt.want)
			}
		}
		if len(d) > 0 {
			out = append(out, s.Name+": "+strings.Join(d, "; "))
		}
	}
	for _, c := range byID {
		out = append(out, fmt.Sprintf("ghost %s (%s) %s", c.Name, c.State, c.ID))
	}
	sort.Strings(out)
	return out
}
