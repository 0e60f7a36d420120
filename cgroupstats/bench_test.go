package cgroupstats_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/docker-exporter/docker_exporter/cgroupstats"
	"github.com/docker-exporter/docker_exporter/internal/cgrouptree"
)

// populate clones one container of a testdata tree n times, under new
// ids and pids; it returns the tree and the clones.
func populate(b *testing.B, tree, id string, pid, n int) (string, []cgrouptree.Container) {
	b.Helper()
	clones := make([]cgrouptree.Container, n)
	for i := range clones {
		clones[i] = cgrouptree.Container{ID: fmt.Sprintf("%064x", i+1), Pid: 100000 + i}
	}
	return cgrouptree.Clone(b, filepath.Join("testdata", tree), id, pid, clones), clones
}

// BenchmarkRead reads every container of a host with 100 and 1,000 of
// them, as one scrape would, and reports the cost of one container.
func BenchmarkRead(b *testing.B) {
	for _, layout := range []struct {
		name, tree, id string
		pid            int
		private        bool // the reader in a cgroup namespace of its own
	}{
		{"v2-systemd", "v2-systemd", v2ID, v2Pid, false},
		{"v2-systemd-private-cgroupns", "v2-systemd", v2ID, v2Pid, true},
		{"v1-cgroupfs", "v1-cgroupfs", v1ID, v1Pid, false},
	} {
		for _, n := range []int{100, 1000} {
			b.Run(fmt.Sprintf("%s/%d", layout.name, n), func(b *testing.B) {
				tree, clones := populate(b, layout.tree, layout.id, layout.pid, n)
				if layout.private {
					seeFromOwnNamespace(b, tree, clones)
				}
				r := newReader(b, tree)
				b.ReportAllocs()
				for b.Loop() {
					for _, c := range clones {
						if u, err := r.Read(c.Pid, c.ID); err != nil || u.Missing != nil {
							b.Fatalf("pid %d: %v, %v", c.Pid, err, u.Missing)
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
			if _, err := r.Read(os.Getpid(), ""); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/container")
	})
}

// seeFromOwnNamespace rewrites the clones' /proc/<pid>/cgroup as a reader
// in a sibling cgroup's namespace sees them: "0::/../docker-<id>.scope".
func seeFromOwnNamespace(b *testing.B, tree string, clones []cgrouptree.Container) {
	b.Helper()
	for _, c := range clones {
		path := filepath.Join(tree, "proc", strconv.Itoa(c.Pid), "cgroup")
		data, err := os.ReadFile(path)
		if err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(strings.Replace(string(data), "::/system.slice/", "::/../", 1)), 0o644); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFindOutsideNamespace is the first read of a container by a
// reader in a cgroup namespace of its own, on a host with 1,000 of them:
// one walk of the tree, which also finds every other container.
func BenchmarkFindOutsideNamespace(b *testing.B) {
	tree, clones := populate(b, "v2-systemd", v2ID, v2Pid, 1000)
	seeFromOwnNamespace(b, tree, clones)
	b.ReportAllocs()
	for b.Loop() {
		r := newReader(b, tree)
		if _, err := r.Read(clones[0].Pid, clones[0].ID); err != nil {
			b.Fatal(err)
		}
	}
}
