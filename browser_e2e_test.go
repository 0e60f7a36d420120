package main

// The live view as a person sees it: the landing page in a headless
// Chromium (internal/browser), against a private dockerd whose containers
// the docker CLI changes while the page stays open.

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker-exporter/docker_exporter/internal/browser"
	"github.com/docker-exporter/docker_exporter/internal/dockercli"
	"github.com/docker-exporter/docker_exporter/internal/testbed"
	"github.com/docker-exporter/docker_exporter/internal/testdaemon"
)

// The live view's page, as its DOM promises it.
const (
	liveRows     = "#containers tbody tr"
	liveTableSel = "#containers"
	daemonStatus = "#daemon-status"
	filterBox    = "#filter"
	// liveMark is the table's data-live, which its script sets to 1 once
	// it applied the stream's first snapshot; "(none)" until then.
	liveMark = `document.querySelector("#containers")?.dataset.live ?? "(none)"`
)

// liveLatency is how soon a container's change must show on an open page.
const liveLatency = time.Second

// envUpdateScreenshot, set to "1", copies the screenshot to docs/live-view.png,
// which the README shows.
const envUpdateScreenshot = "DOCKER_EXPORTER_UPDATE_SCREENSHOT"

func TestLiveViewInABrowser(t *testing.T) {
	t.Parallel()
	b := testbed.Start(t, testdaemon.Default())
	d, img := b.Daemon, b.Image
	ids := map[string]string{
		"lv-web":    dockercli.Run(t, d, "lv-web", img, "sleep", "1000"),
		"lv-worker": dockercli.Run(t, d, "lv-worker", img, "sleep", "1000"),
		"lv-batch":  dockercli.Run(t, d, "lv-batch", img, "sh", "-c", "exit 3"),
		"lv-cache":  dockercli.Run(t, d, "lv-cache", img, "sleep", "1000"),
	}
	if code := d.Docker(t, "wait", "lv-batch"); code != "3" {
		t.Fatalf("docker wait lv-batch = %s, want 3", code)
	}
	d.Docker(t, "pause", "lv-cache")
	want := dockercli.States(t, d)
	if !maps.Equal(want, map[string]string{"lv-web": "running", "lv-worker": "running", "lv-batch": "exited", "lv-cache": "paused"}) {
		t.Fatalf("docker ps -a: %v", want)
	}
	e := b.Exporter(t)
	home := strings.TrimSuffix(e.URL, "/metrics") + "/"

	p := browser.Start(t)
	// shows is what the page shows, for failure messages of t.
	shows := func(t testing.TB) func() string {
		return func() string {
			return fmt.Sprintf("rows %v\n%s %q, %s data-live %q", p.Rows(t, liveRows), daemonStatus, p.Text(t, daemonStatus),
				liveTableSel, browser.Eval[string](t, p, liveMark))
		}
	}
	p.Open(t, home)
	p.WaitFor(t, "the stream's first snapshot applied (data-live=1)", "("+liveMark+`) === "1"`, shows(t))
	p.WaitFor(t, fmt.Sprintf("a row per container as docker ps -a says: %v", want), browser.RowsAre(liveRows, want), shows(t))
	for _, r := range p.Rows(t, liveRows) {
		if len(r.ID) < 12 || !strings.HasPrefix(ids[r.Name], r.ID) {
			t.Errorf("row %s: data-id %q, want (a prefix of at least 12 of) %s", r.Name, r.ID, ids[r.Name])
		}
	}
	if got := p.Text(t, daemonStatus); got != "connected" {
		t.Errorf("%s = %q with the daemon up, want connected", daemonStatus, got)
	}
	p.Mark(t)

	t.Run("a killed container's row turns exited within a second", func(t *testing.T) {
		want["lv-worker"] = "exited"
		begin := time.Now()
		d.Docker(t, "kill", "lv-worker")
		p.WaitFor(t, "lv-worker exited, the other rows unchanged", browser.RowsAre(liveRows, want), shows(t))
		took := time.Since(begin)
		t.Logf("docker kill lv-worker -> its row exited in the browser: %v", took.Round(time.Millisecond))
		if took > liveLatency {
			t.Errorf("lv-worker's row took %v to turn exited after docker kill, want at most %v", took, liveLatency)
		}
		if ps := dockercli.States(t, d); !maps.Equal(ps, want) {
			t.Errorf("docker ps -a %v, the page shows %v", ps, want)
		}
		if p.Reloaded(t) {
			t.Error("the page was reloaded to show the kill")
		}
	})

	t.Run("screenshot", func(t *testing.T) {
		path := filepath.Join(t.ArtifactDir(), "live-view.png")
		p.Screenshot(t, path)
		t.Logf("screenshot of the live view with %v: %s (kept with go test -artifacts)", want, path)
		if os.Getenv(envUpdateScreenshot) != "1" {
			return
		}
		png, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll("docs", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join("docs", "live-view.png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s=1: copied to docs/live-view.png", envUpdateScreenshot)
	})

	t.Run("a removed container's row goes", func(t *testing.T) {
		d.Docker(t, "rm", "-f", "lv-batch")
		delete(want, "lv-batch")
		p.WaitFor(t, "lv-batch's row gone, the other rows unchanged", browser.RowsAre(liveRows, want), shows(t))
		if p.Reloaded(t) {
			t.Error("the page was reloaded to show the removal")
		}
	})

	t.Run("the filter box leaves only the rows that match", func(t *testing.T) {
		p.Type(t, filterBox, "cache")
		p.WaitFor(t, "only lv-cache shown for the filter cache", browser.VisibleRowsAre(liveRows, "lv-cache"), shows(t))
		p.Erase(t, filterBox)
		p.WaitFor(t, "every row shown again with the filter empty", browser.VisibleRowsAre(liveRows, slices.Sorted(maps.Keys(want))...), shows(t))
		if p.Reloaded(t) {
			t.Error("the page was reloaded to filter")
		}
	})

	t.Run("daemon status follows the daemon", func(t *testing.T) {
		d.Stop(t)
		p.WaitFor(t, daemonStatus+" says not connected after the daemon stopped",
			fmt.Sprintf(`document.querySelector(%q)?.textContent.trim() === "not connected"`, daemonStatus), shows(t))
		d.Restart(t)
		p.WaitFor(t, daemonStatus+" says connected after the daemon came back",
			fmt.Sprintf(`document.querySelector(%q)?.textContent.trim() === "connected"`, daemonStatus), shows(t))
		// The containers outlived the daemon (live restore).
		want = dockercli.States(t, d)
		p.WaitFor(t, fmt.Sprintf("the rows as docker ps -a says after the restart: %v", want), browser.RowsAre(liveRows, want), shows(t))
		if p.Reloaded(t) {
			t.Error("the page was reloaded while the daemon went away and came back")
		}
	})

	t.Run("without JavaScript the server renders the same rows", func(t *testing.T) {
		want := dockercli.States(t, d)
		np := browser.Start(t, browser.WithoutJavaScript)
		np.Open(t, home)
		if live := browser.Eval[string](t, np, liveMark); live != "(none)" {
			t.Errorf("%s data-live = %q with JavaScript off, want none: a script ran", liveTableSel, live)
		}
		rows := np.Rows(t, liveRows)
		got := make(map[string]string, len(rows))
		for _, r := range rows {
			got[r.Name] = r.State
			if r.StateCell != r.State {
				t.Errorf("server-rendered row %s: state cell %q, data-state %q", r.Name, r.StateCell, r.State)
			}
		}
		if len(rows) != len(got) || !maps.Equal(got, want) {
			t.Errorf("server-rendered rows %v, docker ps -a %v", rows, want)
		}
		if s := np.Text(t, daemonStatus); s != "connected" {
			t.Errorf("server-rendered %s = %q, want connected", daemonStatus, s)
		}
	})
}
