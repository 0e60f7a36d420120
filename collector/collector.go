// Package collector turns a snapshot of the container store into Prometheus
// metrics. It never calls the Docker daemon: everything it reports comes from
// the store's event-fed cache.
package collector

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/docker-exporter/docker_exporter/store"
)

const namespace = "docker"

// Source is where the collector reads the state from; *store.Store is one.
type Source interface {
	Snapshot() store.Snapshot
}

// Config chooses what the collector exports.
type Config struct {
	// Labels lists the container label keys exported on
	// docker_container_labels; "*" exports all of them. Empty exports none.
	Labels []string
}

// Collector is a prometheus.Collector over the store.
type Collector struct {
	source    Source
	allLabels bool
	labels    map[string]bool
}

var _ prometheus.Collector = (*Collector)(nil)

// New makes a collector that reads source on every scrape.
func New(source Source, cfg Config) *Collector {
	c := &Collector{source: source, labels: make(map[string]bool)}
	for _, k := range cfg.Labels {
		if k == "*" {
			c.allLabels = true
		}
		c.labels[k] = true
	}
	return c
}

const cacheNote = " (from the exporter's event-fed cache; a scrape never calls the daemon)."

func newDesc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(namespace, "", name), help+cacheNote, labels, nil)
}

var (
	infoDesc = newDesc("container_info",
		"Always 1: one series per container the daemon has, with its identity",
		"name", "id", "image", "image_id", "compose_project", "compose_service")
	labelsHelp = "Always 1: the container's labels allowed by --container.labels, as label_<key>" + cacheNote
	labelsName = prometheus.BuildFQName(namespace, "", "container_labels")
	// labelsDesc stands for docker_container_labels in Describe; the label
	// names of the real series depend on which keys the containers have.
	labelsDesc = prometheus.NewDesc(labelsName, labelsHelp, []string{"name"}, nil)
	stateDesc  = newDesc("container_state",
		"Container state, one-hot: 1 for the current state, 0 for the others",
		"name", "state")
	healthDesc = newDesc("container_health_status",
		"Health check status, one-hot; only for containers with a health check",
		"name", "status")
	failingStreakDesc = newDesc("container_health_failing_streak",
		"Consecutive failed health checks; only for containers with a health check",
		"name")
	restartsDesc = newDesc("container_restarts_total",
		"Times the daemon restarted the container by its restart policy (the daemon's RestartCount)",
		"name")
	oomKilledDesc = newDesc("container_oom_killed",
		"1 if the container's last exit was an OOM kill",
		"name")
	exitCodeDesc = newDesc("container_exit_code",
		"Exit code of the container's last exit; absent until it has exited once",
		"name")
	createdDesc = newDesc("container_created_timestamp_seconds",
		"When the container was created, in seconds since the epoch",
		"name")
	startedDesc = newDesc("container_started_timestamp_seconds",
		"When the container last started, in seconds since the epoch; absent if it never started",
		"name")
	finishedDesc = newDesc("container_finished_timestamp_seconds",
		"When the container last finished, in seconds since the epoch; absent if it never finished",
		"name")
	startsDesc = newDesc("container_starts_total",
		"Start events seen for containers of this name",
		"name")
	deathsDesc = newDesc("container_deaths_total",
		"Deaths of containers of this name: die events seen, plus deaths found when resyncing after a lost event stream",
		"name")
	oomEventsDesc = newDesc("container_oom_events_total",
		"OOM events seen for containers of this name",
		"name")
	destroysDesc = newDesc("container_destroys_total",
		"Destroy events seen for containers of this name, plus removals found when resyncing",
		"name")
	containersDesc = newDesc("containers",
		"Containers per state",
		"state")
	eventsDesc = newDesc("events_total",
		"Events received from the daemon, by type and action (without the action's detail)",
		"type", "action")
	upDesc = newDesc("up",
		"1 while the daemon's event stream is connected and the last sync succeeded")
	daemonInfoDesc = newDesc("daemon_info",
		"Always 1: the daemon's version and platform, read at the last (re)connect",
		"version", "api_version", "os", "arch", "kernel_version")
	reconnectsDesc = prometheus.NewDesc("docker_exporter_event_stream_reconnects_total",
		"Times the exporter re-established the daemon's event stream after losing it.", nil, nil)
	syncsDesc = prometheus.NewDesc("docker_exporter_syncs_total",
		"Full syncs (list and inspect of every container) the exporter completed.", nil, nil)
	lastEventDesc = prometheus.NewDesc("docker_exporter_last_event_timestamp_seconds",
		"The daemon's time of the newest event the exporter applied, in seconds since the epoch.", nil, nil)
	lastSyncDesc = prometheus.NewDesc("docker_exporter_last_sync_timestamp_seconds",
		"When the exporter last completed a full sync, in seconds since the epoch.", nil, nil)
)

// Describe sends every descriptor the collector uses.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		infoDesc, labelsDesc, stateDesc, healthDesc, failingStreakDesc, restartsDesc,
		oomKilledDesc, exitCodeDesc, createdDesc, startedDesc, finishedDesc,
		startsDesc, deathsDesc, oomEventsDesc, destroysDesc, containersDesc,
		eventsDesc, upDesc, daemonInfoDesc, reconnectsDesc, syncsDesc,
		lastEventDesc, lastSyncDesc,
	} {
		ch <- d
	}
}

// Collect reads one snapshot and sends its metrics.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	snap := c.source.Snapshot()
	containers := uniqueByName(snap.Containers)
	c.collectLabels(ch, containers)
	perState := make(map[string]int, len(store.States))
	for _, ct := range containers {
		perState[ct.State]++
		collectContainer(ch, ct)
	}
	for name, n := range snap.Counts {
		name = clean(name)
		counter(ch, startsDesc, n.Starts, name)
		counter(ch, deathsDesc, n.Deaths, name)
		counter(ch, oomEventsDesc, n.OOMs, name)
		counter(ch, destroysDesc, n.Destroys, name)
	}
	for _, state := range store.States {
		gauge(ch, containersDesc, float64(perState[state]), state)
	}
	for kind, n := range snap.Events {
		counter(ch, eventsDesc, n, clean(kind.Type), clean(kind.Action))
	}
	collectStatus(ch, snap.Status)
}

func collectContainer(ch chan<- prometheus.Metric, ct *store.Container) {
	name := clean(ct.Name)
	gauge(ch, infoDesc, 1, name, ct.ID, clean(ct.Image), clean(ct.ImageID), clean(ct.ComposeProject()), clean(ct.ComposeService()))
	for _, state := range store.States {
		gauge(ch, stateDesc, boolValue(ct.State == state), name, state)
	}
	if ct.Health != "" {
		for _, status := range store.HealthStatuses {
			gauge(ch, healthDesc, boolValue(ct.Health == status), name, status)
		}
		gauge(ch, failingStreakDesc, float64(ct.FailingStreak), name)
	}
	counter(ch, restartsDesc, uint64(max(ct.RestartCount, 0)), name)
	gauge(ch, oomKilledDesc, boolValue(ct.OOMKilled), name)
	if ct.HasExitCode {
		gauge(ch, exitCodeDesc, float64(ct.ExitCode), name)
	}
	timestamp(ch, createdDesc, ct.Created, name)
	timestamp(ch, startedDesc, ct.Started, name)
	timestamp(ch, finishedDesc, ct.Finished, name)
}

func collectStatus(ch chan<- prometheus.Metric, st store.Status) {
	gauge(ch, upDesc, boolValue(st.Up))
	if d := st.Daemon; d.Version != "" {
		gauge(ch, daemonInfoDesc, 1, clean(d.Version), clean(d.APIVersion), clean(d.OS), clean(d.Arch), clean(d.KernelVersion))
	}
	counter(ch, reconnectsDesc, st.Reconnects)
	counter(ch, syncsDesc, st.Syncs)
	timestamp(ch, lastEventDesc, st.LastEvent)
	timestamp(ch, lastSyncDesc, st.LastSync)
}

// collectLabels sends docker_container_labels. All series of a family share
// one set of label names, so it is the union of the allowed keys that any
// container has; a container without a key gets an empty value, which
// Prometheus treats as the label being absent.
func (c *Collector) collectLabels(ch chan<- prometheus.Metric, containers []*store.Container) {
	if !c.allLabels && len(c.labels) == 0 {
		return
	}
	seen := make(map[string]bool)
	var keys []string
	for _, ct := range containers {
		for k := range ct.Labels {
			if (c.allLabels || c.labels[k]) && !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
		}
	}
	// Keys that sanitise to the same name share its label: a container
	// gets the value of the first such key (in sorted order) that it has,
	// the same one on every scrape.
	slices.Sort(keys)
	names := []string{"name"}
	keysOf := make(map[string][]string)
	for _, k := range keys {
		ln := "label_" + sanitizeLabelName(k)
		if keysOf[ln] == nil {
			names = append(names, ln)
		}
		keysOf[ln] = append(keysOf[ln], k)
	}
	if len(names) == 1 {
		return
	}
	desc := prometheus.NewDesc(labelsName, labelsHelp, names, nil)
	values := make([]string, len(names))
	for _, ct := range containers {
		values[0] = clean(ct.Name)
		for i, ln := range names[1:] {
			values[i+1] = ""
			for _, k := range keysOf[ln] {
				if v, ok := ct.Labels[k]; ok {
					values[i+1] = clean(v)
					break
				}
			}
		}
		gauge(ch, desc, 1, values...)
	}
}

// sanitizeLabelName maps a Docker label key onto [a-zA-Z0-9_].
func sanitizeLabelName(key string) string {
	var b strings.Builder
	b.Grow(len(key))
	for _, r := range key {
		if r < 128 && (r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

// clean makes a label value valid UTF-8, which Prometheus requires.
func clean(s string) string {
	return strings.ToValidUTF8(s, "\uFFFD")
}

// uniqueByName keeps one container per name, the newest, so that a moment
// of disagreement (two containers briefly holding one name) can never make
// a scrape fail on duplicate series.
func uniqueByName(in []*store.Container) []*store.Container {
	out := slices.Clone(in)
	slices.SortFunc(out, func(a, b *store.Container) int {
		return cmp.Or(strings.Compare(a.Name, b.Name), b.Created.Compare(a.Created), strings.Compare(a.ID, b.ID))
	})
	return slices.CompactFunc(out, func(a, b *store.Container) bool { return a.Name == b.Name })
}

func gauge(ch chan<- prometheus.Metric, d *prometheus.Desc, v float64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

func counter(ch chan<- prometheus.Metric, d *prometheus.Desc, v uint64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
}

// timestamp omits a time the daemon does not have rather than send an epoch.
func timestamp(ch chan<- prometheus.Metric, d *prometheus.Desc, t time.Time, labels ...string) {
	if !t.IsZero() {
		gauge(ch, d, float64(t.Unix())+float64(t.Nanosecond())/1e9, labels...)
	}
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
