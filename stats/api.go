package stats

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/docker-exporter/docker_exporter/store"
)

// StatsEngine is the part of the Docker client the API source uses;
// *client.Client satisfies it.
type StatsEngine interface {
	ContainerStats(ctx context.Context, id string, options client.ContainerStatsOptions) (client.ContainerStatsResult, error)
}

var _ StatsEngine = (*client.Client)(nil)

// APISource reads the Engine's stats API, one sample per container (the
// daemon reads the same cgroup files): for a daemon whose files are out of
// sight, such as rootless Docker, Docker Desktop or one reached over TCP.
// Each read is a daemon request, made by the sampler, never by a scrape.
type APISource struct {
	engine StatsEngine
	// hostMemory says the daemon's MemTotal (0 while unknown): the API
	// reports it as the limit of a container that has none.
	hostMemory func() uint64
}

// NewAPISource reads stats through engine; hostMemory tells the daemon's
// total memory, as its /info says.
func NewAPISource(engine StatsEngine, hostMemory func() uint64) *APISource {
	return &APISource{engine: engine, hostMemory: hostMemory}
}

// Name is "api".
func (*APISource) Name() string { return "api" }

// Read asks the daemon for one sample of c, without the previous one the
// API would wait a second for.
func (s *APISource) Read(ctx context.Context, c *store.Container) (Usage, error) {
	res, err := s.engine.ContainerStats(ctx, c.ID, client.ContainerStatsOptions{})
	if cerrdefs.IsNotFound(err) || cerrdefs.IsConflict(err) {
		return Usage{}, fmt.Errorf("%s: %w", c.Name, ErrGone)
	}
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return Usage{}, readError(ReasonTimeout, fmt.Errorf("stats of %s: %w", c.Name, err))
		}
		return Usage{}, readError(ReasonAPI, fmt.Errorf("stats of %s: %w", c.Name, err))
	}
	defer res.Body.Close()
	var st container.StatsResponse
	if err := json.NewDecoder(io.LimitReader(res.Body, 1<<20)).Decode(&st); err != nil {
		return Usage{}, readError(ReasonAPI, fmt.Errorf("stats of %s: %w", c.Name, err))
	}
	// A container that stopped meanwhile answers with zeros.
	if st.Read.IsZero() || st.PidsStats.Current == 0 && st.CPUStats.CPUUsage.TotalUsage == 0 {
		return Usage{}, fmt.Errorf("%s: %w", c.Name, ErrGone)
	}
	return s.usage(st, c), nil
}

func (s *APISource) usage(st container.StatsResponse, c *store.Container) Usage {
	m := st.MemoryStats
	u := Usage{
		CPUSeconds: float64(st.CPUStats.CPUUsage.TotalUsage) / 1e9, HasCPU: true,
		MemoryBytes: m.Usage, HasMemory: m.Usage > 0,
		PIDs: st.PidsStats.Current, HasPIDs: true,
		HasBlockIO: true,
	}
	if t := st.CPUStats.ThrottlingData; t.Periods > 0 {
		// Periods count only under a CFS quota.
		u.ThrottledSeconds, u.HasThrottled = float64(t.ThrottledTime)/1e9, true
	}
	// cgroup v1 names it total_inactive_file, v2 inactive_file.
	inactive, ok := m.Stats["total_inactive_file"]
	if !ok {
		inactive, ok = m.Stats["inactive_file"]
	}
	if u.HasMemory && ok {
		u.WorkingSetBytes, u.HasWorkingSet = m.Usage-min(inactive, m.Usage), true
	}
	if host := s.hostMemory(); m.Limit > 0 && (host == 0 || m.Limit < host) && m.Limit < 1<<62 {
		u.LimitBytes, u.HasLimit = m.Limit, true
	}
	for _, e := range st.BlkioStats.IoServiceBytesRecursive {
		switch strings.ToLower(e.Op) {
		case "read":
			u.BlockReadBytes += e.Value
		case "write":
			u.BlockWriteBytes += e.Value
		}
	}
	if c.NetworkMode != "host" {
		for name, n := range st.Networks {
			if name == "lo" {
				continue
			}
			u.Networks = append(u.Networks, Interface{Name: name, RxBytes: n.RxBytes, TxBytes: n.TxBytes, RxPackets: n.RxPackets, TxPackets: n.TxPackets})
		}
		sort.Slice(u.Networks, func(i, j int) bool { return u.Networks[i].Name < u.Networks[j].Name })
	}
	return u
}
