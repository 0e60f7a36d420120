package store

import (
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
)

func TestParseAgeSpansHumanDurationsWording(t *testing.T) {
	const day = 24 * time.Hour
	for _, tt := range []struct {
		words string
		in    []time.Duration
	}{
		{"Less than a second", []time.Duration{0, 999 * time.Millisecond}},
		{"1 second", []time.Duration{time.Second, 1999 * time.Millisecond}},
		{"59 seconds", []time.Duration{59 * time.Second, 59999 * time.Millisecond}},
		{"About a minute", []time.Duration{time.Minute, 119 * time.Second}},
		{"2 minutes", []time.Duration{2 * time.Minute, 179 * time.Second}},
		{"About an hour", []time.Duration{time.Hour, 89 * time.Minute}},
		{"2 hours", []time.Duration{90 * time.Minute, 149 * time.Minute}},
		{"47 hours", []time.Duration{46*time.Hour + 30*time.Minute, 47*time.Hour + 29*time.Minute}},
		{"2 days", []time.Duration{47*time.Hour + 30*time.Minute, 3*day - 31*time.Minute}},
		{"13 days", []time.Duration{14*day - 31*time.Minute}},
		{"2 weeks", []time.Duration{14*day - 29*time.Minute, 21*day - 31*time.Minute}},
		{"2 months", []time.Duration{60*day - 29*time.Minute}},
		{"2 years", []time.Duration{730 * day, 1095*day - time.Minute}},
	} {
		r := parseAge(tt.words)
		for _, d := range tt.in {
			if d < r.lo || d >= r.hi {
				t.Errorf("parseAge(%q) = [%v, %v), which leaves out %v", tt.words, r.lo, r.hi, d)
			}
		}
	}
	for _, junk := range []string{"", "soon", "3 fortnights", "-2 seconds", "x seconds"} {
		if r := parseAge(junk); r.known() {
			t.Errorf("parseAge(%q) = %+v, want unknown", junk, r)
		}
	}
}

func TestListViewAgreesOnlyWithWhatItShows(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	created := now.Add(-2 * time.Hour)
	running := Container{ID: "a", Name: "web", State: "running", Created: created, Started: now.Add(-10 * time.Minute)}
	exited := Container{ID: "b", Name: "job", State: "exited", Created: created, Started: now.Add(-time.Hour),
		Finished: now.Add(-3 * time.Minute), ExitCode: 2, HasExitCode: true}
	healthy := running
	healthy.Health = "healthy"
	summary := func(name, state, status string) container.Summary {
		return container.Summary{Names: []string{"/" + name, "/other/alias"}, State: container.ContainerState(state), Status: status, Created: created.Unix()}
	}
	withHealth := summary("web", "running", "Up 10 minutes")
	withHealth.Health = &container.HealthSummary{Status: container.Unhealthy}
	for _, tt := range []struct {
		name   string
		item   container.Summary
		store  Container
		want   bool
		podman bool // Podman's list never words the health
	}{
		{"same run", summary("web", "running", "Up 10 minutes"), running, true, false},
		{"restarted unseen", summary("web", "running", "Up 3 seconds"), running, false, false},
		{"died unseen", summary("web", "exited", "Exited (1) 2 seconds ago"), running, false, false},
		{"renamed unseen", summary("api", "running", "Up 10 minutes"), running, false, false},
		{"paused", summary("web", "paused", "Up 10 minutes (Paused)"), running, false, false},
		{"re-created under the name", container.Summary{Names: []string{"/web"}, State: "running", Status: "Up 10 minutes", Created: now.Unix()}, running, false, false},
		{"healthy", summary("web", "running", "Up 10 minutes (healthy)"), healthy, true, false},
		{"turned unhealthy unseen", summary("web", "running", "Up 10 minutes (unhealthy)"), healthy, false, false},
		{"health from API 1.52", withHealth, healthy, false, false},
		{"health check starting", summary("web", "running", "Up 10 minutes (health: starting)"), running, false, false},
		{"same exit", summary("job", "exited", "Exited (2) 3 minutes ago"), exited, true, false},
		{"other exit code", summary("job", "exited", "Exited (3) 3 minutes ago"), exited, false, false},
		{"ran and exited again unseen", summary("job", "exited", "Exited (2) Less than a second ago"), exited, false, false},
		{"a status text it cannot read", summary("web", "running", "Up for a while"), running, true, false},
		{"podman: healthy, unworded", summary("web", "running", "Up 10 minutes"), healthy, true, true},
		{"podman: restarted unseen", summary("web", "running", "Up 3 seconds"), healthy, false, true},
		{"podman: paused", summary("web", "paused", "Up 10 minutes (Paused)"), healthy, false, true},
	} {
		if got := viewOf(tt.item, !tt.podman).agrees(&tt.store, now); got != tt.want {
			t.Errorf("%s: %q agrees with %+v = %v, want %v", tt.name, tt.item.Status, tt.store, got, tt.want)
		}
	}
}

func TestLagWatchSeesOnlyLiveEventsThatCameLate(t *testing.T) {
	connect := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	ev := func(at time.Time) events.Message {
		return events.Message{Type: events.ContainerEventType, Action: "start", Time: at.Unix(), TimeNano: at.UnixNano()}
	}
	// The daemon's clock is an hour ahead of ours.
	w := newLagWatch(connect.Add(time.Hour), connect)
	if w.late(ev(connect.Add(time.Hour-time.Minute)), connect.Add(time.Second)) {
		t.Error("a replayed event from before the connect counted as late")
	}
	if w.late(ev(connect.Add(time.Hour+time.Second)), connect.Add(time.Second+5*time.Millisecond)) {
		t.Error("an event 5ms late counted as late")
	}
	if !w.late(ev(connect.Add(time.Hour+2*time.Second)), connect.Add(4*time.Second)) {
		t.Error("an event 2s late did not count as late")
	}
	if w.late(ev(connect.Add(time.Hour+time.Second)), connect.Add(10*time.Second)) {
		t.Error("an out-of-order event counted as late")
	}
	if w.late(events.Message{Type: events.ContainerEventType, Action: "junk"}, connect.Add(10*time.Second)) {
		t.Error("an event without a time counted as late")
	}
	// A run of a full daemon buffer, each a little late.
	at := connect.Add(time.Hour + 20*time.Second)
	for i := range daemonBuffer {
		at = at.Add(time.Microsecond)
		if got := w.late(ev(at), at.Add(-time.Hour+60*time.Millisecond)); got != (i == daemonBuffer-1) {
			t.Fatalf("event %d of a run 60ms late: late = %v", i, got)
		}
	}
}

func TestResyncClockBringsTheResyncForwardWhenBehind(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	c := newResyncClock(time.Minute, t0)
	if _, due := c.due(t0.Add(59 * time.Second)); due {
		t.Fatal("due before the interval")
	}
	c.fellBehind(t0.Add(10 * time.Second))
	if reason, due := c.due(t0.Add(11 * time.Second)); !due || reason != resyncFellBehind {
		t.Fatalf("1s after falling behind: due %v (%v), want a fell_behind resync", due, reason)
	}
	c.ran(resyncFellBehind, t0.Add(11*time.Second))
	c.fellBehind(t0.Add(12 * time.Second))
	if _, due := c.due(t0.Add(20 * time.Second)); due {
		t.Fatal("a second fell_behind resync within 10s of the first")
	}
	if reason, due := c.due(t0.Add(21 * time.Second)); !due || reason != resyncFellBehind {
		t.Fatalf("10s after the first: due %v (%v), want the second", due, reason)
	}
	off := newResyncClock(0, t0)
	if _, ok := off.wait(t0); ok {
		t.Fatal("interval 0 scheduled a periodic resync")
	}
}
