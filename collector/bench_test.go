package collector

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

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
