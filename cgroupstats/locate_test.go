package cgroupstats_test

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/docker-exporter/docker_exporter/cgroupstats"
)

// move moves a directory of a copied tree, making its new parent.
func move(t *testing.T, tree, from, to string) {
	t.Helper()
	to = filepath.Join(tree, to)
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(tree, from), to); err != nil {
		t.Fatal(err)
	}
}

// An exporter in a cgroup namespace of its own sees other containers'
// cgroups relative to its own ("/../docker-<id>.scope"); with the host's
// tree mounted at the cgroup root, Read finds them by the id and reads
// exactly what a reader on the host reads.
func TestACgroupOutsideTheReadersNamespaceIsFoundByTheContainersID(t *testing.T) {
	const v2Dir = "sys/fs/cgroup/system.slice/docker-" + v2ID + ".scope"
	for _, tc := range []struct {
		name   string
		tree   string
		pid    int
		id     string
		cgroup string // /proc/<pid>/cgroup as the reader sees it
		edit   func(t *testing.T, tree string)
		want   string // the directory read, below the tree
	}{
		{name: "v2, systemd driver, reader in a sibling scope", tree: "v2-systemd", pid: v2Pid, id: v2ID,
			cgroup: "0::/../docker-" + v2ID + ".scope\n", want: v2Dir},
		{name: "v2, systemd driver, reader nested deeper", tree: "v2-systemd", pid: v2Pid, id: v2ID,
			cgroup: "0::/../../../docker-" + v2ID + ".scope\n", want: v2Dir},
		{name: "v2, the path names no directory under the root", tree: "v2-systemd", pid: v2Pid, id: v2ID,
			cgroup: "0::/docker-" + v2ID + ".scope\n", want: v2Dir},
		{name: "v2, cgroupfs driver", tree: "v2-cgroupfs", pid: v2CgfsPid, id: v2CgfsID,
			cgroup: "0::/../" + v2CgfsID + "\n", want: "sys/fs/cgroup/docker/" + v2CgfsID},
		{name: "v2, a --cgroup-parent slice two levels down", tree: "v2-systemd", pid: v2Pid, id: v2ID,
			cgroup: "0::/../../team.slice/team-web.slice/docker-" + v2ID + ".scope\n",
			edit: func(t *testing.T, tree string) {
				move(t, tree, v2Dir, "sys/fs/cgroup/team.slice/team-web.slice/docker-"+v2ID+".scope")
			},
			want: "sys/fs/cgroup/team.slice/team-web.slice/docker-" + v2ID + ".scope"},
		{name: "v2, Podman: the container's processes below its scope, conmon beside it", tree: "v2-systemd", pid: v2Pid, id: v2ID,
			cgroup: "0::/../libpod-" + v2ID + ".scope/container\n",
			edit: func(t *testing.T, tree string) {
				base := "sys/fs/cgroup/machine.slice/"
				move(t, tree, v2Dir, base+"libpod-"+v2ID+".scope/container")
				// conmon's scope sorts first and holds figures of its own.
				if err := os.CopyFS(filepath.Join(tree, base, "libpod-conmon-"+v2ID+".scope"),
					os.DirFS(filepath.Join(tree, "sys/fs/cgroup/system.slice/docker-"+v2HostID+".scope"))); err != nil {
					t.Fatal(err)
				}
			},
			want: "sys/fs/cgroup/machine.slice/libpod-" + v2ID + ".scope/container"},
		{name: "v1, cgroupfs driver, every controller", tree: "v1-cgroupfs", pid: v1Pid, id: v1ID,
			cgroup: "", want: "sys/fs/cgroup/memory/docker/" + v1ID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			host, err := newReader(t, filepath.Join("testdata", tc.tree)).Read(tc.pid, "")
			if err != nil {
				t.Fatal(err)
			}
			tree := copyTree(t, tc.tree)
			cgroupFile := filepath.Join("proc", strconv.Itoa(tc.pid), "cgroup")
			cgroup := tc.cgroup
			if cgroup == "" { // v1: every line one level outside
				data, err := os.ReadFile(filepath.Join(tree, cgroupFile))
				if err != nil {
					t.Fatal(err)
				}
				cgroup = strings.ReplaceAll(string(data), ":/docker/", ":/../")
			}
			write(cgroupFile, cgroup).apply(t, tree)
			if tc.edit != nil {
				tc.edit(t, tree)
			}
			r := newReader(t, tree)
			if u, err := r.Read(tc.pid, ""); err == nil && u.HasCPU {
				t.Fatal("without the id, Read found the cgroup: the test does not test the search")
			}
			got, err := r.Read(tc.pid, tc.id)
			if err != nil {
				t.Fatal(err)
			}
			if want := strings.TrimSuffix(cgroup[strings.LastIndex(cgroup, ":")+1:], "\n"); got.Cgroup != want {
				t.Errorf("Cgroup = %q, want the kernel's path %q", got.Cgroup, want)
			}
			got.Cgroup = host.Cgroup
			if !reflect.DeepEqual(got, host) {
				t.Errorf("read from %s\ngot  %+v\nwant %+v (as read on the host)", tc.want, got, host)
			}
			// The directory read is tc.want's: change a figure there alone.
			memory := "memory.current"
			if tc.tree == "v1-cgroupfs" {
				memory = "memory.usage_in_bytes"
			}
			write(filepath.Join(tc.want, memory), "4096\n").apply(t, tree)
			if again, err := r.Read(tc.pid, tc.id); err != nil || again.Memory != 4096 {
				t.Errorf("after changing %s: memory %d, %v; want 4096 from there", tc.want, again.Memory, err)
			}
		})
	}
}

func TestACgroupFoundNowhereIsAnErrorNotAStop(t *testing.T) {
	tree := copyTree(t, "v2-systemd")
	write("proc/5120/cgroup", "0::/../docker-"+v2ID+".scope\n").apply(t, tree)
	if err := os.RemoveAll(filepath.Join(tree, "sys/fs/cgroup/system.slice/docker-"+v2ID+".scope")); err != nil {
		t.Fatal(err)
	}
	r := newReader(t, tree)
	for range 2 {
		_, err := r.Read(v2Pid, v2ID)
		if !errors.Is(err, cgroupstats.ErrNoCgroup) || errors.Is(err, cgroupstats.ErrGone) {
			t.Fatalf("Read = %v, want ErrNoCgroup and not ErrGone (the process runs)", err)
		}
		if !strings.Contains(err.Error(), "outside the reader's cgroup namespace") {
			t.Errorf("Read = %v, want it to say why the path did not lead there", err)
		}
	}
}
