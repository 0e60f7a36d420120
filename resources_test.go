package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/docker-exporter/docker_exporter/internal/cgrouptree"
	"github.com/docker-exporter/docker_exporter/internal/exporterproc"
	"github.com/docker-exporter/docker_exporter/internal/fakeengine"
	"github.com/docker-exporter/docker_exporter/internal/scrape"
)

// BenchmarkExporterRSS measures the resident memory of the exporter binary
// following a fake daemon of 1,000 and 10,000 containers, after its sync and
// a few scrapes (so the rendered exposition is cached too). Resource usage
// is off: the fake daemon's containers have no cgroups (see
// BenchmarkExporterRSSWithUsage).
func BenchmarkExporterRSS(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("containers=%d", n), func(b *testing.B) {
			e := fakeExporter(b, n, "--no-collector.stats")
			residentAfterScrapes(b, e)
			b.ReportMetric(float64(procStatusKB(b, e.Pid(), "VmHWM"))/1024, "peak-RSS-MiB")
		})
	}
}

// BenchmarkExporterIdleCPU measures the CPU the exporter uses over 60 s with
// 1,000 containers and nothing happening: with no polling loop it should be
// next to nothing; one resync a minute is all it does.
func BenchmarkExporterIdleCPU(b *testing.B) {
	idleCPU(b, fakeExporter(b, 1000, "--no-collector.stats"))
}

// BenchmarkExporterIdleCPUWithUsage is BenchmarkExporterIdleCPU with
// resource usage sampled at the default interval, for 100 running
// containers whose cgroup and /proc files are a generated tree.
func BenchmarkExporterIdleCPUWithUsage(b *testing.B) {
	idleCPU(b, usageExporter(b, 100, true))
}

func idleCPU(b *testing.B, e *exporterproc.Exporter) {
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

// BenchmarkExporterRSSWithUsage measures the resident memory of the exporter
// following 1,000 running containers with and without resource usage,
// after a sample and a few scrapes.
func BenchmarkExporterRSSWithUsage(b *testing.B) {
	for _, usage := range []bool{false, true} {
		b.Run(fmt.Sprintf("running=1000/usage=%t", usage), func(b *testing.B) {
			residentAfterScrapes(b, usageExporter(b, 1000, usage))
		})
	}
}

// residentAfterScrapes reports e's resident memory after a few scrapes, so
// that what a scrape renders and keeps is counted too.
func residentAfterScrapes(b *testing.B, e *exporterproc.Exporter) {
	b.Helper()
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
}

// usageExporter runs the exporter against a fake daemon of n running
// containers, with their cgroup and /proc files cloned from cgroupstats'
// v1 testdata tree under their ids and pids; with usage, it waits for
// their figures.
func usageExporter(b *testing.B, n int, usage bool) *exporterproc.Exporter {
	b.Helper()
	engine, host := fakeDaemon(b)
	for range n {
		engine.Add(fakeengine.Spec{State: "running"})
	}
	cli, err := client.New(client.WithHost(host))
	if err != nil {
		b.Fatal(err)
	}
	defer cli.Close()
	var clones []cgrouptree.Container
	for _, c := range engine.Truth() {
		r, err := cli.ContainerInspect(context.Background(), c.ID, client.ContainerInspectOptions{})
		if err != nil {
			b.Fatal(err)
		}
		clones = append(clones, cgrouptree.Container{ID: c.ID, Pid: r.Container.State.Pid})
	}
	// The template's container and its init process.
	const templateID, templatePid = "6f2a83b1d4c9e07a5b3f18d2c6e94a07b1d3f5e8a2c4b6d8e0f1a3c5b7d9e1f3", 2817
	tree := cgrouptree.Clone(b, filepath.Join("cgroupstats", "testdata", "v1-cgroupfs"), templateID, templatePid, clones)
	flags := []string{"--docker.host=" + host, "--stats.source=cgroup",
		"--stats.cgroup-root=" + filepath.Join(tree, "sys", "fs", "cgroup"), "--stats.proc-root=" + filepath.Join(tree, "proc")}
	if !usage {
		flags = []string{"--docker.host=" + host, "--no-collector.stats"}
	}
	e := exporterproc.Start(b, exporterproc.Build(b, false), flags...)
	e.WaitFor(b, fmt.Sprintf("%d containers synced, with usage %v", n, usage), func(s *scrape.Scrape) bool {
		return s.Up() && len(s.Find("docker_container_info")) == n && (!usage || len(s.Find("docker_container_cpu_usage_seconds_total")) == n)
	}, "docker_up")
	return e
}

// fakeExporter runs the exporter binary with flags against a fake daemon of
// n containers and waits for its sync.
func fakeExporter(b *testing.B, n int, flags ...string) *exporterproc.Exporter {
	b.Helper()
	engine, host := fakeDaemon(b)
	engine.Populate(n, 1)
	e := exporterproc.Start(b, exporterproc.Build(b, false), append([]string{"--docker.host=" + host}, flags...)...)
	e.WaitFor(b, fmt.Sprintf("%d containers synced", n), func(s *scrape.Scrape) bool {
		return s.Up() && len(s.Find("docker_container_info")) == n
	}, "docker_up")
	return e
}

// fakeDaemon starts a fake Engine on a socket of its own until b ends.
func fakeDaemon(b *testing.B) (*fakeengine.Engine, string) {
	b.Helper()
	engine := fakeengine.New(fakeengine.Options{})
	dir, err := os.MkdirTemp("", "dxb")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	if err := engine.ListenUnix(filepath.Join(dir, "docker.sock")); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { engine.Close() })
	return engine, engine.Host()
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
