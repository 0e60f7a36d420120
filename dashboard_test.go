package main

// The Grafana dashboard in examples/grafana, checked against the real thing:
// the built exporter watching a private dockerd with containers in mixed
// states, scraped by Debian's Prometheus, and every panel's query run through
// Prometheus's HTTP API the way Grafana would run it.

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/docker-exporter/docker_exporter/internal/dockercli"
	"github.com/docker-exporter/docker_exporter/internal/promtest"
	"github.com/docker-exporter/docker_exporter/internal/testbed"
	"github.com/docker-exporter/docker_exporter/internal/testdaemon"
	"github.com/docker-exporter/docker_exporter/internal/wait"
)

const dashboardPath = "examples/grafana/dashboard.json"

// dashboardJSON is the part of a Grafana dashboard the test reads.
type dashboardJSON struct {
	Panels     []dashboardPanel `json:"panels"`
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query string `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

type dashboardPanel struct {
	Title   string `json:"title"`
	Type    string `json:"type"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
	FieldConfig struct {
		Defaults struct {
			Mappings []struct {
				Type    string `json:"type"`
				Options map[string]struct {
					Text string `json:"text"`
				} `json:"options"`
			} `json:"mappings"`
		} `json:"defaults"`
	} `json:"fieldConfig"`
	// A collapsed row holds its panels; an open row is followed by them.
	Panels []dashboardPanel `json:"panels"`
}

// loadDashboard reads the committed dashboard and returns its panels that
// have queries, rows' nested panels included, in order.
func loadDashboard(tb testing.TB) (dashboardJSON, []dashboardPanel) {
	tb.Helper()
	raw, err := os.ReadFile(dashboardPath)
	if err != nil {
		tb.Fatal(err)
	}
	var d dashboardJSON
	if err := json.Unmarshal(raw, &d); err != nil {
		tb.Fatalf("%s: %v", dashboardPath, err)
	}
	var panels []dashboardPanel
	var walk func([]dashboardPanel)
	walk = func(ps []dashboardPanel) {
		for _, p := range ps {
			if len(p.Targets) > 0 {
				panels = append(panels, p)
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return d, panels
}

// valueText is the panel's value mapping: "2" -> "running".
func (p dashboardPanel) valueText() map[string]string {
	m := make(map[string]string)
	for _, vm := range p.FieldConfig.Defaults.Mappings {
		if vm.Type != "value" {
			continue
		}
		for v, r := range vm.Options {
			m[v] = r.Text
		}
	}
	return m
}

var dashboardVariable = regexp.MustCompile(`\$(\w+)|\$\{(\w+)\}`)

// expandVariables substitutes Grafana's variables in expr as Grafana would
// for one selection. A variable the selection does not know is an error: a
// typo in the dashboard, or ${datasource} where no query should have it.
func expandVariables(expr string, vars map[string]string) (string, error) {
	var unknown []string
	out := dashboardVariable.ReplaceAllStringFunc(expr, func(m string) string {
		sub := dashboardVariable.FindStringSubmatch(m)
		name := sub[1] + sub[2]
		v, ok := vars[name]
		if !ok {
			unknown = append(unknown, m)
			return m
		}
		return v
	})
	if len(unknown) > 0 {
		return "", fmt.Errorf("unknown variables %q", unknown)
	}
	return out, nil
}

// Grafana's built-in interval variables, as a 1s-scrape Prometheus and a
// short dashboard range would make them.
var builtinVariables = map[string]string{
	"__rate_interval": "1m",
	"__range":         "5m",
	"__interval":      "15s",
}

// selection is one choice of the dashboard's variables and what its panels
// must then show.
type selection struct {
	desc           string
	composeProject string // value of $compose_project
	name           string // value of $name
	// nameOptions are the values the name variable must offer.
	nameOptions []string
	// names are the only containers whose series the per-container panels
	// may show.
	names []string
	// every says each query of every panel must return a series.
	every bool
	// checks are per panel title.
	checks map[string]panelCheck
}

func (s selection) vars() map[string]string {
	v := map[string]string{"compose_project": s.composeProject, "name": s.name}
	for k, b := range builtinVariables {
		v[k] = b
	}
	return v
}

// formatSamples shows a query's result in a failure message.
func formatSamples(samples []promtest.Sample) string {
	var lines []string
	for _, s := range samples {
		keys := make([]string, 0, len(s.Metric))
		for k := range s.Metric {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var b strings.Builder
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%s=%q", k, s.Metric[k])
		}
		fmt.Fprintf(&b, "} %g", s.Value)
		lines = append(lines, b.String())
	}
	return "[" + strings.Join(lines, " ") + "]"
}

// panelResult is what a panel's queries returned, one list per target.
type panelResult struct {
	panel   dashboardPanel
	targets [][]promtest.Sample
}

func (r panelResult) all() []promtest.Sample {
	var out []promtest.Sample
	for _, t := range r.targets {
		out = append(out, t...)
	}
	return out
}

// panelCheck returns "" when r is as the scenario wants it, else what is
// missing.
type panelCheck func(r panelResult) string

// noData wants every query of the panel to return nothing.
func noData(r panelResult) string {
	if s := r.all(); len(s) > 0 {
		return "want no series, got " + formatSamples(s)
	}
	return ""
}

// total wants the panel's one series to have a value in [lo, hi].
func total(lo, hi float64) panelCheck {
	return func(r panelResult) string {
		s := r.all()
		if len(s) != 1 || s[0].Value < lo || s[0].Value > hi {
			return fmt.Sprintf("want one series with a value in [%g, %g], got %s", lo, hi, formatSamples(s))
		}
		return ""
	}
}

// shows wants one series per named container whose value the panel's value
// mapping shows as the given text, e.g. "shop-web" -> "running".
func shows(want map[string]string) panelCheck {
	return func(r panelResult) string {
		text := r.panel.valueText()
		got := make(map[string][]string)
		for _, s := range r.all() {
			got[s.Metric["name"]] = append(got[s.Metric["name"]], text[fmt.Sprint(s.Value)])
		}
		var bad []string
		for name, w := range want {
			if g := got[name]; len(g) != 1 || g[0] != w {
				bad = append(bad, fmt.Sprintf("%s shows %q, want %q", name, g, w))
			}
		}
		if len(bad) > 0 {
			sort.Strings(bad)
			return strings.Join(bad, "; ") + " (series " + formatSamples(r.all()) + ")"
		}
		return ""
	}
}

// hasNames wants series for each of the named containers.
func hasNames(names ...string) panelCheck {
	return func(r panelResult) string {
		var missing []string
		for _, n := range names {
			if !slices.ContainsFunc(r.all(), func(s promtest.Sample) bool { return s.Metric["name"] == n }) {
				missing = append(missing, n)
			}
		}
		if len(missing) > 0 {
			return fmt.Sprintf("no series for %q in %s", missing, formatSamples(r.all()))
		}
		return ""
	}
}

// onlyNames wants no series but those of names.
func onlyNames(names ...string) panelCheck {
	return func(r panelResult) string {
		for _, s := range r.all() {
			if !slices.Contains(names, s.Metric["name"]) {
				return fmt.Sprintf("a series of %q, outside the selection %q, in %s", s.Metric["name"], names, formatSamples(r.all()))
			}
		}
		return ""
	}
}

// projectSeries wants a series with a value above 0 for the compose project.
func projectSeries(project string) panelCheck {
	return func(r panelResult) string {
		if !slices.ContainsFunc(r.all(), func(s promtest.Sample) bool { return s.Metric["compose_project"] == project && s.Value > 0 }) {
			return fmt.Sprintf("no series above 0 for compose project %q in %s", project, formatSamples(r.all()))
		}
		return ""
	}
}

// positiveFor wants a series with a value above 0 for the container.
func positiveFor(name string) panelCheck {
	return func(r panelResult) string {
		if !slices.ContainsFunc(r.all(), func(s promtest.Sample) bool { return s.Metric["name"] == name && s.Value > 0 }) {
			return fmt.Sprintf("no series above 0 for %q in %s", name, formatSamples(r.all()))
		}
		return ""
	}
}

func TestDashboardQueriesRunAgainstRealPrometheus(t *testing.T) {
	t.Parallel()
	testdaemon.ForEachEngine(t, dashboardQueriesRunAgainstRealPrometheus)
}

func dashboardQueriesRunAgainstRealPrometheus(t *testing.T, eng testdaemon.Engine) {
	t.Parallel()
	d, panels := loadDashboard(t)
	if len(panels) == 0 {
		t.Fatalf("%s: no panel with a query", dashboardPath)
	}

	b := testbed.Start(t, eng)
	daemon, img := b.Daemon, b.Image
	e := b.Exporter(t)

	// The scenario: a compose project "shop" with a running and an unhealthy
	// container, and two containers outside any project, one exited with an
	// error, one in a restart loop.
	compose := func(service string) []string {
		return []string{"--label", "com.docker.compose.project=shop", "--label", "com.docker.compose.service=" + service}
	}
	dockercli.Run(t, daemon, "shop-web", append(compose("web"), img, "sleep", "1000")...)
	dockercli.Run(t, daemon, "shop-sick", append(compose("sick"),
		"--health-cmd", "false", "--health-interval", "1s", "--health-retries", "1", img, "sleep", "1000")...)
	dockercli.Run(t, daemon, "crashed", img, "sh", "-c", "exit 3")
	dockercli.Run(t, daemon, "loop", "--restart=always", img, "sh", "-c", "exit 1")
	shop := []string{"shop-sick", "shop-web"}
	everyone := []string{"crashed", "loop", "shop-sick", "shop-web"}

	target := strings.TrimSuffix(strings.TrimPrefix(e.URL, "http://"), "/metrics")
	prom := promtest.StartPrometheus(t, fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: docker
    static_configs:
      - targets: [%q]
`, target), nil)
	prom.WaitTargetsUp(t, 1)

	selections := []selection{{
		desc:           "everything",
		composeProject: ".*", name: ".*",
		nameOptions: everyone,
		names:       everyone,
		every:       true,
		checks: map[string]panelCheck{
			"Running":           total(2, 3), // loop runs now and then
			"Exited":            total(1, 2),
			"Unhealthy":         total(1, 1),
			"Restarts in range": total(1, 1e9),
			"Deaths in range":   total(1, 1e9),
			"State":             shows(map[string]string{"shop-web": "running", "shop-sick": "running", "crashed": "exited"}),
			"Health":            shows(map[string]string{"shop-sick": "unhealthy"}),
			"Restarts":          positiveFor("loop"),
			"Deaths and OOM kills": func(r panelResult) string {
				return cmp.Or(positiveFor("loop")(r), hasNames(everyone...)(r))
			},
			"Health check failing streak": positiveFor("shop-sick"),
			"Memory per container":        positiveFor("shop-web"),
			"CPU per container":           hasNames("shop-web", "shop-sick"),
			"Memory per compose project":  projectSeries("shop"),
		},
	}, {
		desc:           "compose project shop",
		composeProject: "shop", name: ".*",
		nameOptions: shop,
		names:       shop,
		checks: map[string]panelCheck{
			"Running":              total(2, 2),
			"Exited":               noData,
			"Unhealthy":            total(1, 1),
			"State":                shows(map[string]string{"shop-web": "running", "shop-sick": "running"}),
			"Restarts in range":    total(0, 0),
			"Restarts":             hasNames(shop...),
			"Memory per container": func(r panelResult) string { return cmp.Or(hasNames(shop...)(r), onlyNames(shop...)(r)) },
		},
	}, {
		desc:           "container loop",
		composeProject: ".*", name: "loop",
		nameOptions: everyone, // $name does not narrow its own list
		names:       []string{"loop"},
		checks: map[string]panelCheck{
			"Unhealthy":         noData,
			"Health":            noData,
			"Restarts in range": total(1, 1e9),
			"Restarts":          positiveFor("loop"),
		},
	}}

	// Every title a check names must exist, or a renamed panel would go
	// unchecked.
	for _, sel := range selections {
		for title := range sel.checks {
			if !slices.ContainsFunc(panels, func(p dashboardPanel) bool { return p.Title == title }) {
				t.Fatalf("selection %s checks panel %q, which %s does not have", sel.desc, title, dashboardPath)
			}
		}
	}

	for _, sel := range selections {
		t.Run(strings.ReplaceAll(sel.desc, " ", "_"), func(t *testing.T) {
			checkVariableQueries(t, prom.URL, d, sel)
			checkPanels(t, prom, panels, sel)
		})
	}
}

// labelValuesQuery is Grafana's label_values(selector, label).
var labelValuesQuery = regexp.MustCompile(`^label_values\((.+),\s*(\w+)\)$`)

// checkVariableQueries runs each label_values variable the way Grafana's
// Prometheus data source does, through the label values API with the
// selector as match[], and compares the values with the scenario's.
func checkVariableQueries(t *testing.T, promURL string, d dashboardJSON, sel selection) {
	want := map[string][]string{"compose_project": {"shop"}, "name": sel.nameOptions}
	seen := make(map[string]bool)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		seen[v.Name] = true
		q, err := expandVariables(v.Query, sel.vars())
		if err != nil {
			t.Errorf("variable %s: %v", v.Name, err)
			continue
		}
		m := labelValuesQuery.FindStringSubmatch(q)
		if m == nil {
			t.Errorf("variable %s: query %q is not label_values(selector, label)", v.Name, q)
			continue
		}
		got, err := labelValues(promURL, m[2], m[1])
		if err != nil {
			t.Errorf("variable %s: %v", v.Name, err)
			continue
		}
		w, ok := want[v.Name]
		if !ok {
			t.Errorf("variable %s: the scenario does not know it", v.Name)
			continue
		}
		if !slices.Equal(got, w) {
			t.Errorf("variable %s: %s gives %q, want %q", v.Name, q, got, w)
		}
	}
	for name := range want {
		if !seen[name] {
			t.Errorf("%s has no query variable %s", dashboardPath, name)
		}
	}
}

// labelValues asks Prometheus for the values of label on the series that
// match selector, sorted.
func labelValues(promURL, label, selector string) ([]string, error) {
	u := promURL + "/api/v1/label/" + url.PathEscape(label) + "/values?" +
		url.Values{"match[]": {selector}}.Encode()
	resp, err := http.Get(u)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	var r struct {
		Status string   `json:"status"`
		Error  string   `json:"error"`
		Data   []string `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("GET %s: %s: %v", u, resp.Status, err)
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("GET %s: %s: %s", u, resp.Status, r.Error)
	}
	sort.Strings(r.Data)
	return r.Data, nil
}

// dashboardWait bounds the wait for every panel to show what the scenario
// wants: increase() and rate() need two scrapes in their window, a restart
// loop and a failing health check need a few seconds to show.
const dashboardWait = 90 * time.Second

// checkPanels runs every panel's queries until each shows what sel wants. A
// query error fails at once; a panel that still lacks its data at the
// deadline fails with what it last returned.
func checkPanels(t *testing.T, prom *promtest.Prometheus, panels []dashboardPanel, sel selection) {
	var problems []string
	what := fmt.Sprintf("every panel to show what $compose_project=%q and $name=%q want", sel.composeProject, sel.name)
	wait.Every(t, dashboardWait, 250*time.Millisecond, what, func() bool {
		problems = nil
		for _, p := range panels {
			r := panelResult{panel: p}
			for _, tg := range p.Targets {
				expr, err := expandVariables(tg.Expr, sel.vars())
				if err != nil {
					t.Fatalf("panel %q query %s: %v", p.Title, tg.RefID, err)
				}
				series, err := prom.Query(t, expr)
				if err != nil {
					t.Fatalf("panel %q query %s fails: %v\n%s", p.Title, tg.RefID, err, expr)
				}
				for _, s := range series {
					if n, ok := s.Metric["name"]; ok && !slices.Contains(sel.names, n) {
						t.Fatalf("panel %q query %s shows container %q, outside the selection %q:\n%s\n%s",
							p.Title, tg.RefID, n, sel.names, expr, formatSamples(series))
					}
				}
				if sel.every && len(series) == 0 {
					problems = append(problems, fmt.Sprintf("panel %q query %s: no series\n%s", p.Title, tg.RefID, expr))
				}
				r.targets = append(r.targets, series)
			}
			if check := sel.checks[p.Title]; check != nil {
				if msg := check(r); msg != "" {
					problems = append(problems, fmt.Sprintf("panel %q: %s", p.Title, msg))
				}
			}
		}
		return len(problems) == 0
	}, func() string { return strings.Join(problems, "\n") })
}
