package promtest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestHarnessScrapesQueriesAndDeliversAlerts drives both servers through
// every method: Prometheus scrapes a fixed metric, answers instant and range
// queries (and reports PromQL errors as errors), evaluates a rule file given
// as an extra file, and the alert reaches Alertmanager.
func TestHarnessScrapesQueriesAndDeliversAlerts(t *testing.T) {
	t.Parallel()
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "# TYPE answer gauge\nanswer 42\n")
	}))
	t.Cleanup(target.Close)

	am := StartAlertmanager(t, "route:\n  receiver: none\nreceivers:\n  - name: none\n")
	p := StartPrometheus(t, fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [rules/answer.yml]
alerting:
  alertmanagers:
    - static_configs:
        - targets: [%q]
scrape_configs:
  - job_name: fixed
    static_configs:
      - targets: [%q]
`, strings.TrimPrefix(am.URL, "http://"), strings.TrimPrefix(target.URL, "http://")),
		map[string]string{"rules/answer.yml": `groups:
  - name: answers
    rules:
      - alert: AnswerIs42
        expr: answer == 42
        labels:
          severity: none
        annotations:
          summary: "the answer is {{ $value }}"
`})
	p.WaitTargetsUp(t, 1)

	// The target is up, so its first sample is stored.
	got, err := p.Query(t, "answer")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Value != 42 || got[0].Metric["job"] != "fixed" || got[0].Metric["__name__"] != "answer" {
		t.Fatalf(`Query("answer") = %+v, want one sample {__name__="answer", job="fixed", ...} 42`, got)
	}
	if got, err := p.Query(t, "1 + 1"); err != nil || len(got) != 1 || got[0].Value != 2 || len(got[0].Metric) != 0 {
		t.Fatalf(`Query("1 + 1") = %+v, %v; want one scalar sample 2`, got, err)
	}
	if _, err := p.Query(t, "answer{"); err == nil || !strings.Contains(err.Error(), "bad_data") {
		t.Fatalf(`Query("answer{") error = %v, want a bad_data PromQL error`, err)
	}
	if _, err := p.Query(t, "answer[1m]"); err == nil || !strings.Contains(err.Error(), "matrix") {
		t.Fatalf(`Query("answer[1m]") error = %v, want an error naming the matrix result`, err)
	}

	end := time.Now()
	series, err := p.QueryRange(t, "answer * 2", end.Add(-2*time.Second), end, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(series) != 1 || len(series[0].Points) == 0 || series[0].Metric["job"] != "fixed" {
		t.Fatalf("QueryRange = %+v, want one series of job fixed with points", series)
	}
	for _, pt := range series[0].Points {
		if pt.V != 84 || pt.T.Before(end.Add(-3*time.Second)) || pt.T.After(end.Add(time.Second)) {
			t.Fatalf("QueryRange point %+v, want 84 between %v and %v", pt, end.Add(-2*time.Second), end)
		}
	}

	// The alert has no `for`: it fires at the first evaluation that sees
	// the sample, and Prometheus sends it on at once.
	waitAlert(t, "AnswerIs42 firing in Prometheus", p.Alerts, func(a Alert) bool {
		return a.Labels["alertname"] == "AnswerIs42" && a.State == "firing" &&
			a.Annotations["summary"] == "the answer is 42" && a.Value != "" && !a.ActiveAt.IsZero()
	})
	waitAlert(t, "AnswerIs42 active in Alertmanager", am.Alerts, func(a Alert) bool {
		return a.Labels["alertname"] == "AnswerIs42" && a.Labels["job"] == "fixed" && a.State == "active" &&
			a.Annotations["summary"] == "the answer is 42"
	})

	// An evaluation that sees everything stored before now starts at least
	// one interval (1s) later.
	before := time.Now()
	p.WaitRulesEvaluated(t, before)
	if waited := time.Since(before); waited < time.Second {
		t.Fatalf("WaitRulesEvaluated returned after %v, before a whole evaluation interval (1s) had passed", waited)
	}
}

func waitAlert(t *testing.T, desc string, list func(testing.TB) ([]Alert, error), match func(Alert) bool) {
	t.Helper()
	var last []Alert
	var lastErr error
	ok := poll(WaitTimeout, func() bool {
		last, lastErr = list(t)
		for _, a := range last {
			if match(a) {
				return true
			}
		}
		return false
	})
	if !ok {
		t.Fatalf("waited %v for %s; last: %v (error %v)", WaitTimeout, desc, last, lastErr)
	}
}

// TestFileNamesMustStayInTheConfigDirectory: a caller's file name cannot
// escape the temporary directory.
func TestFileNamesMustStayInTheConfigDirectory(t *testing.T) {
	for _, name := range []string{"../x.yml", "/tmp/x.yml", ""} {
		ft := &fatalRecorder{TB: t}
		func() {
			defer func() { recover() }()
			writeFile(ft, t.TempDir(), name, "x")
		}()
		if !ft.fatal {
			t.Errorf("writeFile(%q) did not fail", name)
		}
	}
}

// TestMissingBinarySkipsUnlessRequired: without the binary a test skips,
// but with EnvRequire=1 (CI) it fails.
func TestMissingBinarySkipsUnlessRequired(t *testing.T) {
	for _, c := range []struct {
		env                 string
		wantSkip, wantFatal bool
	}{{"", true, false}, {"1", false, true}} {
		t.Setenv(EnvRequire, c.env)
		ft := &fatalRecorder{TB: t}
		func() {
			defer func() { recover() }()
			Tool(ft, "promtest-no-such-tool", "nothing to install")
		}()
		if ft.skip != c.wantSkip || ft.fatal != c.wantFatal {
			t.Errorf("%s=%q: skipped %v, failed %v; want skipped %v, failed %v", EnvRequire, c.env, ft.skip, ft.fatal, c.wantSkip, c.wantFatal)
		}
	}
}

// fatalRecorder records a Fatal or Skip instead of ending the test; it
// panics to stop the caller as FailNow and SkipNow would.
type fatalRecorder struct {
	testing.TB
	fatal, skip bool
}

func (f *fatalRecorder) Skip(args ...any) {
	f.skip = true
	panic("skip")
}

func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.fatal = true
	panic("fatal")
}

func (f *fatalRecorder) Fatal(args ...any) {
	f.fatal = true
	panic("fatal")
}

func (f *fatalRecorder) Helper() {}
