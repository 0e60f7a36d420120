package store

import (
	"reflect"
	"testing"
	"time"

	"github.com/moby/moby/api/types/events"
)

var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

func at(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }

func event(action string, sec int, attrs map[string]string) events.Message {
	return events.Message{
		Type:     events.ContainerEventType,
		Action:   events.Action(action),
		Actor:    events.Actor{ID: "c1", Attributes: attrs},
		TimeNano: at(sec).UnixNano(),
	}
}

func TestApplyEvent(t *testing.T) {
	running := Container{ID: "c1", Name: "web", State: "running", Started: at(0)}
	healthy := running
	healthy.Health = "healthy"

	tests := []struct {
		name string
		in   Container
		ev   events.Message
		want Container
		eff  effect
	}{
		{
			name: "create takes name, image and labels from the attributes",
			ev: event("create", 1, map[string]string{
				"name": "web", "image": "nginx", "com.docker.compose.project": "shop",
			}),
			want: Container{Name: "web", Image: "nginx", State: "created", Created: at(1),
				Labels: map[string]string{"com.docker.compose.project": "shop"}},
		},
		{
			name: "start runs, counts and resets the OOM flag and health",
			in:   Container{State: "exited", Finished: at(1), OOMKilled: true, Health: "unhealthy", FailingStreak: 3},
			ev:   event("start", 2, nil),
			want: Container{State: "running", Started: at(2), Finished: at(1), Health: "starting"},
			eff:  effect{start: true},
		},
		{
			name: "die exits with the event's code and counts a death",
			in:   running,
			ev:   event("die", 5, map[string]string{"exitCode": "3"}),
			want: Container{ID: "c1", Name: "web", State: "exited", Started: at(0), Finished: at(5), ExitCode: 3, HasExitCode: true},
			eff:  effect{death: true},
		},
		{
			name: "die with a malformed exit code still counts, without a code",
			in:   running,
			ev:   event("die", 5, map[string]string{"exitCode": "three"}),
			want: Container{ID: "c1", Name: "web", State: "exited", Started: at(0), Finished: at(5)},
			eff:  effect{death: true},
		},
		{
			name: "replayed die of a death reconciliation counted is not counted again",
			in:   Container{State: "exited", Started: at(0), Finished: at(5), deathCountedAt: at(5)},
			ev:   event("die", 5, map[string]string{"exitCode": "0"}),
			want: Container{State: "exited", Started: at(0), Finished: at(5), ExitCode: 0, HasExitCode: true, deathCountedAt: at(5)},
		},
		{
			name: "replayed die of an earlier run counts but does not turn back the state",
			in:   Container{State: "running", Started: at(10), Finished: at(8), deathCountedAt: at(8)},
			ev:   event("die", 4, map[string]string{"exitCode": "1"}),
			want: Container{State: "running", Started: at(10), Finished: at(8), deathCountedAt: at(8)},
			eff:  effect{death: true},
		},
		{
			name: "replayed start older than the last death counts but leaves the state",
			in:   Container{State: "exited", Started: at(1), Finished: at(9)},
			ev:   event("start", 3, nil),
			want: Container{State: "exited", Started: at(1), Finished: at(9)},
			eff:  effect{start: true},
		},
		{
			name: "start after a counted death clears the mark for the next run",
			in:   Container{State: "exited", Finished: at(5), deathCountedAt: at(5)},
			ev:   event("start", 6, nil),
			want: Container{State: "running", Started: at(6), Finished: at(5)},
			eff:  effect{start: true},
		},
		{
			name: "oom flags the container and counts",
			in:   running,
			ev:   event("oom", 3, nil),
			want: Container{ID: "c1", Name: "web", State: "running", Started: at(0), OOMKilled: true},
			eff:  effect{oom: true},
		},
		{
			name: "pause",
			in:   running,
			ev:   event("pause", 3, nil),
			want: Container{ID: "c1", Name: "web", State: "paused", Started: at(0)},
		},
		{
			name: "unpause",
			in:   Container{State: "paused"},
			ev:   event("unpause", 3, nil),
			want: Container{State: "running"},
		},
		{
			name: "rename takes the new name without its slash",
			in:   running,
			ev:   event("rename", 3, map[string]string{"name": "/api", "oldName": "/web"}),
			want: Container{ID: "c1", Name: "api", State: "running", Started: at(0)},
		},
		{
			name: "health_status: unhealthy",
			in:   healthy,
			ev:   event("health_status: unhealthy", 3, nil),
			want: Container{ID: "c1", Name: "web", State: "running", Started: at(0), Health: "unhealthy"},
		},
		{
			name: "health_status with an unknown status changes nothing",
			in:   healthy,
			ev:   event("health_status: sideways", 3, nil),
			want: healthy,
		},
		{
			name: "destroy counts",
			in:   running,
			ev:   event("destroy", 3, nil),
			want: Container{ID: "c1", Name: "web", State: "removing", Started: at(0)},
			eff:  effect{destroy: true},
		},
		{
			name: "exec events change nothing",
			in:   running,
			ev:   event("exec_start: sh -c true", 3, nil),
			want: running,
		},
		{
			name: "kill and stop wait for the die",
			in:   running,
			ev:   event("kill", 3, map[string]string{"signal": "9"}),
			want: running,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, eff := apply(tt.in, tt.ev)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("container:\n got %+v\nwant %+v", got, tt.want)
			}
			if eff != tt.eff {
				t.Errorf("effect: got %+v, want %+v", eff, tt.eff)
			}
		})
	}
}

func TestBaseActionDropsDetail(t *testing.T) {
	for in, want := range map[string]string{
		"health_status: healthy": "health_status",
		"exec_start: sh -c true": "exec_start",
		"die":                    "die",
		"":                       "",
	} {
		if got := baseAction(events.Action(in)); got != want {
			t.Errorf("baseAction(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseTimeTreatsZeroTimeAsAbsent(t *testing.T) {
	for _, s := range []string{"0001-01-01T00:00:00Z", "", "garbage"} {
		if got := parseTime(s); !got.IsZero() {
			t.Errorf("parseTime(%q) = %v, want zero", s, got)
		}
	}
	if got := parseTime("2026-11-01T12:00:00.5Z"); !got.Equal(t0.Add(500 * time.Millisecond)) {
		t.Errorf("parseTime = %v", got)
	}
}
