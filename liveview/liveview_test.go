package liveview

import (
	"bytes"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker-exporter/docker_exporter/collector"
	"github.com/docker-exporter/docker_exporter/store"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

func at(sec float64) time.Time { return t0.Add(time.Duration(sec * float64(time.Second))) }

// mixed holds one container of each interesting kind (as the collector's
// golden tests do).
var mixed = store.Snapshot{
	Containers: []*store.Container{
		{
			ID: "aaa1", Name: "shop-web-1", Image: "nginx:1.27", ImageID: "sha256:111",
			Labels: map[string]string{
				"com.docker.compose.project": "shop", "com.docker.compose.service": "web",
				"com.example.team": "core", "com.example.secret": "hunter2",
			},
			State: "running", Health: "healthy", RestartCount: 2,
			Created: at(0), Started: at(10.5), Finished: at(9), ExitCode: 1, HasExitCode: true,
			Pid: 4242, NetworkMode: "bridge",
		},
		{
			ID: "bbb2", Name: "batch", Image: "busybox", ImageID: "sha256:222",
			Labels: map[string]string{"com.example.team": "data"},
			State:  "exited", OOMKilled: true, ExitCode: 137, HasExitCode: true,
			// A time in another zone is shown in UTC.
			Created: at(1).In(time.FixedZone("CET", 3600)), Started: at(2), Finished: at(3),
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
	Events: map[store.EventKind]uint64{{Type: "container", Action: "start"}: 5},
	Status: store.Status{
		Up:        true,
		Daemon:    store.DaemonInfo{Version: "20.10.24", APIVersion: "1.41", OS: "linux", Arch: "x86_64", KernelVersion: "6.1.0", Flavor: store.FlavorDocker, MemTotal: 1 << 30},
		LastEvent: at(20.25), LastSync: at(5), Reconnects: 1, Syncs: 2,
	},
}

// podman is a Podman service's view: one container in a pod, one outside.
var podman = store.Snapshot{
	Containers: []*store.Container{
		{ID: "eee5", Name: "api", Image: "localhost/api:1", ImageID: "sha256:555", Pod: "shop", State: "running", Created: at(1), Started: at(2)},
		{ID: "fff6", Name: "solo", Image: "localhost/api:1", ImageID: "sha256:555", State: "exited", Created: at(1), Started: at(2), Finished: at(3), HasExitCode: true},
	},
	Counts: map[string]store.Counts{"api": {Starts: 1}, "solo": {Starts: 1, Deaths: 1}},
	Status: store.Status{
		Up:     true,
		Daemon: store.DaemonInfo{Version: "4.3.1", APIVersion: "1.41", OS: "linux", Arch: "amd64", KernelVersion: "6.1.0", Flavor: store.FlavorPodman},
	},
}

// TestContainersJSONMatchesGolden compares GET /api/containers with
// testdata/<name>.json (written anew with -update), indented there for the
// reader.
func TestContainersJSONMatchesGolden(t *testing.T) {
	for _, tt := range []struct {
		name   string
		snap   store.Snapshot
		labels []string
	}{
		{name: "mixed", snap: mixed},
		{name: "mixed_labels_allowlist", snap: mixed, labels: []string{"com.example.team"}},
		{name: "mixed_labels_all", snap: mixed, labels: []string{"*"}},
		{name: "daemon_down_at_start", snap: store.Snapshot{}},
		{name: "podman", snap: podman},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := New(newFakeSource(tt.snap), Config{Labels: tt.labels})
			rec := httptest.NewRecorder()
			h.ServeContainers(rec, httptest.NewRequest(http.MethodGet, ContainersPath, nil))
			if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json" {
				t.Fatalf("status %d, Content-Type %q", rec.Code, rec.Header().Get("Content-Type"))
			}
			var got bytes.Buffer
			if err := json.Indent(&got, rec.Body.Bytes(), "", "  "); err != nil {
				t.Fatalf("not JSON: %v\n%s", err, rec.Body)
			}
			golden := filepath.Join("testdata", tt.name+".json")
			if *update {
				if err := os.WriteFile(golden, got.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Bytes(), want) {
				t.Errorf("GET %s differs from %s (-update rewrites it):\n%s", ContainersPath, golden, got.String())
			}
		})
	}
}

func TestChangesBetweenSnapshots(t *testing.T) {
	web := &store.Container{ID: "w", Name: "web", State: "running", Labels: map[string]string{"team": "core"}}
	db := &store.Container{ID: "d", Name: "db", State: "running"}
	webExited := ptr(*web)
	webExited.State, webExited.ExitCode, webExited.HasExitCode = "exited", 1, true
	webNewPid := ptr(*web)
	webNewPid.Pid = 99 // the API does not show it
	webRelabelled := ptr(*web)
	webRelabelled.Labels = map[string]string{"team": "core", "hidden": "x"}
	api := &store.Container{ID: "a", Name: "api", State: "created"}
	base := store.Snapshot{
		Containers: []*store.Container{web, db},
		Counts:     map[string]store.Counts{"web": {Starts: 1}, "db": {Starts: 1}},
		Status:     store.Status{Up: true},
	}
	with := func(f func(s *store.Snapshot)) store.Snapshot {
		s := base
		s.Containers = slices.Clone(base.Containers)
		s.Counts = map[string]store.Counts{"web": {Starts: 1}, "db": {Starts: 1}}
		f(&s)
		return s
	}
	for _, tt := range []struct {
		name                   string
		next                   store.Snapshot
		added, changed, remove []string
		status                 bool
	}{
		{name: "unchanged", next: base},
		{name: "unchanged in a new order", next: with(func(s *store.Snapshot) { slices.Reverse(s.Containers) })},
		{name: "added", next: with(func(s *store.Snapshot) { s.Containers = append(s.Containers, api) }), added: []string{"a"}},
		{name: "removed", next: with(func(s *store.Snapshot) { s.Containers = s.Containers[:1] }), remove: []string{"d"}},
		{name: "changed", next: with(func(s *store.Snapshot) { s.Containers[0] = webExited }), changed: []string{"w"}},
		{name: "counts alone changed", next: with(func(s *store.Snapshot) { s.Counts["db"] = store.Counts{Starts: 1, Deaths: 1} }), changed: []string{"d"}},
		{name: "new pointer, nothing shown changed", next: with(func(s *store.Snapshot) { s.Containers[0] = webNewPid })},
		{name: "a label outside the allowlist changed", next: with(func(s *store.Snapshot) { s.Containers[0] = webRelabelled })},
		{name: "status changed", next: with(func(s *store.Snapshot) { s.Status.Up = false }), status: true},
		{
			name: "all at once",
			next: with(func(s *store.Snapshot) {
				s.Containers = []*store.Container{api, webExited}
				s.Status.LastEvent = at(1)
			}),
			added: []string{"a"}, changed: []string{"w"}, remove: []string{"d"}, status: true,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			allow := collector.NewLabelAllowlist([]string{"team"})
			prev, _ := view{}.advance(base, allow)
			next, cs := prev.advance(tt.next, allow)
			ids := func(es []*entry) []string {
				var out []string
				for _, e := range es {
					out = append(out, e.c.ID)
				}
				return out
			}
			if got := ids(cs.added); !slices.Equal(got, tt.added) {
				t.Errorf("added %q, want %q", got, tt.added)
			}
			if got := ids(cs.changed); !slices.Equal(got, tt.changed) {
				t.Errorf("changed %q, want %q", got, tt.changed)
			}
			if !slices.Equal(cs.removed, tt.remove) {
				t.Errorf("removed %q, want %q", cs.removed, tt.remove)
			}
			if (cs.status != nil) != tt.status {
				t.Errorf("status in the changes: %s, want it: %v", cs.status, tt.status)
			}
			if cs.empty() != (tt.added == nil && tt.changed == nil && tt.remove == nil && !tt.status) {
				t.Errorf("empty() = %v", cs.empty())
			}
			// Whatever changed, the next view shows the next snapshot.
			if got, want := next.document(), marshal(snapshotOf(tt.next, allow)); !bytes.Equal(got, want) {
				t.Errorf("the next view is\n%s\nwant\n%s", got, want)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// TestChangesMessageFormat pins the wire format of both events.
func TestChangesMessageFormat(t *testing.T) {
	a := &store.Container{ID: "a", Name: "a", State: "running"}
	b := &store.Container{ID: "b", Name: "b", State: "exited"}
	v0, _ := view{}.advance(store.Snapshot{Containers: []*store.Container{a}}, collector.LabelAllowlist{})
	if got, want := string(v0.message()), "retry: 3000\nevent: snapshot\n"+
		`data: {"containers":[{"id":"a","name":"a","image":"","image_id":"","state":"running","restart_count":0,"oom_killed":false,"counts":{"starts":0,"deaths":0,"oom_events":0,"destroys":0}}],"status":{"up":false}}`+"\n\n"; got != want {
		t.Errorf("snapshot message\n%q\nwant\n%q", got, want)
	}
	_, cs := v0.advance(store.Snapshot{Containers: []*store.Container{b}, Status: store.Status{Up: true}}, collector.LabelAllowlist{})
	if got, want := string(cs.message()), "event: changes\n"+
		`data: {"added":[{"id":"b","name":"b","image":"","image_id":"","state":"exited","restart_count":0,"oom_killed":false,"counts":{"starts":0,"deaths":0,"oom_events":0,"destroys":0}}],"removed":["a"],"status":{"up":true}}`+"\n\n"; got != want {
		t.Errorf("changes message\n%q\nwant\n%q", got, want)
	}
}

// TestLabelsOutsideTheAllowlistNeverShow looks for a label that
// --container.labels does not allow in every place the live view shows:
// the JSON, both kinds of events and the page.
func TestLabelsOutsideTheAllowlistNeverShow(t *testing.T) {
	for _, labels := range [][]string{nil, {"com.example.team"}} {
		t.Run(strings.Join(labels, ","), func(t *testing.T) {
			src := newFakeSource(mixed)
			h := New(src, Config{Labels: labels, Coalesce: time.Millisecond})
			running(t, h, src)
			srv := serve(t, h)
			stream, _ := openStream(t, srv.URL+EventsPath)
			var seen []string
			seen = append(seen, stream.next().Data)

			// A new container with the same secret, and the old one changed.
			next := mixed
			next.Containers = slices.Clone(mixed.Containers)
			changed := *mixed.Containers[0]
			changed.RestartCount++
			next.Containers[0] = &changed
			next.Containers = append(next.Containers, &store.Container{ID: "ggg7", Name: "new", State: "created",
				Labels: map[string]string{"com.example.secret": "hunter2", "com.example.team": "ops"}})
			src.set(next)
			seen = append(seen, stream.next().Data)
			for _, path := range []string{ContainersPath, "/"} {
				seen = append(seen, get(t, srv.URL+path))
			}
			for i, s := range seen {
				for _, secret := range []string{"hunter2", "com.example.secret"} {
					if strings.Contains(s, secret) {
						t.Errorf("%d: shows %q, which the allowlist %q leaves out:\n%s", i, secret, labels, s)
					}
				}
				if shown := strings.Contains(s, `"com.example.team"`); i < 3 && shown != (labels != nil) {
					t.Errorf("%d: shows the allowed label: %v, want %v:\n%s", i, shown, labels != nil, s)
				}
			}
		})
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, body)
	}
	return string(body)
}
