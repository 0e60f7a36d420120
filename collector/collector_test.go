package collector

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.uber.org/goleak"

	"github.com/docker-exporter/docker_exporter/store"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

type fixedSource store.Snapshot

func (f fixedSource) Snapshot() store.Snapshot { return store.Snapshot(f) }

var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

func at(sec float64) time.Time { return t0.Add(time.Duration(sec * float64(time.Second))) }

// mixed holds one container of each interesting kind.
var mixed = store.Snapshot{
	Containers: []*store.Container{
		{
			ID: "aaa1", Name: "shop-web-1", Image: "nginx:1.27", ImageID: "sha256:111",
			Labels: map[string]string{
				"com.docker.compose.project": "shop", "com.docker.compose.service": "web",
				"com.example.team": "core",
			},
			State: "running", Health: "healthy", RestartCount: 2,
			Created: at(0), Started: at(10.5), Finished: at(9), ExitCode: 1, HasExitCode: true,
		},
		{
			ID: "bbb2", Name: "batch", Image: "busybox", ImageID: "sha256:222",
			Labels: map[string]string{"com.example.team": "data", "com.example-team": "clash"},
			State:  "exited", OOMKilled: true, ExitCode: 137, HasExitCode: true,
			Created: at(1), Started: at(2), Finished: at(3),
		},
		{
			ID: "ccc3", Name: "sick", Image: "app", ImageID: "sha256:333",
			State: "running", Health: "unhealthy", FailingStreak: 4,
			Created: at(1), Started: at(2),
		},
		{ID: "ddd4", Name: "fresh", Image: "app", ImageID: "sha256:333", State: "created", Created: at(4)},
	},
	Counts: map[string]store.Counts{
		"shop-web-1": {Starts: 3, Deaths: 2},
		"batch":      {Starts: 1, Deaths: 1, OOMs: 1},
		"sick":       {Starts: 1},
		"fresh":      {},
		"removed":    {Starts: 1, Deaths: 1, Destroys: 1},
	},
	Events: map[store.EventKind]uint64{
		{Type: "container", Action: "start"}:         5,
		{Type: "container", Action: "health_status"}: 2,
		{Type: "network", Action: "connect"}:         1,
	},
	Status: store.Status{
		Up:        true,
		Daemon:    store.DaemonInfo{Version: "20.10.24", APIVersion: "1.41", OS: "linux", Arch: "x86_64", KernelVersion: "6.1.0", Flavor: store.FlavorDocker},
		LastEvent: at(20.25), LastSync: at(5), Reconnects: 1, Syncs: 2,
		Resyncs:     store.Resyncs{Interval: 3, FellBehind: 1},
		Corrections: store.Corrections{Ghost: 1, Changed: 2},
	},
}

// podman is a Podman service's view: one container in a pod, one outside.
var podman = store.Snapshot{
	Containers: []*store.Container{
		{ID: "eee5", Name: "api", Image: "localhost/api:1", ImageID: "sha256:555", Pod: "shop", State: "running", Created: at(1), Started: at(2)},
		{ID: "fff6", Name: "solo", Image: "localhost/api:1", ImageID: "sha256:555", State: "exited", Created: at(1), Started: at(2), Finished: at(3), HasExitCode: true},
	},
	Counts: map[string]store.Counts{"api": {Starts: 1}, "solo": {Starts: 1, Deaths: 1}},
	Events: map[store.EventKind]uint64{
		{Type: "container", Action: "init"}:    2,
		{Type: "container", Action: "cleanup"}: 1,
	},
	Status: store.Status{
		Up:     true,
		Daemon: store.DaemonInfo{Version: "4.3.1", APIVersion: "1.41", OS: "linux", Arch: "amd64", KernelVersion: "6.1.0", Flavor: store.FlavorPodman},
	},
}

func TestGolden(t *testing.T) {
	tests := []struct {
		name   string
		snap   store.Snapshot
		labels []string
	}{
		{name: "mixed", snap: mixed},
		{name: "mixed_labels_allowlist", snap: mixed, labels: []string{"com.example.team"}},
		{name: "mixed_labels_all", snap: mixed, labels: []string{"*"}},
		{name: "daemon_down_at_start", snap: store.Snapshot{}},
		{name: "podman", snap: podman},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkGolden(t, tt.name, New(fixedSource(tt.snap), Config{Labels: tt.labels}))
		})
	}
}

// checkGolden compares what x gathers with testdata/<name>.prom (written
// anew with -update) and lints it.
func checkGolden(t *testing.T, name string, x *Exposition) {
	t.Helper()
	golden := filepath.Join("testdata", name+".prom")
	if *update {
		writeGolden(t, golden, x)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if err := testutil.GatherAndCompare(x, bytes.NewReader(want)); err != nil {
		t.Error(err)
	}
	problems, err := testutil.GatherAndLint(x)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

func TestDuplicateNamesNeverBreakAScrape(t *testing.T) {
	snap := store.Snapshot{Containers: []*store.Container{
		{ID: "old", Name: "web", State: "exited", Created: at(1)},
		{ID: "new", Name: "web", State: "running", Created: at(2)},
	}}
	c := New(fixedSource(snap), Config{})
	want := `
# HELP docker_container_info Always 1: one series per container the daemon has, with its identity (pod: its Podman pod, empty for Docker)` + cacheNote + `
# TYPE docker_container_info gauge
docker_container_info{compose_project="",compose_service="",id="new",image="",image_id="",name="web",pod=""} 1
`
	if err := testutil.GatherAndCompare(c, strings.NewReader(want), "docker_container_info"); err != nil {
		t.Error(err)
	}
}

func TestAnyLabelBytesGiveValidOutput(t *testing.T) {
	snap := store.Snapshot{Containers: []*store.Container{{
		ID: "x", Name: "odd\xff", State: "running",
		Labels: map[string]string{"ünï.cødé/key": "bad \xff\xfe value", "9starts-with-digit": "v\n\"q\""},
	}}}
	out := string(exposition(t, New(fixedSource(snap), Config{Labels: []string{"*"}})))
	for _, want := range []string{`label__n__c_d__key="bad � value"`, `label_9starts_with_digit="v\n\"q\""`, `name="odd�"`} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %s:\n%s", want, out)
		}
	}
}

// writeGolden writes what x gathers as the text format, labels sorted as
// testutil.GatherAndCompare reads them.
func writeGolden(t *testing.T, path string, x *Exposition) {
	t.Helper()
	fams, err := x.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	for _, mf := range fams {
		if _, err := expfmt.MetricFamilyToText(&buf, mf); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// exposition is what a scrape of x returns, checked to parse as the text
// format.
func exposition(t *testing.T, x *Exposition) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := x.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	if _, err := parser.TextToMetricFamilies(bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatalf("the exposition does not parse: %v\n%s", err, buf.String())
	}
	return buf.Bytes()
}

func TestSanitizeLabelName(t *testing.T) {
	for in, want := range map[string]string{
		"com.docker.compose.project": "com_docker_compose_project",
		"a-b/c d":                    "a_b_c_d",
		"Ünï":                        "_n_",
		"ok_123":                     "ok_123",
	} {
		if got := sanitizeLabelName(in); got != want {
			t.Errorf("sanitizeLabelName(%q) = %q, want %q", in, got, want)
		}
	}
}

// changingSource serves whatever snapshot the test last set.
type changingSource struct{ snap store.Snapshot }

func (c *changingSource) Snapshot() store.Snapshot { return c.snap }

func TestRenderFollowsChangesAndForgetsTheGone(t *testing.T) {
	web := &store.Container{ID: "a", Name: "web", State: "running", Labels: map[string]string{"team": "core"}}
	db := &store.Container{ID: "b", Name: "db", State: "running"}
	src := &changingSource{snap: store.Snapshot{Containers: []*store.Container{web, db}}}
	x := New(src, Config{Labels: []string{"*"}})
	if out := string(exposition(t, x)); !strings.Contains(out, `docker_container_state{name="web",state="running"} 1`) ||
		!strings.Contains(out, `docker_container_labels{name="db",label_team=""} 1`) {
		t.Fatalf("first render:\n%s", out)
	}

	// The store replaces a changed container; a new label key changes the
	// label set of every line; a removed container is forgotten.
	exited := *web
	exited.State = "exited"
	api := &store.Container{ID: "c", Name: "api", State: "created", Labels: map[string]string{"tier": "front"}}
	src.snap = store.Snapshot{Containers: []*store.Container{&exited, api}}
	out := string(exposition(t, x))
	for _, want := range []string{
		`docker_container_state{name="web",state="exited"} 1`,
		`docker_container_labels{name="web",label_team="core",label_tier=""} 1`,
		`docker_container_labels{name="api",label_team="",label_tier="front"} 1`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("second render lacks %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, `name="db"`) || strings.Contains(out, `docker_container_state{name="web",state="running"} 1`) {
		t.Errorf("second render shows what is gone:\n%s", out)
	}
	if len(x.containers) != 2 {
		t.Errorf("cache holds %d containers, want the 2 of the last render", len(x.containers))
	}
}
