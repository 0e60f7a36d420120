package podman

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"go.uber.org/goleak"

	"github.com/docker-exporter/docker_exporter/internal/fakeengine"
	"github.com/docker-exporter/docker_exporter/store"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// follow starts a fake engine speaking dialect (a Podman version, or "" for
// dockerd) and a store following it through Engine.
func follow(t *testing.T, dialect string) (*fakeengine.Engine, *store.Store, *Engine) {
	t.Helper()
	fe := fakeengine.New(fakeengine.Options{Podman: dialect})
	t.Cleanup(func() { fe.Close() })
	if err := fe.ListenUnix(filepath.Join(t.TempDir(), "podman.sock")); err != nil {
		t.Fatal(err)
	}
	cli, err := client.New(client.WithHost(fe.Host()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	e := New(cli, Config{})
	s := store.New(e, store.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	waitFor(t, s, "synced", func(s store.Snapshot) bool { return s.Status.Up })
	return fe, s, e
}

func waitFor(t *testing.T, s *store.Store, what string, cond func(store.Snapshot) bool) store.Snapshot {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		snap := s.Snapshot()
		if cond(snap) {
			return snap
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited 10s for %s; store has %d containers, status %+v", what, len(snap.Containers), snap.Status)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func named(snap store.Snapshot, name string) *store.Container {
	for _, c := range snap.Containers {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func TestStoreFollowsPodmanThroughEngine(t *testing.T) {
	for _, version := range []string{"4.3.1", "4.9.4"} {
		t.Run(version, func(t *testing.T) {
			fe, s, _ := follow(t, version)
			if d := s.Snapshot().Status.Daemon; d.Flavor != store.FlavorPodman || d.Version != version {
				t.Fatalf("daemon %+v, want podman %s", d, version)
			}
			id := fe.Create(fakeengine.Spec{Name: "api", Pod: "shop", Labels: map[string]string{"team": "core"}, Healthcheck: true})
			if err := fe.Start(id); err != nil {
				t.Fatal(err)
			}
			snap := waitFor(t, s, "api running in its pod", func(s store.Snapshot) bool {
				c := named(s, "api")
				return c != nil && c.State == "running" && c.Pod == "shop"
			})
			if got := named(snap, "api").Labels; len(got) != 1 || got["team"] != "core" {
				t.Errorf("labels %v, want only team=core: Podman's containerExitCode and podId are no labels", got)
			}

			// Each check is followed, whichever way round Podman writes it.
			for i, status := range []string{"healthy", "unhealthy", "healthy", "unhealthy", "unhealthy", "healthy"} {
				if err := fe.Health(id, status); err != nil {
					t.Fatal(err)
				}
				waitFor(t, s, "check "+status, func(s store.Snapshot) bool {
					return named(s, "api").Health == status && s.Events[store.EventKind{Type: "container", Action: "health_status"}] == uint64(i+1)
				})
			}

			if err := fe.Destroy(id); err != nil {
				t.Fatal(err)
			}
			snap = waitFor(t, s, "api gone", func(s store.Snapshot) bool { return named(s, "api") == nil })
			if c := snap.Counts["api"]; c.Destroys != 1 || c.Deaths != 1 || c.Starts != 1 {
				t.Errorf("counts %+v, want one start, one death, one destroy", c)
			}
			for k := range snap.Events {
				if k.Action == "remove" {
					t.Errorf("events counted as %v: remove is a destroy", k)
				}
			}
			for _, action := range []string{"init", "exec_died"} {
				if snap.Events[store.EventKind{Type: "container", Action: action}] == 0 {
					t.Errorf("Podman's %s not counted: %v", action, snap.Events)
				}
			}
		})
	}
}

// Before 4.7 the event comes as the check starts, with the old status: the
// store must not show the result before it is recorded, nor the old status
// after.
func TestHealthBefore47WaitsForTheCheckToEnd(t *testing.T) {
	fe, s, _ := follow(t, "4.3.1")
	id := fe.Create(fakeengine.Spec{Name: "doc", Healthcheck: true})
	if err := fe.Start(id); err != nil {
		t.Fatal(err)
	}
	if err := fe.Health(id, "healthy"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, s, "doc healthy", func(s store.Snapshot) bool { c := named(s, "doc"); return c != nil && c.Health == "healthy" })
	if err := fe.Health(id, "unhealthy"); err != nil {
		t.Fatal(err)
	}
	due, pending := fe.HealthPending(id)
	if !pending {
		t.Fatal("the fake records 4.3's result later; nothing pending")
	}
	snap := waitFor(t, s, "doc unhealthy", func(s store.Snapshot) bool { return named(s, "doc").Health == "unhealthy" })
	if seen := snap.Status.LastEvent; seen.Before(due.Add(-time.Millisecond)) {
		t.Errorf("the result applied at %v, before the check ended at %v", seen, due)
	}
	if n := snap.Events[store.EventKind{Type: "container", Action: "health_status"}]; n != 2 {
		t.Errorf("%d health_status events counted, want one a check", n)
	}
}

func TestAgainstDockerEngineIsTheClient(t *testing.T) {
	fe, s, e := follow(t, "")
	if d := s.Snapshot().Status.Daemon; d.Flavor != store.FlavorDocker {
		t.Fatalf("daemon %+v, want docker", d)
	}
	id := fe.Create(fakeengine.Spec{Name: "web"})
	waitFor(t, s, "web", func(s store.Snapshot) bool { return named(s, "web") != nil })
	fe.ResetRequests()
	pod, err := e.ContainerPod(context.Background(), id)
	if pod != "" || err != nil {
		t.Errorf("ContainerPod = %q, %v; want none, without error", pod, err)
	}
	if n := fe.TotalRequests(); n != 0 {
		t.Errorf("ContainerPod against dockerd made %d requests (%v), want none", n, fe.Requests())
	}
	if err := fe.Destroy(id); err != nil {
		t.Fatal(err)
	}
	waitFor(t, s, "web destroyed", func(s store.Snapshot) bool { return s.Counts["web"].Destroys == 1 })
}

func TestPodNamesAreCachedByPod(t *testing.T) {
	fe, s, _ := follow(t, "4.9.4")
	fe.ResetRequests()
	// One after the other: inspects at the same moment may each look the
	// pod up before the first answer is cached.
	for _, spec := range []fakeengine.Spec{{Name: "a", Pod: "shop"}, {Name: "b", Pod: "shop"}, {Name: "c", Pod: "shop"}, {Name: "solo"}} {
		fe.Create(spec)
		waitFor(t, s, spec.Name+" with its pod", func(s store.Snapshot) bool {
			c := named(s, spec.Name)
			return c != nil && c.Pod == spec.Pod
		})
	}
	// solo shows with no pod before its inspect asked: wait for that.
	deadline := time.Now().Add(10 * time.Second)
	for fe.Requests()["GET /libpod/containers/{id}/json"] < 4 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	req := fe.Requests()
	if req["GET /libpod/containers/{id}/json"] != 4 || req["GET /libpod/pods/{id}/json"] != 1 {
		t.Errorf("requests %v: want one libpod inspect a container and one pod lookup", req)
	}
}

// Podman parses since as a float, so its replay may start a little early:
// what comes from before since is dropped, the event at since kept (the
// store recognises the ones it applied).
func TestEventsBeforeSinceAreDropped(t *testing.T) {
	const since = int64(1796121359433617057)
	mux := http.NewServeMux()
	mux.HandleFunc("/_ping", func(w http.ResponseWriter, _ *http.Request) { w.Header().Set("Api-Version", "1.41") })
	mux.HandleFunc("/v1.41/version", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, `{"Version":"4.3.1","ApiVersion":"1.41","Components":[{"Name":"Podman Engine","Version":"4.3.1","Details":{"APIVersion":"4.3.1"}}]}`)
	})
	mux.HandleFunc("/v1.41/events", func(w http.ResponseWriter, r *http.Request) {
		if got := r.URL.Query().Get("since"); got != "1796121359.433617057" {
			t.Errorf("since=%q", got)
		}
		for _, n := range []int64{since - 120, since, since + 1} {
			fmt.Fprintf(w, `{"Type":"container","Action":"start","Actor":{"ID":"c%d","Attributes":{"podId":""}},"time":%d,"timeNano":%d}`+"\n", n, n/1e9, n)
		}
	})
	sock := filepath.Join(t.TempDir(), "p.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	cli, err := client.New(client.WithHost("unix://"+sock), client.WithAPIVersion("1.41"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	e := New(cli, Config{})
	if _, err := e.ServerVersion(context.Background(), client.ServerVersionOptions{}); err != nil {
		t.Fatal(err)
	}
	stream := e.Events(context.Background(), client.EventsListOptions{Since: "1796121359.433617057"})
	var got []int64
	for {
		select {
		case ev := <-stream.Messages:
			got = append(got, ev.TimeNano)
			continue
		case err := <-stream.Err:
			if !errors.Is(err, io.EOF) {
				t.Errorf("stream ended with %v, want EOF", err)
			}
		}
		break
	}
	if want := []int64{since, since + 1}; !slices.Equal(got, want) {
		t.Errorf("events at %v, want %v", got, want)
	}
}
