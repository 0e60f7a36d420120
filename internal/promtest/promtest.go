// Package promtest runs a real Prometheus and Alertmanager (Debian's
// prometheus and prometheus-alertmanager packages) for tests, each on a free
// loopback port with its data in a temporary directory, and reads their HTTP
// APIs: queries, targets, rule evaluations and alerts.
//
// A missing binary skips the test, or fails it when EnvRequire is "1" (as in
// CI). Every process is stopped in the test's cleanup, and its log is shown
// if the test failed.
package promtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker-exporter/docker_exporter/internal/freeport"
	"github.com/docker-exporter/docker_exporter/internal/logbuf"
)

// EnvRequire set to "1" (by .ci/run) makes a missing binary fail the test
// instead of skipping it. It is the variable testdaemon uses for dockerd.
const EnvRequire = "DOCKER_EXPORTER_REQUIRE_DOCKERD"

const (
	// startTimeout bounds the wait for /-/ready: a race-enabled test run on
	// a loaded CI machine is slow, and a fresh Prometheus replays no WAL.
	startTimeout = 60 * time.Second
	// stopTimeout is how long a process has to exit after SIGTERM.
	stopTimeout = 20 * time.Second
	// WaitTimeout bounds WaitTargetsUp and WaitRulesEvaluated.
	WaitTimeout  = 60 * time.Second
	pollInterval = 50 * time.Millisecond
	// bindAttempts: a free port found by listening and closing can be taken
	// by another process before ours binds it.
	bindAttempts = 3
)

// Sample is one element of an instant vector (or a scalar, with no Metric).
type Sample struct {
	Metric map[string]string
	Value  float64
}

// Series is one series of a range query's matrix.
type Series struct {
	Metric map[string]string
	Points []Point
}

// Point is one value of a Series.
type Point struct {
	T time.Time
	V float64
}

// Alert is an alert as Prometheus (/api/v1/alerts) or Alertmanager
// (/api/v2/alerts) reports it.
type Alert struct {
	Labels      map[string]string
	Annotations map[string]string
	// State: "pending" or "firing" from Prometheus; "active", "suppressed"
	// or "unprocessed" from Alertmanager.
	State string
	// ActiveAt: since when the expression has held (Prometheus), or the
	// alert's startsAt (Alertmanager).
	ActiveAt time.Time
	// Value is the expression's value at the last evaluation, as Prometheus
	// formats it (Prometheus only).
	Value string
	// InhibitedBy and SilencedBy list what suppresses it (Alertmanager only).
	InhibitedBy []string
	SilencedBy  []string
}

// Prometheus is a running Prometheus server.
type Prometheus struct {
	URL string // http://127.0.0.1:port

	client *http.Client
}

// StartPrometheus writes config (the full prometheus.yml text) and files
// (name -> content, e.g. rule files; names are relative to the config's
// directory, as rule_files resolves them) into a temporary directory, starts
// Prometheus on a free loopback port and waits until it is ready. It is
// stopped in tb's cleanup.
func StartPrometheus(tb testing.TB, config string, files map[string]string) *Prometheus {
	tb.Helper()
	bin := binary(tb, "apt-get install prometheus", "prometheus")
	dir := tb.TempDir()
	writeFile(tb, dir, "prometheus.yml", config)
	for name, content := range files {
		writeFile(tb, dir, name, content)
	}
	for attempt := 1; ; attempt++ {
		addr := freeport.Addr(tb)
		proc, portTaken := launch(tb, "prometheus", bin, dir, "http://"+addr+"/-/ready",
			"--config.file="+filepath.Join(dir, "prometheus.yml"),
			// A fresh TSDB per attempt: a process that lost the port race may
			// have left its own behind.
			"--storage.tsdb.path="+filepath.Join(dir, "data"+strconv.Itoa(attempt)),
			"--web.listen-address="+addr,
		)
		if !portTaken {
			return &Prometheus{URL: "http://" + addr, client: newClient(tb)}
		}
		if attempt == bindAttempts {
			tb.Fatalf("promtest: prometheus could not bind a free port %d times:\n%s", bindAttempts, proc.log)
		}
	}
}

// Query runs an instant query at the current time. A PromQL error (bad
// syntax, many-to-many matching, ...) is returned as an error; a scalar
// result is one Sample with an empty Metric; a range vector or string
// result is an error.
func (p *Prometheus) Query(tb testing.TB, expr string) ([]Sample, error) {
	tb.Helper()
	var data struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	if err := p.api(http.MethodPost, "/api/v1/query", url.Values{"query": {expr}}, &data); err != nil {
		return nil, fmt.Errorf("query %q: %w", expr, err)
	}
	switch data.ResultType {
	case "vector":
		var raw []struct {
			Metric map[string]string `json:"metric"`
			Value  pair              `json:"value"`
		}
		if err := json.Unmarshal(data.Result, &raw); err != nil {
			return nil, fmt.Errorf("query %q: vector: %w", expr, err)
		}
		out := make([]Sample, len(raw))
		for i, r := range raw {
			out[i] = Sample{Metric: nonNil(r.Metric), Value: r.Value.v}
		}
		return out, nil
	case "scalar":
		var v pair
		if err := json.Unmarshal(data.Result, &v); err != nil {
			return nil, fmt.Errorf("query %q: scalar: %w", expr, err)
		}
		return []Sample{{Metric: map[string]string{}, Value: v.v}}, nil
	}
	return nil, fmt.Errorf("query %q: result type %q, want vector or scalar", expr, data.ResultType)
}

// QueryRange runs a range query from start to end, one point per step, as
// a Grafana panel does.
func (p *Prometheus) QueryRange(tb testing.TB, expr string, start, end time.Time, step time.Duration) ([]Series, error) {
	tb.Helper()
	var data struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Metric map[string]string `json:"metric"`
			Values []pair            `json:"values"`
		} `json:"result"`
	}
	params := url.Values{
		"query": {expr},
		"start": {unixString(start)},
		"end":   {unixString(end)},
		"step":  {strconv.FormatFloat(step.Seconds(), 'f', -1, 64)},
	}
	if err := p.api(http.MethodPost, "/api/v1/query_range", params, &data); err != nil {
		return nil, fmt.Errorf("query_range %q: %w", expr, err)
	}
	if data.ResultType != "matrix" {
		return nil, fmt.Errorf("query_range %q: result type %q, want matrix", expr, data.ResultType)
	}
	out := make([]Series, len(data.Result))
	for i, r := range data.Result {
		s := Series{Metric: nonNil(r.Metric), Points: make([]Point, len(r.Values))}
		for j, v := range r.Values {
			s.Points[j] = Point{T: v.t, V: v.v}
		}
		out[i] = s
	}
	return out, nil
}

// Alerts returns the alerts that are pending or firing now.
func (p *Prometheus) Alerts(tb testing.TB) ([]Alert, error) {
	tb.Helper()
	var data struct {
		Alerts []struct {
			Labels      map[string]string `json:"labels"`
			Annotations map[string]string `json:"annotations"`
			State       string            `json:"state"`
			ActiveAt    time.Time         `json:"activeAt"`
			Value       string            `json:"value"`
		} `json:"alerts"`
	}
	if err := p.api(http.MethodGet, "/api/v1/alerts", nil, &data); err != nil {
		return nil, fmt.Errorf("alerts: %w", err)
	}
	out := make([]Alert, len(data.Alerts))
	for i, a := range data.Alerts {
		out[i] = Alert{Labels: nonNil(a.Labels), Annotations: nonNil(a.Annotations), State: a.State, ActiveAt: a.ActiveAt, Value: a.Value}
	}
	return out, nil
}

// target is one of /api/v1/targets' active targets.
type target struct {
	ScrapeURL string `json:"scrapeUrl"`
	Health    string `json:"health"`
	LastError string `json:"lastError"`
}

// WaitTargetsUp waits until Prometheus has exactly n active targets and has
// scraped each successfully; it fails the test after WaitTimeout.
func (p *Prometheus) WaitTargetsUp(tb testing.TB, n int) {
	tb.Helper()
	var last string
	ok := poll(WaitTimeout, func() bool {
		var data struct {
			ActiveTargets []target `json:"activeTargets"`
		}
		if err := p.api(http.MethodGet, "/api/v1/targets", url.Values{"state": {"active"}}, &data); err != nil {
			last = err.Error()
			return false
		}
		var lines []string
		up := 0
		for _, t := range data.ActiveTargets {
			lines = append(lines, fmt.Sprintf("%s health=%s lastError=%q", t.ScrapeURL, t.Health, t.LastError))
			if t.Health == "up" {
				up++
			}
		}
		last = fmt.Sprintf("%d active targets:\n%s", len(data.ActiveTargets), strings.Join(lines, "\n"))
		return len(data.ActiveTargets) == n && up == n
	})
	if !ok {
		tb.Fatalf("promtest: waited %v for %d targets up; last seen: %s", WaitTimeout, n, last)
	}
}

// WaitRulesEvaluated waits until every rule group has completed an
// evaluation that sees all data Prometheus had stored before after. A group
// evaluates at a timestamp aligned to its interval, up to one interval
// before it starts, so the evaluation must start at least one interval
// after after. It fails the test after WaitTimeout.
func (p *Prometheus) WaitRulesEvaluated(tb testing.TB, after time.Time) {
	tb.Helper()
	var last string
	ok := poll(WaitTimeout, func() bool {
		var data struct {
			Groups []struct {
				Name           string    `json:"name"`
				Interval       float64   `json:"interval"`
				LastEvaluation time.Time `json:"lastEvaluation"`
			} `json:"groups"`
		}
		if err := p.api(http.MethodGet, "/api/v1/rules", nil, &data); err != nil {
			last = err.Error()
			return false
		}
		if len(data.Groups) == 0 {
			last = "no rule groups"
			return false
		}
		var lines []string
		done := true
		for _, g := range data.Groups {
			interval := time.Duration(g.Interval * float64(time.Second))
			lines = append(lines, fmt.Sprintf("group %q (every %v) last evaluated at %v", g.Name, interval, g.LastEvaluation))
			if !g.LastEvaluation.After(after.Add(interval)) {
				done = false
			}
		}
		last = strings.Join(lines, "\n")
		return done
	})
	if !ok {
		tb.Fatalf("promtest: waited %v for every rule group to evaluate after %v:\n%s", WaitTimeout, after, last)
	}
}

// api calls a /api/v1 endpoint and decodes its data, turning an error
// response (such as a PromQL error) into an error.
func (p *Prometheus) api(method, path string, params url.Values, data any) error {
	var resp *http.Response
	var err error
	if method == http.MethodPost {
		resp, err = p.client.PostForm(p.URL+path, params)
	} else {
		u := p.URL + path
		if len(params) > 0 {
			u += "?" + params.Encode()
		}
		resp, err = p.client.Get(u)
	}
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	var env struct {
		Status    string          `json:"status"`
		Data      json.RawMessage `json:"data"`
		ErrorType string          `json:"errorType"`
		Error     string          `json:"error"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return fmt.Errorf("%s: %s: %s", path, resp.Status, bytes.TrimSpace(body))
	}
	if env.Status != "success" {
		return fmt.Errorf("%s: %s: %s", path, env.ErrorType, env.Error)
	}
	return json.Unmarshal(env.Data, data)
}

// Alertmanager is a running Alertmanager.
type Alertmanager struct {
	URL string // http://127.0.0.1:port

	client *http.Client
}

// StartAlertmanager writes config (the full alertmanager.yml text) into a
// temporary directory and starts a single Alertmanager (clustering off) on a
// free loopback port, waiting until it is ready. It is stopped in tb's
// cleanup.
func StartAlertmanager(tb testing.TB, config string) *Alertmanager {
	tb.Helper()
	bin := binary(tb, "apt-get install prometheus-alertmanager", "prometheus-alertmanager", "alertmanager")
	dir := tb.TempDir()
	writeFile(tb, dir, "alertmanager.yml", config)
	for attempt := 1; ; attempt++ {
		addr := freeport.Addr(tb)
		proc, portTaken := launch(tb, "alertmanager", bin, dir, "http://"+addr+"/-/ready",
			"--config.file="+filepath.Join(dir, "alertmanager.yml"),
			"--storage.path="+filepath.Join(dir, "data"+strconv.Itoa(attempt)),
			"--web.listen-address="+addr,
			"--cluster.listen-address=",
		)
		if !portTaken {
			return &Alertmanager{URL: "http://" + addr, client: newClient(tb)}
		}
		if attempt == bindAttempts {
			tb.Fatalf("promtest: alertmanager could not bind a free port %d times:\n%s", bindAttempts, proc.log)
		}
	}
}

// Alerts returns every alert Alertmanager holds: active, silenced and
// inhibited.
func (a *Alertmanager) Alerts(tb testing.TB) ([]Alert, error) {
	tb.Helper()
	resp, err := a.client.Get(a.URL + "/api/v2/alerts")
	if err != nil {
		return nil, fmt.Errorf("alertmanager alerts: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("alertmanager alerts: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("alertmanager alerts: %s: %s", resp.Status, bytes.TrimSpace(body))
	}
	var raw []struct {
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
		StartsAt    time.Time         `json:"startsAt"`
		Status      struct {
			State       string   `json:"state"`
			InhibitedBy []string `json:"inhibitedBy"`
			SilencedBy  []string `json:"silencedBy"`
		} `json:"status"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, fmt.Errorf("alertmanager alerts: %w: %s", err, body)
	}
	out := make([]Alert, len(raw))
	for i, r := range raw {
		out[i] = Alert{
			Labels: nonNil(r.Labels), Annotations: nonNil(r.Annotations),
			State: r.Status.State, ActiveAt: r.StartsAt,
			InhibitedBy: r.Status.InhibitedBy, SilencedBy: r.Status.SilencedBy,
		}
	}
	return out, nil
}

// Tool returns the path of a command-line tool such as promtool or amtool,
// skipping the test (failing it when EnvRequire is "1") if it is missing.
func Tool(tb testing.TB, name, install string) string {
	tb.Helper()
	return binary(tb, install, name)
}

// binary finds the first of names on PATH or in /usr/bin.
func binary(tb testing.TB, install string, names ...string) string {
	tb.Helper()
	for _, name := range names {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
		if p := filepath.Join("/usr/bin", name); isExecutable(p) {
			return p
		}
	}
	msg := fmt.Sprintf("promtest: %s not found (%s)", strings.Join(names, " or "), install)
	if os.Getenv(EnvRequire) == "1" {
		tb.Fatal(msg)
	}
	tb.Skip(msg + " (set " + EnvRequire + "=1 to fail instead)")
	return ""
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// writeFile writes content to name under dir; name must stay inside dir.
func writeFile(tb testing.TB, dir, name, content string) {
	tb.Helper()
	if !filepath.IsLocal(name) {
		tb.Fatalf("promtest: file name %q must be a relative path inside the config directory", name)
	}
	path := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		tb.Fatal(err)
	}
}

func newClient(tb testing.TB) *http.Client {
	c := &http.Client{Timeout: 10 * time.Second}
	tb.Cleanup(c.CloseIdleConnections)
	return c
}

// poll calls cond until it holds or timeout passes; it says which.
func poll(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(pollInterval)
	}
}

// pair is a [<unix seconds>, "<value>"] pair of the query API.
type pair struct {
	t time.Time
	v float64
}

func (p *pair) UnmarshalJSON(b []byte) error {
	var raw []json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	if len(raw) != 2 {
		return fmt.Errorf("sample pair %s: want [time, value]", b)
	}
	var ts float64
	if err := json.Unmarshal(raw[0], &ts); err != nil {
		return fmt.Errorf("sample time %s: %w", raw[0], err)
	}
	var s string
	if err := json.Unmarshal(raw[1], &s); err != nil {
		return fmt.Errorf("sample value %s: %w", raw[1], err)
	}
	v, err := strconv.ParseFloat(s, 64) // also "NaN", "+Inf", "-Inf"
	if err != nil {
		return fmt.Errorf("sample value %q: %w", s, err)
	}
	sec := int64(ts)
	p.t = time.Unix(sec, int64((ts-float64(sec))*1e9)).Round(time.Millisecond)
	p.v = v
	return nil
}

func unixString(t time.Time) string {
	return strconv.FormatFloat(float64(t.UnixMilli())/1e3, 'f', 3, 64)
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// process is a running server binary with its output captured.
type process struct {
	name    string
	cmd     *exec.Cmd
	log     *logbuf.Buffer
	exited  chan struct{} // closed once the process has exited; then waitErr is set
	waitErr error
	retired bool // lost the port race before serving, and was replaced
}

// launch starts bin in dir, registers its stop in tb's cleanup and waits
// until readyURL answers 200. portTaken reports a process that exited
// because its port was taken; any other failure to get ready fails the
// test.
func launch(tb testing.TB, name, bin, dir, readyURL string, args ...string) (p *process, portTaken bool) {
	tb.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	p = &process{name: name, cmd: cmd, log: &logbuf.Buffer{}, exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.log, p.log
	// If the test binary dies without its cleanups, the server goes too.
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		tb.Fatalf("promtest: start %s: %v", name, err)
	}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	tb.Cleanup(func() { p.stop(tb) })

	client := &http.Client{Timeout: 2 * time.Second}
	defer client.CloseIdleConnections()
	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case <-p.exited:
			if strings.Contains(p.log.String(), "address already in use") {
				p.retired = true
				return p, true
			}
			tb.Fatalf("promtest: %s exited before it was ready: %v\n%s", name, p.waitErr, p.log)
		default:
		}
		if resp, err := client.Get(readyURL); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p, false
			}
		}
		if time.Now().After(deadline) {
			tb.Fatalf("promtest: %s not ready at %s within %v\n%s", name, readyURL, startTimeout, p.log)
		}
		time.Sleep(pollInterval)
	}
}

// stop sends SIGTERM, waits, then SIGKILLs. A process that exited on its own
// during the test is an error. The log is shown if the test failed.
func (p *process) stop(tb testing.TB) {
	tb.Helper()
	select {
	case <-p.exited:
		if !p.retired {
			tb.Errorf("promtest: %s exited during the test: %v\n%s", p.name, p.waitErr, p.log)
		}
		return
	default:
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		tb.Logf("promtest: SIGTERM %s: %v", p.name, err)
	}
	select {
	case <-p.exited:
	case <-time.After(stopTimeout):
		p.cmd.Process.Kill()
		<-p.exited
		tb.Logf("promtest: %s still running %v after SIGTERM; killed", p.name, stopTimeout)
	}
	if tb.Failed() {
		tb.Logf("promtest: %s log:\n%s", p.name, p.log)
	}
}

// SortAlerts orders alerts by their label sets, for stable messages.
func SortAlerts(alerts []Alert) {
	sort.Slice(alerts, func(i, j int) bool { return labelString(alerts[i].Labels) < labelString(alerts[j].Labels) })
}

func labelString(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%s=%q", k, m[k])
	}
	b.WriteByte('}')
	return b.String()
}

// String formats an alert for failure messages.
func (a Alert) String() string {
	return fmt.Sprintf("%s %s", labelString(a.Labels), a.State)
}
