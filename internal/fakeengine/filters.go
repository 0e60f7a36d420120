package fakeengine

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/events"
)

// filters is the `filters` query parameter: term to values.
type filters map[string][]string

// filterTerms lists, per endpoint, the terms dockerd accepts; true marks
// the ones emulated. A known term that is not emulated is refused rather
// than ignored, so that a test cannot pass on a filter that did nothing.
type filterTerms map[string]bool

var (
	listFilters = filterTerms{
		"id": true, "name": true, "status": true, "label": true, "health": true, "exited": true,
		"ancestor": false, "before": false, "since": false, "volume": false, "network": false,
		"publish": false, "expose": false, "isolation": false, "is-task": false, "annotation": false,
	}
	eventFilters = filterTerms{
		"type": true, "event": true, "container": true, "label": true, "image": true, "scope": true,
		"config": false, "daemon": false, "network": false, "node": false, "plugin": false,
		"secret": false, "service": false, "volume": false,
	}
)

// parseFilters reads both JSON shapes dockerd takes: {"term":{"value":true}}
// and the older {"term":["value"]}.
func parseFilters(raw string, terms filterTerms) (filters, error) {
	if raw == "" {
		return nil, nil
	}
	f := filters{}
	var current map[string]map[string]bool
	if err := json.Unmarshal([]byte(raw), &current); err == nil {
		for term, values := range current {
			for v := range values {
				f[term] = append(f[term], v)
			}
			slices.Sort(f[term])
		}
	} else if err := json.Unmarshal([]byte(raw), &f); err != nil {
		return nil, fmt.Errorf("invalid filter: %q", raw)
	}
	for term := range f {
		emulated, known := terms[term]
		switch {
		case !known:
			return nil, fmt.Errorf("invalid filter '%s'", term)
		case !emulated:
			return nil, fmt.Errorf("fakeengine: filter %q is not emulated", term)
		}
	}
	return f, nil
}

// matchKV is dockerd's label match: every value, "key" or "key=value",
// must hold.
func matchKV(values []string, kv map[string]string) bool {
	for _, v := range values {
		key, want, hasValue := strings.Cut(v, "=")
		got, ok := kv[key]
		if !ok || (hasValue && got != want) {
			return false
		}
	}
	return true
}

// match says whether an event passes: each term present must hold.
func (f filters) match(m *events.Message) bool {
	if len(f) == 0 {
		return true
	}
	attrs := m.Actor.Attributes
	if v, ok := f["type"]; ok && !slices.Contains(v, string(m.Type)) {
		return false
	}
	if v, ok := f["event"]; ok && !slices.ContainsFunc(v, func(want string) bool {
		// "health_status" also takes "health_status: healthy".
		return string(m.Action) == want || strings.HasPrefix(string(m.Action), want+":")
	}) {
		return false
	}
	if v, ok := f["container"]; ok && !slices.ContainsFunc(v, func(want string) bool {
		return strings.HasPrefix(m.Actor.ID, want) || strings.HasPrefix(attrs["name"], want)
	}) {
		return false
	}
	if v, ok := f["label"]; ok && !matchKV(v, attrs) {
		return false
	}
	if v, ok := f["image"]; ok {
		image := attrs["image"]
		if m.Type == events.ImageEventType {
			image = m.Actor.ID
		}
		if !slices.Contains(v, image) {
			return false
		}
	}
	if v, ok := f["scope"]; ok && !slices.Contains(v, m.Scope) {
		return false
	}
	return true
}

// listFilter is a parsed container list filter.
type listFilter struct {
	f          filters
	ids, names []*regexp.Regexp
	exited     []int
	allImplied bool // a status filter lists stopped containers without all
}

var validStatus = []string{"created", "running", "paused", "restarting", "removing", "exited", "dead"}

func newListFilter(raw string) (*listFilter, error) {
	f, err := parseFilters(raw, listFilters)
	if err != nil {
		return nil, err
	}
	lf := &listFilter{f: f}
	// dockerd matches id and name values as regular expressions.
	compile := func(values []string) []*regexp.Regexp {
		var out []*regexp.Regexp
		for _, v := range values {
			if re, err := regexp.Compile(v); err == nil {
				out = append(out, re)
			} else {
				out = append(out, regexp.MustCompile("^"+regexp.QuoteMeta(v)+"$"))
			}
		}
		return out
	}
	lf.ids, lf.names = compile(f["id"]), compile(f["name"])
	for _, v := range f["exited"] {
		code, err := strconv.Atoi(v)
		if err != nil {
			return nil, fmt.Errorf("invalid filter 'exited=%s'", v)
		}
		lf.exited = append(lf.exited, code)
	}
	for _, v := range f["status"] {
		if !slices.Contains(validStatus, v) {
			return nil, fmt.Errorf("Unrecognised filter value for status: %s", v)
		}
		lf.allImplied = true
	}
	for _, v := range f["health"] {
		if !slices.Contains([]string{"starting", "healthy", "unhealthy", "none"}, v) {
			return nil, fmt.Errorf("Unrecognised filter value for health: %s", v)
		}
	}
	return lf, nil
}

func anyMatch(res []*regexp.Regexp, s ...string) bool {
	for _, re := range res {
		for _, x := range s {
			if re.MatchString(x) {
				return true
			}
		}
	}
	return false
}

func (lf *listFilter) match(c *ctr) bool {
	if len(lf.f) == 0 {
		return true
	}
	if lf.ids != nil && !anyMatch(lf.ids, c.id) {
		return false
	}
	if lf.names != nil && !anyMatch(lf.names, "/"+c.name, c.name) {
		return false
	}
	if v, ok := lf.f["label"]; ok && !matchKV(v, c.labels) {
		return false
	}
	if lf.exited != nil && (c.running() || !slices.Contains(lf.exited, c.exitCode)) {
		return false
	}
	if v, ok := lf.f["status"]; ok && !slices.Contains(v, c.state) {
		return false
	}
	if v, ok := lf.f["health"]; ok {
		h := c.health
		if h == "" {
			h = "none"
		}
		if !slices.Contains(v, h) {
			return false
		}
	}
	return true
}
