package store

import (
	"strings"

	"github.com/moby/moby/client"
)

// The daemons that serve the Engine API, as DaemonInfo.Flavor names them.
const (
	FlavorDocker = "docker"
	FlavorPodman = "podman"
)

// FlavorOf says which daemon gave the version answer v. Podman names itself
// in a component ("Podman Engine") and sometimes in the platform; dockerd
// names its components "Engine", "containerd", "runc" and so on.
func FlavorOf(v client.ServerVersionResult) string {
	if strings.Contains(strings.ToLower(v.Platform.Name), "podman") {
		return FlavorPodman
	}
	for _, c := range v.Components {
		if strings.HasPrefix(strings.ToLower(c.Name), "podman") {
			return FlavorPodman
		}
	}
	return FlavorDocker
}
