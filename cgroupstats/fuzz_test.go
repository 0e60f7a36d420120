package cgroupstats

import (
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParsers hands the same bytes to every parser, seeded with every file
// of the testdata trees. None may panic; whatever one accepts must be a
// value a caller can use as it is (at most MaxInt64, an interface name
// that is not lo, a limit only when there is one), and a cgroup path it
// accepts must not lead out of the cgroup root.
func FuzzParsers(f *testing.F) {
	err := filepath.WalkDir("testdata", func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		data, err := os.ReadFile(path)
		f.Add(data)
		return err
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		sane := func(what string, n uint64) {
			if n > math.MaxInt64 {
				t.Errorf("%s: %d is above MaxInt64", what, n)
			}
		}
		if n, err := parseValue(data); err == nil {
			sane("parseValue", n)
		}
		for _, key := range []string{"usage_usec", "throttled_time", "inactive_file", "total_inactive_file"} {
			if n, err := parseKeyed(data, key); err == nil {
				sane("parseKeyed "+key, n)
			}
		}
		if n, ok, err := parseLimitV1(data); err == nil && (ok && n >= unlimitedV1 || !ok && n != 0) {
			t.Errorf("parseLimitV1 = %d, limited %v", n, ok)
		}
		if n, ok, err := parseMaxV2(data); err == nil && (ok && n > math.MaxInt64 || !ok && n != 0) {
			t.Errorf("parseMaxV2 = %d, limited %v", n, ok)
		}
		_, _ = parseQuotaV1(data)
		_, _ = parseCPUMax(data)
		for name, parse := range map[string]func([]byte) (uint64, uint64, int, error){"parseBlkio": parseBlkio, "parseIOStat": parseIOStat} {
			read, write, entries, err := parse(data)
			if err != nil && (read != 0 || write != 0 || entries != 0) {
				t.Errorf("%s failed but gave %d, %d, %d", name, read, write, entries)
			}
			sane(name+" read", read)
			sane(name+" write", write)
		}
		if ifaces, err := parseNetDev(data); err == nil {
			for _, i := range ifaces {
				if i.Name == "" || i.Name == "lo" || strings.Contains(i.Name, ":") {
					t.Errorf("parseNetDev gave interface %q", i.Name)
				}
				for _, n := range []uint64{i.RxBytes, i.RxPackets, i.TxBytes, i.TxPackets} {
					sane("parseNetDev "+i.Name, n)
				}
			}
		}
		if lines, err := parseCgroup(data); err == nil {
			const root = "/sys/fs/cgroup"
			for _, l := range lines {
				dir, err := (&Reader{}).dirOf(root, l.path, "")
				if err != nil {
					continue
				}
				if rel, err := filepath.Rel(root, dir); err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
					t.Errorf("cgroup path %q leads out of the root to %s", l.path, dir)
				}
			}
		}
	})
}
