// Package cgrouptree makes a host's cgroup and /proc trees of many
// containers in a temporary directory, for benchmarks: a template tree
// with one container (cgroupstats/testdata/*) is copied, and its container
// cloned under each new id and pid.
package cgrouptree

import (
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Container is one clone: its id and the pid of its init process.
type Container struct {
	ID  string
	Pid int
}

// Clone copies the template tree into a temporary directory of tb and
// clones its container id (init process pid) as each of clones: every
// cgroup directory named after it, and its /proc entry with the cgroup
// file naming the clone. It returns the new tree's root, which has sys/fs/cgroup
// and proc below it.
func Clone(tb testing.TB, template, id string, pid int, clones []Container) string {
	tb.Helper()
	root := filepath.Join(tb.TempDir(), "host")
	if err := os.CopyFS(root, os.DirFS(template)); err != nil {
		tb.Fatal(err)
	}
	var dirs []string
	err := filepath.WalkDir(filepath.Join(root, "sys"), func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() && strings.Contains(d.Name(), id) {
			dirs = append(dirs, path)
			return filepath.SkipDir
		}
		return err
	})
	if err != nil || len(dirs) == 0 {
		tb.Fatalf("cgrouptree: no cgroup of %s in %s: %v", id, template, err)
	}
	proc := filepath.Join(root, "proc", strconv.Itoa(pid))
	cgroup, err := os.ReadFile(filepath.Join(proc, "cgroup"))
	if err != nil {
		tb.Fatal(err)
	}
	for _, c := range clones {
		for _, dir := range dirs {
			clone := filepath.Join(filepath.Dir(dir), strings.ReplaceAll(filepath.Base(dir), id, c.ID))
			if err := os.CopyFS(clone, os.DirFS(dir)); err != nil {
				tb.Fatal(err)
			}
		}
		cproc := filepath.Join(root, "proc", strconv.Itoa(c.Pid))
		if err := os.CopyFS(cproc, os.DirFS(proc)); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(cproc, "cgroup"), []byte(strings.ReplaceAll(string(cgroup), id, c.ID)), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	return root
}
