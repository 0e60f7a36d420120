package cgroupstats

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"time"
)

var (
	// ErrGone is the error of a Read for a process that no longer exists,
	// or whose cgroup was removed: the container stopped, and the caller can
	// skip it without saying so.
	ErrGone = errors.New("process gone")

	// ErrOutsideNamespace is the error of a Read without a container id
	// whose cgroup lies outside the reader's cgroup namespace: the kernel
	// then shows a path relative to the reader's own cgroup
	// ("/../docker-<id>.scope") that names no directory under the cgroup
	// root. With the id, Read finds the cgroup by it (see locate.go). Only
	// the reader's namespace matters: a container in its own still shows
	// its whole path to a host reader.
	ErrOutsideNamespace = errors.New("cgroup outside the reader's cgroup namespace")
)

// Config says where the kernel's files are. Both may be a host's trees
// mounted elsewhere (/host/sys/fs/cgroup, /host/proc). ProcRoot must show
// the pid namespace Docker's pids belong to: the host's.
type Config struct {
	CgroupRoot string // default /sys/fs/cgroup
	ProcRoot   string // default /proc
}

// Reader reads containers' usage. Reads may run concurrently: the only
// state that changes after New is where containers' cgroups were found,
// behind a lock.
type Reader struct {
	layout   layout
	procRoot string
	// indexes finds containers' cgroups by id, one per hierarchy root.
	indexes map[string]*index
	// hostNetNS is the host's network namespace link ("net:[4026531840]"),
	// or hostNetNSErr says why it is not known.
	hostNetNS    string
	hostNetNSErr error
}

// New detects the cgroup layout under cfg.CgroupRoot once. Its error says
// the root is missing, unreadable or has nothing mounted; the caller logs
// it and serves no usage.
func New(cfg Config) (*Reader, error) {
	if cfg.CgroupRoot == "" {
		cfg.CgroupRoot = "/sys/fs/cgroup"
	}
	if cfg.ProcRoot == "" {
		cfg.ProcRoot = "/proc"
	}
	l, err := detect(cfg.CgroupRoot)
	if err != nil {
		return nil, fmt.Errorf("cgroupstats: %w", err)
	}
	if fi, err := os.Stat(cfg.ProcRoot); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("cgroupstats: proc root %s is not a readable directory", cfg.ProcRoot)
	}
	r := &Reader{layout: l, procRoot: cfg.ProcRoot, indexes: make(map[string]*index)}
	for _, root := range append([]string{l.unified}, slices.Collect(maps.Values(l.v1))...) {
		if root != "" && r.indexes[root] == nil {
			r.indexes[root] = newIndex(root)
		}
	}
	r.hostNetNS, r.hostNetNSErr = hostNetNS(cfg.ProcRoot)
	return r, nil
}

// Layout is LayoutV1, LayoutV2 or LayoutHybrid.
func (r *Reader) Layout() string { return r.layout.name }

// Usage is one container's resource usage. A figure is absent (its Has
// field false) when the kernel does not keep it, when it has no meaning
// (no limit, no quota, the host's network), or when its file is missing or
// holds garbage; Missing then says why, for the last two. Counters are
// since the cgroup was made; one going backwards (a new cgroup with the
// same path, the container restarted) is the caller's concern.
type Usage struct {
	// Cgroup is the container's cgroup as the kernel names it: the v2 path,
	// or on v1 and hybrid the memory controller's (Docker puts every
	// controller at the same path). A caller can check it names the
	// container it expects, in case the pid was reused.
	Cgroup string

	// CPU is the user and system time of every process in the cgroup
	// (cpuacct.usage on v1, cpu.stat usage_usec on v2).
	CPU    time.Duration
	HasCPU bool

	// Throttled is the time runnable processes waited because the cgroup
	// had used its CFS quota; present only when a quota is set.
	Throttled    time.Duration
	HasThrottled bool

	// Memory is the bytes charged to the cgroup, page cache included
	// (memory.usage_in_bytes, memory.current; cAdvisor's
	// container_memory_usage_bytes).
	Memory    uint64
	HasMemory bool

	// WorkingSet is Memory less the inactive file cache, floored at 0, as
	// cAdvisor and the kubelet define it and docker stats shows it.
	WorkingSet    uint64
	HasWorkingSet bool

	// MemoryLimit is the cgroup's hard limit; absent when unlimited.
	MemoryLimit    uint64
	HasMemoryLimit bool

	// BlockRead and BlockWrite are bytes read from and written to block
	// devices, summed over devices as docker stats does.
	BlockRead, BlockWrite uint64
	HasBlockIO            bool

	// PIDs counts the processes and threads in the cgroup.
	PIDs    uint64
	HasPIDs bool

	// Network lists the interfaces of the container's network namespace
	// but lo, in the kernel's order; none for --network none.
	Network    []Interface
	HasNetwork bool
	// HostNetwork says the container shares the host's network namespace,
	// whose traffic is not its own: Network is then absent.
	HostNetwork bool

	// Missing joins the reasons figures are absent for want of a readable
	// file, or is nil.
	Missing error
}

// Read reads the usage of the container whose init process is pid and
// whose id is id. The id finds the container's cgroup where the path
// /proc/<pid>/cgroup names does not lead there (the reader in a cgroup
// namespace of its own); "" trusts that path alone.
//
// It fails with ErrGone when the process or its cgroup is gone, with
// ErrNoCgroup or ErrOutsideNamespace (see there), or when /proc/<pid>/cgroup
// cannot be read or names no cgroup for this layout. Any other trouble
// leaves single figures absent, so the others can still be served.
func (r *Reader) Read(pid int, id string) (Usage, error) {
	if pid <= 0 {
		return Usage{}, fmt.Errorf("cgroupstats: pid %d is not a process", pid)
	}
	proc := filepath.Join(r.procRoot, strconv.Itoa(pid))
	path := filepath.Join(proc, "cgroup")
	data, err := readFile(path, nil)
	if err != nil {
		if isGone(err) {
			return Usage{}, fmt.Errorf("cgroupstats: pid %d: %w", pid, ErrGone)
		}
		return Usage{}, fmt.Errorf("cgroupstats: %w", err)
	}
	lines, err := parseCgroup(data)
	if err != nil {
		return Usage{}, fmt.Errorf("cgroupstats: %s: %w", path, err)
	}
	var rd reading
	var sp spec
	if r.layout.name == LayoutV2 {
		sp, rd.u.Cgroup, err = r.specV2(lines, id)
	} else {
		sp, rd.u.Cgroup, err = r.specV1(lines, id, &rd)
	}
	if errors.Is(err, ErrNoCgroup) {
		// Was it the container stopping?
		if _, serr := os.Stat(proc); isGone(serr) {
			err = ErrGone
		}
	}
	if err != nil {
		return Usage{}, fmt.Errorf("cgroupstats: pid %d: %w", pid, err)
	}
	rd.cgroup(sp)
	rd.network(proc, r.hostNetNS, r.hostNetNSErr)
	if rd.notExist {
		// A file vanished under us: was it the container stopping?
		if _, err := os.Stat(proc); isGone(err) {
			return Usage{}, fmt.Errorf("cgroupstats: pid %d: %w", pid, ErrGone)
		}
	}
	rd.u.Missing = errors.Join(rd.errs...)
	return rd.u, nil
}

func isGone(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH)
}

// spec names the files one container's figures are in, for its layout.
// An empty path is a figure this container has no file for.
type spec struct {
	cpu       stat // CPU time
	throttled stat
	quota     string                     // whether a CFS quota is set...
	quotaSet  func([]byte) (bool, error) // ...as that file says

	memory, memoryStat, inactiveKey string
	limit                           string
	limitOf                         func([]byte) (uint64, bool, error)

	blockIO []string // the first file with device lines wins
	ioOf    func([]byte) (read, write uint64, entries int, err error)

	pids string
}

// stat is a time counter in a single-value file (key "") or a flat-keyed
// one, in units of unit.
type stat struct {
	path, key string
	unit      time.Duration
}

func (r *Reader) specV2(lines []cgroupLine, id string) (spec, string, error) {
	i := slices.IndexFunc(lines, func(l cgroupLine) bool { return l.controllers == "" })
	if i < 0 {
		return spec{}, "", errors.New("no cgroup v2 line (0::/path) in /proc/<pid>/cgroup")
	}
	cg := lines[i].path
	dir, err := r.dirOf(r.layout.unified, cg, id)
	if err != nil {
		return spec{}, "", err
	}
	in := func(name string) string { return filepath.Join(dir, name) }
	return spec{
		cpu:       stat{in("cpu.stat"), "usage_usec", time.Microsecond},
		throttled: stat{in("cpu.stat"), "throttled_usec", time.Microsecond},
		quota:     in("cpu.max"), quotaSet: parseCPUMax,

		memory: in("memory.current"), memoryStat: in("memory.stat"), inactiveKey: "inactive_file",
		limit: in("memory.max"), limitOf: parseMaxV2,

		blockIO: []string{in("io.stat")}, ioOf: parseIOStat,

		pids: in("pids.current"),
	}, cg, nil
}

// specV1 finds each controller's directory for the container. A controller
// that is not mounted, or that the process is not in, leaves its figures'
// paths empty and its reason in rd.
func (r *Reader) specV1(lines []cgroupLine, id string, rd *reading) (spec, string, error) {
	dirs := make(map[string]string)
	var cg string
	for _, c := range v1Controllers {
		root, mounted := r.layout.v1[c]
		i := slices.IndexFunc(lines, func(l cgroupLine) bool { return l.hasController(c) })
		switch {
		case !mounted:
			rd.errs = append(rd.errs, fmt.Errorf("%s: no %s hierarchy mounted under the cgroup root", c, c))
			continue
		case i < 0:
			rd.errs = append(rd.errs, fmt.Errorf("%s: the process is in no %s cgroup", c, c))
			continue
		}
		dir, err := r.dirOf(root, lines[i].path, id)
		if err != nil {
			return spec{}, "", err
		}
		dirs[c] = dir
		if c == "memory" || cg == "" {
			cg = lines[i].path
		}
	}
	if len(dirs) == 0 {
		return spec{}, "", errors.New("no cgroup v1 controller line in /proc/<pid>/cgroup")
	}
	in := func(c, name string) string {
		if dir, ok := dirs[c]; ok {
			return filepath.Join(dir, name)
		}
		return ""
	}
	return spec{
		cpu:       stat{in("cpuacct", "cpuacct.usage"), "", time.Nanosecond},
		throttled: stat{in("cpu", "cpu.stat"), "throttled_time", time.Nanosecond},
		quota:     in("cpu", "cpu.cfs_quota_us"), quotaSet: parseQuotaV1,

		memory: in("memory", "memory.usage_in_bytes"), memoryStat: in("memory", "memory.stat"), inactiveKey: "total_inactive_file",
		limit: in("memory", "memory.limit_in_bytes"), limitOf: parseLimitV1,

		// The throttle layer sees all I/O; the scheduler's files (CFQ,
		// then BFQ) are the fallback where it shows nothing.
		blockIO: []string{
			in("blkio", "blkio.throttle.io_service_bytes"),
			in("blkio", "blkio.io_service_bytes_recursive"),
			in("blkio", "blkio.bfq.io_service_bytes_recursive"),
		},
		ioOf: parseBlkio,

		pids: in("pids", "pids.current"),
	}, cg, nil
}

// reading is one Read under way: the usage so far and why figures are
// absent.
type reading struct {
	u        Usage
	errs     []error
	notExist bool // some file was missing

	// The last file read, as v2's cpu.stat serves two figures in a row. Its
	// array is reused for the next file: a figure is parsed before the
	// next file is read.
	lastPath string
	lastData []byte
}

// file returns path's contents, or false after noting why field is absent.
func (rd *reading) file(field, path string) ([]byte, bool) {
	if path == "" {
		return nil, false // the controller's absence is already noted
	}
	if path == rd.lastPath {
		return rd.lastData, true
	}
	data, err := readFile(path, rd.lastData)
	if err != nil {
		rd.notExist = rd.notExist || isGone(err)
		rd.errs = append(rd.errs, fmt.Errorf("%s: %w", field, err))
		rd.lastPath = ""
		return nil, false
	}
	rd.lastPath, rd.lastData = path, data
	return data, true
}

// value reads a single-value file.
func (rd *reading) value(field, path string) (uint64, bool) {
	data, ok := rd.file(field, path)
	if !ok {
		return 0, false
	}
	n, err := parseValue(data)
	if err != nil {
		rd.bad(field, path, err)
		return 0, false
	}
	return n, true
}

// bad notes that field is absent because path holds what it cannot parse.
func (rd *reading) bad(field, path string, err error) {
	rd.errs = append(rd.errs, fmt.Errorf("%s: %s: %w", field, path, err))
}

// duration reads a time counter.
func (rd *reading) duration(field string, s stat) (time.Duration, bool) {
	data, ok := rd.file(field, s.path)
	if !ok {
		return 0, false
	}
	var n uint64
	var err error
	if s.key == "" {
		n, err = parseValue(data)
	} else {
		n, err = parseKeyed(data, s.key)
	}
	if err == nil && n > uint64(math.MaxInt64/s.unit) {
		err = fmt.Errorf("absurd value %d", n)
	}
	if err != nil {
		rd.bad(field, s.path, err)
		return 0, false
	}
	return time.Duration(n) * s.unit, true
}

// cgroup reads every figure that comes from the container's cgroup.
func (rd *reading) cgroup(sp spec) {
	u := &rd.u
	u.CPU, u.HasCPU = rd.duration("cpu", sp.cpu)

	if data, ok := rd.file("cpu throttling", sp.quota); ok {
		if set, err := sp.quotaSet(data); err != nil {
			rd.bad("cpu throttling", sp.quota, err)
		} else if set {
			u.Throttled, u.HasThrottled = rd.duration("cpu throttling", sp.throttled)
		}
	}

	u.Memory, u.HasMemory = rd.value("memory", sp.memory)
	if data, ok := rd.file("working set", sp.memoryStat); ok && u.HasMemory {
		if inactive, err := parseKeyed(data, sp.inactiveKey); err != nil {
			rd.bad("working set", sp.memoryStat, err)
		} else {
			u.WorkingSet, u.HasWorkingSet = u.Memory-min(inactive, u.Memory), true
		}
	}
	if data, ok := rd.file("memory limit", sp.limit); ok {
		if n, limited, err := sp.limitOf(data); err != nil {
			rd.bad("memory limit", sp.limit, err)
		} else {
			u.MemoryLimit, u.HasMemoryLimit = n, limited
		}
	}

	rd.blockIO(sp)

	u.PIDs, u.HasPIDs = rd.value("pids", sp.pids)
}

// blockIO takes the first of sp.blockIO that has device lines, else zero
// if one could be read (a cgroup that did no I/O has none). The others are
// fallbacks, so their errors count only when every file failed.
func (rd *reading) blockIO(sp spec) {
	var errs []error
	readable := false
	for _, path := range sp.blockIO {
		if path == "" {
			continue // the controller's absence is already noted
		}
		data, err := readFile(path, nil)
		if err == nil {
			var read, write uint64
			var entries int
			if read, write, entries, err = sp.ioOf(data); err == nil && entries > 0 {
				rd.u.BlockRead, rd.u.BlockWrite, rd.u.HasBlockIO = read, write, true
				return
			}
			if err == nil {
				readable = true
				continue
			}
			err = fmt.Errorf("%s: %w", path, err)
		}
		rd.notExist = rd.notExist || isGone(err)
		errs = append(errs, err)
	}
	if readable {
		rd.u.HasBlockIO = true
		return
	}
	for _, err := range errs {
		rd.errs = append(rd.errs, fmt.Errorf("block I/O: %w", err))
	}
}
