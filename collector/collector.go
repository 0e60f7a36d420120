// Package collector turns snapshots of the container store into the
// Prometheus text exposition. It never calls the Docker daemon: everything it
// reports comes from the store's event-fed cache.
//
// A scrape must stay cheap at 10,000 containers, which client_golang's
// Collect/Gather path (a dto per sample, sorting, re-encoding) cannot do.
// So, as kube-state-metrics does, each container's lines are rendered once
// and kept until the container changes; the store never modifies a
// container it has published, so its pointer is the cache key. A scrape
// then mostly copies bytes.
package collector

import (
	"bytes"
	"cmp"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/docker-exporter/docker_exporter/store"
)

// Source is where the exposition reads the state from; *store.Store is one.
type Source interface {
	Snapshot() store.Snapshot
}

// Config chooses what is exported.
type Config struct {
	// Labels lists the container label keys exported on
	// docker_container_labels; "*" exports all of them. Empty exports none.
	Labels []string
	// Usage, if not nil, gives the containers' resource usage.
	Usage UsageSource
}

// Exposition renders the store's state as Prometheus text. It is safe for
// concurrent use.
type Exposition struct {
	source Source
	labels LabelAllowlist

	usage UsageSource

	mu         sync.Mutex
	generation uint64 // of the current render, to sweep what it did not use
	containers map[*store.Container]*renderedContainer
	counts     map[string]*renderedCounts
	usageCache usageCache
}

// Exposition is also a Gatherer, for tests and linting; the HTTP handler
// writes its bytes directly instead.
var _ prometheus.Gatherer = (*Exposition)(nil)

// New makes an exposition that reads source on every render.
func New(source Source, cfg Config) *Exposition {
	return &Exposition{
		source:     source,
		usage:      cfg.Usage,
		labels:     NewLabelAllowlist(cfg.Labels),
		containers: make(map[*store.Container]*renderedContainer),
		counts:     make(map[string]*renderedCounts),
	}
}

// containerLines and countLines are rendered text, never modified once
// made, so a scrape can write them after it has let go of the lock.
type containerLines struct {
	parts [len(containerFamilies)][]byte
}

type countLines struct {
	parts [len(countFamilies)][]byte
}

type renderedContainer struct {
	generation uint64
	labelsKey  string // the label names the labels line was rendered for
	lines      *containerLines
}

type renderedCounts struct {
	generation uint64
	counts     store.Counts
	lines      *countLines
}

// labelSet is the label names docker_container_labels has in one render:
// all series of a family share one set, the union of the allowed keys that
// any container has. Keys that sanitise to the same name share its label,
// and a container gets the value of the first such key (in sorted order)
// that it has, the same one on every scrape.
type labelSet struct {
	names  []string            // "label_<sanitised key>", sorted
	keysOf map[string][]string // label name -> docker label keys
	key    string              // names joined, to tell whether a line is current
}

func (x *Exposition) labelSet(containers []*store.Container) labelSet {
	var ls labelSet
	if x.labels.None() {
		return ls
	}
	ls.keysOf = make(map[string][]string)
	seen := make(map[string]bool)
	for _, c := range containers {
		for k := range c.Labels {
			if !seen[k] && x.labels.Allows(k) {
				seen[k] = true
				ln := "label_" + sanitizeLabelName(k)
				ls.keysOf[ln] = append(ls.keysOf[ln], k)
			}
		}
	}
	for ln, keys := range ls.keysOf {
		slices.Sort(keys)
		ls.names = append(ls.names, ln)
	}
	slices.Sort(ls.names)
	ls.key = strings.Join(ls.names, ",")
	return ls
}

// WriteTo writes the current state to w.
func (x *Exposition) WriteTo(w io.Writer) (int64, error) {
	return x.render().writeTo(w)
}

// page is one scrape's worth of rendered lines, in order.
type page struct {
	containers []*containerLines
	counts     []*countLines
	usage      []byte
	summary    []byte
}

func (p page) writeTo(w io.Writer) (int64, error) {
	var n int64
	write := func(b []byte) error {
		m, err := w.Write(b)
		n += int64(m)
		return err
	}
	for f, fam := range containerFamilies {
		header := false
		for _, c := range p.containers {
			if len(c.parts[f]) == 0 {
				continue
			}
			if !header {
				if err := write(fam.header); err != nil {
					return n, err
				}
				header = true
			}
			if err := write(c.parts[f]); err != nil {
				return n, err
			}
		}
	}
	for f, fam := range countFamilies {
		if len(p.counts) == 0 {
			break
		}
		if err := write(fam.header); err != nil {
			return n, err
		}
		for _, c := range p.counts {
			if err := write(c.parts[f]); err != nil {
				return n, err
			}
		}
	}
	if err := write(p.usage); err != nil {
		return n, err
	}
	return n, write(p.summary)
}

// render brings the cache up to date with a snapshot and returns the page
// to write. It holds the lock only while it does that, never while a
// client reads.
func (x *Exposition) render() page {
	snap := x.source.Snapshot()
	containers := uniqueByName(snap.Containers)

	x.mu.Lock()
	defer x.mu.Unlock()
	x.generation++
	ls := x.labelSet(containers)
	p := page{containers: make([]*containerLines, len(containers))}
	for i, c := range containers {
		r := x.containers[c]
		if r == nil {
			r = &renderedContainer{lines: renderContainer(c)}
			x.containers[c] = r
		}
		if r.labelsKey != ls.key {
			// A copy: the lines a scrape may still be writing stay as
			// they were.
			lines := *r.lines
			lines.parts[famLabels] = renderLabels(c, ls)
			r.lines, r.labelsKey = &lines, ls.key
		}
		r.generation = x.generation
		p.containers[i] = r.lines
	}

	countsByName := validNames(snap.Counts)
	names := slices.Sorted(maps.Keys(countsByName))
	p.counts = make([]*countLines, len(names))
	for i, name := range names {
		n := countsByName[name]
		r := x.counts[name]
		if r == nil || r.counts != n {
			r = &renderedCounts{counts: n, lines: renderCounts(name, n)}
			x.counts[name] = r
		}
		r.generation = x.generation
		p.counts[i] = r.lines
	}
	x.sweep()
	p.usage = x.renderUsage(containers)
	p.summary = renderSummary(containers, snap)
	return p
}

// sweep forgets the renders of containers and names the last render did
// not use: they changed or are gone.
func (x *Exposition) sweep() {
	for c, r := range x.containers {
		if r.generation != x.generation {
			delete(x.containers, c)
		}
	}
	for name, r := range x.counts {
		if r.generation != x.generation {
			delete(x.counts, name)
		}
	}
}

// renderContainer renders all of a container's lines but its labels into
// one allocation, each family's lines a slice of it.
func renderContainer(c *store.Container) *containerLines {
	name := clean(c.Name)
	b := lineBuilder{b: make([]byte, 0, 1536)}
	var bounds [len(containerFamilies)][2]int
	family := func(f int, lines func()) {
		bounds[f][0] = len(b.b)
		lines()
		bounds[f][1] = len(b.b)
	}
	family(famInfo, func() {
		b.add(famInfo, 1, "name", name, "id", clean(c.ID), "image", clean(c.Image),
			"image_id", clean(c.ImageID), "compose_project", clean(c.ComposeProject()),
			"compose_service", clean(c.ComposeService()), "pod", clean(c.Pod))
	})
	family(famState, func() {
		for _, state := range store.States {
			b.add(famState, boolValue(c.State == state), "name", name, "state", state)
		}
	})
	if c.Health != "" {
		family(famHealth, func() {
			for _, status := range store.HealthStatuses {
				b.add(famHealth, boolValue(c.Health == status), "name", name, "status", status)
			}
		})
		family(famFailingStreak, func() { b.add(famFailingStreak, float64(c.FailingStreak), "name", name) })
	}
	family(famRestarts, func() { b.add(famRestarts, float64(max(c.RestartCount, 0)), "name", name) })
	family(famOOMKilled, func() { b.add(famOOMKilled, boolValue(c.OOMKilled), "name", name) })
	if c.HasExitCode {
		family(famExitCode, func() { b.add(famExitCode, float64(c.ExitCode), "name", name) })
	}
	// A time the daemon does not have is left out, never sent as an epoch.
	for f, t := range [...]time.Time{famCreated: c.Created, famStarted: c.Started, famFinished: c.Finished} {
		if f >= famCreated && !t.IsZero() {
			family(f, func() { b.add(f, seconds(t), "name", name) })
		}
	}
	var lines containerLines
	for f, bound := range bounds {
		if bound[1] > bound[0] {
			lines.parts[f] = b.b[bound[0]:bound[1]:bound[1]]
		}
	}
	return &lines
}

func renderLabels(c *store.Container, ls labelSet) []byte {
	if ls.key == "" {
		return nil
	}
	kv := make([]string, 0, 2+2*len(ls.names))
	kv = append(kv, "name", clean(c.Name))
	for _, ln := range ls.names {
		value := ""
		for _, k := range ls.keysOf[ln] {
			if v, ok := c.Labels[k]; ok {
				value = clean(v)
				break
			}
		}
		kv = append(kv, ln, value)
	}
	var b lineBuilder
	return b.sample(famLabels, 1, kv...)
}

func renderCounts(name string, n store.Counts) *countLines {
	var lines countLines
	name = clean(name)
	buf := make([]byte, 0, 4*(len(name)+64))
	for f, v := range [len(countFamilies)]uint64{n.Starts, n.Deaths, n.OOMs, n.Destroys} {
		start := len(buf)
		buf = appendCountSample(buf, countFamilies[f].name, v, "name", name)
		lines.parts[f] = buf[start:len(buf):len(buf)]
	}
	return &lines
}

// renderSummary renders the per-state counts, the events and the store's
// own status: a few dozen lines, afresh on every scrape.
func renderSummary(containers []*store.Container, snap store.Snapshot) []byte {
	var buf bytes.Buffer
	var b lineBuilder
	perState := make(map[string]int, len(store.States))
	for _, c := range containers {
		perState[c.State]++
	}
	buf.Write(containersFamily.header)
	for _, state := range store.States {
		buf.Write(b.plain(containersFamily.name, float64(perState[state]), "state", state))
	}
	if len(snap.Events) > 0 {
		// Kinds the same once made valid UTF-8 are added up.
		events := make(map[store.EventKind]uint64, len(snap.Events))
		for k, n := range snap.Events {
			events[store.EventKind{Type: clean(k.Type), Action: clean(k.Action)}] += n
		}
		buf.Write(eventsFamily.header)
		kinds := slices.SortedFunc(maps.Keys(events), func(a, b store.EventKind) int {
			return cmp.Or(strings.Compare(a.Type, b.Type), strings.Compare(a.Action, b.Action))
		})
		for _, k := range kinds {
			buf.Write(b.countSample(eventsFamily.name, events[k], "type", k.Type, "action", k.Action))
		}
	}
	st := snap.Status
	buf.Write(upFamily.header)
	buf.Write(b.plain(upFamily.name, boolValue(st.Up)))
	if d := st.Daemon; d.Version != "" {
		buf.Write(daemonInfoFamily.header)
		buf.Write(b.plain(daemonInfoFamily.name, 1, "version", clean(d.Version), "api_version", clean(d.APIVersion),
			"os", clean(d.OS), "arch", clean(d.Arch), "kernel_version", clean(d.KernelVersion), "flavor", clean(d.Flavor)))
	}
	buf.Write(reconnectsFamily.header)
	buf.Write(b.countSample(reconnectsFamily.name, st.Reconnects))
	buf.Write(syncsFamily.header)
	buf.Write(b.countSample(syncsFamily.name, st.Syncs))
	if !st.LastEvent.IsZero() {
		buf.Write(lastEventFamily.header)
		buf.Write(b.plain(lastEventFamily.name, seconds(st.LastEvent)))
	}
	if !st.LastSync.IsZero() {
		buf.Write(lastSyncFamily.header)
		buf.Write(b.plain(lastSyncFamily.name, seconds(st.LastSync)))
	}
	buf.Write(resyncsFamily.header)
	buf.Write(b.countSample(resyncsFamily.name, st.Resyncs.Interval, "reason", "interval"))
	buf.Write(b.countSample(resyncsFamily.name, st.Resyncs.FellBehind, "reason", "fell_behind"))
	buf.Write(correctionsFamily.header)
	for _, c := range [...]struct {
		kind string
		n    uint64
	}{{"missing", st.Corrections.Missing}, {"ghost", st.Corrections.Ghost}, {"changed", st.Corrections.Changed}} {
		buf.Write(b.countSample(correctionsFamily.name, c.n, "kind", c.kind))
	}
	return buf.Bytes()
}

// Gather parses a render back into metric families, so that tests and
// linters see exactly what a scrape serves.
func (x *Exposition) Gather() ([]*dto.MetricFamily, error) {
	var buf bytes.Buffer
	if _, err := x.WriteTo(&buf); err != nil {
		return nil, err
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	byName, err := parser.TextToMetricFamilies(&buf)
	if err != nil {
		return nil, err
	}
	names := slices.Sorted(maps.Keys(byName))
	out := make([]*dto.MetricFamily, len(names))
	for i, n := range names {
		out[i] = normalize(byName[n])
	}
	return out, nil
}

// normalize orders a family as a client_golang registry would: labels by
// name, series by label values.
func normalize(mf *dto.MetricFamily) *dto.MetricFamily {
	for _, m := range mf.Metric {
		slices.SortFunc(m.Label, func(a, b *dto.LabelPair) int { return strings.Compare(a.GetName(), b.GetName()) })
	}
	slices.SortFunc(mf.Metric, func(a, b *dto.Metric) int {
		for i := range min(len(a.Label), len(b.Label)) {
			if c := strings.Compare(a.Label[i].GetValue(), b.Label[i].GetValue()); c != 0 {
				return c
			}
		}
		return cmp.Compare(len(a.Label), len(b.Label))
	})
	return mf
}

// uniqueByName keeps one container per name as served (made valid UTF-8),
// the newest, sorted by name, so that a moment of disagreement (two
// containers briefly holding one name) can never make a scrape serve
// duplicate series.
func uniqueByName(in []*store.Container) []*store.Container {
	out := slices.Clone(in)
	slices.SortFunc(out, func(a, b *store.Container) int {
		return cmp.Or(strings.Compare(clean(a.Name), clean(b.Name)), b.Created.Compare(a.Created), strings.Compare(a.ID, b.ID))
	})
	return slices.CompactFunc(out, func(a, b *store.Container) bool { return clean(a.Name) == clean(b.Name) })
}

// validNames returns counts keyed by names as served: names that are the
// same once made valid UTF-8 are added up. The daemon's JSON cannot carry
// invalid UTF-8, so this copies nothing in practice.
func validNames(counts map[string]store.Counts) map[string]store.Counts {
	valid := true
	for name := range counts {
		valid = valid && utf8.ValidString(name)
	}
	if valid {
		return counts
	}
	out := make(map[string]store.Counts, len(counts))
	for name, n := range counts {
		sum := out[clean(name)]
		sum.Starts += n.Starts
		sum.Deaths += n.Deaths
		sum.OOMs += n.OOMs
		sum.Destroys += n.Destroys
		out[clean(name)] = sum
	}
	return out
}
