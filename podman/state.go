package podman

import (
	"context"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// dockerState words one of Podman's container states as dockerd would.
// Podman passes some of its own through its Docker API: "stopped" (exited,
// its exit not yet cleaned up: the moment between die and cleanup),
// "stopping" (dockerd says running until the process is gone) and
// "initialized" (created, its runtime set up).
func dockerState(s container.ContainerState) container.ContainerState {
	switch s {
	case "stopped":
		return container.StateExited
	case "stopping":
		return container.StateRunning
	case "initialized", "configured":
		return container.StateCreated
	}
	return s
}

// ContainerList is the client's, with Podman's states in Docker's words.
func (e *Engine) ContainerList(ctx context.Context, opts client.ContainerListOptions) (client.ContainerListResult, error) {
	res, err := e.Client.ContainerList(ctx, opts)
	if err == nil && e.current().podman {
		for i := range res.Items {
			res.Items[i].State = dockerState(res.Items[i].State)
		}
	}
	return res, err
}

// ContainerInspect is the client's, with Podman's states in Docker's words.
func (e *Engine) ContainerInspect(ctx context.Context, id string, opts client.ContainerInspectOptions) (client.ContainerInspectResult, error) {
	res, err := e.Client.ContainerInspect(ctx, id, opts)
	if err == nil && e.current().podman && res.Container.State != nil {
		res.Container.State.Status = dockerState(res.Container.State.Status)
	}
	return res, err
}
