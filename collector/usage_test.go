package collector

import (
	"strings"
	"testing"
	"time"

	"github.com/docker-exporter/docker_exporter/stats"
	"github.com/docker-exporter/docker_exporter/store"
)

type fixedUsage stats.Sample

func (f fixedUsage) Latest() stats.Sample { return stats.Sample(f) }

// withUsage is mixed's containers with figures: shop-web-1 has every one,
// with a limit, a quota and two interfaces; sick has no limit, no quota and
// the host's network; batch exited, so its last figures are not shown.
var withUsage = stats.Sample{
	Seq: 3, At: at(30), Duration: 1500 * time.Microsecond, Source: "cgroup",
	ByID: map[string]stats.Usage{
		"aaa1": {
			CPUSeconds: 12.5, HasCPU: true, ThrottledSeconds: 0.75, HasThrottled: true,
			MemoryBytes: 64 << 20, HasMemory: true, WorkingSetBytes: 48 << 20, HasWorkingSet: true,
			LimitBytes: 256 << 20, HasLimit: true,
			BlockReadBytes: 4096, BlockWriteBytes: 8192, HasBlockIO: true, PIDs: 7, HasPIDs: true,
			Networks: []stats.Interface{
				{Name: "eth0", RxBytes: 1000, TxBytes: 2000, RxPackets: 10, TxPackets: 20},
				{Name: "eth1", RxBytes: 1, TxBytes: 2, RxPackets: 3, TxPackets: 4},
			},
		},
		"ccc3": {CPUSeconds: 0.5, HasCPU: true, MemoryBytes: 1 << 20, HasMemory: true, WorkingSetBytes: 0, HasWorkingSet: true,
			HasBlockIO: true, PIDs: 1, HasPIDs: true},
		"bbb2": {CPUSeconds: 99, HasCPU: true},
	},
	Started:    map[string]time.Time{"aaa1": at(10.5), "ccc3": at(2), "bbb2": at(2)},
	Unsampled:  1,
	ReadErrors: stats.ReadErrors{0, 4, 0, 0, 0, 1}, // pid_not_found and unreadable
}

func TestUsageGolden(t *testing.T) {
	checkGolden(t, "mixed_usage", New(fixedSource(mixed), Config{Usage: fixedUsage(withUsage)}))
}

func TestUsageOfAnEarlierRunOrAStoppedContainerIsNotShown(t *testing.T) {
	restarted := *mixed.Containers[0]
	restarted.Started = at(20) // after the sample's run of it
	snap := store.Snapshot{Containers: []*store.Container{&restarted, mixed.Containers[1]}}
	out := string(exposition(t, New(fixedSource(snap), Config{Usage: fixedUsage(withUsage)})))
	for _, name := range []string{"shop-web-1", "batch"} {
		if strings.Contains(out, `docker_container_cpu_usage_seconds_total{name="`+name+`"}`) {
			t.Errorf("usage of %s shown:\n%s", name, out)
		}
	}
	if !strings.Contains(out, `docker_exporter_stats_source_info{source="cgroup"} 1`) {
		t.Errorf("no source info:\n%s", out)
	}
}

func TestNoUsageSourceNoUsageFamilies(t *testing.T) {
	out := string(exposition(t, New(fixedSource(mixed), Config{})))
	if strings.Contains(out, "docker_container_cpu") || strings.Contains(out, "docker_exporter_stats") {
		t.Errorf("usage families without a source:\n%s", out)
	}
}
