package podman

import (
	"maps"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/system"
	"github.com/moby/moby/client"
)

func TestTranslateMapsPodmansDialectOntoDockers(t *testing.T) {
	old := daemon{podman: true, healthAtStart: true}
	current := daemon{podman: true}
	attrs := func(extra ...string) map[string]string {
		m := map[string]string{"name": "web", "image": "busybox", "team": "core", "containerExitCode": "0", "podId": ""}
		for i := 0; i+1 < len(extra); i += 2 {
			m[extra[i]] = extra[i+1]
		}
		return m
	}
	for _, tt := range []struct {
		name        string
		raw         rawEvent
		d           daemon
		wantAction  events.Action
		wantAttrs   map[string]string
		wantPending bool
	}{
		{"remove is destroy", ev("remove", attrs(), ""), current, "destroy", map[string]string{"name": "web", "image": "busybox", "team": "core"}, false},
		{"die keeps exitCode, drops Podman's", ev("die", attrs("exitCode", "3", "containerExitCode", "3"), ""), current,
			"die", map[string]string{"name": "web", "image": "busybox", "team": "core", "exitCode": "3"}, false},
		{"health from HealthStatus (4.7 on)", ev("health_status", attrs(), "unhealthy"), current, "health_status: unhealthy", nil, false},
		{"health without a status stays bare", ev("health_status", attrs(), ""), current, "health_status", nil, false},
		{"health junk stays bare", ev("health_status", attrs(), "sick"), current, "health_status", nil, false},
		{"health before 4.7 waits for its result", ev("health_status", attrs(), "healthy"), old, "health_status", nil, true},
		{"actions Docker lacks pass through", ev("init", attrs(), ""), current, "init", nil, false},
		{"image events are left alone", rawEvent{Message: events.Message{Type: events.ImageEventType, Action: "remove",
			Actor: events.Actor{Attributes: map[string]string{"name": "busybox", "podId": ""}}}}, current,
			"remove", map[string]string{"name": "busybox", "podId": ""}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, pending := translate(tt.raw, tt.d)
			if got.Action != tt.wantAction || pending != tt.wantPending {
				t.Errorf("action %q pending %v, want %q pending %v", got.Action, pending, tt.wantAction, tt.wantPending)
			}
			if tt.wantAttrs != nil && !maps.Equal(got.Actor.Attributes, tt.wantAttrs) {
				t.Errorf("attributes %v, want %v", got.Actor.Attributes, tt.wantAttrs)
			}
			for _, k := range extraAttributes {
				if _, ok := got.Actor.Attributes[k]; ok && got.Type == events.ContainerEventType {
					t.Errorf("attribute %s kept", k)
				}
			}
		})
	}
}

func ev(action string, attrs map[string]string, health string) rawEvent {
	return rawEvent{
		Message: events.Message{
			Type: events.ContainerEventType, Action: events.Action(action),
			Actor: events.Actor{ID: "abc", Attributes: attrs}, TimeNano: 1,
		},
		HealthStatus: health,
	}
}

func TestDaemonOfTellsPodmanAndItsHealthEvents(t *testing.T) {
	podman := func(version string) client.ServerVersionResult {
		return client.ServerVersionResult{Version: version, Components: []system.ComponentVersion{
			{Name: "Podman Engine", Version: version, Details: map[string]string{"APIVersion": version}},
			{Name: "Conmon", Version: "conmon version 2.1.6"},
		}}
	}
	for _, tt := range []struct {
		name string
		v    client.ServerVersionResult
		want daemon
	}{
		{"dockerd", client.ServerVersionResult{Version: "29.0.0", Components: []system.ComponentVersion{{Name: "Engine", Version: "29.0.0"}}}, daemon{}},
		{"podman 4.3.1", podman("4.3.1"), daemon{podman: true, libpod: "/v4.3.1/libpod", healthAtStart: true}},
		{"podman 4.6.2", podman("4.6.2"), daemon{podman: true, libpod: "/v4.6.2/libpod", healthAtStart: true}},
		{"podman 4.7.0", podman("4.7.0"), daemon{podman: true, libpod: "/v4.7.0/libpod"}},
		{"podman 5.4.0", podman("5.4.0"), daemon{podman: true, libpod: "/v5.4.0/libpod"}},
		{"podman 3.0.1", podman("3.0.1"), daemon{podman: true, libpod: "/v3.0.1/libpod", healthAtStart: true}},
	} {
		if got := daemonOf(tt.v); got != tt.want {
			t.Errorf("%s: %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

func TestParseSinceReadsTheStoresForm(t *testing.T) {
	for in, want := range map[string]int64{
		"":                     0,
		"1796121359.433617057": 1796121359433617057,
		"1796121359.5":         1796121359500000000,
		"1796121359":           1796121359000000000,
		"10m":                  0,
		"12.x":                 0,
	} {
		if got := parseSince(in); got != want {
			t.Errorf("parseSince(%q) = %d, want %d", in, got, want)
		}
	}
}

func TestDockerStateWordsPodmansStatesAsDockerd(t *testing.T) {
	for in, want := range map[container.ContainerState]container.ContainerState{
		"stopped": "exited", "stopping": "running", "initialized": "created", "configured": "created",
		"running": "running", "exited": "exited", "paused": "paused", "created": "created", "removing": "removing",
		"unknown": "unknown",
	} {
		if got := dockerState(in); got != want {
			t.Errorf("dockerState(%q) = %q, want %q", in, got, want)
		}
	}
}
