// Package stats samples the resource usage of the store's running
// containers in the background, from a Source (the kernel's cgroup files, or
// the Engine's stats API where those are out of sight), and keeps the latest
// figures for readers. A scrape never waits for it and it never calls the
// daemon on a scrape's behalf. It knows nothing of Prometheus.
package stats

import "errors"

// Usage is one container's resource usage at one moment. A figure is
// absent (its Has field false) where the source has none: no limit, no CPU
// quota, the host's network, or a file it could not read.
type Usage struct {
	CPUSeconds       float64 // user and system
	HasCPU           bool
	ThrottledSeconds float64 // waiting for a CFS quota
	HasThrottled     bool

	MemoryBytes     uint64 // charged to the cgroup, page cache included
	HasMemory       bool
	WorkingSetBytes uint64 // memory less the inactive file cache
	HasWorkingSet   bool
	LimitBytes      uint64
	HasLimit        bool

	BlockReadBytes, BlockWriteBytes uint64
	HasBlockIO                      bool

	PIDs    uint64
	HasPIDs bool

	// Networks are the interfaces of the container's network namespace
	// but lo; nil for the host's network, which is not the container's.
	Networks []Interface
}

// Interface is one network interface's counters.
type Interface struct {
	Name                                   string
	RxBytes, TxBytes, RxPackets, TxPackets uint64
}

// ErrGone is what a Source says of a container that stopped or vanished
// between the store's view and the read: it is skipped, without a word.
var ErrGone = errors.New("container gone")
