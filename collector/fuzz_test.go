package collector

import (
	"bytes"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/docker-exporter/docker_exporter/store"
)

// FuzzLabelsGiveValidExposition renders two containers whose names, label
// keys and values, image, event kind and daemon version are arbitrary
// bytes, with --container.labels=*. What a scrape serves must parse back
// with expfmt (names checked with the strict legacy rules), pass
// client_golang's consistency checks through a Gatherers (valid names and
// label names, valid UTF-8 values, no series twice: what a pedantic
// registry checks of gathered metrics), render the same bytes twice (the
// cache), and carry each name and label value back as sent, made valid
// UTF-8.
func FuzzLabelsGiveValidExposition(f *testing.F) {
	f.Add("web", "db", "com.example.team", "core", "com.example-team", "clash", "container", "die", int64(1))
	f.Add("odd\xff", "", "ünï.cødé/key", "bad \xff\xfe value", "9starts-with-digit", "v\n\"q\"\\", "", "", int64(-1))
	f.Add("a", "a", "name", "x", "__name__", "y", "type\xff", "health_status: healthy", int64(0))
	f.Add("b\"\n\\", "b", "", "", "label_", "\x00", "network", "connect", int64(1<<40))
	f.Add("x\uFFFD", "y", "le", "+Inf", "quantile", "NaN", "#", "# HELP", int64(253402300800))
	// Names equal once made valid UTF-8 were once served twice.
	f.Add("x\xff", "x\xfe", "k", "v", "k2", "v2", "container", "start", int64(1))
	f.Fuzz(func(t *testing.T, name1, name2, key1, value1, key2, value2, evType, evAction string, sec int64) {
		valid := func(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }
		when := time.Unix(sec%(1<<35), 0).UTC()
		c1 := &store.Container{
			ID: "id1" + name1, Name: name1, Image: value1, ImageID: value2,
			Labels: map[string]string{key1: value1, key2: value2, "com.docker.compose.project": value2},
			State:  "running", Health: "healthy", FailingStreak: len(value1), RestartCount: -len(key1),
			ExitCode: -len(value2), HasExitCode: true, Created: when, Started: when, Finished: when.Add(-time.Second),
		}
		c2 := &store.Container{ID: "id2", Name: name2, Labels: map[string]string{key2: value1}, State: "exited", Created: when}
		events := map[store.EventKind]uint64{{Type: "container", Action: "die"}: 2}
		events[store.EventKind{Type: evType, Action: evAction}]++
		snap := store.Snapshot{
			Containers: []*store.Container{c1, c2},
			Counts: map[string]store.Counts{
				name1: {Starts: uint64(len(name1)), Deaths: 1}, name2: {OOMs: 1 << 60}, value1: {Destroys: 1},
			},
			Events: events,
			Status: store.Status{
				Up: true, Daemon: store.DaemonInfo{Version: value1, APIVersion: value2, OS: key1, Arch: key2, KernelVersion: name1},
				LastEvent: when, LastSync: when, Reconnects: 1, Syncs: 2,
			},
		}
		x := New(fixedSource(snap), Config{Labels: []string{"*"}})

		var first, second bytes.Buffer
		if _, err := x.WriteTo(&first); err != nil {
			t.Fatal(err)
		}
		if _, err := x.WriteTo(&second); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(first.Bytes(), second.Bytes()) {
			t.Fatalf("two renders of one snapshot differ:\n%s\n---\n%s", first.Bytes(), second.Bytes())
		}
		parser := expfmt.NewTextParser(model.LegacyValidation)
		fams, err := parser.TextToMetricFamilies(bytes.NewReader(first.Bytes()))
		if err != nil {
			t.Fatalf("the exposition does not parse: %v\n%s", err, first.Bytes())
		}
		if _, err := (prometheus.Gatherers{x}).Gather(); err != nil {
			t.Fatalf("client_golang rejects the exposition: %v\n%s", err, first.Bytes())
		}

		// Each name and value comes back as sent, made valid UTF-8.
		wantNames := map[string]bool{valid(name1): true, valid(name2): true}
		if got := labelValues(fams["docker_container_info"], "name"); !maps.Equal(got, wantNames) {
			t.Errorf("docker_container_info names %q, want %q", slices.Collect(maps.Keys(got)), slices.Collect(maps.Keys(wantNames)))
		}
		wantCounted := map[string]bool{valid(name1): true, valid(name2): true, valid(value1): true}
		if got := labelValues(fams["docker_container_deaths_total"], "name"); !maps.Equal(got, wantCounted) {
			t.Errorf("docker_container_deaths_total names %q, want %q", slices.Collect(maps.Keys(got)), slices.Collect(maps.Keys(wantCounted)))
		}
		if got := labelValues(fams["docker_container_info"], "image"); !got[valid(value1)] {
			t.Errorf("docker_container_info lacks image %q: %q", valid(value1), slices.Collect(maps.Keys(got)))
		}
		kinds := make(map[[2]string]bool)
		for _, m := range fams["docker_events_total"].GetMetric() {
			kinds[[2]string{labelValue(m, "type"), labelValue(m, "action")}] = true
		}
		if !kinds[[2]string{valid(evType), valid(evAction)}] || !kinds[[2]string{"container", "die"}] {
			t.Errorf("docker_events_total kinds %v", kinds)
		}
		labels := fams["docker_container_labels"].GetMetric()
		if len(labels) != len(wantNames) {
			t.Fatalf("%d docker_container_labels series for %d containers", len(labels), len(wantNames))
		}
		sent := map[string]bool{"": true, valid(value1): true, valid(value2): true}
		for _, m := range labels {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "name" {
					continue
				}
				if !labelName.MatchString(lp.GetName()) || !sent[lp.GetValue()] {
					t.Errorf("docker_container_labels has %s=%q, not a label_ name with a value sent", lp.GetName(), lp.GetValue())
				}
			}
		}
	})
}

var labelName = regexp.MustCompile(`^label_[a-zA-Z0-9_]*$`)

func labelValue(m *dto.Metric, name string) string {
	for _, lp := range m.GetLabel() {
		if lp.GetName() == name {
			return lp.GetValue()
		}
	}
	return ""
}

func labelValues(f *dto.MetricFamily, name string) map[string]bool {
	out := make(map[string]bool)
	for _, m := range f.GetMetric() {
		out[labelValue(m, name)] = true
	}
	return out
}
