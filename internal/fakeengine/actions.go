package fakeengine

import (
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/events"
)

// ErrNoSuchContainer is returned by an action on an unknown container.
var ErrNoSuchContainer = errors.New("fakeengine: no such container")

// The actions below change a container and emit the events dockerd emits
// for the same change, stamped by the engine's clock; with Options.Podman,
// the events Podman emits (see podman.go). An action that the container's
// state does not allow changes nothing and returns an error.
//
// Each action's events come from the dialect (docker's methods here), which
// builds them from the primitives below: started, died, signal and emit.

// tick returns the time of a new event: the clock's, or one nanosecond past
// the previous event so that no two events of the engine share a time. It
// must be called with e.mu held.
func (e *Engine) tick() time.Time {
	n := e.opts.Now().UnixNano()
	if n <= e.lastNano {
		n = e.lastNano + 1
	}
	e.lastNano = n
	return time.Unix(0, n).UTC()
}

// clock is the engine's now, never before its newest event. It must be
// called with e.mu held.
func (e *Engine) clock() time.Time {
	now := e.opts.Now()
	if last := time.Unix(0, e.lastNano); now.Before(last) {
		return last.UTC()
	}
	return now.UTC()
}

// emit publishes a container event with the attributes the dialect gives
// it. It must be called with e.mu held.
func (e *Engine) emit(c *ctr, at time.Time, action events.Action, extra map[string]string) {
	e.publish(e.containerEvent(c, at, action, extra))
}

func (e *Engine) containerEvent(c *ctr, at time.Time, action events.Action, extra map[string]string) message {
	return message{Message: events.Message{
		Type:     events.ContainerEventType,
		Action:   action,
		Actor:    events.Actor{ID: c.id, Attributes: e.dialect.attrs(c, action, extra)},
		Scope:    "local",
		Time:     at.Unix(),
		TimeNano: at.UnixNano(),
	}}
}

// attrs are dockerd's: the labels, image and name, then extra.
func (docker) attrs(c *ctr, _ events.Action, extra map[string]string) map[string]string {
	attrs := make(map[string]string, len(c.labels)+2+len(extra))
	maps.Copy(attrs, c.labels)
	attrs["image"] = c.image
	attrs["name"] = c.name
	maps.Copy(attrs, extra)
	return attrs
}

// get must be called with e.mu held.
func (e *Engine) get(id string, allowed ...string) (*ctr, error) {
	c := e.lookup(id)
	if c == nil {
		return nil, fmt.Errorf("%w: %s", ErrNoSuchContainer, id)
	}
	for _, s := range allowed {
		if c.state == s {
			return c, nil
		}
	}
	return nil, fmt.Errorf("fakeengine: container %s is %s, not %s", c.name, c.state, strings.Join(allowed, " or "))
}

// Create adds a container in state created (whatever spec.State says) and
// emits create. It returns the id. A health check in spec shows from the
// first start on. It panics on a duplicate id or name.
func (e *Engine) Create(spec Spec) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.create(spec).id
}

func (e *Engine) create(spec Spec) *ctr {
	at := e.tick()
	spec.Healthcheck = spec.Healthcheck || spec.Health != ""
	spec.State, spec.Health, spec.FailingStreak, spec.RestartCount = "created", "", 0, 0
	spec.ExitCode, spec.OOMKilled = 0, false
	spec.Created, spec.Started, spec.Finished = at, time.Time{}, time.Time{}
	c := e.fromSpec(spec)
	e.insert(c)
	e.emit(c, at, events.ActionCreate, nil)
	return c
}

// Start starts a created, exited or restarting container: start.
func (e *Engine) Start(id string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, err := e.get(id, "created", "exited", "restarting")
	if err != nil {
		return err
	}
	e.start(c)
	return nil
}

func (e *Engine) start(c *ctr)         { e.dialect.start(e, c) }
func (docker) start(e *Engine, c *ctr) { e.started(c) }

// started makes c run: start.
func (e *Engine) started(c *ctr) {
	at := e.tick()
	// As in dockerd: the exit code and OOM flag reset, and a health check
	// starts over.
	c.state, c.started, c.exitCode, c.oomKilled, c.pid = "running", at, 0, false, e.newPid()
	if c.healthcheck {
		c.health, c.failingStreak = "starting", 0
	}
	c.changed()
	e.emit(c, at, events.ActionStart, nil)
}

func (e *Engine) die(c *ctr, code int, restarting bool) { e.dialect.die(e, c, code, restarting) }
func (docker) die(e *Engine, c *ctr, code int, restarting bool) {
	e.died(c, code, restarting)
}

// died ends c's process, and a health check in progress with it: die with
// exitCode and execDuration. A restarting container waits for its policy's
// next start.
func (e *Engine) died(c *ctr, code int, restarting bool) {
	at := e.tick()
	ran := at.Sub(c.started)
	e.settle(c, at) // a check over before the death has its result
	c.pending = nil
	c.state, c.finished, c.exitCode, c.pid = "exited", at, code, 0
	if restarting {
		c.state = "restarting"
		c.restartCount++
	}
	c.changed()
	e.emit(c, at, events.ActionDie, map[string]string{
		"exitCode":     strconv.Itoa(code),
		"execDuration": strconv.Itoa(int(ran.Seconds())),
	})
}

// signal is the daemon sending c's process a signal: kill.
func (e *Engine) signal(c *ctr, signal string) {
	e.emit(c, e.tick(), events.ActionKill, map[string]string{"signal": signal})
}

// Die ends a running or paused container's process on its own: die.
func (e *Engine) Die(id string, exitCode int) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, err := e.get(id, "running", "paused")
	if err != nil {
		return err
	}
	e.die(c, exitCode, false)
	return nil
}

// Kill is `docker kill`: kill (signal 9), die (137).
func (e *Engine) Kill(id string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, err := e.get(id, "running", "paused")
	if err != nil {
		return err
	}
	e.kill(c)
	return nil
}

func (e *Engine) kill(c *ctr) { e.dialect.kill(e, c) }
func (docker) kill(e *Engine, c *ctr) {
	e.signal(c, "9")
	e.died(c, 137, false)
}

// Stop is `docker stop` of a process that obeys SIGTERM: kill (signal 15),
// die (143), stop.
func (e *Engine) Stop(id string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, err := e.get(id, "running", "paused")
	if err != nil {
		return err
	}
	e.stop(c)
	return nil
}

func (e *Engine) stop(c *ctr) { e.dialect.stop(e, c) }
func (docker) stop(e *Engine, c *ctr) {
	e.signal(c, "15")
	e.died(c, 143, false)
	e.emit(c, e.tick(), events.ActionStop, nil)
}

// OOM is the kernel killing a running container for memory: oom, die (137),
// and OOMKilled set until the next start.
func (e *Engine) OOM(id string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, err := e.get(id, "running")
	if err != nil {
		return err
	}
	e.oom(c)
	return nil
}

func (e *Engine) oom(c *ctr) { e.dialect.oom(e, c) }
func (docker) oom(e *Engine, c *ctr) {
	c.oomKilled = true
	c.changed()
	e.emit(c, e.tick(), events.ActionOOM, nil)
	e.died(c, 137, false)
}

// Pause freezes a running container: pause.
func (e *Engine) Pause(id string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, err := e.get(id, "running")
	if err != nil {
		return err
	}
	e.pause(c, true)
	return nil
}

func (e *Engine) pause(c *ctr, pause bool) {
	if pause {
		c.state = "paused"
		c.changed()
		e.emit(c, e.tick(), events.ActionPause, nil)
		return
	}
	c.state = "running"
	c.changed()
	e.emit(c, e.tick(), events.ActionUnPause, nil)
}

// Unpause thaws a paused container: unpause.
func (e *Engine) Unpause(id string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, err := e.get(id, "paused")
	if err != nil {
		return err
	}
	e.pause(c, false)
	return nil
}

// Rename renames a container: rename, with the new name in "name" and the
// old one, slash first as dockerd has it, in "oldName".
func (e *Engine) Rename(id, newName string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, err := e.get(id, validStates...)
	if err != nil {
		return err
	}
	newName = strings.TrimPrefix(newName, "/")
	if other := e.names[newName]; other != nil && other != c {
		return fmt.Errorf("fakeengine: name %s is already in use", newName)
	}
	e.rename(c, newName)
	return nil
}

func (e *Engine) rename(c *ctr, newName string) {
	old := c.name
	delete(e.names, old)
	c.name = newName
	e.names[newName] = c
	c.changed()
	e.emit(c, e.tick(), events.ActionRename, map[string]string{"oldName": "/" + old})
}

// Health records a health check result of a running container that has a
// check: the failing streak follows, and "health_status: <status>" is
// emitted when the status changes, as dockerd does. Podman emits
// health_status at every check, and before 4.7 shows the result only after
// HealthCheckDuration (see podman.go). An invalid status panics.
func (e *Engine) Health(id, status string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, err := e.get(id, "running") // dockerd stops probing a paused one
	if err != nil {
		return err
	}
	if !c.healthcheck {
		return fmt.Errorf("fakeengine: container %s has no health check", c.name)
	}
	e.health(c, status)
	return nil
}

func (e *Engine) health(c *ctr, status string) { e.dialect.health(e, c, status) }
func (docker) health(e *Engine, c *ctr, status string) {
	old := c.health
	c.checked(status)
	if old != status {
		e.emit(c, e.tick(), events.Action(string(events.ActionHealthStatus)+": "+status), nil)
	}
}

// checked applies a health check's result: the status and failing streak.
func (c *ctr) checked(status string) {
	switch status {
	case "healthy":
		c.failingStreak = 0
	case "unhealthy":
		// dockerd turns unhealthy after Retries (default 3) failures.
		c.failingStreak = max(c.failingStreak+1, 3)
	case "starting":
	default:
		panic("fakeengine: invalid health " + status)
	}
	c.health = status
	c.changed()
}

// Destroy is `docker rm -f`: kill (9) and die (137) if the process runs,
// then destroy.
func (e *Engine) Destroy(id string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, err := e.get(id, validStates...)
	if err != nil {
		return err
	}
	e.destroy(c)
	return nil
}

func (e *Engine) destroy(c *ctr) { e.dialect.destroy(e, c) }
func (docker) destroy(e *Engine, c *ctr) {
	if c.state == "running" || c.state == "paused" {
		e.signal(c, "9")
		e.died(c, 137, false)
	}
	e.remove(c)
	e.emit(c, e.tick(), events.ActionDestroy, nil)
}

// Crash ends a running container's process and lets its restart policy
// take over: die, state restarting, RestartCount+1. Start completes it.
func (e *Engine) Crash(id string, exitCode int) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, err := e.get(id, "running")
	if err != nil {
		return err
	}
	e.die(c, exitCode, true)
	return nil
}

// Restart is a restart by policy after a crash (exit code 1): die, start,
// RestartCount+1.
func (e *Engine) Restart(id string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, err := e.get(id, "running")
	if err != nil {
		return err
	}
	e.die(c, 1, true)
	e.start(c)
	return nil
}
