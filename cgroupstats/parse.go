package cgroupstats

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// The parsers below take a file's bytes and do no I/O, so they can be
// table-tested and fuzzed. Each value must be a decimal in [0, MaxInt64]:
// the kernel's counters never get there, so anything larger is garbage, and
// a caller converting to int64 or time.Duration can never overflow.

var (
	errEmpty     = errors.New("empty file")
	errTruncated = errors.New("truncated: no newline at the end")
	errNoKey     = errors.New("no such key")
)

// complete returns data without its final newline. The kernel ends every
// line it writes, so data without one was cut short and cannot be trusted.
func complete(data []byte) ([]byte, error) {
	if len(data) == 0 {
		return nil, errEmpty
	}
	if data[len(data)-1] != '\n' {
		return nil, errTruncated
	}
	return data[:len(data)-1], nil
}

// number parses one counter or amount.
func number(s []byte) (uint64, error) {
	n, err := strconv.ParseUint(string(s), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("not a number: %q", truncate(s))
	}
	if n > math.MaxInt64 {
		return 0, fmt.Errorf("absurd value %d", n)
	}
	return n, nil
}

// truncate keeps garbage short in error messages.
func truncate(s []byte) string {
	const max = 40
	if len(s) > max {
		return string(s[:max]) + "..."
	}
	return string(s)
}

// addChecked sums counters, failing rather than wrapping.
func addChecked(a, b uint64) (uint64, error) {
	if b > math.MaxInt64-a {
		return 0, errors.New("sum overflows")
	}
	return a + b, nil
}

// parseValue reads a single-value file such as memory.current or
// cpuacct.usage.
func parseValue(data []byte) (uint64, error) {
	body, err := complete(data)
	if err != nil {
		return 0, err
	}
	return number(bytes.TrimSpace(body))
}

// parseKeyed finds key in a flat-keyed file ("key value" lines: cpu.stat,
// memory.stat). Other lines are not looked at, so a key the kernel adds
// later, or one this package does not know, cannot spoil the one it wants.
func parseKeyed(data []byte, key string) (uint64, error) {
	body, err := complete(data)
	if err != nil {
		return 0, err
	}
	for line := range bytes.SplitSeq(body, []byte{'\n'}) {
		k, v, ok := bytes.Cut(line, []byte{' '})
		if ok && string(k) == key {
			return number(bytes.TrimSpace(v))
		}
	}
	return 0, fmt.Errorf("%s: %w", key, errNoKey)
}

// unlimitedV1 is where a cgroup v1 memory limit stops being a limit. The
// kernel shows "no limit" as its page counter maximum in bytes: LONG_MAX
// rounded down to a page (9223372036854771712 with 4 KiB pages, less with
// larger pages), and old kernels show 2^64-1. No machine has 4 EiB.
const unlimitedV1 = 1 << 62

// parseLimitV1 reads memory.limit_in_bytes; ok is false when there is no
// limit.
func parseLimitV1(data []byte) (limit uint64, ok bool, err error) {
	body, err := complete(data)
	if err != nil {
		return 0, false, err
	}
	s := bytes.TrimSpace(body)
	n, err := strconv.ParseUint(string(s), 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("not a number: %q", truncate(s))
	}
	if n >= unlimitedV1 {
		return 0, false, nil
	}
	return n, true, nil
}

// parseMaxV2 reads a cgroup v2 limit such as memory.max: "max" or bytes.
func parseMaxV2(data []byte) (limit uint64, ok bool, err error) {
	body, err := complete(data)
	if err != nil {
		return 0, false, err
	}
	s := bytes.TrimSpace(body)
	if string(s) == "max" {
		return 0, false, nil
	}
	n, err := number(s)
	return n, err == nil, err
}

// parseQuotaV1 reads cpu.cfs_quota_us: -1 means no quota.
func parseQuotaV1(data []byte) (set bool, err error) {
	body, err := complete(data)
	if err != nil {
		return false, err
	}
	s := bytes.TrimSpace(body)
	if string(s) == "-1" {
		return false, nil
	}
	n, err := number(s)
	return err == nil && n > 0, err
}

// parseCPUMax reads cpu.max, "$MAX $PERIOD": "max 100000" means no quota.
func parseCPUMax(data []byte) (set bool, err error) {
	body, err := complete(data)
	if err != nil {
		return false, err
	}
	quota, period, ok := bytes.Cut(bytes.TrimSpace(body), []byte{' '})
	if !ok {
		return false, fmt.Errorf("want \"$MAX $PERIOD\", got %q", truncate(body))
	}
	if _, err := number(period); err != nil {
		return false, fmt.Errorf("period: %w", err)
	}
	if string(quota) == "max" {
		return false, nil
	}
	n, err := number(quota)
	return err == nil && n > 0, err
}

// parseBlkio sums the Read and Write bytes of every device in a v1 blkio
// file ("8:0 Read 4096" lines, then "Total N"). entries counts the device
// lines, so that a file with none can give way to another.
func parseBlkio(data []byte) (read, write uint64, entries int, err error) {
	if len(data) == 0 {
		return 0, 0, 0, nil // no I/O accounted here at all
	}
	body, err := complete(data)
	if err != nil {
		return 0, 0, 0, err
	}
	for line := range bytes.SplitSeq(body, []byte{'\n'}) {
		f := bytes.Fields(line)
		switch {
		case len(f) == 2 && string(f[0]) == "Total":
			continue
		case len(f) != 3 || !isDevice(f[0]):
			return 0, 0, 0, fmt.Errorf("want \"maj:min op bytes\", got %q", truncate(line))
		}
		n, err := number(f[2])
		if err != nil {
			return 0, 0, 0, err
		}
		entries++
		switch string(f[1]) {
		case "Read":
			read, err = addChecked(read, n)
		case "Write":
			write, err = addChecked(write, n)
		}
		if err != nil {
			return 0, 0, 0, err
		}
	}
	return read, write, entries, nil
}

// parseIOStat sums rbytes and wbytes over the devices of a v2 io.stat
// ("8:0 rbytes=N wbytes=N rios=N ..."), and counts them. An empty file is a
// cgroup that did no I/O: the kernel leaves out devices with nothing to show.
func parseIOStat(data []byte) (read, write uint64, devices int, err error) {
	if len(data) == 0 {
		return 0, 0, 0, nil
	}
	body, err := complete(data)
	if err != nil {
		return 0, 0, 0, err
	}
	for line := range bytes.SplitSeq(body, []byte{'\n'}) {
		f := bytes.Fields(line)
		if len(f) == 0 || !isDevice(f[0]) {
			return 0, 0, 0, fmt.Errorf("want \"maj:min key=value...\", got %q", truncate(line))
		}
		devices++
		for _, kv := range f[1:] {
			k, v, ok := bytes.Cut(kv, []byte{'='})
			if !ok {
				return 0, 0, 0, fmt.Errorf("want key=value, got %q", truncate(kv))
			}
			var sum *uint64
			switch string(k) {
			case "rbytes":
				sum = &read
			case "wbytes":
				sum = &write
			default:
				continue // other keys (rios, dbytes, cost.*) may not even be numbers
			}
			n, err := number(v)
			if err != nil {
				return 0, 0, 0, err
			}
			if *sum, err = addChecked(*sum, n); err != nil {
				return 0, 0, 0, err
			}
		}
	}
	return read, write, devices, nil
}

// isDevice says whether s looks like "maj:min".
func isDevice(s []byte) bool {
	maj, min, ok := bytes.Cut(s, []byte{':'})
	_, err1 := number(maj)
	_, err2 := number(min)
	return ok && err1 == nil && err2 == nil
}

// Interface is one network interface's traffic since it was created.
type Interface struct {
	Name               string
	RxBytes, RxPackets uint64
	TxBytes, TxPackets uint64
}

// parseNetDev reads /proc/<pid>/net/dev: two header lines, then
// "name: 8 receive fields 8 transmit fields" per interface. lo is left out:
// its traffic never leaves the container. The name ends at the colon, not
// at a space: a long name runs into the first number ("verylongname0:123").
func parseNetDev(data []byte) ([]Interface, error) {
	body, err := complete(data)
	if err != nil {
		return nil, err
	}
	lines := bytes.Split(body, []byte{'\n'})
	if len(lines) < 2 || !bytes.HasPrefix(lines[0], []byte("Inter-|")) || !bytes.Contains(lines[1], []byte("face |")) {
		return nil, errors.New("no net/dev header")
	}
	var ifaces []Interface
	for _, line := range lines[2:] {
		name, rest, ok := bytes.Cut(line, []byte{':'})
		name = bytes.TrimSpace(name)
		f := bytes.Fields(rest)
		if !ok || len(name) == 0 || len(f) != 16 {
			return nil, fmt.Errorf("want \"name: 16 numbers\", got %q", truncate(line))
		}
		var n [16]uint64
		for i := range f {
			if n[i], err = number(f[i]); err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
		}
		if string(name) == "lo" {
			continue
		}
		ifaces = append(ifaces, Interface{
			Name:    string(name),
			RxBytes: n[0], RxPackets: n[1],
			TxBytes: n[8], TxPackets: n[9],
		})
	}
	return ifaces, nil
}

// cgroupLine is one line of /proc/<pid>/cgroup: "hierarchy-ID:controllers:path".
// Controllers is empty on the v2 line ("0::/path").
type cgroupLine struct {
	controllers string
	path        string
}

// parseCgroup reads /proc/<pid>/cgroup. A path the kernel marks as deleted
// (v2 shows " (deleted)" once a zombie's cgroup is removed) is kept as it is
// for the caller to judge.
func parseCgroup(data []byte) ([]cgroupLine, error) {
	body, err := complete(data)
	if err != nil {
		return nil, err
	}
	var out []cgroupLine
	for line := range bytes.SplitSeq(body, []byte{'\n'}) {
		id, rest, ok1 := bytes.Cut(line, []byte{':'})
		ctrl, path, ok2 := bytes.Cut(rest, []byte{':'})
		if _, err := number(id); err != nil || !ok1 || !ok2 || !bytes.HasPrefix(path, []byte{'/'}) {
			return nil, fmt.Errorf("want \"id:controllers:/path\", got %q", truncate(line))
		}
		out = append(out, cgroupLine{controllers: string(ctrl), path: string(path)})
	}
	return out, nil
}

// hasController says whether a v1 line's controller list ("cpu,cpuacct")
// names c.
func (l cgroupLine) hasController(c string) bool {
	for name := range strings.SplitSeq(l.controllers, ",") {
		if name == c {
			return true
		}
	}
	return false
}
