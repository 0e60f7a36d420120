package cgroupstats_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/docker-exporter/docker_exporter/cgroupstats"
	"github.com/docker-exporter/docker_exporter/internal/cgrouptree"
)

// populate clones one container of a testdata tree n times, under new
// ids and pids; it returns the tree and the clones' pids.
func populate(b *testing.B, tree, id string, pid, n int) (string, []int) {
	b.Helper()
	clones := make([]cgrouptree.Container, n)
	pids := make([]int, n)
	for i := range clones {
		pids[i] = 100000 + i
		clones[i] = cgrouptree.Container{ID: fmt.Sprintf("%064x", i+1), Pid: pids[i]}
	}
	return cgrouptree.Clone(b, filepath.Join("testdata", tree), id, pid, clones), pids
}

// BenchmarkRead reads every container of a host with 100 and 1,000 of
// them, as one scrape would, and reports the cost of one container.
func BenchmarkRead(b *testing.B) {
	for _, layout := range []struct {
		tree, id string
		pid      int
	}{
		{"v2-systemd", v2ID, v2Pid},
		{"v1-cgroupfs", v1ID, v1Pid},
	} {
		for _, n := range []int{100, 1000} {
			b.Run(fmt.Sprintf("%s/%d", layout.tree, n), func(b *testing.B) {
				tree, pids := populate(b, layout.tree, layout.id, layout.pid, n)
				r := newReader(b, tree)
				b.ReportAllocs()
				for b.Loop() {
					for _, pid := range pids {
						if u, err := r.Read(pid); err != nil || u.Missing != nil {
							b.Fatalf("pid %d: %v, %v", pid, err, u.Missing)
						}
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/container")
			})
		}
	}
	// The same on this machine's kernel, whose files cost more to read
	// than a temporary directory's.
	b.Run("kernel/self", func(b *testing.B) {
		r, err := cgroupstats.New(cgroupstats.Config{})
		if err != nil {
			b.Skipf("/sys/fs/cgroup is not mounted here: %v", err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := r.Read(os.Getpid()); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/container")
	})
}
