package podman

import (
	"context"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"
)

// How settle polls: first after settleFirst, then twice as long each time
// up to settleMax, for the check's timeout and settleGrace more.
const (
	settleFirst   = 50 * time.Millisecond
	settleMax     = 500 * time.Millisecond
	settleGrace   = 5 * time.Second
	defaultChecks = 30 * time.Second // Podman's default health check timeout
)

// settle waits for the result of the health check that ev, a Podman
// health_status written when the check started, announces, and sends ev
// with that result, at the time it was recorded, as dockerd would have
// sent it. Podman writes no event when the result is recorded, so the
// container's health log is read until it holds a check that ended after
// ev. A container that stops or goes away, or a check that never ends,
// gets ev with the status the daemon shows then.
func (e *Engine) settle(ctx context.Context, ev events.Message, send func(events.Message) bool) {
	start := time.Now()
	deadline := start.Add(defaultChecks + settleGrace)
	wait := settleFirst
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		cctx, cancel := context.WithTimeout(ctx, e.cfg.Timeout)
		res, err := e.Client.ContainerInspect(cctx, ev.Actor.ID, client.ContainerInspectOptions{})
		cancel()
		switch {
		case cerrdefs.IsNotFound(err):
			send(ev)
			return
		case err == nil:
			r := res.Container
			if hc := healthTimeout(r); hc > 0 {
				deadline = start.Add(hc + settleGrace)
			}
			status, ended, ok := lastCheck(r)
			over := ok && ended >= ev.TimeNano
			if !over && running(r) && time.Now().After(deadline) {
				e.cfg.Logger.Debug("a Podman health check recorded no result in time; taking the status it shows", "id", ev.Actor.ID, "status", status)
			}
			if over || !running(r) || time.Now().After(deadline) {
				if isHealth(status) {
					ev.Action = withHealth(status)
				}
				if ended > ev.TimeNano {
					ev.TimeNano, ev.Time = ended, ended/int64(time.Second)
				}
				send(ev)
				return
			}
		case ctx.Err() != nil:
			return
		case time.Now().After(deadline):
			send(ev)
			return
		}
		wait = min(2*wait, settleMax)
		timer.Reset(wait)
	}
}

// lastCheck returns the container's health status and when its newest
// recorded check ended (Unix nanoseconds).
func lastCheck(r container.InspectResponse) (status string, ended int64, ok bool) {
	if r.State == nil || r.State.Health == nil {
		return "", 0, false
	}
	h := r.State.Health
	for _, l := range h.Log {
		if l != nil && !l.End.IsZero() && l.End.UnixNano() > ended {
			ended, ok = l.End.UnixNano(), true
		}
	}
	return string(h.Status), ended, ok
}

func running(r container.InspectResponse) bool {
	return r.State != nil && r.State.Running
}

// healthTimeout is how long the container's checks may run; 0 if unknown.
func healthTimeout(r container.InspectResponse) time.Duration {
	if r.Config == nil || r.Config.Healthcheck == nil {
		return 0
	}
	return r.Config.Healthcheck.Timeout
}
