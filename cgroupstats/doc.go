// Package cgroupstats reads one container's resource usage from the files
// the kernel keeps for its cgroup and its network namespace, with the
// definitions of docker stats and cAdvisor. It reads files only: it knows
// nothing of the Docker daemon or of Prometheus.
//
// New detects the layout once, from what is mounted under the cgroup root:
// cgroup v2, v1, or hybrid (v1 controllers beside a v2 hierarchy that has
// none; read as v1). Read then finds the container's cgroup from
// /proc/<pid>/cgroup, so that Docker's cgroupfs driver (/docker/<id>) and
// its systemd driver (/system.slice/docker-<id>.scope) both work; where
// that path does not lead there (a reader in a cgroup namespace of its own,
// Docker's default for containers on v2), by the container's id in a
// directory name under the root (locate.go). It reads:
//
//	figure       v1                                   v2
//	CPU          cpuacct.usage                        cpu.stat usage_usec
//	Throttled    cpu.stat throttled_time,             cpu.stat throttled_usec,
//	             if cpu.cfs_quota_us is not -1        if cpu.max is not "max ..."
//	Memory       memory.usage_in_bytes                memory.current
//	WorkingSet   Memory - memory.stat                 Memory - memory.stat
//	             total_inactive_file                  inactive_file
//	MemoryLimit  memory.limit_in_bytes, below 4 EiB   memory.max, not "max"
//	Block I/O    blkio.throttle.io_service_bytes,     io.stat rbytes, wbytes
//	             else blkio.io_service_bytes_recursive
//	             or blkio.bfq.io_service_bytes_recursive
//	PIDs         pids.current                         pids.current
//	Network      /proc/<pid>/net/dev but lo, unless the host's namespace
//
// Bad input never panics and never gives a negative, wrapped or made-up
// value. A file that is missing, empty (an empty io.stat or blkio file is
// a cgroup that did no I/O: zero), cut short (the kernel ends every line it
// writes, so a file without a final newline is not trusted), or that holds
// garbage or a value above MaxInt64 leaves absent only the figures it
// carries, and Usage.Missing says which and why: the working
// set needs both Memory and memory.stat; Throttled needs the quota file to
// say a quota is set; block I/O is absent only when no file of its list
// can be read; a garbage line anywhere in a blkio file, io.stat or net/dev
// spoils that whole file, since a sum without it would look like a counter
// going backwards. Read as a whole fails only when the container's cgroup
// cannot be found: ErrGone, ErrNoCgroup, ErrOutsideNamespace, or an
// unreadable or garbage /proc/<pid>/cgroup.
package cgroupstats
