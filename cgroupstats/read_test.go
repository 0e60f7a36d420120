package cgroupstats_test

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker-exporter/docker_exporter/cgroupstats"
)

// The trees under testdata are laid out as the kernel shows them, one per
// layout; each has the containers named below. Their README says what
// each container stands for.
const (
	v1ID       = "6f2a83b1d4c9e07a5b3f18d2c6e94a07b1d3f5e8a2c4b6d8e0f1a3c5b7d9e1f3"
	v1HostID   = "0c8e2d4f6a8b0c2e4f6a8b0c2d4e6f8a0b2c4d6e8f0a1b3c5d7e9f0a2b4c6d8e"
	hybridID   = "3d5f7a9b1c3e5f7a9b1d3f5a7c9e1b3d5f7a9c1e3b5d7f9a1c3e5b7d9f1a3c5e"
	v2ID       = "9b7d5f3a1c9e7b5d3f1a9c7e5b3d1f9a7c5e3b1d9f7a5c3e1b9d7f5a3c1e9b7d"
	v2HostID   = "4e6a8c0e2a4c6e8a0c2e4a6c8e0a2c4e6a8c0e2a4c6e8a0c2e4a6c8e0a2c4e6a"
	v2CgfsID   = "7c1e3a5c7e9a1c3e5a7c9e1a3c5e7a9c1e3a5c7e9a1c3e5a7c9e1a3c5e7a9c1e"
	v1Pid      = 2817
	v1HostPid  = 3104
	hybridPid  = 4711
	v2Pid      = 5120
	v2HostPid  = 5290
	v2CgfsPid  = 6001
	absentPid  = 9999
	v2Scope    = "/sys/fs/cgroup/system.slice/docker-" + v2ID + ".scope"
	v1MemoryCg = "/sys/fs/cgroup/memory/docker/" + v1ID
)

// config points at a tree's two roots.
func config(tree string) cgroupstats.Config {
	return cgroupstats.Config{
		CgroupRoot: filepath.Join(tree, "sys", "fs", "cgroup"),
		ProcRoot:   filepath.Join(tree, "proc"),
	}
}

func newReader(t testing.TB, tree string) *cgroupstats.Reader {
	t.Helper()
	r, err := cgroupstats.New(config(tree))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// copyTree copies a testdata tree where a test may change it.
func copyTree(t testing.TB, name string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), name)
	if err := os.CopyFS(dst, os.DirFS(filepath.Join("testdata", name))); err != nil {
		t.Fatal(err)
	}
	return dst
}

func TestLayoutIsDetectedFromWhatIsMounted(t *testing.T) {
	for tree, want := range map[string]string{
		"v1-cgroupfs": cgroupstats.LayoutV1,
		"hybrid":      cgroupstats.LayoutHybrid,
		"v2-systemd":  cgroupstats.LayoutV2,
		"v2-cgroupfs": cgroupstats.LayoutV2,
	} {
		if got := newReader(t, filepath.Join("testdata", tree)).Layout(); got != want {
			t.Errorf("%s: layout %q, want %q", tree, got, want)
		}
	}
}

func TestV1HierarchiesAreFoundUnderAnyName(t *testing.T) {
	// Mounted as "memory-ctl" rather than "memory": its memory.* files
	// still say what it is.
	tree := copyTree(t, "v1-cgroupfs")
	root := filepath.Join(tree, "sys", "fs", "cgroup")
	if err := os.Rename(filepath.Join(root, "memory"), filepath.Join(root, "memory-ctl")); err != nil {
		t.Fatal(err)
	}
	u, err := newReader(t, tree).Read(v1Pid, "")
	if err != nil {
		t.Fatal(err)
	}
	if !u.HasMemory || u.Memory != 191463424 {
		t.Errorf("memory %d (present %v), want 191463424 from the renamed hierarchy; absent: %v", u.Memory, u.HasMemory, u.Missing)
	}
}

func TestOnlyAV2HierarchyBelowTheRootIsReadThere(t *testing.T) {
	// cgroup2 mounted at <root>/unified with no v1 hierarchy beside it.
	tree := copyTree(t, "v2-cgroupfs")
	root := filepath.Join(tree, "sys", "fs", "cgroup")
	moved := filepath.Join(tree, "unified")
	if err := os.Rename(root, moved); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(moved, filepath.Join(root, "unified")); err != nil {
		t.Fatal(err)
	}
	r := newReader(t, tree)
	if r.Layout() != cgroupstats.LayoutV2 {
		t.Errorf("layout %q, want v2", r.Layout())
	}
	if u, err := r.Read(v2CgfsPid, ""); err != nil || !u.HasMemory {
		t.Errorf("Read = %+v, %v; want memory from <root>/unified", u, err)
	}
}

func TestARootWithNothingMountedIsAClearError(t *testing.T) {
	empty := t.TempDir()
	// A non-recursive bind mount of a v1 host's tree: the directories, no
	// hierarchies in them.
	unmounted := t.TempDir()
	for _, d := range []string{"cpu", "memory", "unified"} {
		if err := os.Mkdir(filepath.Join(unmounted, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	file := filepath.Join(t.TempDir(), "cgroup")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, root, wantErr string
	}{
		{"missing", filepath.Join(empty, "nowhere"), "is not readable"},
		{"empty", empty, "nothing mounted"},
		{"directories only", unmounted, "must be recursive"},
		{"a file", file, "not a directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := cgroupstats.New(cgroupstats.Config{CgroupRoot: tc.root, ProcRoot: "testdata/v2-systemd/proc"})
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), tc.root) {
				t.Errorf("New = %v, want an error naming %s and saying %q", err, tc.root, tc.wantErr)
			}
		})
	}
	if _, err := cgroupstats.New(cgroupstats.Config{CgroupRoot: "testdata/v2-systemd/sys/fs/cgroup", ProcRoot: filepath.Join(empty, "proc")}); err == nil ||
		!strings.Contains(err.Error(), "proc root") {
		t.Errorf("New with no proc root = %v, want an error saying so", err)
	}
}

func TestEachLayoutReadsEveryFigure(t *testing.T) {
	for _, tc := range []struct {
		name string
		tree string
		pid  int
		want cgroupstats.Usage
	}{
		{"v1, limits and two interfaces", "v1-cgroupfs", v1Pid, cgroupstats.Usage{
			Cgroup: "/docker/" + v1ID,
			CPU:    48213754912, HasCPU: true,
			Throttled: 92743385521, HasThrottled: true,
			Memory: 191463424, HasMemory: true,
			WorkingSet: 191463424 - 41299968, HasWorkingSet: true, // less total_inactive_file
			MemoryLimit: 536870912, HasMemoryLimit: true,
			BlockRead: 5750784 + 20480000, BlockWrite: 1048576, HasBlockIO: true, // the throttle file, both devices
			PIDs: 12, HasPIDs: true,
			Network: []cgroupstats.Interface{
				{Name: "eth0", RxBytes: 1048576, RxPackets: 4012, TxBytes: 524288, TxPackets: 2006},
				{Name: "eth1", RxBytes: 2048, RxPackets: 16, TxBytes: 1024, TxPackets: 8},
			},
			HasNetwork: true,
		}},
		{"v1, host network and no limits", "v1-cgroupfs", v1HostPid, cgroupstats.Usage{
			Cgroup: "/docker/" + v1HostID,
			CPU:    1522097034, HasCPU: true,
			Memory: 73728000, HasMemory: true,
			WorkingSet: 73728000, HasWorkingSet: true,
			BlockRead: 12288, BlockWrite: 4096, HasBlockIO: true, // CFQ's file: the throttle file has no devices
			PIDs: 1, HasPIDs: true,
			HostNetwork: true,
		}},
		{"hybrid, systemd driver, cpu and cpuacct apart", "hybrid", hybridPid, cgroupstats.Usage{
			Cgroup: "/system.slice/docker-" + hybridID + ".scope",
			CPU:    2039881244, HasCPU: true,
			Throttled: 4051234567, HasThrottled: true,
			Memory: 6205440, HasMemory: true,
			WorkingSet: 6205440 - 1388544, HasWorkingSet: true,
			MemoryLimit: 268435456, HasMemoryLimit: true,
			BlockRead: 3407872, BlockWrite: 1159168, HasBlockIO: true,
			PIDs: 3, HasPIDs: true,
			Network:    []cgroupstats.Interface{{Name: "eth0", RxBytes: 15870, RxPackets: 131, TxBytes: 1518, TxPackets: 17}},
			HasNetwork: true,
		}},
		{"v2, systemd driver, limits", "v2-systemd", v2Pid, cgroupstats.Usage{
			Cgroup: "/system.slice/docker-" + v2ID + ".scope",
			CPU:    731460251 * time.Microsecond, HasCPU: true,
			Throttled: 18094311 * time.Microsecond, HasThrottled: true,
			Memory: 94371840, HasMemory: true,
			WorkingSet: 94371840 - 30208000, HasWorkingSet: true, // less inactive_file
			MemoryLimit: 268435456, HasMemoryLimit: true,
			BlockRead: 44638208 + 1459200, BlockWrite: 8388608 + 314773504, HasBlockIO: true,
			PIDs: 7, HasPIDs: true,
			Network:    []cgroupstats.Interface{{Name: "eth0", RxBytes: 3145728, RxPackets: 2210, TxBytes: 262144, TxPackets: 1877}},
			HasNetwork: true,
		}},
		{"v2, host network, no limits, no I/O", "v2-systemd", v2HostPid, cgroupstats.Usage{
			Cgroup: "/system.slice/docker-" + v2HostID + ".scope",
			CPU:    20174 * time.Microsecond, HasCPU: true,
			Memory: 1564672, HasMemory: true,
			WorkingSet: 1564672 - 98304, HasWorkingSet: true,
			HasBlockIO: true, // an empty io.stat: zero bytes, not unknown
			PIDs:       1, HasPIDs: true,
			HostNetwork: true,
		}},
		{"v2, cgroupfs driver, --network none", "v2-cgroupfs", v2CgfsPid, cgroupstats.Usage{
			Cgroup: "/docker/" + v2CgfsID,
			CPU:    118004 * time.Microsecond, HasCPU: true,
			Memory: 67100672, HasMemory: true,
			WorkingSet: 67100672 - 52428800, HasWorkingSet: true,
			MemoryLimit: 67108864, HasMemoryLimit: true,
			BlockRead: 905216, HasBlockIO: true,
			PIDs: 2, HasPIDs: true,
			HasNetwork: true, // only lo: no interfaces, and that is known
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := newReader(t, filepath.Join("testdata", tc.tree)).Read(tc.pid, "")
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// figure names the figures a test can expect to be present or absent.
type figure string

var figures = map[figure]func(cgroupstats.Usage) bool{
	"cpu":          func(u cgroupstats.Usage) bool { return u.HasCPU },
	"throttled":    func(u cgroupstats.Usage) bool { return u.HasThrottled },
	"memory":       func(u cgroupstats.Usage) bool { return u.HasMemory },
	"working set":  func(u cgroupstats.Usage) bool { return u.HasWorkingSet },
	"memory limit": func(u cgroupstats.Usage) bool { return u.HasMemoryLimit },
	"block I/O":    func(u cgroupstats.Usage) bool { return u.HasBlockIO },
	"pids":         func(u cgroupstats.Usage) bool { return u.HasPIDs },
	"network":      func(u cgroupstats.Usage) bool { return u.HasNetwork },
}

// edit changes one file of a copied tree: new contents, or removal when
// data is nil.
type edit struct {
	path string // below the tree
	data *string
}

func write(path, data string) edit { return edit{path, &data} }
func remove(path string) edit      { return edit{path: path} }

func (e edit) apply(t *testing.T, tree string) {
	t.Helper()
	path := filepath.Join(tree, e.path)
	var err error
	if e.data == nil {
		err = os.RemoveAll(path)
	} else {
		err = os.WriteFile(path, []byte(*e.data), 0o644)
	}
	if err != nil {
		t.Fatal(err)
	}
}

func TestBadFilesLeaveOnlyTheirFiguresAbsent(t *testing.T) {
	for _, tc := range []struct {
		name        string
		tree        string
		pid         int
		edits       []edit
		absent      []figure
		wantMissing string // a piece of Usage.Missing; "" for nil
		check       func(t *testing.T, u cgroupstats.Usage)
	}{
		{name: "v2 memory.stat missing", tree: "v2-systemd", pid: v2Pid,
			edits:  []edit{remove(v2Scope + "/memory.stat")},
			absent: []figure{"working set"}, wantMissing: "working set: open"},
		{name: "v2 cpu.stat cut short", tree: "v2-systemd", pid: v2Pid,
			edits:  []edit{write(v2Scope+"/cpu.stat", "usage_usec 731460251\nuser_usec 5901")},
			absent: []figure{"cpu", "throttled"}, wantMissing: "truncated"},
		{name: "v2 memory.current empty: no working set either", tree: "v2-systemd", pid: v2Pid,
			edits:  []edit{write(v2Scope+"/memory.current", "")},
			absent: []figure{"memory", "working set"}, wantMissing: "memory.current: empty file"},
		{name: "v2 memory.max garbage", tree: "v2-systemd", pid: v2Pid,
			edits:  []edit{write(v2Scope+"/memory.max", "a lot\n")},
			absent: []figure{"memory limit"}, wantMissing: "memory limit"},
		{name: "v2 io.stat with a garbage line", tree: "v2-systemd", pid: v2Pid,
			edits:  []edit{write(v2Scope+"/io.stat", "259:0 rbytes=44638208 wbytes=8388608\nhello\n")},
			absent: []figure{"block I/O"}, wantMissing: "block I/O"},
		{name: "v2 no io controller", tree: "v2-systemd", pid: v2Pid,
			edits:  []edit{remove(v2Scope + "/io.stat")},
			absent: []figure{"block I/O"}, wantMissing: "io.stat"},
		{name: "v2 absurd pids", tree: "v2-systemd", pid: v2Pid,
			edits:  []edit{write(v2Scope+"/pids.current", "18446744073709551615\n")},
			absent: []figure{"pids"}, wantMissing: "absurd"},
		{name: "v2 absurd CPU time", tree: "v2-systemd", pid: v2Pid,
			edits:  []edit{write(v2Scope+"/cpu.stat", "usage_usec 9223372036854776\nthrottled_usec 1\n")},
			absent: []figure{"cpu"}, wantMissing: "absurd"},
		{name: "v2 no cpu controller: no quota to know of", tree: "v2-systemd", pid: v2Pid,
			edits:  []edit{remove(v2Scope + "/cpu.max"), write(v2Scope+"/cpu.stat", "usage_usec 731460251\nuser_usec 590112030\nsystem_usec 141348221\n")},
			absent: []figure{"throttled"}, wantMissing: "cpu throttling: open"},
		{name: "v2 a quota but no throttled_usec", tree: "v2-systemd", pid: v2Pid,
			edits:  []edit{write(v2Scope+"/cpu.stat", "usage_usec 731460251\n")},
			absent: []figure{"throttled"}, wantMissing: "throttled_usec: no such key"},
		{name: "more inactive cache than usage: working set floored at 0", tree: "v2-systemd", pid: v2Pid,
			edits: []edit{write(v2Scope+"/memory.stat", "anon 0\ninactive_file 99999999999\n")},
			check: func(t *testing.T, u cgroupstats.Usage) {
				if !u.HasWorkingSet || u.WorkingSet != 0 {
					t.Errorf("working set %d (present %v), want 0", u.WorkingSet, u.HasWorkingSet)
				}
			}},
		{name: "net/dev with a half-written line", tree: "v2-systemd", pid: v2Pid,
			edits: []edit{write("proc/5120/net/dev", "Inter-|   Receive                                                |  Transmit\n"+
				" face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n"+
				"  eth0: 3145728    2210    0    0\n")},
			absent: []figure{"network"}, wantMissing: "16 numbers"},
		{name: "the container's namespace cannot be looked at", tree: "v2-systemd", pid: v2Pid,
			edits:  []edit{remove("proc/5120/ns/net")},
			absent: []figure{"network"}, wantMissing: "container's network namespace"},
		{name: "the host's namespace cannot be looked at, and no kthreadd", tree: "v2-systemd", pid: v2Pid,
			edits:  []edit{remove("proc/1/ns/net")},
			absent: []figure{"network"}, wantMissing: "host's network namespace"},
		{name: "v1 quota set, throttled_time missing", tree: "v1-cgroupfs", pid: v1Pid,
			edits:  []edit{write("sys/fs/cgroup/cpu,cpuacct/docker/"+v1ID+"/cpu.stat", "nr_periods 21052\nnr_throttled 1503\n")},
			absent: []figure{"throttled"}, wantMissing: "throttled_time: no such key"},
		{name: "v1 garbage quota", tree: "v1-cgroupfs", pid: v1Pid,
			edits:  []edit{write("sys/fs/cgroup/cpu,cpuacct/docker/"+v1ID+"/cpu.cfs_quota_us", "half\n")},
			absent: []figure{"throttled"}, wantMissing: "cpu.cfs_quota_us"},
		{name: "v1 memory.stat without total_inactive_file", tree: "v1-cgroupfs", pid: v1Pid,
			edits:  []edit{write(v1MemoryCg+"/memory.stat", "cache 52822016\nrss 138641408\ninactive_file 41299968\n")},
			absent: []figure{"working set"}, wantMissing: "total_inactive_file: no such key"},
		{name: "v1 garbage throttle file: CFQ's counts", tree: "v1-cgroupfs", pid: v1Pid,
			edits: []edit{write("sys/fs/cgroup/blkio/docker/"+v1ID+"/blkio.throttle.io_service_bytes", "8:0 Read\n")},
			check: func(t *testing.T, u cgroupstats.Usage) {
				if !u.HasBlockIO || u.BlockRead != 20480000 || u.BlockWrite != 1048576 {
					t.Errorf("block I/O %d/%d (present %v), want CFQ's 20480000/1048576", u.BlockRead, u.BlockWrite, u.HasBlockIO)
				}
			}},
		{name: "v1 no blkio file at all", tree: "v1-cgroupfs", pid: v1Pid,
			edits:  []edit{remove("sys/fs/cgroup/blkio/docker/" + v1ID)},
			absent: []figure{"block I/O"}, wantMissing: "blkio.throttle.io_service_bytes"},
		{name: "v1 memory controller not mounted", tree: "v1-cgroupfs", pid: v1Pid,
			edits:  []edit{remove("sys/fs/cgroup/memory")},
			absent: []figure{"memory", "working set", "memory limit"}, wantMissing: "no memory hierarchy mounted",
			check: func(t *testing.T, u cgroupstats.Usage) {
				if u.Cgroup != "/docker/"+v1ID {
					t.Errorf("cgroup %q, want the path of another controller", u.Cgroup)
				}
			}},
		{name: "v1 process in no pids cgroup", tree: "v1-cgroupfs", pid: v1Pid,
			edits:  []edit{write("proc/2817/cgroup", "10:memory:/docker/"+v1ID+"\n5:cpuacct,cpu:/docker/"+v1ID+"\n4:blkio:/docker/"+v1ID+"\n")},
			absent: []figure{"pids"}, wantMissing: "in no pids cgroup"},
		{name: "v1 cgroup directory gone while the process lives", tree: "v1-cgroupfs", pid: v1Pid,
			edits:  []edit{remove("sys/fs/cgroup/cpu,cpuacct/docker/" + v1ID)},
			absent: []figure{"cpu", "throttled"}, wantMissing: "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tree := copyTree(t, tc.tree)
			for _, e := range tc.edits {
				e.apply(t, tree)
			}
			u, err := newReader(t, tree).Read(tc.pid, "")
			if err != nil {
				t.Fatalf("Read: %v, want the other figures", err)
			}
			for name, present := range figures {
				wantAbsent := false
				for _, a := range tc.absent {
					wantAbsent = wantAbsent || a == name
				}
				if got := present(u); got == wantAbsent {
					t.Errorf("%s present: %v, want %v", name, got, !wantAbsent)
				}
			}
			switch {
			case tc.wantMissing == "" && u.Missing != nil:
				t.Errorf("Missing: %v, want nil", u.Missing)
			case tc.wantMissing != "" && (u.Missing == nil || !strings.Contains(u.Missing.Error(), tc.wantMissing)):
				t.Errorf("Missing: %v, want it to say %q", u.Missing, tc.wantMissing)
			}
			if tc.check != nil {
				tc.check(t, u)
			}
		})
	}
}

func TestReadFailsWhenTheContainersCgroupCannotBeFound(t *testing.T) {
	for _, tc := range []struct {
		name    string
		tree    string
		pid     int
		edits   []edit
		wantIs  error
		wantErr string
	}{
		{name: "no such process", tree: "v2-systemd", pid: absentPid, wantIs: cgroupstats.ErrGone},
		{name: "the cgroup was removed (a zombie)", tree: "v2-systemd", pid: v2Pid,
			edits:  []edit{write("proc/5120/cgroup", "0::/system.slice/docker-"+v2ID+".scope (deleted)\n")},
			wantIs: cgroupstats.ErrGone},
		{name: "a path outside the reader's cgroup namespace", tree: "v2-systemd", pid: v2Pid,
			edits:  []edit{write("proc/5120/cgroup", "0::/../docker-"+v2ID+".scope\n")},
			wantIs: cgroupstats.ErrOutsideNamespace},
		{name: "v1, outside the namespace", tree: "v1-cgroupfs", pid: v1Pid,
			edits:  []edit{write("proc/2817/cgroup", "10:memory:/../../docker/"+v1ID+"\n")},
			wantIs: cgroupstats.ErrOutsideNamespace},
		{name: "a garbage cgroup file", tree: "v2-systemd", pid: v2Pid,
			edits:   []edit{write("proc/5120/cgroup", "hello\n")},
			wantErr: "id:controllers:/path"},
		{name: "an empty cgroup file", tree: "v2-systemd", pid: v2Pid,
			edits:   []edit{write("proc/5120/cgroup", "")},
			wantErr: "empty"},
		{name: "v2 layout, v1 lines only", tree: "v2-systemd", pid: v2Pid,
			edits:   []edit{write("proc/5120/cgroup", "4:memory:/docker/x\n")},
			wantErr: "no cgroup v2 line"},
		{name: "v1 layout, v2 line only", tree: "v1-cgroupfs", pid: v1Pid,
			edits:   []edit{write("proc/2817/cgroup", "0::/docker/x\n")},
			wantErr: "no cgroup v1 controller line"},
		{name: "pid 0 (a stopped container's)", tree: "v2-systemd", pid: 0, wantErr: "not a process"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tree := copyTree(t, tc.tree)
			for _, e := range tc.edits {
				e.apply(t, tree)
			}
			u, err := newReader(t, tree).Read(tc.pid, "")
			switch {
			case err == nil:
				t.Fatalf("Read = %+v, want an error", u)
			case tc.wantIs != nil && !errors.Is(err, tc.wantIs):
				t.Errorf("Read: %v, want %v", err, tc.wantIs)
			case tc.wantIs == nil && errors.Is(err, cgroupstats.ErrGone):
				t.Errorf("Read: %v, which a caller would skip silently", err)
			case tc.wantErr != "" && !strings.Contains(err.Error(), tc.wantErr):
				t.Errorf("Read: %v, want it to say %q", err, tc.wantErr)
			}
		})
	}
}

func TestInterfacesReadsTheNamespaceWithoutAskingWhose(t *testing.T) {
	tree := copyTree(t, "v1-cgroupfs")
	// Without access to the namespace links, Read cannot tell whose
	// namespace it is and leaves the network out; Interfaces reads it.
	remove(filepath.Join("proc", strconv.Itoa(v1Pid), "ns", "net")).apply(t, tree)
	r := newReader(t, tree)
	u, err := r.Read(v1Pid, "")
	if err != nil || u.HasNetwork {
		t.Fatalf("Read: %v, network %v; want it left out", err, u.HasNetwork)
	}
	ifaces, err := r.Interfaces(v1Pid)
	if err != nil || len(ifaces) == 0 || ifaces[0].Name == "lo" {
		t.Fatalf("Interfaces = %+v, %v; want the namespace's interfaces but lo", ifaces, err)
	}
	if _, err := r.Interfaces(absentPid); !errors.Is(err, cgroupstats.ErrGone) {
		t.Fatalf("Interfaces of a pid that is gone: %v, want ErrGone", err)
	}
}
