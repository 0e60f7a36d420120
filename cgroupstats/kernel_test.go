package cgroupstats_test

import (
	"errors"
	"os"
	"testing"

	"github.com/docker-exporter/docker_exporter/cgroupstats"
)

// TestReadsThisProcessFromTheRealKernel reads the test's own cgroup from
// this machine's /sys/fs/cgroup and /proc, whatever their layout: the same
// code that reads the testdata trees must make sense of the kernel's files.
func TestReadsThisProcessFromTheRealKernel(t *testing.T) {
	if _, err := os.Stat("/proc/self/cgroup"); err != nil {
		t.Skipf("no /proc/self/cgroup: not Linux, or no procfs: %v", err)
	}
	r, err := cgroupstats.New(cgroupstats.Config{})
	if err != nil {
		t.Skipf("/sys/fs/cgroup is not mounted here: %v", err)
	}
	t.Logf("layout %s", r.Layout())
	u, err := r.Read(os.Getpid(), "")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("cgroup %q, absent figures: %v", u.Cgroup, u.Missing)
	t.Logf("%+v", u)

	if !u.HasCPU || u.CPU <= 0 {
		t.Errorf("CPU = %v (present %v), want > 0: this test has run", u.CPU, u.HasCPU)
	}
	if !u.HasMemory || u.Memory == 0 {
		t.Errorf("memory = %d (present %v), want > 0", u.Memory, u.HasMemory)
	}
	if u.HasWorkingSet && u.WorkingSet > u.Memory {
		t.Errorf("working set %d > memory usage %d", u.WorkingSet, u.Memory)
	}
	if u.HasMemoryLimit && u.MemoryLimit == 0 {
		t.Error("a memory limit of 0 bytes")
	}
	// The root cgroup has no pids.current (v1 and v2): a process there,
	// like a shell on a bare machine, has no count to check.
	if u.HasPIDs && u.PIDs < 1 {
		t.Errorf("pids = %d, want >= 1: this process is in the cgroup", u.PIDs)
	}
	if !u.HasPIDs {
		t.Log("pids absent: this process is in the root of the pids hierarchy, which has no pids.current, or pids is not mounted")
	}
	if u.HostNetwork && u.HasNetwork {
		t.Error("the host's network counted as the process's own")
	}
	for _, ifc := range u.Network {
		if ifc.Name == "lo" {
			t.Error("lo listed")
		}
	}

	if _, err := r.Read(1<<30, ""); !errors.Is(err, cgroupstats.ErrGone) {
		t.Errorf("Read of a pid no process has = %v, want ErrGone", err)
	}
}
