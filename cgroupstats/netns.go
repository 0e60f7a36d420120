package cgroupstats

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// A container run with --network host shares the host's network
// namespace: /proc/<pid>/net/dev then lists the host's interfaces, whose
// traffic is not the container's. Two processes are in the same namespace
// exactly when their /proc/<pid>/ns/net links read the same
// ("net:[<inode>]", namespaces(7)). The host's is that of pid 1 of
// ProcRoot; where pid 1 may not be looked at (reading the link needs ptrace
// access: a non-dumpable init, an LSM), that of kthreadd, pid 2, as every
// kernel thread lives in the initial namespaces.

// hostNetNS reads the host's network namespace link under procRoot.
func hostNetNS(procRoot string) (string, error) {
	link, err := os.Readlink(filepath.Join(procRoot, "1", "ns", "net"))
	if err == nil {
		return link, nil
	}
	comm, cerr := os.ReadFile(filepath.Join(procRoot, "2", "comm"))
	if cerr == nil && bytes.Equal(comm, []byte("kthreadd\n")) {
		if link, kerr := os.Readlink(filepath.Join(procRoot, "2", "ns", "net")); kerr == nil {
			return link, nil
		}
	}
	return "", fmt.Errorf("cannot tell the host's network namespace: %w", err)
}

// network reads the container's interfaces, unless it shares the host's
// namespace or that cannot be told: host figures must never pass for the
// container's.
func (rd *reading) network(proc, host string, hostErr error) {
	const field = "network"
	if hostErr != nil {
		rd.errs = append(rd.errs, fmt.Errorf("%s: %w", field, hostErr))
		return
	}
	own, err := os.Readlink(filepath.Join(proc, "ns", "net"))
	if err != nil {
		rd.notExist = rd.notExist || isGone(err)
		rd.errs = append(rd.errs, fmt.Errorf("%s: cannot tell the container's network namespace: %w", field, err))
		return
	}
	if own == host {
		rd.u.HostNetwork = true
		return
	}
	path := filepath.Join(proc, "net", "dev")
	data, ok := rd.file(field, path)
	if !ok {
		return
	}
	ifaces, err := parseNetDev(data)
	if err != nil {
		rd.bad(field, path, err)
		return
	}
	rd.u.Network, rd.u.HasNetwork = ifaces, true
}

// Interfaces reads the interfaces of pid's network namespace but lo,
// without asking whose namespace it is: for a caller that knows the
// container is not on the host's network (Docker's NetworkMode) where Read
// could not tell, as for an exporter that runs without ptrace access to
// other users' processes.
func (r *Reader) Interfaces(pid int) ([]Interface, error) {
	path := filepath.Join(r.procRoot, strconv.Itoa(pid), "net", "dev")
	data, err := readFile(path, nil)
	if err != nil {
		if isGone(err) {
			return nil, fmt.Errorf("cgroupstats: pid %d: %w", pid, ErrGone)
		}
		return nil, fmt.Errorf("cgroupstats: %w", err)
	}
	ifaces, err := parseNetDev(data)
	if err != nil {
		return nil, fmt.Errorf("cgroupstats: %s: %w", path, err)
	}
	return ifaces, nil
}
