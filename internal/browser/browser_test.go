package browser_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"go.uber.org/goleak"

	"github.com/docker-exporter/docker_exporter/internal/browser"
)

// No goroutine of chromedp may outlive the tests.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// page is a table rendered on the server, which its script marks live and
// filters by the text of #filter.
const page = `<!doctype html><title>t</title>
<input id="filter">
<table id="t"><tbody>
<tr data-id="1" data-name="web" data-state="running"><td>web</td><td class="state">running</td></tr>
<tr data-id="2" data-name="job" data-state="exited"><td>job</td><td class="state">exited</td></tr>
</tbody></table>
<script>
const t = document.getElementById("t");
document.getElementById("filter").addEventListener("input", e => {
	for (const r of t.tBodies[0].rows) r.hidden = !r.textContent.includes(e.target.value);
});
t.dataset.live = "1";
</script>`

func serve(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte(page))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestPageRunsScriptsAndReadsRows(t *testing.T) {
	t.Parallel()
	url := serve(t)
	p := browser.Start(t)
	p.Open(t, url)
	p.WaitFor(t, "the script marked the table live", `document.getElementById("t").dataset.live === "1"`, nil)
	p.Mark(t)
	want := []browser.Row{
		{ID: "1", Name: "web", State: "running", StateCell: "running", Visible: true},
		{ID: "2", Name: "job", State: "exited", StateCell: "exited", Visible: true},
	}
	if got := p.Rows(t, "#t tbody tr"); !slices.Equal(got, want) {
		t.Fatalf("rows %v, want %v", got, want)
	}
	p.WaitFor(t, "rows as served", browser.RowsAre("#t tbody tr", map[string]string{"web": "running", "job": "exited"}), nil)

	p.Type(t, "#filter", "job")
	p.WaitFor(t, "only job shown", browser.VisibleRowsAre("#t tbody tr", "job"), nil)
	if got := p.Rows(t, "#t tbody tr"); got[0].Visible || !got[1].Visible {
		t.Fatalf("after filtering for job: %v, want web hidden and job shown", got)
	}
	p.Erase(t, "#filter")
	p.WaitFor(t, "both shown again", browser.VisibleRowsAre("#t tbody tr", "web", "job"), nil)
	if v := browser.Eval[string](t, p, `document.getElementById("filter").value`); v != "" {
		t.Fatalf("filter %q after Erase, want empty", v)
	}
	if p.Reloaded(t) {
		t.Fatal("typing reloaded the page")
	}
	if got := p.Text(t, "#nothing"); got != "(no element)" {
		t.Fatalf("Text of a missing element = %q", got)
	}

	shot := filepath.Join(t.TempDir(), "page.png")
	p.Screenshot(t, shot)
	b, err := os.ReadFile(shot)
	if err != nil || !bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) {
		t.Fatalf("screenshot: %v, %d bytes, want a PNG", err, len(b))
	}

	p.Open(t, url)
	if !p.Reloaded(t) {
		t.Fatal("Reloaded is false after opening the page again")
	}
}

func TestPageWithoutJavaScriptShowsTheServersDOM(t *testing.T) {
	t.Parallel()
	url := serve(t)
	p := browser.Start(t, browser.WithoutJavaScript)
	p.Open(t, url)
	if live := browser.Eval[string](t, p, `document.getElementById("t").dataset.live ?? "absent"`); live != "absent" {
		t.Fatalf("data-live = %q with JavaScript off: the page's script ran", live)
	}
	p.WaitFor(t, "rows as served", browser.RowsAre("#t tbody tr", map[string]string{"web": "running", "job": "exited"}), nil)
}
