package liveview

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/exporter-toolkit/web"
)

var (
	//go:embed page.js
	pageJS string
	//go:embed page.css
	pageCSS string
	//go:embed table.html
	tableHTML string

	tableTemplate = template.Must(template.New("table").Parse(tableHTML))
)

// tableMarker stands in the toolkit's page where the table goes.
const tableMarker = "<!-- liveview:table -->"

// LandingPage returns the landing page: exporter-toolkit's, as cfg makes
// it (its look, links and version), with the table of containers in it,
// rendered on the server for each request so that it shows the state
// without JavaScript, and a script that keeps it live from the event
// stream.
//
// The toolkit renders its page once, from a template of its own that it
// does not export, with ExtraHTML inserted as it is. So the page is
// rendered once here too, with a marker as ExtraHTML, and split there;
// each request writes the part before, the table (html/template, which
// escapes the untrusted names), and the part after. Rebuilding the page
// from a copy of the toolkit's template instead would drift from the
// toolkit's look with every release of it.
func (h *Hub) LandingPage(cfg web.LandingConfig) (http.Handler, error) {
	if strings.Contains(strings.ToLower(pageJS), "</script") {
		return nil, errors.New("liveview: the page script contains </script")
	}
	cfg.ExtraHTML += tableMarker + "\n<script>\n" + pageJS + "</script>\n"
	cfg.ExtraCSS += pageCSS
	lp, err := web.NewLandingPage(cfg)
	if err != nil {
		return nil, err
	}
	prefix := cfg.RoutePrefix
	if !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	page := &capture{header: make(http.Header)}
	req, err := http.NewRequest(http.MethodGet, prefix, nil)
	if err != nil {
		return nil, err
	}
	lp.ServeHTTP(page, req)
	head, tail, ok := bytes.Cut(page.body.Bytes(), []byte(tableMarker))
	if !ok {
		return nil, errors.New("liveview: the toolkit's landing page left out ExtraHTML")
	}
	return &landing{hub: h, path: prefix, head: head, tail: tail}, nil
}

// capture keeps what a handler writes.
type capture struct {
	header http.Header
	body   bytes.Buffer
}

func (c *capture) Header() http.Header         { return c.header }
func (c *capture) Write(b []byte) (int, error) { return c.body.Write(b) }
func (c *capture) WriteHeader(int)             {}

type landing struct {
	hub        *Hub
	path       string
	head, tail []byte
}

func (l *landing) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != l.path {
		http.NotFound(w, r)
		return
	}
	q := r.URL.Query()
	data := tableOf(snapshotOf(l.hub.src.Snapshot(), l.hub.allow), q.Get("filter"), q.Get("sort"), q.Get("order"), time.Now())
	var table bytes.Buffer
	if err := tableTemplate.Execute(&table, data); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=UTF-8")
	w.Header().Set("Cache-Control", "no-store")
	for _, b := range [][]byte{l.head, table.Bytes(), l.tail} {
		if _, err := w.Write(b); err != nil {
			return
		}
	}
}

// tableData is what table.html renders.
type tableData struct {
	Up     bool
	Daemon string // "Docker 20.10.24, API 1.41", or "" before it was reached
	Filter string
	Sort   string // "name" or "state"
	Desc   bool
	Rows   []row
	// Sortable are the headers that sort the table: name and state.
	Sortable []sortHeader
	Summary  string // "3 containers", "1 of 3 containers"
}

// sortHeader links to the table sorted by Key, in order Next; Aria is its
// aria-sort while the table is sorted by it.
type sortHeader struct{ Key, Label, Next, Aria string }

// row is one container's row. page.js fills its rows from the same fields
// of the API, in the same way.
type row struct {
	ID, Name, State, Health string
	FailingStreak           string // the title of the health cell
	Restarts                int
	Deaths                  uint64
	ExitCode                string
	Uptime                  string
	Project                 string
	Hidden                  bool // left out by the filter
}

func tableOf(snap Snapshot, filter, sortKey, order string, now time.Time) tableData {
	if sortKey != "state" {
		sortKey = "name"
	}
	d := tableData{Up: snap.Status.Up, Filter: filter, Sort: sortKey, Desc: order == "desc", Rows: make([]row, 0, len(snap.Containers))}
	if dm := snap.Status.Daemon; dm.Version != "" {
		d.Daemon = fmt.Sprintf("%s %s, API %s", flavorName(dm.Flavor), dm.Version, dm.APIVersion)
	}
	cs := slices.Clone(snap.Containers)
	slices.SortStableFunc(cs, func(a, b Container) int {
		c := 0
		if sortKey == "state" {
			c = strings.Compare(a.State, b.State)
		} else {
			c = strings.Compare(a.Name, b.Name)
		}
		if d.Desc {
			c = -c
		}
		if c == 0 {
			c = strings.Compare(a.Name, b.Name)
		}
		return c
	})
	needle := strings.ToLower(strings.TrimSpace(filter))
	shown := 0
	for _, c := range cs {
		r := row{
			ID: c.ID, Name: c.Name, State: c.State, Health: c.Health,
			Restarts: c.RestartCount, Deaths: c.Counts.Deaths,
			Uptime: uptime(c, now), Project: c.ComposeProject,
			Hidden: !matches(c, needle),
		}
		if c.FailingStreak != nil && *c.FailingStreak > 0 {
			r.FailingStreak = fmt.Sprintf("failing streak %d", *c.FailingStreak)
		}
		if c.ExitCode != nil {
			r.ExitCode = strconv.Itoa(*c.ExitCode)
		}
		if !r.Hidden {
			shown++
		}
		d.Rows = append(d.Rows, r)
	}
	d.Summary = summary(shown, len(d.Rows))
	for _, k := range [...]struct{ key, label string }{{"name", "Name"}, {"state", "State"}} {
		h := sortHeader{Key: k.key, Label: k.label, Next: "asc"}
		if k.key == sortKey {
			h.Next, h.Aria = "desc", "ascending"
			if d.Desc {
				h.Next, h.Aria = "asc", "descending"
			}
		}
		d.Sortable = append(d.Sortable, h)
	}
	return d
}

// summary counts the rows, as page.js does.
func summary(shown, total int) string {
	noun := "containers"
	if total == 1 {
		noun = "container"
	}
	if shown == total {
		return fmt.Sprintf("%d %s", total, noun)
	}
	return fmt.Sprintf("%d of %d %s", shown, total, noun)
}

// matches says whether the filter needle (lower case) is in the
// container's name, state, health, image or compose project.
func matches(c Container, needle string) bool {
	if needle == "" {
		return true
	}
	for _, s := range []string{c.Name, c.State, c.Health, c.Image, c.ComposeProject} {
		if strings.Contains(strings.ToLower(s), needle) {
			return true
		}
	}
	return false
}

func flavorName(flavor string) string {
	switch flavor {
	case "podman":
		return "Podman"
	case "docker", "":
		return "Docker"
	}
	return flavor
}

// uptime says how long a container has run, or how long ago it exited or
// was created.
func uptime(c Container, now time.Time) string {
	switch {
	case (c.State == "running" || c.State == "paused") && !c.StartedAt.IsZero():
		return "up " + ago(now.Sub(c.StartedAt))
	case !c.FinishedAt.IsZero():
		return "exited " + ago(now.Sub(c.FinishedAt)) + " ago"
	case !c.CreatedAt.IsZero():
		return "created " + ago(now.Sub(c.CreatedAt)) + " ago"
	}
	return ""
}

// ago is d in whole units, as page.js writes it too.
func ago(d time.Duration) string {
	d = max(d, 0)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%d s", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h", int(d/time.Hour))
	}
	return fmt.Sprintf("%d days", int(d/(24*time.Hour)))
}
