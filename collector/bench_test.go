package collector

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/docker-exporter/docker_exporter/stats"
	"github.com/docker-exporter/docker_exporter/store"
)

// syntheticSnapshot makes n containers in a realistic mix of states.
func syntheticSnapshot(n int) store.Snapshot {
	snap := store.Snapshot{Counts: make(map[string]store.Counts, n), Status: store.Status{Up: true}}
	for i := range n {
		name := fmt.Sprintf("project-service-%d", i)
		c := &store.Container{
			ID: fmt.Sprintf("%064x", i), Name: name, Image: "registry.example.com/team/app:1.2.3",
			ImageID: fmt.Sprintf("sha256:%064x", i%50),
			Labels: map[string]string{
				"com.docker.compose.project": fmt.Sprintf("project-%d", i%20),
				"com.docker.compose.service": fmt.Sprintf("service-%d", i),
			},
			State: store.States[i%len(store.States)], Created: at(1), Started: at(2),
		}
		if i%3 == 0 {
			c.Health = store.HealthStatuses[i%len(store.HealthStatuses)]
		}
		if i%2 == 0 {
			c.Finished, c.ExitCode, c.HasExitCode = at(3), i%4, true
		}
		snap.Containers = append(snap.Containers, c)
		snap.Counts[name] = store.Counts{Starts: uint64(i % 7), Deaths: uint64(i % 5)}
	}
	return snap
}

// BenchmarkScrape measures one HTTP scrape of the collector, encoding in
// process, as Prometheus would ask for it (plain text, or gzip).
func BenchmarkScrape(b *testing.B) {
	for _, n := range []int{100, 1000, 10000} {
		handler := Handler(New(fixedSource(syntheticSnapshot(n)), Config{}), HandlerOpts{})
		for _, gzip := range []bool{false, true} {
			b.Run(fmt.Sprintf("containers=%d/gzip=%t", n, gzip), func(b *testing.B) {
				req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
				if gzip {
					req.Header.Set("Accept-Encoding", "gzip")
				}
				var size int
				for b.Loop() {
					rec := httptest.NewRecorder()
					handler.ServeHTTP(rec, req)
					if rec.Code != http.StatusOK {
						b.Fatalf("status %d", rec.Code)
					}
					size = rec.Body.Len()
					_, _ = io.Copy(io.Discard, rec.Body)
				}
				b.ReportMetric(float64(size), "bytes/scrape")
			})
		}
	}
}

// syntheticUsage is a sample with every figure and one interface for each
// running or paused container of snap.
func syntheticUsage(snap store.Snapshot) fixedUsage {
	sample := fixedUsage{Seq: 1, At: at(5), Source: "cgroup", ByID: map[string]stats.Usage{}, Started: map[string]time.Time{}}
	for i, c := range snap.Containers {
		if c.State != "running" && c.State != "paused" {
			continue
		}
		sample.ByID[c.ID] = stats.Usage{
			CPUSeconds: float64(i) * 1.25, HasCPU: true, ThrottledSeconds: 0.5, HasThrottled: i%2 == 0,
			MemoryBytes: uint64(i) << 20, HasMemory: true, WorkingSetBytes: uint64(i) << 19, HasWorkingSet: true,
			LimitBytes: 1 << 30, HasLimit: i%2 == 0, BlockReadBytes: uint64(i) * 4096, BlockWriteBytes: uint64(i) * 8192,
			HasBlockIO: true, PIDs: uint64(i%50 + 1), HasPIDs: true,
			Networks: []stats.Interface{{Name: "eth0", RxBytes: uint64(i) * 1000, TxBytes: uint64(i) * 2000, RxPackets: uint64(i), TxPackets: uint64(i)}},
		}
		sample.Started[c.ID] = c.Started
	}
	return sample
}

// BenchmarkScrapeWithUsage measures what resource usage adds to a scrape of
// n containers that all run: the same scrape with usage=false, and with a
// new sample each iteration (the worst case: the usage section is rendered
// again, not copied).
func BenchmarkScrapeWithUsage(b *testing.B) {
	for _, n := range []int{100, 1000} {
		snap := syntheticSnapshot(n)
		for i, c := range snap.Containers {
			running := *c
			running.State = "running"
			snap.Containers[i] = &running
		}
		for _, withUsage := range []bool{false, true} {
			usage := &nextSample{sample: syntheticUsage(snap)}
			cfg := Config{}
			if withUsage {
				cfg.Usage = usage
			}
			handler := Handler(New(fixedSource(snap), cfg), HandlerOpts{})
			b.Run(fmt.Sprintf("containers=%d/usage=%t", n, withUsage), func(b *testing.B) {
				req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
				var size int
				for b.Loop() {
					usage.sample.Seq++
					rec := httptest.NewRecorder()
					handler.ServeHTTP(rec, req)
					if rec.Code != http.StatusOK {
						b.Fatalf("status %d", rec.Code)
					}
					size = rec.Body.Len()
				}
				b.ReportMetric(float64(size), "bytes/scrape")
			})
		}
	}
}

// nextSample serves its sample, whose Seq the benchmark moves on.
type nextSample struct{ sample fixedUsage }

func (n *nextSample) Latest() stats.Sample { return stats.Sample(n.sample) }
