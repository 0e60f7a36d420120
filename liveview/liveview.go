// Package liveview shows the store's containers live: as JSON, as a stream
// of server-sent events that pushes every change the moment the store makes
// it, and as a table on the landing page fed by that stream. Like the
// collector, it never calls the daemon: it reads snapshots of the store,
// woken by the store's change signal.
//
// # GET /api/containers
//
// The store's snapshot now, as one JSON object (Content-Type
// application/json):
//
//	{"containers": [Container, ...], "status": Status}
//
// Containers are sorted by name, then id. A Container has these fields;
// those marked "omitted" are left out, never sent as a zero or an epoch:
//
//	id               string  the full container id
//	name             string  the name without its leading slash
//	image            string  the image as the operator gave it
//	image_id         string  the image's id (sha256:...)
//	state            string  created, running, paused, restarting, removing, exited or dead
//	health           string  starting, healthy or unhealthy; omitted without a health check
//	failing_streak   number  consecutive failed health checks; omitted without a health check
//	restart_count    number  the daemon's restart count (restarts by restart policy)
//	exit_code        number  the last exit code; omitted until the container has exited once
//	oom_killed       bool    the daemon's State.OOMKilled
//	created_at       string  creation time, RFC 3339 in UTC; omitted when the daemon has none
//	started_at       string  last start; omitted if never started
//	finished_at      string  last exit; omitted if never exited
//	compose_project  string  the compose project label; omitted when empty
//	compose_service  string  the compose service label; omitted when empty
//	pod              string  the Podman pod; omitted when empty (always, on Docker)
//	labels           object  the labels --container.labels allows, key to value; omitted when none
//	counts           object  the counters of the container's name, as in the metrics:
//	                         {"starts", "deaths", "oom_events", "destroys"}, numbers
//
// No other label is ever shown, nor the environment (the store does not
// keep it).
//
// Status is the store's link to the daemon:
//
//	up             bool    the event stream is connected and the last sync succeeded (docker_up)
//	last_event_at  string  the daemon's time of the newest event applied; omitted before the first
//	last_sync_at   string  when the last full sync completed; omitted before the first
//	daemon         object  omitted until the daemon was first reached:
//	                       {"version", "api_version", "os", "arch", "kernel_version",
//	                        "flavor" ("docker" or "podman")}, strings
//
// # GET /api/containers/events
//
// A text/event-stream. On connect it sends the whole state once, then what
// changed, each message's data one line of JSON:
//
//	retry: 3000
//	event: snapshot
//	data: {"containers": [Container, ...], "status": Status}
//
//	event: changes
//	data: {"added": [Container, ...], "changed": [Container, ...], "removed": ["id", ...], "status": Status}
//
//	: ping
//
// A changes message leaves out what is empty: added and changed carry whole
// containers (a changed container replaces the one with its id), removed the
// ids of containers gone, status is there only when it changed. Applying the
// messages in order to the snapshot gives the store's state. Changes are
// computed once for all clients, at most every Config.Coalesce while the
// store keeps changing, so that a burst of thousands of events makes a few
// messages. A ": ping" comment comes every Config.Heartbeat while nothing
// else does, so that proxies keep the stream open. A client that reconnects
// gets a new snapshot (Last-Event-ID is not used). A client that falls behind
// by more than Config.QueueLen messages, or whose write stalls for
// Config.WriteTimeout, is dropped; past Config.MaxClients streams a new one
// gets 503.
package liveview

import (
	"bytes"
	"cmp"
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/docker-exporter/docker_exporter/collector"
	"github.com/docker-exporter/docker_exporter/store"
)

// The paths the live view serves its API on, beside the landing page at /
// (the page's script asks for EventsPath relative to itself).
const (
	ContainersPath = "/api/containers"
	EventsPath     = ContainersPath + "/events"
)

// Source is where the live view reads the state from; *store.Store is one.
type Source interface {
	Snapshot() store.Snapshot
	// Subscribe returns a channel that receives a signal after changes to
	// the state, coalesced so that it never blocks the sender.
	Subscribe() (changed <-chan struct{}, cancel func())
}

var _ Source = (*store.Store)(nil)

// Config tunes the live view. Zero values take the defaults noted.
type Config struct {
	// Labels is the --container.labels allowlist, as the collector takes
	// it: label keys, or "*" for all. Empty shows none.
	Labels []string
	// MaxClients bounds the event streams open at once (default 64).
	MaxClients int
	// Heartbeat is how long a stream may stay silent before a ping
	// (default 15s).
	Heartbeat time.Duration
	// Coalesce is the least time between two changes messages while the
	// store keeps changing (default 100ms). The first change after a quiet
	// spell is sent at once.
	Coalesce time.Duration
	// QueueLen is how many messages may wait for one client; a client that
	// falls further behind is dropped (default 32).
	QueueLen int
	// WriteTimeout bounds each write to a client; a client that does not
	// take a message within it is dropped (default 10s, under the
	// exporter's shutdown grace).
	WriteTimeout time.Duration
	Logger       *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.MaxClients <= 0 {
		c.MaxClients = 64
	}
	if c.Heartbeat <= 0 {
		c.Heartbeat = 15 * time.Second
	}
	if c.Coalesce <= 0 {
		c.Coalesce = 100 * time.Millisecond
	}
	if c.QueueLen <= 0 {
		c.QueueLen = 32
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Container is one container as the API shows it; see the package
// documentation for its fields.
type Container struct {
	ID             string            `json:"id"`
	Name           string            `json:"name"`
	Image          string            `json:"image"`
	ImageID        string            `json:"image_id"`
	State          string            `json:"state"`
	Health         string            `json:"health,omitempty"`
	FailingStreak  *int              `json:"failing_streak,omitempty"`
	RestartCount   int               `json:"restart_count"`
	ExitCode       *int              `json:"exit_code,omitempty"`
	OOMKilled      bool              `json:"oom_killed"`
	CreatedAt      time.Time         `json:"created_at,omitzero"`
	StartedAt      time.Time         `json:"started_at,omitzero"`
	FinishedAt     time.Time         `json:"finished_at,omitzero"`
	ComposeProject string            `json:"compose_project,omitempty"`
	ComposeService string            `json:"compose_service,omitempty"`
	Pod            string            `json:"pod,omitempty"`
	Labels         map[string]string `json:"labels,omitempty"`
	Counts         Counts            `json:"counts"`
}

// Counts are the event-fed counters of a container's name.
type Counts struct {
	Starts    uint64 `json:"starts"`
	Deaths    uint64 `json:"deaths"`
	OOMEvents uint64 `json:"oom_events"`
	Destroys  uint64 `json:"destroys"`
}

// Status is the store's link to the daemon.
type Status struct {
	Up          bool      `json:"up"`
	LastEventAt time.Time `json:"last_event_at,omitzero"`
	LastSyncAt  time.Time `json:"last_sync_at,omitzero"`
	Daemon      Daemon    `json:"daemon,omitzero"`
}

// Daemon describes the daemon, as read at the last (re)connect.
type Daemon struct {
	Version       string `json:"version"`
	APIVersion    string `json:"api_version"`
	OS            string `json:"os"`
	Arch          string `json:"arch"`
	KernelVersion string `json:"kernel_version"`
	Flavor        string `json:"flavor"`
}

// Snapshot is the body of GET /api/containers and the data of a snapshot
// event.
type Snapshot struct {
	Containers []Container `json:"containers"`
	Status     Status      `json:"status"`
}

// Changes is the data of a changes event.
type Changes struct {
	Added   []Container `json:"added,omitempty"`
	Changed []Container `json:"changed,omitempty"`
	Removed []string    `json:"removed,omitempty"`
	Status  *Status     `json:"status,omitempty"`
}

// containerOf is c as the API shows it, with only the labels allow allows.
func containerOf(c *store.Container, n store.Counts, allow collector.LabelAllowlist) Container {
	out := Container{
		ID:             c.ID,
		Name:           c.Name,
		Image:          c.Image,
		ImageID:        c.ImageID,
		State:          c.State,
		Health:         c.Health,
		RestartCount:   c.RestartCount,
		OOMKilled:      c.OOMKilled,
		CreatedAt:      utc(c.Created),
		StartedAt:      utc(c.Started),
		FinishedAt:     utc(c.Finished),
		ComposeProject: c.ComposeProject(),
		ComposeService: c.ComposeService(),
		Pod:            c.Pod,
		Labels:         allow.Filter(c.Labels),
		Counts:         Counts{Starts: n.Starts, Deaths: n.Deaths, OOMEvents: n.OOMs, Destroys: n.Destroys},
	}
	if c.Health != "" {
		out.FailingStreak = new(c.FailingStreak)
	}
	if c.HasExitCode {
		out.ExitCode = new(c.ExitCode)
	}
	return out
}

func statusOf(s store.Status) Status {
	d := s.Daemon
	out := Status{Up: s.Up, LastEventAt: utc(s.LastEvent), LastSyncAt: utc(s.LastSync)}
	if d.Version != "" {
		out.Daemon = Daemon{Version: d.Version, APIVersion: d.APIVersion, OS: d.OS, Arch: d.Arch, KernelVersion: d.KernelVersion, Flavor: d.Flavor}
	}
	return out
}

func utc(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC()
}

// byName orders containers as the API lists them.
func byName(a, b *store.Container) int {
	return cmp.Or(strings.Compare(a.Name, b.Name), strings.Compare(a.ID, b.ID))
}

// snapshotOf is the API's view of snap.
func snapshotOf(snap store.Snapshot, allow collector.LabelAllowlist) Snapshot {
	cs := slices.SortedFunc(slices.Values(snap.Containers), byName)
	out := Snapshot{Containers: make([]Container, len(cs)), Status: statusOf(snap.Status)}
	for i, c := range cs {
		out.Containers[i] = containerOf(c, snap.Counts[c.Name], allow)
	}
	return out
}

// marshal encodes v as one line of JSON. The API's types always encode.
func marshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic("liveview: " + err.Error())
	}
	return b
}

// joinJSON writes the encoded values as a JSON array.
func joinJSON(buf *bytes.Buffer, items [][]byte) {
	buf.WriteByte('[')
	for i, it := range items {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.Write(it)
	}
	buf.WriteByte(']')
}
