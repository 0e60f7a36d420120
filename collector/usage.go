package collector

import (
	"slices"

	"github.com/docker-exporter/docker_exporter/stats"
	"github.com/docker-exporter/docker_exporter/store"
)

// UsageSource hands the exposition the latest sample of the containers'
// resource usage; *stats.Sampler is one. The exposition never reads usage
// itself: it renders what the sampler last read.
type UsageSource interface {
	Latest() stats.Sample
}

const usageNote = " (sampled in the background every --stats.interval from the container's cgroup files, " +
	"or the Engine's stats API where those are out of sight; a scrape never reads them)."

func usageCounter(name, help string) family { return newFamily(name, "counter", help+usageNote) }
func usageGauge(name, help string) family   { return newFamily(name, "gauge", help+usageNote) }

// The usage families, in the order they are written.
const (
	famCPU = iota
	famThrottled
	famMemory
	famWorkingSet
	famLimit
	famRxBytes
	famTxBytes
	famRxPackets
	famTxPackets
	famBlockRead
	famBlockWrite
	famPIDs
	numUsageFamilies
)

var usageFamilies = [numUsageFamilies]family{
	famCPU:        usageCounter("docker_container_cpu_usage_seconds_total", "CPU time (user and system) of the container's processes"),
	famThrottled:  usageCounter("docker_container_cpu_throttled_seconds_total", "Time the container's processes waited because it had used its CPU quota; only with a quota"),
	famMemory:     usageGauge("docker_container_memory_usage_bytes", "Memory charged to the container's cgroup, page cache included"),
	famWorkingSet: usageGauge("docker_container_memory_working_set_bytes", "Memory usage less the inactive file cache, floored at 0: what the OOM killer looks at (cAdvisor's and the kubelet's definition)"),
	famLimit:      usageGauge("docker_container_memory_limit_bytes", "The container's memory limit; absent when unlimited"),
	famRxBytes:    usageCounter("docker_container_network_receive_bytes_total", "Bytes received, per interface of the container's network namespace but lo; absent for the host's network"),
	famTxBytes:    usageCounter("docker_container_network_transmit_bytes_total", "Bytes sent, per interface of the container's network namespace but lo; absent for the host's network"),
	famRxPackets:  usageCounter("docker_container_network_receive_packets_total", "Packets received, per interface of the container's network namespace but lo; absent for the host's network"),
	famTxPackets:  usageCounter("docker_container_network_transmit_packets_total", "Packets sent, per interface of the container's network namespace but lo; absent for the host's network"),
	famBlockRead:  usageCounter("docker_container_blkio_read_bytes_total", "Bytes read from block devices, summed over devices"),
	famBlockWrite: usageCounter("docker_container_blkio_write_bytes_total", "Bytes written to block devices, summed over devices"),
	famPIDs:       usageGauge("docker_container_pids", "Processes and threads in the container's cgroup"),
}

var (
	statsSourceFamily = newFamily("docker_exporter_stats_source_info", "gauge",
		"Always 1: where the containers' resource usage comes from: cgroup (the kernel's files) or api (the Engine's stats API).")
	statsLastSampleFamily = newFamily("docker_exporter_stats_last_sample_timestamp_seconds", "gauge",
		"When the exporter last sampled the containers' resource usage, in seconds since the epoch.")
	statsSampleDurationFamily = newFamily("docker_exporter_stats_sample_duration_seconds", "gauge",
		"How long the last sample of the containers' resource usage took.")
	statsUnsampledFamily = newFamily("docker_exporter_stats_unsampled_containers", "gauge",
		"Running or paused containers whose resource usage the last sample could not read, so they have no usage series; "+
			"docker_exporter_stats_read_errors_total says why.")
	statsReadErrorsFamily = newFamily("docker_exporter_stats_read_errors_total", "counter",
		"Failed reads of a running container's resource usage, by reason: cgroup_not_found (not under --stats.cgroup-root), "+
			"pid_not_found (not in --stats.proc-root), permission_denied, timeout, api_error, unreadable. "+
			"A container that stopped meanwhile is not counted.")
)

// usageCache keeps the usage section of one sample for one set of
// containers: scrapes between two samples copy it. Exposition.mu guards it.
type usageCache struct {
	seq        uint64
	containers []*store.Container
	text       []byte
}

// renderUsage returns the usage families for the containers shown (sorted
// by name, one per name) that run and have figures in the latest sample of
// their current run, and the sampler's own status. x.mu must be held.
func (x *Exposition) renderUsage(containers []*store.Container) []byte {
	if x.usage == nil {
		return nil
	}
	sample := x.usage.Latest()
	var shown []*store.Container
	for _, c := range containers {
		if (c.State == "running" || c.State == "paused") && sample.Started[c.ID].Equal(c.Started) {
			if _, ok := sample.ByID[c.ID]; ok {
				shown = append(shown, c)
			}
		}
	}
	if uc := &x.usageCache; uc.text != nil && uc.seq == sample.Seq && slices.Equal(uc.containers, shown) {
		return uc.text
	}
	// One buffer for all: each family's lines go to its own slice of it,
	// sized for a line per container (network families may grow theirs).
	var fams [numUsageFamilies][]byte
	const lineSize = 96
	buf := make([]byte, 0, numUsageFamilies*lineSize*len(shown))
	for f := range fams {
		start := f * lineSize * len(shown)
		fams[f] = buf[start:start:min(start+lineSize*len(shown), cap(buf))]
	}
	var kv [4]string
	for _, c := range shown {
		u := sample.ByID[c.ID]
		kv[0], kv[1] = "name", clean(c.Name)
		add := func(f int, v float64, ok bool) {
			if ok {
				fams[f] = appendSeries(fams[f], usageFamilies[f].name, kv[:2])
				fams[f] = appendFloat(fams[f], v)
				fams[f] = append(fams[f], '\n')
			}
		}
		addInt := func(f int, v uint64, ok bool) {
			if ok {
				fams[f] = appendCountSample(fams[f], usageFamilies[f].name, v, kv[:2]...)
			}
		}
		addIface := func(f int, v uint64, iface string) {
			kv[2], kv[3] = "interface", iface
			fams[f] = appendCountSample(fams[f], usageFamilies[f].name, v, kv[:4]...)
		}
		add(famCPU, u.CPUSeconds, u.HasCPU)
		add(famThrottled, u.ThrottledSeconds, u.HasThrottled)
		addInt(famMemory, u.MemoryBytes, u.HasMemory)
		addInt(famWorkingSet, u.WorkingSetBytes, u.HasWorkingSet)
		addInt(famLimit, u.LimitBytes, u.HasLimit)
		for _, n := range u.Networks {
			iface := clean(n.Name)
			addIface(famRxBytes, n.RxBytes, iface)
			addIface(famTxBytes, n.TxBytes, iface)
			addIface(famRxPackets, n.RxPackets, iface)
			addIface(famTxPackets, n.TxPackets, iface)
		}
		addInt(famBlockRead, u.BlockReadBytes, u.HasBlockIO)
		addInt(famBlockWrite, u.BlockWriteBytes, u.HasBlockIO)
		addInt(famPIDs, u.PIDs, u.HasPIDs)
	}
	size := 0
	for f, lines := range fams {
		size += len(usageFamilies[f].header) + len(lines)
	}
	text := make([]byte, 0, size+1024)
	for f, lines := range fams {
		if len(lines) > 0 {
			text = append(text, usageFamilies[f].header...)
			text = append(text, lines...)
		}
	}
	var b lineBuilder
	text = append(text, statsSourceFamily.header...)
	text = append(text, b.plain(statsSourceFamily.name, 1, "source", clean(sample.Source))...)
	if !sample.At.IsZero() {
		text = append(text, statsLastSampleFamily.header...)
		text = append(text, b.plain(statsLastSampleFamily.name, seconds(sample.At))...)
		text = append(text, statsSampleDurationFamily.header...)
		text = append(text, b.plain(statsSampleDurationFamily.name, sample.Duration.Seconds())...)
		text = append(text, statsUnsampledFamily.header...)
		text = append(text, b.plain(statsUnsampledFamily.name, float64(sample.Unsampled))...)
	}
	text = append(text, statsReadErrorsFamily.header...)
	for i, reason := range stats.Reasons {
		text = append(text, b.plain(statsReadErrorsFamily.name, float64(sample.ReadErrors[i]), "reason", reason)...)
	}
	x.usageCache.seq, x.usageCache.containers, x.usageCache.text = sample.Seq, shown, text
	return text
}
