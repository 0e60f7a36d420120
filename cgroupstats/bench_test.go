package cgroupstats_test

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/docker-exporter/docker_exporter/cgroupstats"
)

// populate copies a testdata tree into a temporary directory and clones
// one of its containers n times: every cgroup directory named after the
// container and its /proc entry, under new ids and pids. It returns the
// tree and the clones' pids.
func populate(b *testing.B, tree, id string, pid, n int) (string, []int) {
	b.Helper()
	root := copyTree(b, tree)
	var dirs []string
	err := filepath.WalkDir(filepath.Join(root, "sys"), func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() && strings.Contains(d.Name(), id) {
			dirs = append(dirs, path)
			return filepath.SkipDir
		}
		return err
	})
	if err != nil || len(dirs) == 0 {
		b.Fatalf("no cgroup of %s in %s: %v", id, tree, err)
	}
	template, err := os.ReadFile(filepath.Join(root, "proc", strconv.Itoa(pid), "cgroup"))
	if err != nil {
		b.Fatal(err)
	}
	pids := make([]int, n)
	for i := range pids {
		newID := fmt.Sprintf("%064x", i+1)
		pids[i] = 100000 + i
		for _, dir := range dirs {
			clone := filepath.Join(filepath.Dir(dir), strings.ReplaceAll(filepath.Base(dir), id, newID))
			if err := os.CopyFS(clone, os.DirFS(dir)); err != nil {
				b.Fatal(err)
			}
		}
		proc := filepath.Join(root, "proc", strconv.Itoa(pids[i]))
		if err := os.CopyFS(proc, os.DirFS(filepath.Join(root, "proc", strconv.Itoa(pid)))); err != nil {
			b.Fatal(err)
		}
		cgroup := strings.ReplaceAll(string(template), id, newID)
		if err := os.WriteFile(filepath.Join(proc, "cgroup"), []byte(cgroup), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	return root, pids
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
