// Package scrape fetches, parses and queries the exporter's /metrics: the
// one way the integration tests read what the exporter says.
package scrape

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// ContainerStates are the states docker_container_state is one-hot over.
var ContainerStates = []string{"created", "running", "paused", "restarting", "removing", "exited", "dead"}

// Scrape is one parsed /metrics response.
type Scrape struct {
	Raw      []byte
	Families map[string]*dto.MetricFamily
	// tb, set by MustParse, is failed by a query that matches several
	// series where it wants one (a mistake in the test) and by Must.
	tb testing.TB
}

// Series is one sample of a scrape.
type Series struct {
	Labels map[string]string
	Value  float64
}

// Parse parses body as the Prometheus text format.
func Parse(body []byte) (*Scrape, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("parse: %w\n%s", err, body)
	}
	return &Scrape{Raw: body, Families: fams}, nil
}

// MustParse is Parse, failing tb on an error; the Scrape fails tb too where
// a query goes wrong (see Value and Must).
func MustParse(tb testing.TB, body []byte) *Scrape {
	tb.Helper()
	s, err := Parse(body)
	if err != nil {
		tb.Fatalf("scrape: %v", err)
	}
	s.tb = tb
	return s
}

// Check is what every scrape must satisfy, whatever the daemon holds: no
// series twice; one docker_up, 0 or 1; one docker_container_info per
// container name, each with a one-hot docker_container_state; and the
// per-state counts summing to the containers shown.
func (s *Scrape) Check() error {
	for name, f := range s.Families {
		seen := make(map[string]bool, len(f.GetMetric()))
		for _, m := range f.GetMetric() {
			pairs := make([]string, 0, len(m.GetLabel()))
			for _, lp := range m.GetLabel() {
				pairs = append(pairs, lp.GetName()+"="+lp.GetValue())
			}
			slices.Sort(pairs)
			key := strings.Join(pairs, "\xff")
			if seen[key] {
				return fmt.Errorf("%s{%s} twice", name, strings.Join(pairs, ","))
			}
			seen[key] = true
		}
	}
	if up := s.Families["docker_up"].GetMetric(); len(up) != 1 || (value(up[0]) != 0 && value(up[0]) != 1) {
		return fmt.Errorf("docker_up: %v", up)
	}
	info := s.ByName("docker_container_info")
	if n := s.Count("docker_container_info"); n != len(info) {
		return fmt.Errorf("%d docker_container_info series for %d names", n, len(info))
	}
	if sum := s.Sum("docker_containers"); sum != float64(len(info)) {
		return fmt.Errorf("docker_containers sums to %v, with %d docker_container_info series", sum, len(info))
	}
	hot := make(map[string]int)
	for _, m := range s.Families["docker_container_state"].GetMetric() {
		if value(m) == 1 {
			hot[label(m, "name")]++
		}
	}
	for name := range info {
		if hot[name] != 1 {
			return fmt.Errorf("container %q is in %d states", name, hot[name])
		}
	}
	return nil
}

// Find returns the series of metric whose labels include the given
// name/value pairs; a pair with value "" matches an absent label.
// Summaries and histograms (the Go runtime's, not ours) are left out.
func (s *Scrape) Find(metric string, kv ...string) []Series {
	if len(kv)%2 != 0 {
		panic(fmt.Sprintf("scrape: Find %s: odd label list %q", metric, kv))
	}
	var out []Series
next:
	for _, m := range s.Families[metric].GetMetric() {
		if m.Gauge == nil && m.Counter == nil && m.Untyped == nil {
			continue
		}
		for i := 0; i < len(kv); i += 2 {
			if label(m, kv[i]) != kv[i+1] {
				continue next
			}
		}
		labels := make(map[string]string, len(m.GetLabel()))
		for _, lp := range m.GetLabel() {
			labels[lp.GetName()] = lp.GetValue()
		}
		out = append(out, Series{labels, value(m)})
	}
	return out
}

// Value is the value of the one series of metric with the given labels;
// present is false if there is none. More than one is a mistake in the test:
// it fails the test of MustParse, and is absent otherwise.
func (s *Scrape) Value(metric string, kv ...string) (v float64, present bool) {
	found := s.Find(metric, kv...)
	switch len(found) {
	case 0:
		return 0, false
	case 1:
		return found[0].Value, true
	}
	if s.tb != nil {
		s.tb.Helper()
		s.tb.Fatalf("%s%q matches %d series, want at most one", metric, kv, len(found))
	}
	return 0, false
}

// Is says whether the series exists and has value want.
func (s *Scrape) Is(want float64, metric string, kv ...string) bool {
	v, ok := s.Value(metric, kv...)
	return ok && v == want
}

// AtLeast says whether the series exists and has at least min.
func (s *Scrape) AtLeast(min float64, metric string, kv ...string) bool {
	v, ok := s.Value(metric, kv...)
	return ok && v >= min
}

// Has says whether metric has a series with these labels.
func (s *Scrape) Has(metric string, kv ...string) bool { return len(s.Find(metric, kv...)) > 0 }

// Count is the number of series of family.
func (s *Scrape) Count(family string) int { return len(s.Families[family].GetMetric()) }

// Sum adds up the values of family's series.
func (s *Scrape) Sum(family string) float64 {
	var sum float64
	for _, m := range s.Families[family].GetMetric() {
		sum += value(m)
	}
	return sum
}

// ByName maps the "name" label of family's series to their values.
func (s *Scrape) ByName(family string) map[string]float64 {
	out := make(map[string]float64)
	for _, m := range s.Families[family].GetMetric() {
		out[label(m, "name")] = value(m)
	}
	return out
}

// Up says whether docker_up is 1.
func (s *Scrape) Up() bool { return s.Is(1, "docker_up") }

// InState says whether the container's one-hot state is state.
func (s *Scrape) InState(name, state string) bool {
	return s.Is(1, "docker_container_state", "name", name, "state", state)
}

// States maps each container name the scrape shows to its state.
func (s *Scrape) States() map[string]string {
	out := make(map[string]string)
	for _, m := range s.Families["docker_container_state"].GetMetric() {
		if value(m) == 1 {
			out[label(m, "name")] = label(m, "state")
		}
	}
	return out
}

// Named is the label text of a container's series, to pick its lines out.
func Named(name string) string { return `name="` + name + `"` }

// Lines returns the scrape's docker_* samples that contain any of show (all
// of them if show is empty), at most 200, for failure messages.
func (s *Scrape) Lines(show ...string) string {
	var out []string
	for l := range strings.SplitSeq(string(s.Raw), "\n") {
		if !strings.HasPrefix(l, "docker_") {
			continue
		}
		if len(show) == 0 || slices.ContainsFunc(show, func(sub string) bool { return strings.Contains(l, sub) }) {
			out = append(out, l)
		}
	}
	if len(out) > 200 {
		out = append(out[:200], fmt.Sprintf("... %d more lines", len(out)-200))
	}
	return strings.Join(out, "\n")
}

// Must fails the test of MustParse unless ok, showing the scrape's docker_*
// lines.
func (s *Scrape) Must(ok bool, format string, args ...any) {
	s.tb.Helper()
	if !ok {
		s.tb.Fatalf(format+"\nscrape:\n%s", append(args, s.Lines())...)
	}
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	}
	return m.GetUntyped().GetValue()
}

func label(m *dto.Metric, name string) string {
	for _, lp := range m.GetLabel() {
		if lp.GetName() == name {
			return lp.GetValue()
		}
	}
	return ""
}
