package cgroupstats

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// The layouts Layout reports.
const (
	LayoutV1     = "v1"     // one hierarchy per controller (or group of them)
	LayoutV2     = "v2"     // the unified hierarchy
	LayoutHybrid = "hybrid" // v1 controllers, plus a v2 hierarchy without them
)

// v1Controllers are the v1 controllers Read uses.
var v1Controllers = []string{"cpu", "cpuacct", "memory", "blkio", "pids"}

// layout is what New finds under the cgroup root.
type layout struct {
	name    string
	unified string            // v2: the directory of the v2 root cgroup
	v1      map[string]string // v1 and hybrid: controller -> its hierarchy's root directory
}

// detect finds the layout from what the kernel shows under root, not from
// where distributions usually mount things:
//   - root is itself a v2 mount when it holds cgroup.controllers, a file
//     every v2 cgroup has and no v1 cgroup has;
//   - otherwise each directory below root that holds cgroup.procs (every
//     cgroup has it) is a mounted hierarchy: v2 if it also holds
//     cgroup.controllers, else v1. A v1 hierarchy's controllers are read from
//     both the directory's name ("cpu,cpuacct", the mount convention) and the
//     controller files at its root ("memory.stat"), so a mount under another
//     name is still found; symlinks such as cpu -> cpu,cpuacct are followed.
//
// Directories without cgroup.procs are not mounted: that is what a
// non-recursive bind mount of a host's /sys/fs/cgroup looks like.
func detect(root string) (layout, error) {
	fi, err := os.Stat(root)
	if err != nil {
		return layout{}, fmt.Errorf("cgroup root %s is not readable: %w", root, err)
	}
	if !fi.IsDir() {
		return layout{}, fmt.Errorf("cgroup root %s is not a directory", root)
	}
	if exists(filepath.Join(root, "cgroup.controllers")) {
		return layout{name: LayoutV2, unified: root}, nil
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		return layout{}, fmt.Errorf("cgroup root %s is not readable: %w", root, err)
	}
	l := layout{v1: make(map[string]string)}
	for _, e := range entries {
		dir := filepath.Join(root, e.Name())
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() || !exists(filepath.Join(dir, "cgroup.procs")) {
			continue
		}
		if exists(filepath.Join(dir, "cgroup.controllers")) {
			if l.unified == "" {
				l.unified = dir
			}
			continue
		}
		for _, c := range v1ControllersOf(dir, e.Name()) {
			if _, seen := l.v1[c]; !seen {
				l.v1[c] = dir
			}
		}
	}
	switch {
	case len(l.v1) > 0 && l.unified != "":
		l.name = LayoutHybrid
	case len(l.v1) > 0:
		l.name = LayoutV1
	case l.unified != "":
		// Only a v2 hierarchy, mounted below root: read it there.
		return layout{name: LayoutV2, unified: l.unified}, nil
	default:
		return layout{}, fmt.Errorf("no cgroup hierarchy under %s: nothing mounted there "+
			"(a bind mount of a host's cgroup tree must be recursive)", root)
	}
	return l, nil
}

// v1ControllersOf names the controllers Read uses that the v1 hierarchy
// mounted at dir (named name) carries.
func v1ControllersOf(dir, name string) []string {
	var have []string
	add := func(c string) {
		if slices.Contains(v1Controllers, c) && !slices.Contains(have, c) {
			have = append(have, c)
		}
	}
	for c := range strings.SplitSeq(name, ",") {
		add(c)
	}
	// The pids hierarchy has no pids.* files at its root, but the others do.
	if names, err := readDirNames(dir); err == nil {
		for _, n := range names {
			if c, _, ok := strings.Cut(n, "."); ok {
				add(c)
			}
		}
	}
	return have
}

func readDirNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Readdirnames(-1)
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
