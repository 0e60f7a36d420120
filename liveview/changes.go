package liveview

import (
	"bytes"
	"maps"
	"slices"

	"github.com/docker-exporter/docker_exporter/collector"
	"github.com/docker-exporter/docker_exporter/store"
)

// entry is one container as the clients last got it, encoded once.
type entry struct {
	c      *store.Container
	counts store.Counts // of its name
	json   []byte       // containerOf(c, counts), encoded
}

// view is the state the clients have once they applied every message sent
// so far. It is never modified: advance makes a new one.
type view struct {
	entries map[string]*entry // by container id
	status  []byte            // statusOf, encoded
}

// changeSet is what changed from one view to the next.
type changeSet struct {
	added, changed []*entry // sorted by name, then id
	removed        []string // ids, sorted
	status         []byte   // the new status, encoded; nil if it did not change
}

func (cs changeSet) empty() bool {
	return len(cs.added) == 0 && len(cs.changed) == 0 && len(cs.removed) == 0 && cs.status == nil
}

// advance returns the view of snap and what changed from v to it. The store
// never modifies a container it has published, so a container is unchanged
// when its pointer is the same, and so are its name's counters (a destroy
// elsewhere under the same name, say, moves those alone). Only the others
// are encoded again, and they count as changed only if what the API shows
// of them did (not for a new pid, say).
func (v view) advance(snap store.Snapshot, allow collector.LabelAllowlist) (view, changeSet) {
	next := view{entries: make(map[string]*entry, len(snap.Containers)), status: marshal(statusOf(snap.Status))}
	var cs changeSet
	for _, c := range snap.Containers {
		n := snap.Counts[c.Name]
		old := v.entries[c.ID]
		if old != nil && old.c == c && old.counts == n {
			next.entries[c.ID] = old
			continue
		}
		e := &entry{c: c, counts: n, json: marshal(containerOf(c, n, allow))}
		next.entries[c.ID] = e
		switch {
		case old == nil:
			cs.added = append(cs.added, e)
		case !bytes.Equal(old.json, e.json):
			cs.changed = append(cs.changed, e)
		}
	}
	for id := range v.entries {
		if next.entries[id] == nil {
			cs.removed = append(cs.removed, id)
		}
	}
	if !bytes.Equal(v.status, next.status) {
		cs.status = next.status
	}
	slices.SortFunc(cs.added, entryByName)
	slices.SortFunc(cs.changed, entryByName)
	slices.Sort(cs.removed)
	return next, cs
}

func entryByName(a, b *entry) int { return byName(a.c, b.c) }

// SSE framing: each message's data is one line of JSON (encoding/json
// escapes every newline within strings).
const (
	retryField   = "retry: 3000\n"
	pingMessage  = ": ping\n\n"
	snapshotHead = "event: snapshot\ndata: "
	changesHead  = "event: changes\ndata: "
)

// document is v as a Snapshot, encoded.
func (v view) document() []byte {
	entries := slices.SortedFunc(maps.Values(v.entries), entryByName)
	items := make([][]byte, len(entries))
	size := 64 + len(v.status)
	for i, e := range entries {
		items[i] = e.json
		size += len(e.json) + 1
	}
	var buf bytes.Buffer
	buf.Grow(size)
	buf.WriteString(`{"containers":`)
	joinJSON(&buf, items)
	buf.WriteString(`,"status":`)
	buf.Write(v.status)
	buf.WriteByte('}')
	return buf.Bytes()
}

// message is v as a snapshot event.
func (v view) message() []byte {
	doc := v.document()
	msg := make([]byte, 0, len(retryField)+len(snapshotHead)+len(doc)+2)
	msg = append(msg, retryField...)
	msg = append(msg, snapshotHead...)
	msg = append(msg, doc...)
	return append(msg, "\n\n"...)
}

// document is cs as a Changes, encoded.
func (cs changeSet) document() []byte {
	var buf bytes.Buffer
	buf.WriteByte('{')
	field := func(name string) {
		if buf.Len() > 1 {
			buf.WriteByte(',')
		}
		buf.WriteString(`"` + name + `":`)
	}
	for _, list := range []struct {
		name    string
		entries []*entry
	}{{"added", cs.added}, {"changed", cs.changed}} {
		if len(list.entries) == 0 {
			continue
		}
		field(list.name)
		items := make([][]byte, len(list.entries))
		for i, e := range list.entries {
			items[i] = e.json
		}
		joinJSON(&buf, items)
	}
	if len(cs.removed) > 0 {
		field("removed")
		buf.Write(marshal(cs.removed))
	}
	if cs.status != nil {
		field("status")
		buf.Write(cs.status)
	}
	buf.WriteByte('}')
	return buf.Bytes()
}

// message is cs as a changes event.
func (cs changeSet) message() []byte {
	doc := cs.document()
	msg := make([]byte, 0, len(changesHead)+len(doc)+2)
	msg = append(msg, changesHead...)
	msg = append(msg, doc...)
	return append(msg, "\n\n"...)
}
