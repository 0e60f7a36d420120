package cgroupstats

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// A container's cgroup is named by /proc/<pid>/cgroup relative to the
// reader's cgroup namespace. On the host, or with --cgroupns=host, that is
// the whole path under the root. An exporter in a container of its own
// namespace (Docker's default on cgroup v2) sees other containers' paths
// as "/../docker-<id>.scope": the part below its own cgroup is lost, and
// only the tail still names the container. With the host's tree mounted
// (--stats.cgroup-root), the cgroup is still there; it is found by the
// container's id in a directory name, which every runtime puts there:
// /docker/<id> (cgroupfs), /system.slice/docker-<id>.scope (systemd),
// <parent>/<id> or <parent>.slice/docker-<id>.scope (--cgroup-parent),
// machine.slice/libpod-<id>.scope[/container] (Podman), and so on, at any
// depth. The search walks the tree, so its answers are kept: one walk finds
// every container, and another happens only when a container is asked for
// that the last walk did not see.

// ErrNoCgroup is the error of a Read whose container's cgroup is found
// neither at the path /proc/<pid>/cgroup names nor, by its id, anywhere
// under the cgroup root: the root is not the host's cgroup tree.
var ErrNoCgroup = errors.New("the container's cgroup is not under the cgroup root")

const (
	// maxSearchDepth bounds the walk: runtimes nest a container's cgroup a
	// few levels deep (Kubernetes' QoS and pod slices make four).
	maxSearchDepth = 8
	// retryMissing is how long an id a walk did not find waits before it
	// may cause another walk, so a container whose cgroup is nowhere costs
	// one walk a while rather than one per sample.
	retryMissing = 30 * time.Second
)

// index maps container ids to their cgroups' directories, relative to one
// hierarchy's root, as the last walk found them.
type index struct {
	root string

	mu      sync.Mutex
	byID    map[string]string
	walked  time.Time          // when the last walk began
	missing map[string]*asking // ids the last walks did not find
}

// asking says when an id was first and last asked for.
type asking struct{ first, last time.Time }

func newIndex(root string) *index { return &index{root: root, missing: make(map[string]*asking)} }

// find returns the directory of the cgroup of container id. It walks the
// tree when id is new since the last walk began, or was missing from it
// and retryMissing has passed.
func (x *index) find(id string) (string, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if rel, ok := x.byID[id]; ok {
		return filepath.Join(x.root, rel), nil
	}
	now := time.Now()
	a := x.missing[id]
	if a == nil {
		a = &asking{first: now}
		x.missing[id] = a
	}
	a.last = now
	if x.walked.Before(a.first) || now.Sub(x.walked) >= retryMissing {
		byID, err := walk(x.root)
		if err != nil {
			return "", err
		}
		x.byID, x.walked = byID, now
		for id, a := range x.missing {
			// Found, or no longer asked for (the container is gone).
			if _, found := byID[id]; found || now.Sub(a.last) > 2*retryMissing {
				delete(x.missing, id)
			}
		}
	}
	if rel, ok := x.byID[id]; ok {
		return filepath.Join(x.root, rel), nil
	}
	return "", fmt.Errorf("%w: no directory under %s names container %.12s", ErrNoCgroup, x.root, id)
}

// walk lists the directories under root whose names hold a container id (64
// hex digits), the shallowest for each id. Podman's conmon runs in a cgroup
// named after the container too (libpod-conmon-<id>.scope): it is not the
// container's.
func walk(root string) (map[string]string, error) {
	byID := make(map[string]string)
	// v1 hierarchies are often reached through a symlink (cpu ->
	// cpu,cpuacct), which a walk would not enter.
	real, err := filepath.EvalSymlinks(root)
	if err != nil {
		return nil, fmt.Errorf("searching %s for containers' cgroups: %w", root, err)
	}
	err = filepath.WalkDir(real, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if path == real {
				return err
			}
			return nil // a cgroup removed during the walk, or unreadable: not ours
		}
		if !d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(real, path)
		if rel == "." {
			return nil
		}
		if strings.Count(rel, string(filepath.Separator)) >= maxSearchDepth {
			return filepath.SkipDir
		}
		if id, ok := containerIDIn(d.Name()); ok && !strings.Contains(d.Name(), "conmon") {
			if _, dup := byID[id]; !dup {
				byID[id] = rel
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("searching %s for containers' cgroups: %w", root, err)
	}
	return byID, nil
}

// containerIDIn finds a container id in a cgroup's name: a run of exactly
// 64 lower-case hex digits.
func containerIDIn(name string) (string, bool) {
	for i := 0; i+64 <= len(name); {
		j := i
		for j < len(name) && isHex(name[j]) {
			j++
		}
		if j-i == 64 {
			return name[i:j], true
		}
		i = j + 1
	}
	return "", false
}

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' }

// dirOf returns the directory of the cgroup /proc/<pid>/cgroup names as
// path, in the hierarchy whose root directory is root; id, when known, is
// the container's, to find it by where the path does not lead there.
func (r *Reader) dirOf(root, path, id string) (string, error) {
	if strings.HasSuffix(path, " (deleted)") {
		return "", ErrGone
	}
	outside := false
	for el := range strings.SplitSeq(path, "/") {
		if el == ".." {
			outside = true
		}
	}
	if !outside {
		dir := filepath.Join(root, path)
		if id == "" || exists(dir) {
			return dir, nil
		}
	} else if id == "" {
		return "", fmt.Errorf("%w: %q", ErrOutsideNamespace, path)
	}
	x := r.indexes[root]
	if x == nil {
		return "", fmt.Errorf("%w: %s is no hierarchy's root", ErrNoCgroup, root)
	}
	dir, err := x.find(id)
	if err != nil {
		if outside {
			return "", fmt.Errorf("%w (%q is outside the reader's cgroup namespace)", err, path)
		}
		return "", fmt.Errorf("%w (%q is not there either)", err, path)
	}
	// A runtime may put the processes in a cgroup below the one named
	// after the container (crun's "container"): the path's tail says so.
	if _, tail, ok := strings.Cut(path, id); ok {
		if _, below, ok := strings.Cut(tail, "/"); ok && below != "" {
			if sub := filepath.Join(dir, below); !strings.Contains(below, "..") && exists(sub) {
				return sub, nil
			}
		}
	}
	return dir, nil
}
