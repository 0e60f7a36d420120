package fakeengine

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"
)

// model is what a client can know from the events alone.
type model map[string]*modelCtr

type modelCtr struct {
	Spec
	hc bool // known to have a health check: nothing says so before a health event
}

func (m model) apply(ev events.Message) error {
	at := time.Unix(0, ev.TimeNano).UTC()
	attrs := ev.Actor.Attributes
	action := string(ev.Action)
	if action == "create" {
		labels := maps.Clone(attrs)
		delete(labels, "image")
		delete(labels, "name")
		m[ev.Actor.ID] = &modelCtr{Spec: Spec{ID: ev.Actor.ID, Name: attrs["name"], Image: attrs["image"], Labels: labels, State: "created", Created: at}}
		return nil
	}
	c := m[ev.Actor.ID]
	if c == nil {
		return fmt.Errorf("%s of unknown container %s", action, ev.Actor.ID)
	}
	switch {
	case action == "start":
		c.State, c.Started, c.ExitCode, c.OOMKilled = "running", at, 0, false
		if c.hc {
			c.Health = "starting"
		}
	case action == "die":
		code, err := strconv.Atoi(attrs["exitCode"])
		if err != nil {
			return fmt.Errorf("die without exit code: %v", attrs)
		}
		c.State, c.Finished, c.ExitCode = "exited", at, code
	case action == "oom":
		c.OOMKilled = true
	case action == "pause":
		c.State = "paused"
	case action == "unpause":
		c.State = "running"
	case action == "rename":
		c.Name = attrs["name"]
	case strings.HasPrefix(action, "health_status: "):
		c.Health, c.hc = strings.TrimPrefix(action, "health_status: "), true
	case action == "destroy":
		delete(m, ev.Actor.ID)
	case action == "kill" || action == "stop":
	default:
		return fmt.Errorf("unexpected action %q", action)
	}
	return nil
}

// diff compares the model with the engine's truth, in what events can tell.
func (m model) diff(truth []Spec) []string {
	var out []string
	if len(truth) != len(m) {
		out = append(out, fmt.Sprintf("%d containers, the model has %d", len(truth), len(m)))
	}
	for _, s := range truth {
		c := m[s.ID]
		if c == nil {
			out = append(out, "missing "+s.Name)
			continue
		}
		state := s.State
		if state == "restarting" { // a die does not tell a restart policy will act
			state = "exited"
		}
		health := s.Health == c.Health || (!c.hc && c.Health == "" && s.Health == "starting")
		if c.Name != s.Name || c.Image != s.Image || !maps.Equal(c.Labels, s.Labels) || c.State != state ||
			c.ExitCode != s.ExitCode || c.OOMKilled != s.OOMKilled || !health ||
			!c.Created.Equal(s.Created) || !c.Started.Equal(s.Started) || !c.Finished.Equal(s.Finished) {
			out = append(out, fmt.Sprintf("engine %+v\n model %+v", s, c.Spec))
		}
	}
	return out
}

// TestStormMatchesTruth runs 5000 random actions a second for a second,
// follows them with the real client, and replays the events on a model that
// started from Truth: it must end equal to Truth.
func TestStormMatchesTruth(t *testing.T) {
	// The stream may fall a second behind: the race detector slows the
	// client below 5000 events a second; a drop would still fail the test.
	e, cli := start(t, Options{StreamBuffer: 1 << 15})
	e.Populate(300, 7)
	m := model{}
	for _, s := range e.Truth() {
		m[s.ID] = &modelCtr{Spec: s, hc: s.Healthcheck}
	}
	res := subscribe(t, e, cli, client.EventsListOptions{})
	base := e.Emitted()

	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	stormed := make(chan int, 1)
	go func() { stormed <- e.Storm(ctx, 5000, rand.New(rand.NewPCG(1, 2))) }()
	actions, received := -1, 0
	deadline := time.After(20 * time.Second)
	for actions < 0 || received < e.Emitted()-base {
		select {
		case ev := <-res.Messages:
			received++
			if err := m.apply(ev); err != nil {
				t.Fatalf("event %d: %v", received, err)
			}
		case err := <-res.Err:
			t.Fatalf("after %d events of %d (drops %d): %v", received, e.Emitted()-base, e.Drops(), err)
		case actions = <-stormed:
		case <-deadline:
			t.Fatalf("received %d of %d events", received, e.Emitted()-base)
		}
	}
	t.Logf("%d actions, %d events, %d containers", actions, received, e.Len())
	if least := 4000; actions < least && (!raceEnabled || actions < least/2) {
		t.Errorf("only %d actions in a second at 5000/s", actions)
	}
	if e.Drops() != 0 {
		t.Errorf("%d streams dropped", e.Drops())
	}
	for _, d := range m.diff(e.Truth()) {
		t.Error(d)
	}
}
