package stats

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/docker-exporter/docker_exporter/cgroupstats"
	"github.com/docker-exporter/docker_exporter/store"
)

// CgroupSource reads the kernel's cgroup files of a container's init
// process: no daemon request at all.
type CgroupSource struct {
	reader *cgroupstats.Reader
}

// NewCgroupSource detects the cgroup layout under cfg's roots; its error
// says why the files cannot be read.
func NewCgroupSource(cfg cgroupstats.Config) (*CgroupSource, error) {
	r, err := cgroupstats.New(cfg)
	if err != nil {
		return nil, err
	}
	return &CgroupSource{reader: r}, nil
}

// Name is "cgroup".
func (*CgroupSource) Name() string { return "cgroup" }

// Layout is the cgroup layout found: v1, v2 or hybrid.
func (s *CgroupSource) Layout() string { return s.reader.Layout() }

// Read reads c's figures through the pid the store has from its inspect.
func (s *CgroupSource) Read(_ context.Context, c *store.Container) (Usage, error) {
	if c.Pid <= 0 {
		return Usage{}, fmt.Errorf("%s: no pid yet: %w", c.Name, ErrGone)
	}
	k, err := s.reader.Read(c.Pid, c.ID)
	switch {
	case errors.Is(err, cgroupstats.ErrGone):
		return Usage{}, fmt.Errorf("%s: %w", c.Name, ErrGone)
	case errors.Is(err, cgroupstats.ErrNoCgroup), errors.Is(err, cgroupstats.ErrOutsideNamespace):
		return Usage{}, readError(ReasonNoCgroup, fmt.Errorf("%s: %w", c.Name, err))
	case errors.Is(err, fs.ErrPermission):
		return Usage{}, readError(ReasonPermission, fmt.Errorf("%s: %w", c.Name, err))
	case err != nil:
		return Usage{}, readError(ReasonUnreadable, fmt.Errorf("%s: %w", c.Name, err))
	case !strings.Contains(k.Cgroup, c.ID):
		// The process ended and its pid went to another: not this one's.
		return Usage{}, fmt.Errorf("%s: pid %d is in cgroup %s now: %w", c.Name, c.Pid, k.Cgroup, ErrGone)
	case !k.HasCPU && !k.HasMemory && !k.HasPIDs && k.Missing != nil:
		// Not one figure: serving none would look like a healthy sample.
		reason := ReasonUnreadable
		if errors.Is(k.Missing, fs.ErrPermission) {
			reason = ReasonPermission
		}
		return Usage{}, readError(reason, fmt.Errorf("%s: no figure in cgroup %s could be read: %w", c.Name, k.Cgroup, k.Missing))
	}
	u := Usage{
		CPUSeconds: k.CPU.Seconds(), HasCPU: k.HasCPU,
		ThrottledSeconds: k.Throttled.Seconds(), HasThrottled: k.HasThrottled,
		MemoryBytes: k.Memory, HasMemory: k.HasMemory,
		WorkingSetBytes: k.WorkingSet, HasWorkingSet: k.HasWorkingSet,
		LimitBytes: k.MemoryLimit, HasLimit: k.HasMemoryLimit,
		BlockReadBytes: k.BlockRead, BlockWriteBytes: k.BlockWrite, HasBlockIO: k.HasBlockIO,
		PIDs: k.PIDs, HasPIDs: k.HasPIDs,
	}
	nets, hasNets := k.Network, k.HasNetwork
	if !hasNets && !k.HostNetwork && ownNetwork(c.NetworkMode) {
		// Read could not tell whose namespace it is (no ptrace access to
		// the container's process); the daemon can.
		var err error
		nets, err = s.reader.Interfaces(c.Pid)
		hasNets = err == nil
	}
	if hasNets && !k.HostNetwork && c.NetworkMode != "host" {
		u.Networks = make([]Interface, len(nets))
		for i, n := range nets {
			u.Networks[i] = Interface{Name: n.Name, RxBytes: n.RxBytes, TxBytes: n.TxBytes, RxPackets: n.RxPackets, TxPackets: n.TxPackets}
		}
	}
	return u, nil
}

// ownNetwork says whether a container of this NetworkMode surely has a
// network namespace of its own: not the host's, nor another container's
// (which may be the host's).
func ownNetwork(mode string) bool {
	return mode != "" && mode != "host" && !strings.HasPrefix(mode, "container:")
}
