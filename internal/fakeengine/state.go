package fakeengine

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
)

// Spec describes one container.
type Spec struct {
	ID    string // 64 hex digits; generated when empty
	Name  string // without the leading slash; generated when empty
	Image string // default "busybox:latest"
	// Labels are copied.
	Labels map[string]string
	// State is one of created, running, paused, restarting, exited, dead
	// (default created).
	State string
	// Health is "" for no health check, or starting, healthy, unhealthy.
	Health string
	// Healthcheck says the container has a health check even though Health
	// is "": the daemon shows no health until the first start.
	Healthcheck bool
	// Pod is the name of the pod the container belongs to, "" for none.
	// Only Podman shows it, by the pod's id (see PodID).
	Pod string

	FailingStreak, RestartCount, ExitCode int
	OOMKilled                             bool

	Created, Started, Finished time.Time // zero: no such time
}

// ctr is the engine's record of one container. Only the engine's methods,
// holding e.mu, touch it.
type ctr struct {
	id, name, image, imageID string
	pod, podID               string
	labels                   map[string]string
	state                    string
	healthcheck              bool
	health                   string
	failingStreak            int
	restartCount             int
	exitCode                 int
	oomKilled                bool
	created, started         time.Time
	finished                 time.Time
	pid                      int
	// healthLog is Podman's log of the last checks; pending is a check
	// whose result Podman has not recorded yet (see settle).
	healthLog []*container.HealthcheckResult
	pending   *pendingHealth
	seq       uint64 // creation order
	idx       int    // position in Engine.ids

	// summary caches the container's list entry, without and with the
	// Health field, as long as its Status text stays the same: a list of
	// 10,000 containers then mostly copies bytes.
	summary [2]cachedJSON
}

type cachedJSON struct {
	status string
	data   []byte
}

// changed must follow every change to c.
func (c *ctr) changed() { c.summary = [2]cachedJSON{} }

// running is the daemon's notion: a paused or restarting container still
// counts as running, for the list's `all` and for the inspect flags.
func (c *ctr) running() bool {
	return c.state == "running" || c.state == "paused" || c.state == "restarting"
}

func (c *ctr) spec() Spec {
	return Spec{
		ID: c.id, Name: c.name, Image: c.image, Labels: maps.Clone(c.labels),
		State: c.state, Health: c.health, Healthcheck: c.healthcheck, Pod: c.pod,
		FailingStreak: c.failingStreak, RestartCount: c.restartCount, ExitCode: c.exitCode,
		OOMKilled: c.oomKilled, Created: c.created, Started: c.started, Finished: c.finished,
	}
}

var validStates = []string{"created", "running", "paused", "restarting", "exited", "dead"}

// Add puts containers in place silently, without events, as if they had
// been there before anyone looked. It panics on an invalid state or a
// duplicate id or name: that is a bug in the test.
func (e *Engine) Add(specs ...Spec) {
	e.mu.Lock()
	defer e.mu.Unlock()
	added := make([]*ctr, len(specs))
	for i, s := range specs {
		added[i] = e.fromSpec(s)
		e.insert(added[i])
	}
	e.prerender(added)
}

// prerender fills the list entries' cache, so that the first list after a
// large Add or Populate is as fast as the next ones. It must be called with
// e.mu held.
func (e *Engine) prerender(cs []*ctr) {
	now, withHealth := e.clock(), !versionLess(e.opts.APIVersion, "1.52")
	for _, c := range cs {
		e.summaryJSON(c, now, withHealth)
	}
}

// fromSpec fills the gaps of s with believable values.
func (e *Engine) fromSpec(s Spec) *ctr {
	if s.State == "" {
		s.State = "created"
	}
	if !slices.Contains(validStates, s.State) {
		panic(fmt.Sprintf("fakeengine: invalid state %q", s.State))
	}
	switch s.Health {
	case "", "starting", "healthy", "unhealthy":
	default:
		panic(fmt.Sprintf("fakeengine: invalid health %q", s.Health))
	}
	if s.ID == "" {
		s.ID = e.newID()
	}
	if s.Name == "" {
		s.Name = "fake_" + s.ID[:12]
	}
	if s.Image == "" {
		s.Image = "busybox:latest"
	}
	if s.Created.IsZero() {
		s.Created = e.clock()
	}
	// A container that ran has a start time; the daemon calls one without
	// it "created" whatever else it says.
	if s.State != "created" && s.State != "dead" && s.Started.IsZero() {
		s.Started = s.Created
	}
	if (s.State == "exited" || s.State == "restarting") && s.Finished.IsZero() {
		s.Finished = s.Started
	}
	c := &ctr{
		id: s.ID, name: strings.TrimPrefix(s.Name, "/"), image: s.Image,
		labels: maps.Clone(s.Labels), state: s.State, pod: s.Pod, podID: PodID(s.Pod),
		healthcheck: s.Healthcheck || s.Health != "", health: s.Health,
		failingStreak: s.FailingStreak, restartCount: s.RestartCount,
		exitCode: s.ExitCode, oomKilled: s.OOMKilled,
		created: s.Created.UTC(), started: s.Started.UTC(), finished: s.Finished.UTC(),
	}
	if c.labels == nil {
		c.labels = map[string]string{}
	}
	if c.state == "running" || c.state == "paused" {
		c.pid = e.newPid()
	}
	return c
}

// insert must be called with e.mu held.
func (e *Engine) insert(c *ctr) {
	if e.containers[c.id] != nil {
		panic("fakeengine: duplicate container id " + c.id)
	}
	if e.names[c.name] != nil {
		panic("fakeengine: duplicate container name " + c.name)
	}
	e.seq++
	c.seq = e.seq
	c.idx = len(e.ids)
	c.imageID = e.imageID(c.image)
	if c.pod != "" && e.pods[c.pod] == nil {
		e.pods[c.pod] = &pod{id: c.podID, name: c.pod, created: c.created}
	}
	e.ids = append(e.ids, c.id)
	e.containers[c.id] = c
	e.names[c.name] = c
}

// remove must be called with e.mu held.
func (e *Engine) remove(c *ctr) {
	last := e.containers[e.ids[len(e.ids)-1]]
	e.ids[c.idx], last.idx = last.id, c.idx
	e.ids = e.ids[:len(e.ids)-1]
	delete(e.containers, c.id)
	delete(e.names, c.name)
	delete(e.vanished, c.id)
}

// newID makes a deterministic container id from the creation counter.
func (e *Engine) newID() string {
	for n := e.seq; ; n++ {
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], n)
		sum := sha256.Sum256(append([]byte("fakeengine container "), b[:]...))
		if id := hex.EncodeToString(sum[:]); e.containers[id] == nil {
			return id
		}
	}
}

func (e *Engine) newPid() int { return 1000 + int(e.seq%30000) }

func (e *Engine) imageID(image string) string {
	id, ok := e.imageIDs[image]
	if !ok {
		sum := sha256.Sum256([]byte(image))
		id = "sha256:" + hex.EncodeToString(sum[:])
		e.imageIDs[image] = id
	}
	return id
}

// Truth is the engine's current state sorted by id: what a store that has
// seen everything must hold. A Podman health result that inspects do not
// show yet is not in it either.
func (e *Engine) Truth() []Spec {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]Spec, 0, len(e.containers))
	now := e.clock()
	for _, c := range e.containers {
		e.settle(c, now)
		out = append(out, c.spec())
	}
	slices.SortFunc(out, func(a, b Spec) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Len is how many containers the engine has.
func (e *Engine) Len() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.containers)
}

// lookup finds a container by id, name (with or without the slash) or
// unique id prefix, as the daemon does. It must be called with e.mu held.
func (e *Engine) lookup(ref string) *ctr {
	if c := e.containers[ref]; c != nil {
		return c
	}
	if c := e.names[strings.TrimPrefix(ref, "/")]; c != nil {
		return c
	}
	if ref == "" {
		return nil
	}
	var found *ctr
	for id, c := range e.containers {
		if strings.HasPrefix(id, ref) {
			if found != nil {
				return nil // ambiguous
			}
			found = c
		}
	}
	return found
}
