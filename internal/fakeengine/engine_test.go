package fakeengine

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"go.uber.org/goleak"
)

// mixed is one container in each state, created in this order.
func mixed(clock *fakeClock) []Spec {
	t0 := clock.Now().Add(-time.Hour)
	return []Spec{
		{ID: strings.Repeat("a", 64), Name: "created", State: "created", Healthcheck: true, Created: t0},
		{ID: strings.Repeat("b", 64), Name: "web", State: "running", Health: "healthy", RestartCount: 2,
			Labels: map[string]string{"com.docker.compose.project": "shop", "tier": "front"}, Created: t0, Started: t0.Add(time.Minute)},
		{ID: strings.Repeat("c", 64), Name: "paused", State: "paused", Created: t0, Started: t0},
		{ID: strings.Repeat("d", 64), Name: "flappy", State: "restarting", ExitCode: 2, RestartCount: 7, Created: t0},
		{ID: strings.Repeat("e", 64), Name: "oomed", State: "exited", ExitCode: 137, OOMKilled: true, Health: "unhealthy", FailingStreak: 4,
			Labels: map[string]string{"com.docker.compose.project": "shop"}, Created: t0, Started: t0, Finished: t0.Add(30 * time.Minute)},
		{ID: strings.Repeat("f", 64), Name: "dead", State: "dead", Created: t0},
	}
}

func names(items []container.Summary) string {
	var out []string
	for _, c := range items {
		out = append(out, strings.Join(c.Names, ","))
	}
	return strings.Join(out, " ")
}

func TestList(t *testing.T) {
	clock := newFakeClock()
	e, cli := start(t, Options{Now: clock.Now})
	e.Add(mixed(clock)...)
	ctx := timeout(t)

	list := func(opts client.ContainerListOptions) string {
		t.Helper()
		res, err := cli.ContainerList(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		return names(res.Items)
	}
	for _, tc := range []struct {
		name string
		opts client.ContainerListOptions
		want string
	}{
		{"running ones without all", client.ContainerListOptions{}, "/flappy /paused /web"},
		{"all, newest first", client.ContainerListOptions{All: true}, "/dead /oomed /flappy /paused /web /created"},
		{"id regexp", client.ContainerListOptions{All: true, Filters: make(client.Filters).Add("id", "^eee")}, "/oomed"},
		{"name", client.ContainerListOptions{All: true, Filters: make(client.Filters).Add("name", "web")}, "/web"},
		{"anchored name", client.ContainerListOptions{All: true, Filters: make(client.Filters).Add("name", "^/?dea")}, "/dead"},
		{"status implies all", client.ContainerListOptions{Filters: make(client.Filters).Add("status", "exited", "created")}, "/oomed /created"},
		{"label key", client.ContainerListOptions{All: true, Filters: make(client.Filters).Add("label", "com.docker.compose.project")}, "/oomed /web"},
		{"label key=value, all must hold", client.ContainerListOptions{All: true, Filters: make(client.Filters).Add("label", "com.docker.compose.project=shop", "tier=front")}, "/web"},
		{"health", client.ContainerListOptions{All: true, Filters: make(client.Filters).Add("health", "unhealthy")}, "/oomed"},
		{"exited code", client.ContainerListOptions{All: true, Filters: make(client.Filters).Add("exited", "137")}, "/oomed"},
		{"limit includes stopped", client.ContainerListOptions{Limit: 2}, "/dead /oomed"},
	} {
		if got := list(tc.opts); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}

	res, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: make(client.Filters).Add("name", "web")})
	if err != nil {
		t.Fatal(err)
	}
	web := res.Items[0]
	if web.State != "running" || web.Status != "Up 59 minutes (healthy)" || web.Labels["tier"] != "front" ||
		!strings.HasPrefix(web.ImageID, "sha256:") || web.Image != "busybox:latest" || web.Created != clock.Now().Add(-time.Hour).Unix() {
		t.Errorf("summary: %+v", web)
	}
	if web.Health != nil {
		t.Errorf("API 1.41 has no Health in the summary: %+v", web.Health)
	}

	for _, bad := range []client.Filters{
		make(client.Filters).Add("bogus", "x"),
		make(client.Filters).Add("ancestor", "busybox"), // known, not emulated
		make(client.Filters).Add("status", "sleeping"),
	} {
		_, err := cli.ContainerList(ctx, client.ContainerListOptions{Filters: bad})
		if !cerrdefs.IsInvalidArgument(err) {
			t.Errorf("filter %v: got %v, want an invalid argument", bad, err)
		}
	}
}

func TestListHealthFromAPI152(t *testing.T) {
	clock := newFakeClock()
	e, cli := start(t, Options{Now: clock.Now, APIVersion: "1.52"})
	e.Add(mixed(clock)...)
	res, err := cli.ContainerList(timeout(t), client.ContainerListOptions{All: true})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]container.HealthStatus{}
	for _, c := range res.Items {
		got[c.Names[0]] = c.Health.Status
	}
	if got["/web"] != "healthy" || got["/oomed"] != "none" || got["/paused"] != "none" {
		t.Errorf("health summaries: %v", got)
	}
}

func TestInspect(t *testing.T) {
	clock := newFakeClock()
	e, cli := start(t, Options{Now: clock.Now})
	e.Add(mixed(clock)...)
	ctx := timeout(t)

	for _, ref := range []string{strings.Repeat("e", 64), "oomed", "/oomed", "eeee"} {
		res, err := cli.ContainerInspect(ctx, ref, client.ContainerInspectOptions{})
		if err != nil {
			t.Fatalf("inspect %s: %v", ref, err)
		}
		c := res.Container
		s := c.State
		if c.Name != "/oomed" || s.Status != "exited" || s.Running || s.ExitCode != 137 || !s.OOMKilled ||
			s.Health == nil || s.Health.Status != "unhealthy" || s.Health.FailingStreak != 4 ||
			s.FinishedAt != clock.Now().Add(-30*time.Minute).Format(time.RFC3339Nano) ||
			c.Config.Labels["com.docker.compose.project"] != "shop" || c.Config.Image != "busybox:latest" {
			t.Errorf("inspect %s: %+v %+v", ref, c, s)
		}
	}

	res, err := cli.ContainerInspect(ctx, "created", client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if s := res.Container.State; s.Health != nil || s.StartedAt != zeroTime || res.Container.Config.Healthcheck == nil {
		t.Errorf("a created container has a health check but no health yet: %+v %+v", s, res.Container.Config)
	}
	res, err = cli.ContainerInspect(ctx, "flappy", client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if s := res.Container.State; s.Status != "restarting" || !s.Running || !s.Restarting || res.Container.RestartCount != 7 {
		t.Errorf("restarting: %+v", s)
	}

	_, err = cli.ContainerInspect(ctx, "nosuch", client.ContainerInspectOptions{})
	if !cerrdefs.IsNotFound(err) || !strings.Contains(err.Error(), "No such container: nosuch") {
		t.Errorf("missing container: got %v, want NotFound", err)
	}
}

func TestPingInfoVersion(t *testing.T) {
	clock := newFakeClock()
	e, cli := start(t, Options{Now: clock.Now})
	e.Add(mixed(clock)...)
	ctx := timeout(t)

	ping, err := cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true})
	if err != nil {
		t.Fatal(err)
	}
	if ping.APIVersion != "1.41" || ping.OSType != "linux" || cli.ClientVersion() != "1.41" {
		t.Errorf("ping %+v, client version %s", ping, cli.ClientVersion())
	}
	info, err := cli.Info(ctx, client.InfoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	i := info.Info
	if i.SystemTime != clock.Now().Format(time.RFC3339Nano) || i.ServerVersion != "20.10.24" || i.OSType != "linux" ||
		i.Containers != 6 || i.ContainersRunning != 2 || i.ContainersPaused != 1 || i.ContainersStopped != 3 {
		t.Errorf("info: %+v", i)
	}
	ver, err := cli.ServerVersion(ctx, client.ServerVersionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ver.APIVersion != "1.41" || ver.Version != "20.10.24" || ver.Os != "linux" || ver.Arch != runtime.GOARCH {
		t.Errorf("version: %+v", ver)
	}
	want := map[string]int{"HEAD /_ping": 1, "GET /info": 1, "GET /version": 1}
	if got := e.Requests(); !equalCounts(got, want) {
		t.Errorf("requests %v, want %v", got, want)
	}
}

func equalCounts(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestRequests(t *testing.T) {
	clock := newFakeClock()
	e, cli := start(t, Options{Now: clock.Now})
	e.Add(mixed(clock)...)
	ctx := timeout(t)

	for range 3 {
		if _, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true}); err != nil {
			t.Fatal(err)
		}
	}
	for _, ref := range []string{"web", strings.Repeat("b", 64), "nosuch"} {
		_, _ = cli.ContainerInspect(ctx, ref, client.ContainerInspectOptions{})
	}
	want := map[string]int{"HEAD /_ping": 1, "GET /containers/json": 3, "GET /containers/{id}/json": 3}
	if got := e.Requests(); !equalCounts(got, want) || e.TotalRequests() != 7 {
		t.Errorf("requests %v (total %d), want %v", got, e.TotalRequests(), want)
	}
	resp, _ := rawLines(t, e, "/v1.41/nothing/here")
	if resp.StatusCode != 404 || e.Requests()["GET /nothing/here"] != 1 {
		t.Errorf("unknown path: status %d, requests %v", resp.StatusCode, e.Requests())
	}
	resp, _ = rawLines(t, e, "/v1.99/info")
	if resp.StatusCode != 400 {
		t.Errorf("a too new version: status %d, want 400", resp.StatusCode)
	}
	e.ResetRequests()
	if e.TotalRequests() != 0 || len(e.Requests()) != 0 {
		t.Errorf("after reset: %v", e.Requests())
	}
}

func TestFaults(t *testing.T) {
	clock := newFakeClock()
	e, cli := start(t, Options{Now: clock.Now})
	e.Add(mixed(clock)...)
	ctx := timeout(t)

	e.FailList(500)
	_, err := cli.ContainerList(ctx, client.ContainerListOptions{})
	if !cerrdefs.IsInternal(err) || !strings.Contains(err.Error(), "injected list failure") {
		t.Errorf("FailList(500): got %v", err)
	}
	e.FailList(0)
	if _, err := cli.ContainerList(ctx, client.ContainerListOptions{}); err != nil {
		t.Errorf("after FailList(0): %v", err)
	}
	e.FailInspect(503)
	if _, err := cli.ContainerInspect(ctx, "web", client.ContainerInspectOptions{}); !cerrdefs.IsUnavailable(err) {
		t.Errorf("FailInspect(503): got %v", err)
	}
	e.FailInspect(0)

	e.HangInspect(true)
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	began := time.Now()
	_, err = cli.ContainerInspect(short, "web", client.ContainerInspectOptions{})
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(began) < 100*time.Millisecond {
		t.Errorf("HangInspect: got %v after %v", err, time.Since(began))
	}

	// A lifted hang lets the waiting request go on.
	e.HangList(true)
	done := make(chan error, 1)
	go func() {
		_, err := cli.ContainerList(ctx, client.ContainerListOptions{})
		done <- err
	}()
	if err := e.waitFor(ctx, func() bool { return e.requests["GET /containers/json"] == 3 }); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		t.Fatalf("list returned during the hang: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	e.HangList(false)
	if err := <-done; err != nil {
		t.Errorf("list after the hang: %v", err)
	}

	e.HangInspect(false)
	e.VanishBetweenListAndInspect("web")
	res, err := cli.ContainerList(ctx, client.ContainerListOptions{})
	if err != nil || !strings.Contains(names(res.Items), "/web") {
		t.Errorf("a vanishing container is still listed: %v %v", names(res.Items), err)
	}
	if _, err := cli.ContainerInspect(ctx, "web", client.ContainerInspectOptions{}); !cerrdefs.IsNotFound(err) {
		t.Errorf("vanished: got %v, want NotFound", err)
	}
	e.ClearFaults()
	if _, err := cli.ContainerInspect(ctx, "web", client.ContainerInspectOptions{}); err != nil {
		t.Errorf("after ClearFaults: %v", err)
	}
}

func TestLatency(t *testing.T) {
	e, cli := start(t, Options{InspectLatency: 50 * time.Millisecond})
	id := e.Create(Spec{Name: "slow"})
	began := time.Now()
	if _, err := cli.ContainerInspect(timeout(t), id, client.ContainerInspectOptions{}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(began); d < 50*time.Millisecond {
		t.Errorf("inspect took %v, want at least the latency", d)
	}
}

func TestUnreachable(t *testing.T) {
	e, cli := start(t, Options{})
	ctx := timeout(t)
	res := subscribe(t, e, cli, client.EventsListOptions{})

	if err := e.SetUnreachable(true); err != nil {
		t.Fatal(err)
	}
	if err := streamErr(t, res); err == nil {
		t.Error("the stream ended without an error")
	}
	_, err := cli.Ping(ctx, client.PingOptions{})
	if !client.IsErrConnectionFailed(err) {
		t.Errorf("ping while unreachable: got %v, want a connection failure", err)
	}
	if err := e.SetUnreachable(false); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Ping(ctx, client.PingOptions{}); err != nil {
		t.Errorf("ping when reachable again: %v", err)
	}
}

func TestListenTCP(t *testing.T) {
	e := New(Options{})
	defer e.Close()
	addr, err := e.ListenTCP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if e.Host() != "tcp://"+addr {
		t.Errorf("host %s for %s", e.Host(), addr)
	}
	cli, err := client.New(client.WithHost(e.Host()))
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	if _, err := cli.Ping(timeout(t), client.PingOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestPopulateIsDeterministic(t *testing.T) {
	clock := newFakeClock()
	a, b := New(Options{Now: clock.Now}), New(Options{Now: clock.Now})
	a.Populate(500, 42)
	b.Populate(500, 42)
	ta, tb := a.Truth(), b.Truth()
	if len(ta) != 500 || !slices.EqualFunc(ta, tb, func(x, y Spec) bool {
		return x.ID == y.ID && x.State == y.State && x.Name == y.Name && x.Started.Equal(y.Started)
	}) {
		t.Fatal("the same seed gave different containers")
	}
	states := map[string]int{}
	for _, s := range ta {
		states[s.State]++
	}
	for _, s := range validStates {
		if states[s] == 0 {
			t.Errorf("no %s container among %v", s, states)
		}
	}
	_ = a.Close()
	_ = b.Close()
}

// TestCloseEndsEverything closes the engine in the middle of a hanging
// inspect, a hanging list and two streams: when Close returns, no handler
// may be left.
func TestCloseEndsEverything(t *testing.T) {
	e, cli := start(t, Options{})
	e.Populate(10, 1)
	ctx := timeout(t)
	subscribe(t, e, cli, client.EventsListOptions{})
	subscribe(t, e, cli, client.EventsListOptions{Since: "0"})
	e.HangInspect(true)
	e.HangList(true)
	errs := make(chan error, 2)
	go func() {
		_, err := cli.ContainerInspect(ctx, e.Truth()[0].ID, client.ContainerInspectOptions{})
		errs <- err
	}()
	go func() {
		_, err := cli.ContainerList(ctx, client.ContainerListOptions{})
		errs <- err
	}()
	if err := e.waitFor(ctx, func() bool {
		return e.requests["GET /containers/{id}/json"] == 1 && e.requests["GET /containers/json"] == 1
	}); err != nil {
		t.Fatal(err)
	}

	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1<<20)
	if stacks := string(buf[:runtime.Stack(buf, true)]); strings.Contains(stacks, "fakeengine.(*Engine).ServeHTTP") {
		t.Errorf("a handler outlived Close:\n%s", stacks)
	}
	for range 2 {
		if err := <-errs; err == nil {
			t.Error("a hanging request succeeded after Close")
		}
	}
	_ = cli.Close()
	goleak.VerifyNone(t)
}
