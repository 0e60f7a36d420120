package cgroupstats

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// checkErr reports whether err is as wanted, wantErr being "" for success
// or a piece of the error's text, and says whether to check the result.
func checkErr(t *testing.T, err error, wantErr string) bool {
	t.Helper()
	switch {
	case wantErr == "" && err != nil:
		t.Errorf("error %v, want none", err)
	case wantErr != "" && err == nil:
		t.Errorf("no error, want one with %q", wantErr)
	case wantErr != "" && !strings.Contains(err.Error(), wantErr):
		t.Errorf("error %v, want one with %q", err, wantErr)
	default:
		return err == nil
	}
	return false
}

func TestSingleValuesMustBeWholeSaneNumbers(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     uint64
		wantErr  string
	}{
		{"a counter", "48213754912\n", 48213754912, ""},
		{"zero", "0\n", 0, ""},
		{"the largest sane value", "9223372036854775807\n", 1<<63 - 1, ""},
		{"empty", "", 0, "empty"},
		{"cut short", "48213", 0, "truncated"},
		{"only a newline", "\n", 0, "not a number"},
		{"negative", "-1\n", 0, "not a number"},
		{"absurd", "18446744073709551615\n", 0, "absurd"},
		{"beyond 64 bits", "99999999999999999999\n", 0, "not a number"},
		{"a word", "max\n", 0, "not a number"},
		{"two values", "1 2\n", 0, "not a number"},
		{"binary", "\x00\xff\n", 0, "not a number"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseValue([]byte(tc.in))
			if checkErr(t, err, tc.wantErr) && got != tc.want {
				t.Errorf("got %d, want %d", got, tc.want)
			}
		})
	}
}

func TestKeyedValuesAreFoundByKeyWhereverTheyAre(t *testing.T) {
	const cpuStat = "usage_usec 731460251\nuser_usec 590112030\nsystem_usec 141348221\nnr_periods 7421\nthrottled_usec 18094311\n"
	for _, tc := range []struct {
		name, in, key string
		want          uint64
		wantErr       string
	}{
		{"first line", cpuStat, "usage_usec", 731460251, ""},
		{"a later line", cpuStat, "throttled_usec", 18094311, ""},
		{"a key that is a prefix of another is not confused", "total_inactive_file 5\ninactive_file 7\n", "inactive_file", 7, ""},
		{"garbage on other lines is not looked at", "junk\nfoo bar\ninactive_file 7\n", "inactive_file", 7, ""},
		{"missing key", cpuStat, "throttled_time", 0, "no such key"},
		{"garbage value", "inactive_file seven\n", "inactive_file", 0, "not a number"},
		{"absurd value", "usage_usec 18446744073709551615\n", "usage_usec", 0, "absurd"},
		{"cut short", "usage_usec 731460251\nthrottled_usec 18", "throttled_usec", 0, "truncated"},
		{"empty", "", "usage_usec", 0, "empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseKeyed([]byte(tc.in), tc.key)
			if checkErr(t, err, tc.wantErr) && got != tc.want {
				t.Errorf("got %d, want %d", got, tc.want)
			}
		})
	}
}

func TestMemoryLimitsTellUnlimitedApart(t *testing.T) {
	for _, tc := range []struct {
		name, in    string
		v2          bool
		want        uint64
		wantLimited bool
		wantErr     string
	}{
		{"v1 limit", "536870912\n", false, 536870912, true, ""},
		{"v1 unlimited, 4 KiB pages", "9223372036854771712\n", false, 0, false, ""},
		{"v1 unlimited, 64 KiB pages", "9223372036854710272\n", false, 0, false, ""},
		{"v1 unlimited, kernel 3.10", "9223372036854775807\n", false, 0, false, ""},
		{"v1 unlimited, older kernels", "18446744073709551615\n", false, 0, false, ""},
		{"v1 garbage", "lots\n", false, 0, false, "not a number"},
		{"v1 empty", "", false, 0, false, "empty"},
		{"v2 limit", "268435456\n", true, 268435456, true, ""},
		{"v2 unlimited", "max\n", true, 0, false, ""},
		{"v2 cut short", "max", true, 0, false, "truncated"},
		{"v2 garbage", "maximum\n", true, 0, false, "not a number"},
		{"v2 absurd", "18446744073709551615\n", true, 0, false, "absurd"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parse := parseLimitV1
			if tc.v2 {
				parse = parseMaxV2
			}
			got, limited, err := parse([]byte(tc.in))
			if checkErr(t, err, tc.wantErr) && (got != tc.want || limited != tc.wantLimited) {
				t.Errorf("got %d limited %v, want %d limited %v", got, limited, tc.want, tc.wantLimited)
			}
		})
	}
}

func TestCPUQuotasTellNoneApart(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		v2       bool
		want     bool
		wantErr  string
	}{
		{"v1 quota", "50000\n", false, true, ""},
		{"v1 none", "-1\n", false, false, ""},
		{"v1 garbage", "-2\n", false, false, "not a number"},
		{"v1 cut short", "-", false, false, "truncated"},
		{"v2 quota", "150000 100000\n", true, true, ""},
		{"v2 none", "max 100000\n", true, false, ""},
		{"v2 no period", "max\n", true, false, "$PERIOD"},
		{"v2 garbage period", "max often\n", true, false, "period"},
		{"v2 garbage quota", "lots 100000\n", true, false, "not a number"},
		{"v2 empty", "", true, false, "empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parse := parseQuotaV1
			if tc.v2 {
				parse = parseCPUMax
			}
			got, err := parse([]byte(tc.in))
			if checkErr(t, err, tc.wantErr) && got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestBlockIOIsSummedOverDevices(t *testing.T) {
	for _, tc := range []struct {
		name, in            string
		v2                  bool
		wantRead, wantWrite uint64
		wantEntries         int
		wantErr             string
	}{
		{"v1 two devices", "8:16 Read 5\n8:16 Write 0\n8:16 Sync 0\n8:16 Async 5\n8:16 Total 5\n8:0 Read 20\n8:0 Write 1\n8:0 Discard 3\n8:0 Total 21\nTotal 26\n", false, 25, 1, 9, ""},
		{"v1 no I/O yet", "Total 0\n", false, 0, 0, 0, ""},
		{"v1 empty", "", false, 0, 0, 0, ""},
		{"v1 cut short", "8:0 Read 20\n8:0 Wri", false, 0, 0, 0, "truncated"},
		{"v1 line without a device", "Read 20\n", false, 0, 0, 0, "maj:min"},
		{"v1 garbage count", "8:0 Read lots\n", false, 0, 0, 0, "not a number"},
		{"v1 sum overflows", "8:0 Read 9223372036854775807\n8:16 Read 1\n", false, 0, 0, 0, "overflows"},
		{"v2 two devices", "259:0 rbytes=44638208 wbytes=8388608 rios=1240 wios=388 dbytes=0 dios=0\n253:0 rbytes=1459200 wbytes=314773504 rios=192 wios=353 dbytes=0 dios=0\n", true, 46097408, 323162112, 2, ""},
		{"v2 iocost keys", "8:0 rbytes=905216 wbytes=0 rios=31 wios=0 dbytes=0 dios=0 cost.usage=1402 cost.wait=0 cost.indebt=0 cost.indelay=0\n", true, 905216, 0, 1, ""},
		{"v2 other keys are not read", "8:0 rbytes=1 wbytes=2 rios=x cost.vrate=100.00\n", true, 1, 2, 1, ""},
		{"v2 no I/O", "", true, 0, 0, 0, ""},
		{"v2 cut short", "8:0 rbytes=905216 wby", true, 0, 0, 0, "truncated"},
		{"v2 no device", "rbytes=1\n", true, 0, 0, 0, "maj:min"},
		{"v2 blank line", "\n", true, 0, 0, 0, "maj:min"},
		{"v2 not key=value", "8:0 rbytes 1\n", true, 0, 0, 0, "key=value"},
		{"v2 garbage bytes", "8:0 rbytes=-1 wbytes=0\n", true, 0, 0, 0, "not a number"},
		{"v2 sum overflows", "8:0 wbytes=9223372036854775807\n8:1 wbytes=9\n", true, 0, 0, 0, "overflows"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parse := parseBlkio
			if tc.v2 {
				parse = parseIOStat
			}
			read, write, entries, err := parse([]byte(tc.in))
			if checkErr(t, err, tc.wantErr) && (read != tc.wantRead || write != tc.wantWrite || entries != tc.wantEntries) {
				t.Errorf("got read %d write %d entries %d, want %d %d %d", read, write, entries, tc.wantRead, tc.wantWrite, tc.wantEntries)
			}
		})
	}
}

const netDevHeader = "Inter-|   Receive                                                |  Transmit\n" +
	" face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n"

func TestNetDevListsEveryInterfaceButLo(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []Interface
		wantErr  string
	}{
		{"this machine's format", netDevHeader +
			"    lo: 85222700   47164    0    0    0     0          0         0 85222700   47164    0    0    0     0       0          0\n" +
			"  eth0: 420122288   22116    0    0    0     0          0         0  1758287   16812    0    0    0     0       0          0\n",
			[]Interface{{Name: "eth0", RxBytes: 420122288, RxPackets: 22116, TxBytes: 1758287, TxPackets: 16812}}, ""},
		{"a long name runs into the numbers", netDevHeader +
			"vethlongname012:123 4 0 0 0 0 0 0 5 6 0 0 0 0 0 0\n",
			[]Interface{{Name: "vethlongname012", RxBytes: 123, RxPackets: 4, TxBytes: 5, TxPackets: 6}}, ""},
		{"only lo (--network none)", netDevHeader + "    lo: 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n", nil, ""},
		{"no header", "  eth0: 1 2 0 0 0 0 0 0 3 4 0 0 0 0 0 0\n", nil, "header"},
		{"empty", "", nil, "empty"},
		{"cut short", netDevHeader + "  eth0: 1 2 0 0 0", nil, "truncated"},
		{"a line cut short, then the rest", netDevHeader + "  eth0: 1 2 0 0 0\n  eth1: 1 2 0 0 0 0 0 0 3 4 0 0 0 0 0 0\n", nil, "16 numbers"},
		{"too many fields", netDevHeader + "  eth0: 1 2 0 0 0 0 0 0 3 4 0 0 0 0 0 0 9\n", nil, "16 numbers"},
		{"no name", netDevHeader + ": 1 2 0 0 0 0 0 0 3 4 0 0 0 0 0 0\n", nil, "16 numbers"},
		{"no colon", netDevHeader + "eth0 1 2 0 0 0 0 0 0 3 4 0 0 0 0 0 0\n", nil, "16 numbers"},
		{"garbage number", netDevHeader + "  eth0: 1 2 0 0 0 0 0 0 x 4 0 0 0 0 0 0\n", nil, "eth0: not a number"},
		{"garbage in lo still spoils the file", netDevHeader + "    lo: 1 2 0 0 0 0 0 0 x 4 0 0 0 0 0 0\n", nil, "lo: not a number"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseNetDev([]byte(tc.in))
			if checkErr(t, err, tc.wantErr) && !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestCgroupFileLinesKeepControllersAndPaths(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []cgroupLine
		wantErr  string
	}{
		{"v2", "0::/system.slice/docker-ab.scope\n", []cgroupLine{{"", "/system.slice/docker-ab.scope"}}, ""},
		{"hybrid", "2:cpuacct:/docker/ab\n1:name=systemd:/docker/ab\n0::/docker/ab\n",
			[]cgroupLine{{"cpuacct", "/docker/ab"}, {"name=systemd", "/docker/ab"}, {"", "/docker/ab"}}, ""},
		{"a path with colons and spaces", "0::/a:b c\n", []cgroupLine{{"", "/a:b c"}}, ""},
		{"deleted, kept as it is", "0::/docker/ab (deleted)\n", []cgroupLine{{"", "/docker/ab (deleted)"}}, ""},
		{"empty", "", nil, "empty"},
		{"cut short", "0::/system.sl", nil, "truncated"},
		{"no id", ":cpu:/x\n", nil, "id:controllers"},
		{"one colon", "0:/x\n", nil, "id:controllers"},
		{"relative path", "0::x\n", nil, "id:controllers"},
		{"blank line", "0::/x\n\n", nil, "id:controllers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseCgroup([]byte(tc.in))
			if checkErr(t, err, tc.wantErr) && !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestControllerListsAreMatchedByWholeName(t *testing.T) {
	l := cgroupLine{controllers: "cpuacct,cpu"}
	if !l.hasController("cpu") || !l.hasController("cpuacct") {
		t.Error("cpu or cpuacct not found in cpuacct,cpu")
	}
	if l.hasController("cpuset") || (cgroupLine{controllers: "cpuset"}).hasController("cpu") {
		t.Error("cpu confused with cpuset")
	}
	if (cgroupLine{}).hasController("cpu") {
		t.Error("the v2 line names a controller")
	}
}

func TestCgroupPathsMayNotLeaveTheRoot(t *testing.T) {
	for _, tc := range []struct {
		path    string
		want    string
		wantErr error
	}{
		{"/docker/ab", "/r/docker/ab", nil},
		{"/", "/r", nil},
		{"/../docker-ab.scope", "", ErrOutsideNamespace},
		{"/system.slice/../../etc", "", ErrOutsideNamespace},
		{"/docker/ab (deleted)", "", ErrGone},
	} {
		got, err := (&Reader{}).dirOf("/r", tc.path, "")
		if !errors.Is(err, tc.wantErr) || got != tc.want {
			t.Errorf("dirOf(/r, %q, \"\") = %q, %v; want %q, %v", tc.path, got, err, tc.want, tc.wantErr)
		}
	}
}
