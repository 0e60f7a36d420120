package fakeengine

import (
	"encoding/json"
	"maps"
	"math/rand/v2"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"
)

// podmanEvent is an event line as Podman writes it. moby's events.Message
// has no HealthStatus, so the tests read the raw stream.
type podmanEvent struct {
	Status string `json:"status"`
	ID     string `json:"id"`
	From   string `json:"from"`
	Type   string
	Action string
	Actor  struct {
		ID         string
		Attributes map[string]string
	}
	Scope        string `json:"scope"`
	Time         int64  `json:"time"`
	TimeNano     int64  `json:"timeNano"`
	HealthStatus *string
}

// podmanEvents replays every event e has emitted, from the raw stream.
func podmanEvents(t *testing.T, e *Engine) []podmanEvent {
	t.Helper()
	e.mu.Lock()
	until := e.clock() // not before the newest event
	e.mu.Unlock()
	_, lines := rawLines(t, e, "/v1.41/events?since=0&until="+since(until))
	out := make([]podmanEvent, len(lines))
	for i, l := range lines {
		if err := json.Unmarshal([]byte(l), &out[i]); err != nil {
			t.Fatalf("line %d: %v: %s", i, err, l)
		}
	}
	return out
}

func podmanActions(evs []podmanEvent) string {
	var out []string
	for _, ev := range evs {
		out = append(out, ev.Action)
	}
	return strings.Join(out, " ")
}

// getJSON GETs path and decodes the body into v.
func getJSON(t *testing.T, e *Engine, path string, v any) *http.Response {
	t.Helper()
	resp, lines := rawLines(t, e, path)
	if err := json.Unmarshal([]byte(strings.Join(lines, "\n")), v); err != nil {
		t.Fatalf("%s: %v: %q", path, err, lines)
	}
	return resp
}

func TestPodmanVersion(t *testing.T) {
	for _, version := range []string{"4.3.1", "4.9.4"} {
		t.Run(version, func(t *testing.T) {
			e, cli := start(t, Options{Podman: version})
			ctx := timeout(t)

			var raw struct {
				Platform   struct{ Name string }
				Components []struct {
					Name, Version string
					Details       map[string]string
				}
				Version, ApiVersion, MinAPIVersion, Os, Arch string
			}
			resp := getJSON(t, e, "/v1.41/version", &raw)
			var names []string
			for _, c := range raw.Components {
				names = append(names, c.Name)
			}
			engine := raw.Components[0]
			if got := strings.Join(names, ","); got != "Podman Engine,Conmon,OCI Runtime (runc)" ||
				engine.Version != version || engine.Details["APIVersion"] != version || engine.Details["MinAPIVersion"] != "4.0.0" ||
				raw.Version != version || raw.ApiVersion != "1.41" || raw.MinAPIVersion != "1.24" ||
				raw.Platform.Name != "linux/"+runtime.GOARCH+"/debian-12" || raw.Os != "linux" {
				t.Errorf("version: %+v", raw)
			}
			if got := resp.Header.Get("Server"); got != "Libpod/"+version+" (linux)" || resp.Header.Get("Libpod-Api-Version") != version {
				t.Errorf("headers: %v", resp.Header)
			}

			// The moby client negotiates the Docker API version as with dockerd.
			ping, err := cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true})
			if err != nil || ping.APIVersion != "1.41" {
				t.Errorf("ping %+v: %v", ping, err)
			}
			ver, err := cli.ServerVersion(ctx, client.ServerVersionOptions{})
			if err != nil || ver.Version != version || ver.APIVersion != "1.41" {
				t.Errorf("server version %+v: %v", ver, err)
			}
			info, err := cli.Info(ctx, client.InfoOptions{})
			if err != nil || info.Info.ServerVersion != version {
				t.Errorf("info server version %q: %v", info.Info.ServerVersion, err)
			}
		})
	}
}

// TestPodmanEventDialect drives each action on Podman 4.3.1 and reads the
// raw stream: Podman's actions and attributes where dockerd's differ.
func TestPodmanEventDialect(t *testing.T) {
	running := Spec{Name: "c1", Image: "localhost/busybox:test", Labels: map[string]string{"foo": "bar"}, State: "running"}
	with := func(s Spec, f func(*Spec)) Spec { f(&s); return s }
	for _, tc := range []struct {
		name string
		spec Spec // added silently; the action gets its id
		act  func(e *Engine, id string) error
		want string
		// attrs are attributes the events must have, by position.
		attrs map[int]map[string]string
	}{
		{"create", Spec{}, func(e *Engine, _ string) error {
			e.Create(Spec{Name: "c1", Image: "localhost/busybox:test", Labels: map[string]string{"foo": "bar"}})
			return nil
		}, "create", map[int]map[string]string{0: {"containerExitCode": "0", "foo": "bar", "image": "localhost/busybox:test", "name": "c1", "podId": ""}}},
		{"start is init then start", with(running, func(s *Spec) { s.State = "created" }), (*Engine).Start, "init start", nil},
		{"kill has no signal; cleanup follows the death", running, (*Engine).Kill, "kill die cleanup",
			map[int]map[string]string{1: {"containerExitCode": "137", "exitCode": "137"}, 2: {"containerExitCode": "0"}}},
		{"stop emits no kill nor stop", running, (*Engine).Stop, "die cleanup", map[int]map[string]string{0: {"exitCode": "143"}}},
		{"a death on its own", running, func(e *Engine, id string) error { return e.Die(id, 3) }, "die cleanup",
			map[int]map[string]string{0: {"containerExitCode": "3", "exitCode": "3"}}},
		{"oom has no oom event", running, (*Engine).OOM, "die cleanup", map[int]map[string]string{0: {"exitCode": "137"}}},
		{"a crash hands over to the restart policy", running, func(e *Engine, id string) error { return e.Crash(id, 2) }, "die restart", nil},
		{"a restart by policy", running, (*Engine).Restart, "die restart init start", nil},
		{"rm -f stops first", running, (*Engine).Destroy, "stop die remove", map[int]map[string]string{1: {"exitCode": "143"}}},
		{"rm of a stopped one", with(running, func(s *Spec) { s.State = "exited" }), (*Engine).Destroy, "remove", nil},
		{"rename has no oldName", running, func(e *Engine, id string) error { return e.Rename(id, "c2") }, "rename",
			map[int]map[string]string{0: {"name": "c2"}}},
		{"pause and unpause", running, func(e *Engine, id string) error {
			must(t, e.Pause(id))
			return e.Unpause(id)
		}, "pause unpause", nil},
		{"the pod's id, but not on exec_died", with(running, func(s *Spec) { s.Pod, s.Health = "shop", "healthy" }),
			func(e *Engine, id string) error { return e.Health(id, "healthy") }, "health_status exec_died",
			map[int]map[string]string{0: {"podId": PodID("shop")}, 1: {"podId": "", "containerExitCode": "0"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := newFakeClock()
			e, _ := start(t, Options{Podman: "4.3.1", Now: clock.Now})
			var id string
			if tc.spec.Name != "" {
				e.Add(tc.spec)
				id = e.Truth()[0].ID
			}
			must(t, tc.act(e, id))
			evs := podmanEvents(t, e)
			if got := podmanActions(evs); got != tc.want {
				t.Fatalf("actions %q, want %q", got, tc.want)
			}
			var last int64
			for i, ev := range evs {
				a := ev.Actor.Attributes
				_, hasCode := a["containerExitCode"]
				_, hasPod := a["podId"]
				if ev.Type != "container" || ev.Status != ev.Action || ev.ID != ev.Actor.ID || ev.From != a["image"] ||
					ev.Scope != "local" || ev.TimeNano <= last || !hasCode || !hasPod || a["foo"] != "bar" {
					t.Errorf("event %d: %+v", i, ev)
				}
				for _, k := range []string{"signal", "execDuration", "oldName"} {
					if _, ok := a[k]; ok {
						t.Errorf("event %d %s has dockerd's %s: %v", i, ev.Action, k, a)
					}
				}
				if _, ok := a["exitCode"]; ok != (ev.Action == "die") {
					t.Errorf("event %d %s: exitCode only on die: %v", i, ev.Action, a)
				}
				last = ev.TimeNano
			}
			for i, want := range tc.attrs {
				for k, v := range want {
					if got, ok := evs[i].Actor.Attributes[k]; !ok || got != v {
						t.Errorf("event %d %s: %s=%q, want %q", i, evs[i].Action, k, got, v)
					}
				}
			}
			if tc.want == "create" && !maps.Equal(evs[0].Actor.Attributes, tc.attrs[0]) {
				t.Errorf("create attributes %v, want exactly %v", evs[0].Actor.Attributes, tc.attrs[0])
			}
		})
	}
}

// TestPodmanHealthTiming proves the two orders of a Podman health check:
// before 4.7 the event comes first with the health from before the check,
// and inspects show the result only HealthCheckDuration later; from 4.7 on
// the result is recorded first and the event carries it.
func TestPodmanHealthTiming(t *testing.T) {
	for _, tc := range []struct {
		version    string
		eventFirst bool
		actions    string
	}{
		{"4.3.1", true, "health_status exec_died"},
		{"4.9.4", false, "exec_died health_status"},
	} {
		t.Run(tc.version, func(t *testing.T) {
			clock := newFakeClock()
			e, cli := start(t, Options{Podman: tc.version, Now: clock.Now, HealthCheckDuration: 40 * time.Millisecond})
			e.Add(Spec{Name: "app", State: "running", Health: "starting"})
			ctx := timeout(t)
			inspect := func() (status string, streak int, log int) {
				t.Helper()
				res, err := cli.ContainerInspect(ctx, "app", client.ContainerInspectOptions{})
				if err != nil {
					t.Fatal(err)
				}
				h := res.Container.State.Health
				return string(h.Status), h.FailingStreak, len(h.Log)
			}

			shown, seen := "starting", 0
			// Six checks: the log keeps the last five; unchanged health is
			// still an event.
			for i, status := range []string{"healthy", "healthy", "unhealthy", "unhealthy", "starting", "healthy"} {
				must(t, e.Health("app", status))
				evs := podmanEvents(t, e)[seen:]
				seen += len(evs)
				if got := podmanActions(evs); got != tc.actions {
					t.Fatalf("check %d: actions %q, want %q", i, got, tc.actions)
				}
				hs := evs[slices.IndexFunc(evs, func(ev podmanEvent) bool { return ev.Action == "health_status" })]
				died := evs[slices.IndexFunc(evs, func(ev podmanEvent) bool { return ev.Action == "exec_died" })]
				wantEvent, wantCode := status, "1"
				if tc.eventFirst {
					wantEvent = shown
				}
				if status == "healthy" {
					wantCode = "0"
				}
				if hs.HealthStatus == nil || *hs.HealthStatus != wantEvent || died.Actor.Attributes["containerExitCode"] != wantCode {
					t.Errorf("check %d (%s): HealthStatus %v, exec_died code %q; want %q, %q", i, status, hs.HealthStatus, died.Actor.Attributes["containerExitCode"], wantEvent, wantCode)
				}

				due, pending := e.HealthPending("app")
				if pending != tc.eventFirst {
					t.Fatalf("check %d: pending %v", i, pending)
				}
				if pending {
					if want := time.Unix(0, hs.TimeNano).Add(40 * time.Millisecond); !due.Equal(want) {
						t.Errorf("check %d: due %v, want the event's time and the duration %v", i, due, want)
					}
					// The clock stands still until told: the old health shows
					// up to the last nanosecond before the result is due.
					clock.Add(due.Sub(clock.Now()) - 1)
					if got, _, _ := inspect(); got != shown {
						t.Errorf("check %d: inspect shows %q before the check is over, want %q", i, got, shown)
					}
					clock.Add(1)
				}
				got, streak, logLen := inspect()
				if got != status || logLen != min(i+1, maxHealthLog) || (status == "healthy" && streak != 0) || (status == "unhealthy" && streak < 1) {
					t.Errorf("check %d: inspect %q streak %d log %d, want %q and %d entries", i, got, streak, logLen, status, min(i+1, maxHealthLog))
				}
				if _, still := e.HealthPending("app"); still {
					t.Errorf("check %d: still pending once shown", i)
				}
				shown = status
			}

			res, err := cli.ContainerInspect(ctx, "app", client.ContainerInspectOptions{})
			if err != nil {
				t.Fatal(err)
			}
			// The last check's entry: before 4.7 it starts a little before
			// the event; from 4.7 on it ends before it.
			last := res.Container.State.Health.Log[maxHealthLog-1]
			evs := podmanEvents(t, e)
			at := time.Unix(0, evs[len(evs)-2].TimeNano)
			if !tc.eventFirst {
				at = time.Unix(0, evs[len(evs)-1].TimeNano)
			}
			if last.ExitCode != 0 || !last.Start.Before(last.End) ||
				(tc.eventFirst && !last.Start.Before(at)) || (!tc.eventFirst && last.End.After(at)) {
				t.Errorf("last log entry %+v, health_status at %v", last, at)
			}
		})
	}
}

// TestPodmanHealthShowsAfterTheCheck runs 4.3.1 on the real clock: the
// result shows once HealthCheckDuration (default 50ms) has passed, not
// before.
func TestPodmanHealthShowsAfterTheCheck(t *testing.T) {
	e, cli := start(t, Options{Podman: "4.3.1"})
	e.Add(Spec{Name: "app", State: "running", Health: "starting"})
	ctx := timeout(t)
	began := time.Now()
	must(t, e.Health("app", "healthy"))
	deadline := time.Now().Add(5 * time.Second)
	for {
		res, err := cli.ContainerInspect(ctx, "app", client.ContainerInspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		took := time.Since(began)
		if h := res.Container.State.Health; h.Status == "healthy" {
			if took < 50*time.Millisecond || len(h.Log) != 1 {
				t.Errorf("healthy after %v with log %v, want after the 50ms check", took, h.Log)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still %q after %v", res.Container.State.Health.Status, took)
		}
	}
	if s := e.Truth()[0]; s.Health != "healthy" {
		t.Errorf("truth %+v", s)
	}
}

func TestPodmanInspectAndList(t *testing.T) {
	clock := newFakeClock()
	e, cli := start(t, Options{Podman: "4.3.1", Now: clock.Now})
	ctx := timeout(t)
	e.Add(
		Spec{Name: "plain", State: "running", Started: clock.Now().Add(-90 * time.Second)},
		Spec{Name: "checked", State: "running", Health: "healthy", Pod: "shop", Started: clock.Now().Add(-90 * time.Second)},
		Spec{Name: "fresh", State: "created", Healthcheck: true},
	)

	for _, tc := range []struct{ ref, health string }{
		{"plain", `{"Status":"","FailingStreak":0,"Log":null}`},
		{"fresh", `{"Status":"","FailingStreak":0,"Log":null}`},
		{"checked", `{"Status":"healthy","FailingStreak":0,"Log":null}`},
	} {
		var raw struct {
			State map[string]json.RawMessage
			Pod   *string
		}
		getJSON(t, e, "/v1.41/containers/"+tc.ref+"/json", &raw)
		if got := string(raw.State["Health"]); got != tc.health || raw.Pod != nil {
			t.Errorf("%s: State.Health %s, want %s; Pod %v, want none in the compat inspect", tc.ref, got, tc.health, raw.Pod)
		}
	}

	res, err := cli.ContainerList(ctx, client.ContainerListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range res.Items {
		if c.Status != "Up About a minute" {
			t.Errorf("%s: status %q, want no health in it", c.Names[0], c.Status)
		}
	}

	// Podman keeps the failing streak and the log across a restart.
	must(t, e.Health("checked", "unhealthy"))
	clock.Add(time.Second)
	must(t, e.Stop("checked"))
	must(t, e.Start("checked"))
	ins, err := cli.ContainerInspect(ctx, "checked", client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if h := ins.Container.State.Health; h.Status != "starting" || h.FailingStreak != 3 || len(h.Log) != 1 {
		t.Errorf("health after a restart %+v", h)
	}

	var notFound struct {
		Cause, Message string
		Response       int
	}
	resp := getJSON(t, e, "/v1.41/containers/nosuch/json", &notFound)
	if resp.StatusCode != 404 || notFound.Cause != "no such container" || notFound.Response != 404 ||
		notFound.Message != `no container with name or ID "nosuch" found: no such container` {
		t.Errorf("missing container: %d %+v", resp.StatusCode, notFound)
	}
	if _, err := cli.ContainerInspect(ctx, "nosuch", client.ContainerInspectOptions{}); !cerrdefs.IsNotFound(err) {
		t.Errorf("the client reads %v, want NotFound", err)
	}
}

func TestPodmanLibpod(t *testing.T) {
	e, _ := start(t, Options{Podman: "4.3.1"})
	e.Add(
		Spec{Name: "web", State: "running", Pod: "shop"},
		Spec{Name: "db", State: "exited", Pod: "shop"},
		Spec{Name: "solo", State: "running"},
	)
	ids := map[string]string{}
	for _, s := range e.Truth() {
		ids[s.Name] = s.ID
		if want := map[string]string{"web": "shop", "db": "shop"}[s.Name]; s.Pod != want {
			t.Errorf("truth of %s: pod %q, want %q", s.Name, s.Pod, want)
		}
	}
	shop := PodID("shop")
	if len(shop) != 64 || shop != PodID("shop") || shop == PodID("blog") || PodID("") != "" {
		t.Fatalf("pod ids: %q %q", shop, PodID("blog"))
	}

	// answer is what the test reads of a container, a pod or an error.
	type answer struct {
		ID, Pod, Name, State, Cause string
		NumContainers, Response     int
	}
	for _, tc := range []struct {
		path   string
		status int
		want   answer
	}{
		{"/v4.3.1/libpod/containers/web/json", 200, answer{ID: ids["web"], Pod: shop, Name: "web"}},
		{"/v4.9.4/libpod/containers/" + ids["db"][:12] + "/json", 200, answer{ID: ids["db"], Pod: shop, Name: "db"}},
		{"/libpod/containers/solo/json", 200, answer{ID: ids["solo"], Name: "solo"}},
		{"/v4.3.1/libpod/containers/nosuch/json", 404, answer{Cause: "no such container", Response: 404}},
		{"/v4.3.1/libpod/pods/shop/json", 200, answer{ID: shop, Name: "shop", State: "Degraded", NumContainers: 2}},
		{"/v4.3.1/libpod/pods/" + shop[:12] + "/json", 200, answer{ID: shop, Name: "shop", State: "Degraded", NumContainers: 2}},
		{"/v4.3.1/libpod/pods/nosuch/json", 404, answer{Cause: "no such pod", Response: 404}},
	} {
		var m map[string]any
		resp := getJSON(t, e, tc.path, &m)
		str := func(k string) string { s, _ := m[k].(string); return s } // a container's State is an object: ""
		num := func(k string) int { f, _ := m[k].(float64); return int(f) }
		got := answer{ID: str("Id"), Pod: str("Pod"), Name: str("Name"), State: str("State"), Cause: str("cause"),
			NumContainers: num("NumContainers"), Response: num("response")}
		if resp.StatusCode != tc.status || got != tc.want {
			t.Errorf("%s: %d %+v, want %d %+v", tc.path, resp.StatusCode, got, tc.status, tc.want)
		}
	}
	for _, path := range []string{"/v4.3.1/libpod/info", "/v4.3.1/libpod/containers/json", "/v4.3.1/libpod/pods/shop/top"} {
		if resp, lines := rawLines(t, e, path); resp.StatusCode != 404 || resp.Header.Get("Content-Type") != "text/plain; charset=utf-8" || strings.Join(lines, "") != "Not Found" {
			t.Errorf("%s: %d %q", path, resp.StatusCode, lines)
		}
	}
	want := map[string]int{
		"GET /libpod/containers/{id}/json": 4, "GET /libpod/pods/{id}/json": 3,
		"GET /libpod/info": 1, "GET /libpod/containers/json": 1, "GET /libpod/pods/{id}/top": 1,
	}
	if got := e.Requests(); !equalCounts(got, want) {
		t.Errorf("requests %v, want %v", got, want)
	}
}

// TestDockerHasNoPodmanDialect: by default nothing of Podman shows.
func TestDockerHasNoPodmanDialect(t *testing.T) {
	clock := newFakeClock()
	e, _ := start(t, Options{Now: clock.Now})
	e.Add(Spec{Name: "web", State: "running", Health: "starting", Pod: "shop"})
	must(t, e.Health("web", "healthy"))
	must(t, e.Stop("web"))
	if got := podmanActions(podmanEvents(t, e)); got != "health_status: healthy kill die stop" {
		t.Errorf("dockerd's events: %q", got)
	}
	for _, ev := range podmanEvents(t, e) {
		if _, ok := ev.Actor.Attributes["podId"]; ok || ev.HealthStatus != nil {
			t.Errorf("a Podman field in dockerd's %+v", ev)
		}
	}
	if _, pending := e.HealthPending("web"); pending {
		t.Error("dockerd has no pending health")
	}
	resp, lines := rawLines(t, e, "/v4.3.1/libpod/containers/web/json")
	if resp.StatusCode != 404 || !strings.Contains(strings.Join(lines, ""), "page not found") {
		t.Errorf("libpod on dockerd: %d %q", resp.StatusCode, lines)
	}
}

// TestPodmanRandomMatchesTruth replays the Podman stream of random actions
// on the dockerd model of storm_test.go: what Podman's events tell must
// match Truth. Podman tells no OOM kill, and before 4.7 its events tell no
// health.
func TestPodmanRandomMatchesTruth(t *testing.T) {
	for _, version := range []string{"4.3.1", "4.9.4"} {
		t.Run(version, func(t *testing.T) {
			clock := newFakeClock()
			e, _ := start(t, Options{Podman: version, Now: clock.Now, EventBuffer: 1 << 16})
			e.Populate(200, 7)
			m := model{}
			for _, s := range e.Truth() {
				m[s.ID] = &modelCtr{Spec: s, hc: s.Healthcheck}
			}
			rng := rand.New(rand.NewPCG(3, 4))
			for i := range 3000 {
				if i%10 == 0 {
					clock.Add(time.Millisecond)
				}
				e.Random(rng)
			}
			clock.Add(time.Second) // every health result is due
			told := !versionLess(version, "4.7")
			for i, ev := range podmanEvents(t, e) {
				msg := events.Message{Type: events.Type(ev.Type), Action: events.Action(ev.Action),
					Actor: events.Actor{ID: ev.Actor.ID, Attributes: ev.Actor.Attributes}, TimeNano: ev.TimeNano}
				switch ev.Action {
				case "init", "cleanup", "exec_died", "restart":
					continue
				case "create":
					delete(msg.Actor.Attributes, "containerExitCode")
					delete(msg.Actor.Attributes, "podId")
				case "remove":
					msg.Action = events.ActionDestroy
				case "health_status":
					if !told {
						continue
					}
					msg.Action = events.Action("health_status: " + *ev.HealthStatus)
				}
				if err := m.apply(msg); err != nil {
					t.Fatalf("event %d: %v", i, err)
				}
			}
			truth := e.Truth()
			for i := range truth {
				truth[i].OOMKilled = false
				if !told {
					truth[i].Health = ""
				}
			}
			for _, c := range m {
				c.OOMKilled = false
				if !told {
					c.Health = ""
				}
			}
			for _, d := range m.diff(truth) {
				t.Error(d)
			}
		})
	}
}
