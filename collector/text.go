package collector

import (
	"math"
	"strconv"
	"strings"
	"time"
)

// family is one metric family: its name, and its HELP and TYPE lines.
type family struct {
	name   string
	header []byte
}

const cacheNote = " (from the exporter's event-fed cache; a scrape never calls the daemon)."

var helpEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`)

func newFamily(name, typ, help string) family {
	header := "# HELP " + name + " " + helpEscaper.Replace(help) + "\n# TYPE " + name + " " + typ + "\n"
	return family{name: name, header: []byte(header)}
}

func gaugeFamily(name, help string) family { return newFamily(name, "gauge", help+cacheNote) }

func counterFamily(name, help string) family { return newFamily(name, "counter", help+cacheNote) }

// The per-container families, in the order they are written.
const (
	famInfo = iota
	famLabels
	famState
	famHealth
	famFailingStreak
	famRestarts
	famOOMKilled
	famExitCode
	famCreated
	famStarted
	famFinished
)

var containerFamilies = [...]family{
	famInfo: gaugeFamily("docker_container_info",
		"Always 1: one series per container the daemon has, with its identity (pod: its Podman pod, empty for Docker)"),
	famLabels: gaugeFamily("docker_container_labels",
		"Always 1: the container's labels allowed by --container.labels, as label_<key>"),
	famState: gaugeFamily("docker_container_state",
		"Container state, one-hot: 1 for the current state, 0 for the others"),
	famHealth: gaugeFamily("docker_container_health_status",
		"Health check status, one-hot; only for containers with a health check"),
	famFailingStreak: gaugeFamily("docker_container_health_failing_streak",
		"Consecutive failed health checks; only for containers with a health check"),
	famRestarts: counterFamily("docker_container_restarts_total",
		"Times the daemon restarted the container by its restart policy (the daemon's RestartCount)"),
	famOOMKilled: gaugeFamily("docker_container_oom_killed",
		"1 if the daemon reports the container OOM-killed (State.OOMKilled): its last exit was an OOM kill, "+
			"or, from Engine 24 on, any of its processes was OOM-killed since it last started"),
	famExitCode: gaugeFamily("docker_container_exit_code",
		"Exit code of the container's last exit; absent until it has exited once"),
	famCreated: gaugeFamily("docker_container_created_timestamp_seconds",
		"When the container was created, in seconds since the epoch"),
	famStarted: gaugeFamily("docker_container_started_timestamp_seconds",
		"When the container last started, in seconds since the epoch; absent if it never started"),
	famFinished: gaugeFamily("docker_container_finished_timestamp_seconds",
		"When the container last finished, in seconds since the epoch; absent if it never finished"),
}

// The per-name counter families, in the order of store.Counts' fields.
var countFamilies = [...]family{
	counterFamily("docker_container_starts_total",
		"Start events seen for containers of this name"),
	counterFamily("docker_container_deaths_total",
		"Deaths of containers of this name: die events seen, plus deaths found when resyncing after a lost event stream"),
	counterFamily("docker_container_oom_events_total",
		"OOM events seen for containers of this name"),
	counterFamily("docker_container_destroys_total",
		"Destroy events seen for containers of this name, plus removals found when resyncing"),
}

var (
	containersFamily = gaugeFamily("docker_containers", "Containers per state")
	eventsFamily     = counterFamily("docker_events_total",
		"Events received from the daemon, by type and action (without the action's detail)")
	upFamily = gaugeFamily("docker_up",
		"1 while the daemon's event stream is connected and the last sync succeeded")
	daemonInfoFamily = gaugeFamily("docker_daemon_info",
		"Always 1: the daemon's version and platform, read at the last (re)connect; flavor is docker or podman")
	reconnectsFamily = newFamily("docker_exporter_event_stream_reconnects_total", "counter",
		"Times the exporter re-established the daemon's event stream after losing it.")
	syncsFamily = newFamily("docker_exporter_syncs_total", "counter",
		"Full syncs (list and inspect of every container) the exporter completed.")
	lastEventFamily = newFamily("docker_exporter_last_event_timestamp_seconds", "gauge",
		"The daemon's time of the newest event the exporter applied, in seconds since the epoch.")
	lastSyncFamily = newFamily("docker_exporter_last_sync_timestamp_seconds", "gauge",
		"When the exporter last completed a full sync, in seconds since the epoch.")
	resyncsFamily = newFamily("docker_exporter_resyncs_total", "counter",
		"Resyncs (one list of the containers, compared with the exporter's state) by reason: "+
			"interval (--store.resync-interval) or fell_behind (events arrived late, so the daemon may have dropped some).")
	correctionsFamily = newFamily("docker_exporter_resync_corrections_total", "counter",
		"Containers a resync found wrong, by kind: missing (the exporter did not have it), ghost (the daemon no longer has it), "+
			"changed (out of date). Non-zero means the daemon dropped events meant for the exporter.")
)

// lineBuilder renders sample lines of the text format (version 0.0.4).
type lineBuilder struct {
	b []byte
}

// sample renders one line of a per-container family.
func (l *lineBuilder) sample(fam int, v float64, kv ...string) []byte {
	l.add(fam, v, kv...)
	return l.take()
}

// add appends a line of a per-container family; take returns the lines.
func (l *lineBuilder) add(fam int, v float64, kv ...string) {
	l.b = appendSeries(l.b, containerFamilies[fam].name, kv)
	l.b = appendFloat(l.b, v)
	l.b = append(l.b, '\n')
}

func (l *lineBuilder) take() []byte {
	out := l.b
	l.b = nil
	return out
}

// plain renders one line with a float value.
func (l *lineBuilder) plain(name string, v float64, kv ...string) []byte {
	l.b = appendSeries(l.b[:0], name, kv)
	l.b = appendFloat(l.b, v)
	l.b = append(l.b, '\n')
	return l.b
}

// countSample renders one line with an integer value, kept exact.
func (l *lineBuilder) countSample(name string, v uint64, kv ...string) []byte {
	return appendCountSample(nil, name, v, kv...)
}

func appendCountSample(b []byte, name string, v uint64, kv ...string) []byte {
	b = appendSeries(b, name, kv)
	b = strconv.AppendUint(b, v, 10)
	return append(b, '\n')
}

func appendSeries(b []byte, name string, kv []string) []byte {
	b = append(b, name...)
	if len(kv) > 0 {
		b = append(b, '{')
		for i := 0; i < len(kv); i += 2 {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, kv[i]...)
			b = append(b, '=', '"')
			b = appendLabelValue(b, kv[i+1])
			b = append(b, '"')
		}
		b = append(b, '}')
	}
	return append(b, ' ')
}

func appendLabelValue(b []byte, v string) []byte {
	for i := 0; i < len(v); i++ {
		switch c := v[i]; c {
		case '\\':
			b = append(b, '\\', '\\')
		case '"':
			b = append(b, '\\', '"')
		case '\n':
			b = append(b, '\\', 'n')
		default:
			b = append(b, c)
		}
	}
	return b
}

// appendFloat writes a value as the text format's own encoder does.
func appendFloat(b []byte, f float64) []byte {
	switch {
	case f == 0:
		return append(b, '0')
	case f == 1:
		return append(b, '1')
	case math.IsNaN(f):
		return append(b, "NaN"...)
	case math.IsInf(f, 1):
		return append(b, "+Inf"...)
	case math.IsInf(f, -1):
		return append(b, "-Inf"...)
	case f == math.Trunc(f) && math.Abs(f) < 1e15:
		return strconv.AppendInt(b, int64(f), 10)
	}
	return strconv.AppendFloat(b, f, 'g', -1, 64)
}

// seconds is t as a float of seconds since the epoch, exact to the
// microsecond rather than rounded through one large nanosecond count.
func seconds(t time.Time) float64 {
	return float64(t.Unix()) + float64(t.Nanosecond())/1e9
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

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
