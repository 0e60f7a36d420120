package main

// The example alerting rules (examples/prometheus/alerts.yml): promtool's
// checks and unit tests, and an end-to-end run in which a real container's
// death goes from the exporter through a real Prometheus, evaluating the
// shipped rules, to a real Alertmanager, while its look-alikes stay silent.

import (
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v2"

	"github.com/docker-exporter/docker_exporter/internal/dockercli"
	"github.com/docker-exporter/docker_exporter/internal/promtest"
	"github.com/docker-exporter/docker_exporter/internal/testbed"
	"github.com/docker-exporter/docker_exporter/internal/testdaemon"
	"github.com/docker-exporter/docker_exporter/internal/wait"
)

const (
	alertRulesFile   = "examples/prometheus/alerts.yml"
	alertTestsFile   = "examples/prometheus/alerts_test.yml"
	promExampleFile  = "examples/prometheus/prometheus.yml"
	amExampleFile    = "examples/alertmanager/alertmanager.yml"
	alertWaitTimeout = 30 * time.Second
)

func TestAlertRulesAreValid(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		desc, tool, install string
		args                []string
	}{
		{"rules pass promtool check rules", "promtool", "apt-get install prometheus",
			[]string{"check", "rules", alertRulesFile}},
		{"rules pass their promtool unit tests", "promtool", "apt-get install prometheus",
			[]string{"test", "rules", alertTestsFile}},
		// Also checks the rule files it names, relative to itself.
		{"example prometheus.yml passes promtool check config", "promtool", "apt-get install prometheus",
			[]string{"check", "config", promExampleFile}},
		{"example alertmanager.yml passes amtool check-config", "amtool", "apt-get install prometheus-alertmanager",
			[]string{"check-config", amExampleFile}},
	} {
		t.Run(c.desc, func(t *testing.T) {
			t.Parallel()
			bin := promtest.Tool(t, c.tool, c.install)
			out, err := exec.Command(bin, c.args...).CombinedOutput()
			if err != nil {
				t.Fatalf("%s %s: %v\n%s", c.tool, strings.Join(c.args, " "), err, out)
			}
		})
	}

	t.Run("every alert has severity, summary, description, and a firing and a silent unit test", func(t *testing.T) {
		t.Parallel()
		var rules struct {
			Groups []struct {
				Name  string
				Rules []struct {
					Alert       string
					Labels      map[string]string
					Annotations map[string]string
				}
			}
		}
		readYAML(t, alertRulesFile, &rules)
		var tests struct {
			Tests []struct {
				Name          string
				AlertRuleTest []struct {
					Alertname string
					ExpAlerts []struct {
						ExpLabels map[string]string `yaml:"exp_labels"`
					} `yaml:"exp_alerts"`
				} `yaml:"alert_rule_test"`
			}
		}
		readYAML(t, alertTestsFile, &tests)

		var alerts []string
		for _, g := range rules.Groups {
			for _, r := range g.Rules {
				if r.Alert == "" {
					continue
				}
				alerts = append(alerts, r.Alert)
				if s := r.Labels["severity"]; s != "critical" && s != "warning" {
					t.Errorf("%s: severity %q, want critical or warning", r.Alert, s)
				}
				for _, a := range []string{"summary", "description"} {
					if r.Annotations[a] == "" {
						t.Errorf("%s: no %s annotation", r.Alert, a)
					}
				}
			}
		}
		for _, want := range []string{"DockerContainerDied", "DockerContainerRestartLoop", "DockerContainerUnhealthy",
			"DockerContainerOOMKilled", "DockerContainerMemoryNearLimit", "DockerDaemonUnreachable", "DockerExporterDown"} {
			if !slices.Contains(alerts, want) {
				t.Errorf("%s has no alert %s", alertRulesFile, want)
			}
		}

		for _, alert := range alerts {
			// firing: a test expects it, with the container's name and
			// compose labels if it is about a container. silent: a whole
			// test expects it never, at several times (its look-alikes).
			var firing, silent bool
			for _, tc := range tests.Tests {
				evals, fired := 0, false
				for _, at := range tc.AlertRuleTest {
					if at.Alertname != alert {
						continue
					}
					evals++
					for _, exp := range at.ExpAlerts {
						fired = true
						l := exp.ExpLabels
						if !strings.HasPrefix(alert, "DockerContainer") ||
							l["name"] != "" && l["compose_project"] != "" && l["compose_service"] != "" {
							firing = true
						}
					}
				}
				if evals >= 2 && !fired {
					silent = true
				}
			}
			if !firing {
				t.Errorf("%s: no unit test in %s where it fires (with name and compose labels for a container alert)", alert, alertTestsFile)
			}
			if !silent {
				t.Errorf("%s: no unit test in %s where it stays silent on a look-alike (a test with at least two evaluations and no alert)", alert, alertTestsFile)
			}
		}
	})
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// TestContainerDeathPagesThroughAlertmanager runs the shipped rules and
// Alertmanager config on a real Prometheus and Alertmanager, scraping the
// exporter binary on a private dockerd every second:
//   - nothing is pending or firing once Prometheus has seen the containers,
//     though one of them ("old") exited with 1 before the exporter started,
//     which is what an exporter restart finds;
//   - "api" is re-created as `docker compose up` does (stop with exit 0,
//     create under a temporary name, remove, rename, start), and the rules
//     are evaluated while Prometheus sees its death with exit code 0;
//   - "web" is killed (137): DockerContainerDied fires in Prometheus without
//     waiting for a `for`, and reaches Alertmanager, active, with its name
//     and compose project and service;
//   - at that point nothing else has ever been pending or firing
//     (Prometheus's ALERTS history), bar DockerExporterDown pending before
//     the first scrape.
func TestContainerDeathPagesThroughAlertmanager(t *testing.T) {
	t.Parallel()
	testdaemon.ForEachEngine(t, containerDeathPagesThroughAlertmanager)
}

func containerDeathPagesThroughAlertmanager(t *testing.T, eng testdaemon.Engine) {
	t.Parallel()
	rules := readText(t, alertRulesFile)
	amConfig := readText(t, amExampleFile)
	b := testbed.Start(t, eng)
	d, img := b.Daemon, b.Image
	compose := func(service string) []string {
		return []string{"--label", "com.docker.compose.project=shop", "--label", "com.docker.compose.service=" + service}
	}

	if code := d.Docker(t, "wait", dockercli.Run(t, d, "old", append(compose("old"), img, "sh", "-c", "exit 1")...)); code != "1" {
		t.Fatalf("old: docker wait = %s, want 1", code)
	}
	e := b.Exporter(t)

	dockercli.Run(t, d, "web", append(compose("web"), img, "sleep", "1000")...)
	// A well-behaved app: it exits 0 on the SIGTERM of `docker stop`.
	// (busybox sleep as PID 1 would ignore it and be killed: 137.)
	apiCmd := []string{"sh", "-c", `trap "exit 0" TERM; sleep 1000 & wait`}
	apiID := dockercli.Run(t, d, "api", append(append(compose("api"), img), apiCmd...)...)

	am := promtest.StartAlertmanager(t, amConfig)
	exporterTarget := strings.TrimSuffix(strings.TrimPrefix(e.URL, "http://"), "/metrics")
	p := promtest.StartPrometheus(t, fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [alerts.yml]
alerting:
  alertmanagers:
    - static_configs:
        - targets: [%q]
scrape_configs:
  - job_name: docker
    static_configs:
      - targets: [%q]
`, strings.TrimPrefix(am.URL, "http://"), exporterTarget), map[string]string{"alerts.yml": rules})
	promStarted := time.Now()
	p.WaitTargetsUp(t, 1)

	waitQuery(t, p, "web and api running, old exited with 1",
		`docker_container_state{name=~"web|api",state="running"} == 1 or docker_container_exit_code{name="old"} == 1`, 3)
	p.WaitRulesEvaluated(t, time.Now())
	if alerts := dockerAlerts(t, p); len(alerts) > 0 {
		t.Fatalf("before any death, pending or firing: %v", alerts)
	}

	t.Run("compose-like re-create with exit 0 stays silent", func(t *testing.T) {
		d.Docker(t, "stop", "api")
		if code := d.Docker(t, "inspect", "-f", "{{.State.ExitCode}}", "api"); code != "0" {
			t.Fatalf("api: exit code %s after docker stop, want 0: the look-alike needs a clean stop", code)
		}
		// Let the rules see the stopped container, death counted, before it
		// goes: the moment a transient alert could come from.
		waitQuery(t, p, "api's death with exit code 0",
			`docker_container_exit_code{name="api"} == 0 and on (name) docker_container_deaths_total == 1`, 1)
		p.WaitRulesEvaluated(t, time.Now())

		tmp := apiID[:12] + "_api"
		newID := d.Docker(t, append(append(append([]string{"create", "--network", "none", "--name", tmp}, compose("api")...), img), apiCmd...)...)
		d.Docker(t, "rm", "api")
		d.Docker(t, "rename", tmp, "api")
		d.Docker(t, "start", "api")
		waitQuery(t, p, "the new api running under the old name, one death counted",
			fmt.Sprintf(`docker_container_info{name="api",id=%q} and on (name) docker_container_state{state="running"} == 1 and on (name) docker_container_deaths_total == 1`, newID), 1)
	})

	t.Run("killed container fires DockerContainerDied into Alertmanager", func(t *testing.T) {
		d.Docker(t, "kill", "web")
		if code := d.Docker(t, "wait", "web"); code != "137" {
			t.Fatalf("web: docker wait = %s, want 137", code)
		}
		killed := time.Now()
		isWebDied := func(a promtest.Alert) bool {
			return a.Labels["alertname"] == "DockerContainerDied" && a.Labels["name"] == "web"
		}
		want := map[string]string{
			"alertname": "DockerContainerDied", "severity": "critical", "name": "web",
			"compose_project": "shop", "compose_service": "web", "job": "docker", "instance": exporterTarget,
		}

		fired := waitAlert(t, "DockerContainerDied firing for web in Prometheus", p.Alerts, func(a promtest.Alert) bool {
			return isWebDied(a) && a.State == "firing"
		})
		t.Logf("DockerContainerDied firing in Prometheus %v after the kill", time.Since(killed).Round(time.Millisecond))
		checkLabels(t, "Prometheus", fired, want)
		if fired.Value != "137" && fired.Value != "1.37e+02" {
			t.Errorf("Prometheus: alert value %q, want the exit code 137", fired.Value)
		}

		got := waitAlert(t, "DockerContainerDied for web in Alertmanager", am.Alerts, isWebDied)
		t.Logf("DockerContainerDied in Alertmanager %v after the kill", time.Since(killed).Round(time.Millisecond))
		checkLabels(t, "Alertmanager", got, want)
		if got.State != "active" {
			t.Errorf("Alertmanager: state %q (inhibited by %v, silenced by %v), want active", got.State, got.InhibitedBy, got.SilencedBy)
		}
		if s := got.Annotations["summary"]; s != "Container web died with exit code 137" {
			t.Errorf("Alertmanager: summary %q", s)
		}
	})

	t.Run("nothing else was ever pending or firing", func(t *testing.T) {
		// The firing evaluation above came after Prometheus had seen all of
		// api's re-create. ALERTS has a sample for each evaluation an alert
		// was pending or firing at.
		window := time.Since(promStarted).Round(time.Second) + 5*time.Second
		history, err := p.Query(t, fmt.Sprintf(`count by (alertname, alertstate, name) (count_over_time(ALERTS[%ds]))`, int(window.Seconds())))
		if err != nil {
			t.Fatal(err)
		}
		var unexpected []string
		for _, s := range history {
			m := [3]string{s.Metric["alertname"], s.Metric["alertstate"], s.Metric["name"]}
			switch {
			case m == [3]string{"DockerContainerDied", "firing", "web"}:
			case m == [3]string{"DockerExporterDown", "pending", ""}: // absent(up) before the first scrape
			default:
				unexpected = append(unexpected, fmt.Sprintf("%s %s name=%q", m[0], m[1], m[2]))
			}
		}
		if len(unexpected) > 0 {
			t.Errorf("alerts that were pending or firing in the last %v, beyond DockerContainerDied for web:\n%s", window, strings.Join(unexpected, "\n"))
		}
		now := dockerAlerts(t, p)
		if len(now) != 1 || !(now[0].Labels["alertname"] == "DockerContainerDied" && now[0].Labels["name"] == "web") {
			t.Errorf("pending or firing now: %v, want only DockerContainerDied for web", now)
		}
	})
}

func readText(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// waitQuery polls an instant query until it returns n samples. A PromQL
// error fails at once.
func waitQuery(t *testing.T, p *promtest.Prometheus, desc, expr string, n int) {
	t.Helper()
	var got []promtest.Sample
	wait.For(t, alertWaitTimeout, desc, func() bool {
		var err error
		if got, err = p.Query(t, expr); err != nil {
			t.Fatal(err)
		}
		return len(got) == n
	}, func() string { return fmt.Sprintf("%s returned %d samples, want %d: %+v", expr, len(got), n, got) })
}

// waitAlert polls list until an alert matches.
func waitAlert(t *testing.T, desc string, list func(testing.TB) ([]promtest.Alert, error), match func(promtest.Alert) bool) promtest.Alert {
	t.Helper()
	var alerts []promtest.Alert
	var found promtest.Alert
	wait.For(t, alertWaitTimeout, desc, func() bool {
		var err error
		if alerts, err = list(t); err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(alerts, match)
		if i >= 0 {
			found = alerts[i]
		}
		return i >= 0
	}, func() string {
		promtest.SortAlerts(alerts)
		return fmt.Sprintf("alerts: %v", alerts)
	})
	return found
}

// dockerAlerts are Prometheus's pending and firing alerts from the rules.
func dockerAlerts(t *testing.T, p *promtest.Prometheus) []promtest.Alert {
	t.Helper()
	alerts, err := p.Alerts(t)
	if err != nil {
		t.Fatal(err)
	}
	alerts = slices.DeleteFunc(alerts, func(a promtest.Alert) bool { return !strings.HasPrefix(a.Labels["alertname"], "Docker") })
	promtest.SortAlerts(alerts)
	return alerts
}

func checkLabels(t *testing.T, where string, a promtest.Alert, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if a.Labels[k] != v {
			t.Errorf("%s: alert label %s = %q, want %q; alert %v", where, k, a.Labels[k], v, a)
		}
	}
}
