package fakeengine

import (
	"net/http"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
)

// dialect is what the daemon being emulated does its own way: dockerd
// (docker, the default) or Podman's Docker-compatible service (podman, in
// podman.go). The engine keeps the containers and changes their state; the
// dialect answers for the wire: headers, version, health in lists and
// inspects, its own endpoints, and which events an action emits.
type dialect interface {
	// headers sets what every answer carries; pingHeaders what a ping adds.
	headers(e *Engine, h http.Header)
	pingHeaders(h http.Header)
	// notFound answers an unknown container ref, or a path not served when
	// ref is "".
	notFound(w http.ResponseWriter, ref string)
	// serve answers the dialect's own GET endpoints and says whether path
	// was one of them.
	serve(e *Engine, w http.ResponseWriter, r *http.Request, path string) bool
	version(e *Engine) any

	// listHealth is what the list's Status text adds for c's health.
	listHealth(c *ctr) string
	// inspectHealth is c's State.Health in an inspect; nil leaves it out.
	inspectHealth(c *ctr) *container.Health

	// attrs are the attributes of a container event of c, extra being
	// those dockerd adds to this action.
	attrs(c *ctr, action events.Action, extra map[string]string) map[string]string
	// The actions, with the events they emit. die is a death on its own;
	// restarting says a restart policy takes over.
	start(e *Engine, c *ctr)
	die(e *Engine, c *ctr, code int, restarting bool)
	kill(e *Engine, c *ctr)
	stop(e *Engine, c *ctr)
	oom(e *Engine, c *ctr)
	destroy(e *Engine, c *ctr)
	health(e *Engine, c *ctr, status string)
}

var (
	_ dialect = docker{}
	_ dialect = (*podman)(nil)
)

// docker is dockerd's dialect; its methods sit beside what they answer for.
type docker struct{}

func newDialect(o Options) dialect {
	if o.Podman != "" {
		return newPodman(o)
	}
	return docker{}
}
