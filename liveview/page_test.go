package liveview

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/exporter-toolkit/web"

	"github.com/docker-exporter/docker_exporter/store"
)

func testLanding() web.LandingConfig {
	return web.LandingConfig{
		Name:        "docker_exporter",
		Description: "Prometheus exporter for the state of Docker containers",
		Version:     "(version=1.2.3)",
		Links:       []web.LandingLinks{{Address: "/metrics", Text: "Metrics"}},
	}
}

func landingPage(t *testing.T, h *Hub, target string) *httptest.ResponseRecorder {
	t.Helper()
	page, err := h.LandingPage(testLanding())
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	page.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
	return rec
}

var rowPattern = regexp.MustCompile(`<tr data-id="([^"]*)" data-name="([^"]*)" data-state="([^"]*)"[^>]*><td class="name">[^<]*</td><td class="state">([^<]*)</td>`)

// rows lists the container rows of a page as "name=state" (hidden ones
// marked), checking that each state cell says its row's state.
func rows(t *testing.T, body string) []string {
	t.Helper()
	tbody := body[strings.Index(body, "<tbody>"):strings.Index(body, "</tbody>")]
	var out []string
	for _, m := range rowPattern.FindAllStringSubmatch(tbody, -1) {
		if m[3] != m[4] {
			t.Errorf("row %s: data-state %q, state cell %q", m[1], m[3], m[4])
		}
		r := m[2] + "=" + m[3]
		if strings.Contains(m[0], " hidden>") {
			r += " (hidden)"
		}
		out = append(out, r)
	}
	if n := strings.Count(tbody, "<tr "); n != len(out) {
		t.Errorf("%d rows, %d of the expected shape:\n%s", n, len(out), tbody)
	}
	return out
}

func TestLandingPageRendersTheTableOnTheServer(t *testing.T) {
	h := New(newFakeSource(mixed), Config{})
	rec := landingPage(t, h, "/")
	body := rec.Body.String()
	if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") {
		t.Fatalf("status %d, Content-Type %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	// The toolkit's page, its look, links and version, around the table.
	for _, want := range []string{
		"<h1>docker_exporter</h1>", "Version: (version=1.2.3)", `<a href="/metrics">Metrics</a>`, "background-color: #e6522c",
		`<table id="containers"`, `<input id="filter"`, `<span id="daemon-status" data-up="1">connected</span>`,
		"Docker 20.10.24, API 1.41", "<script>", "4 containers",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	if strings.Contains(body, "data-live") {
		t.Error("the server marks the table live: only the script may")
	}
	got := strings.Join(rows(t, body), " ")
	if want := "batch=exited fresh=created shop-web-1=running sick=running"; got != want {
		t.Errorf("rows %s, want %s", got, want)
	}
	for _, want := range []string{
		// exit code when known, deaths from the name's counters, the project
		`<tr data-id="bbb2" data-name="batch" data-state="exited"><td class="name">batch</td><td class="state">exited</td><td class="health"></td><td class="restarts">0</td><td class="deaths">1</td><td class="exit-code">137</td><td class="uptime">`,
		`<tr data-id="aaa1" data-name="shop-web-1" data-state="running" data-health="healthy"><td class="name">shop-web-1</td><td class="state">running</td><td class="health">healthy</td><td class="restarts">2</td><td class="deaths">2</td><td class="exit-code">1</td><td class="uptime">up `,
		`<td class="project">shop</td>`,
		`<td class="health" title="failing streak 4">unhealthy</td>`,
		`<td class="uptime">created `,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s", want)
		}
	}
}

func TestLandingPageSortsAndFiltersWithoutJavaScript(t *testing.T) {
	h := New(newFakeSource(mixed), Config{})
	for _, tt := range []struct{ query, rows string }{
		{"?sort=name&order=desc", "sick=running shop-web-1=running fresh=created batch=exited"},
		{"?sort=state", "fresh=created batch=exited shop-web-1=running sick=running"},
		{"?sort=state&order=desc", "shop-web-1=running sick=running batch=exited fresh=created"},
		{"?sort=bogus", "batch=exited fresh=created shop-web-1=running sick=running"},
		{"?filter=SHOP", "batch=exited (hidden) fresh=created (hidden) shop-web-1=running sick=running (hidden)"},
		{"?filter=busybox", "batch=exited fresh=created (hidden) shop-web-1=running (hidden) sick=running (hidden)"},
	} {
		body := landingPage(t, h, "/"+tt.query).Body.String()
		if got := strings.Join(rows(t, body), " "); got != tt.rows {
			t.Errorf("%s: rows %s, want %s", tt.query, got, tt.rows)
		}
	}
	body := landingPage(t, h, "/?sort=state&filter=a%26b").Body.String()
	for _, want := range []string{
		`<th data-sort-key="state" aria-sort="ascending"><a href="?sort=state&amp;order=desc&amp;filter=a%26b">State</a></th>`,
		`value="a&amp;b"`, "0 of 4 containers",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s", want)
		}
	}
}

func TestLandingPageEscapesUntrustedNames(t *testing.T) {
	evil := `<img src=x onerror=alert(1)>"'&`
	src := newFakeSource(store.Snapshot{Containers: []*store.Container{{
		ID: "x1", Name: evil, Image: evil, State: "running", Labels: map[string]string{"com.docker.compose.project": evil},
	}}})
	body := landingPage(t, New(src, Config{}), "/?filter="+"%3Cscript%3E").Body.String()
	if strings.Contains(body, "<img") || strings.Contains(body, `"<script>"`) {
		t.Errorf("the page carries unescaped markup:\n%s", body[strings.Index(body, `<section id="live-view">`):])
	}
	if !strings.Contains(body, `data-name="&lt;img src=x onerror=alert(1)&gt;&#34;&#39;&amp;"`) {
		t.Errorf("the name is not in data-name, escaped:\n%s", body)
	}
}

func TestLandingPageSaysWhenTheDaemonIsDown(t *testing.T) {
	body := landingPage(t, New(newFakeSource(store.Snapshot{}), Config{}), "/").Body.String()
	if !strings.Contains(body, `<span id="daemon-status" data-up="0">not connected</span>`) || !strings.Contains(body, "0 containers") {
		t.Errorf("page of a store that never reached the daemon:\n%s", body)
	}
	if got := rows(t, body); len(got) != 0 {
		t.Errorf("rows %q, want none", got)
	}
}

func TestLandingPageIsOnlyAtItsPath(t *testing.T) {
	h := New(newFakeSource(store.Snapshot{}), Config{})
	for _, path := range []string{"/index.html", "/api/other"} {
		if rec := landingPage(t, h, path); rec.Code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, rec.Code)
		}
	}
}

// TestPageScriptBuildsNodesNotMarkup guards the rule that untrusted text
// only ever reaches the DOM through textContent.
func TestPageScriptBuildsNodesNotMarkup(t *testing.T) {
	for _, banned := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"} {
		if strings.Contains(pageJS, banned) {
			t.Errorf("page.js uses %s", banned)
		}
	}
	for _, want := range []string{`table.dataset.live = "1"`, `"not connected"`, `"connected"`, `new EventSource("api/containers/events")`} {
		if !strings.Contains(pageJS, want) {
			t.Errorf("page.js lacks %s", want)
		}
	}
}

func TestAgoMatchesTheScript(t *testing.T) {
	for d, want := range map[time.Duration]string{
		-time.Second: "0 s", 59 * time.Second: "59 s", time.Minute: "1 min", 59 * time.Minute: "59 min",
		time.Hour: "1 h", 47 * time.Hour: "47 h", 48 * time.Hour: "2 days",
	} {
		if got := ago(d); got != want {
			t.Errorf("ago(%v) = %q, want %q", d, got, want)
		}
	}
}
