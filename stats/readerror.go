package stats

import (
	"context"
	"errors"
	"slices"
)

// The reasons a running container's usage could not be read, as
// docker_exporter_stats_read_errors_total{reason} counts them. A container
// that stopped meanwhile is no failure (ErrGone) and is not counted.
const (
	// ReasonNoCgroup: the container's cgroup is not under the cgroup root,
	// even searched for by the container's id: the root is not the host's.
	ReasonNoCgroup = "cgroup_not_found"
	// ReasonNoPid: the container's init process is not in the proc root
	// while the daemon says it runs: the proc root shows another pid
	// namespace than the host's.
	ReasonNoPid = "pid_not_found"
	// ReasonPermission: the files are there but may not be read.
	ReasonPermission = "permission_denied"
	// ReasonTimeout: the read took longer than Config.Timeout.
	ReasonTimeout = "timeout"
	// ReasonAPI: the Engine's stats API answered with an error.
	ReasonAPI = "api_error"
	// ReasonUnreadable: anything else, such as a garbage /proc/<pid>/cgroup
	// or a cgroup with no readable figure at all.
	ReasonUnreadable = "unreadable"
)

// Reasons lists every reason, in the order the exposition shows them.
var Reasons = [...]string{ReasonNoCgroup, ReasonNoPid, ReasonPermission, ReasonTimeout, ReasonAPI, ReasonUnreadable}

// ReadError is a Source's failure to read a running container, with the
// reason it is counted under.
type ReadError struct {
	Reason string
	Err    error
}

func (e *ReadError) Error() string { return e.Err.Error() }
func (e *ReadError) Unwrap() error { return e.Err }

func readError(reason string, err error) error { return &ReadError{Reason: reason, Err: err} }

// reasonOf says under which reason a failed read is counted.
func reasonOf(err error) string {
	var re *ReadError
	switch {
	case errors.As(err, &re):
		return re.Reason
	case errors.Is(err, context.DeadlineExceeded):
		return ReasonTimeout
	}
	return ReasonUnreadable
}

// fallsBack says whether a failure of reason is one of the cgroup files
// that the Engine's stats API, which reads them as root in the host's
// namespaces, does not have.
func fallsBack(reason string) bool {
	return reason == ReasonNoCgroup || reason == ReasonNoPid || reason == ReasonPermission
}

// ReadErrors counts failed reads by reason, in the order of Reasons.
type ReadErrors [len(Reasons)]uint64

// add counts one failure; a reason not in Reasons counts as unreadable.
func (r *ReadErrors) add(reason string) {
	i := slices.Index(Reasons[:], reason)
	if i < 0 {
		i = slices.Index(Reasons[:], ReasonUnreadable)
	}
	r[i]++
}
