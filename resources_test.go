package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker-exporter/docker_exporter/internal/exporterproc"
	"github.com/docker-exporter/docker_exporter/internal/fakeengine"
	"github.com/docker-exporter/docker_exporter/internal/scrape"
)

// BenchmarkExporterRSS measures the resident memory of the exporter binary
// following a fake daemon of 1,000 and 10,000 containers, after its sync and
// a few scrapes (so the rendered exposition is cached too).
func BenchmarkExporterRSS(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("containers=%d", n), func(b *testing.B) {
			e := fakeExporter(b, n)
			var rss float64
			for b.Loop() {
				for range 3 {
					if _, err := e.Get(); err != nil {
						b.Fatal(err)
					}
				}
				rss = float64(procStatusKB(b, e.Pid(), "VmRSS")) / 1024
			}
			b.ReportMetric(rss, "RSS-MiB")
			b.ReportMetric(float64(procStatusKB(b, e.Pid(), "VmHWM"))/1024, "peak-RSS-MiB")
		})
	}
}

// BenchmarkExporterIdleCPU measures the CPU the exporter uses over 60 s with
// 1,000 containers and nothing happening: with no polling loop it should be
// next to nothing.
func BenchmarkExporterIdleCPU(b *testing.B) {
	e := fakeExporter(b, 1000)
	const idle = 60 * time.Second
	var share float64
	for b.Loop() {
		before := cpuTicks(b, e.Pid())
		time.Sleep(idle) // the measurement itself: an idle minute
		used := float64(cpuTicks(b, e.Pid())-before) / 100
		share = 100 * used / idle.Seconds()
	}
	b.ReportMetric(share, "%-of-a-core")
}

// fakeExporter runs the exporter binary against a fake daemon of n
// containers and waits for its sync.
func fakeExporter(b *testing.B, n int) *exporterproc.Exporter {
	b.Helper()
	engine := fakeengine.New(fakeengine.Options{})
	engine.Populate(n, 1)
	dir, err := os.MkdirTemp("", "dxb")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	if err := engine.ListenUnix(filepath.Join(dir, "docker.sock")); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { engine.Close() })
	e := exporterproc.Start(b, exporterproc.Build(b, false), "--docker.host="+engine.Host())
	e.WaitFor(b, fmt.Sprintf("%d containers synced", n), func(s *scrape.Scrape) bool {
		return s.Up() && len(s.Find("docker_container_info")) == n
	}, "docker_up")
	return e
}

func procStatusKB(b *testing.B, pid int, field string) int {
	b.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.Lines(string(data)) {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			if err != nil {
				b.Fatal(err)
			}
			return kb
		}
	}
	b.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// cpuTicks is the user and system time of pid, in clock ticks (1/100 s).
func cpuTicks(b *testing.B, pid int) int {
	b.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command name, which is in parentheses and may hold
	// spaces: state is the first, utime the 12th, stime the 13th.
	fields := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
	utime, err1 := strconv.Atoi(fields[11])
	stime, err2 := strconv.Atoi(fields[12])
	if err1 != nil || err2 != nil {
		b.Fatalf("cannot read /proc/%d/stat: %q", pid, data)
	}
	return utime + stime
}
