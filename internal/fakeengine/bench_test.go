package fakeengine

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"
)

// socketClient is a plain HTTP client on the engine's socket: it times the
// engine's answer without the moby client's decoding.
func socketClient(e *Engine) *http.Client {
	sock := strings.TrimPrefix(e.Host(), "unix://")
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
}

func listAll(tb testing.TB, hc *http.Client) int64 {
	resp, err := hc.Get("http://docker/v1.41/containers/json?all=1")
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		tb.Fatalf("status %d, %v", resp.StatusCode, err)
	}
	return n
}

func TestList10kIsFast(t *testing.T) {
	e, cli := start(t, Options{})
	e.Populate(10_000, 1)
	hc := socketClient(e)
	defer hc.CloseIdleConnections()

	began := time.Now()
	size := listAll(t, hc)
	cold := time.Since(began)
	warm := time.Hour
	for range 5 {
		began = time.Now()
		listAll(t, hc)
		warm = min(warm, time.Since(began))
	}
	began = time.Now()
	res, err := cli.ContainerList(timeout(t), client.ContainerListOptions{All: true})
	if err != nil || len(res.Items) != 10_000 {
		t.Fatalf("%d containers, %v", len(res.Items), err)
	}
	decoded := time.Since(began)
	t.Logf("list of 10,000 (%d KiB): %v first, %v after; with the moby client's decoding %v", size>>10, cold, warm, decoded)
	if limit := 100 * time.Millisecond; warm > limit && !raceEnabled {
		t.Errorf("list of 10,000 took %v, want under %v", warm, limit)
	}
}

func BenchmarkList10k(b *testing.B) {
	e := New(Options{})
	defer e.Close()
	if err := e.ListenUnix(b.TempDir() + "/d.sock"); err != nil {
		b.Fatal(err)
	}
	e.Populate(10_000, 1)
	hc := socketClient(e)
	defer hc.CloseIdleConnections()
	listAll(b, hc)
	b.ResetTimer()
	for b.Loop() {
		listAll(b, hc)
	}
}

// BenchmarkEventsToClient measures how many events a second reach one moby
// client through /events.
func BenchmarkEventsToClient(b *testing.B) {
	e := New(Options{StreamBuffer: 1 << 20})
	defer e.Close()
	if err := e.ListenUnix(b.TempDir() + "/d.sock"); err != nil {
		b.Fatal(err)
	}
	cli, err := client.New(client.WithHost(e.Host()))
	if err != nil {
		b.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithCancel(b.Context())
	defer cancel()
	res := cli.Events(ctx, client.EventsListOptions{})
	if err := e.WaitStreams(ctx, 1); err != nil {
		b.Fatal(err)
	}
	msg := events.Message{Type: events.ContainerEventType, Action: "start", Actor: events.Actor{
		ID:         strings.Repeat("c", 64),
		Attributes: map[string]string{"image": "nginx:1.27", "name": "shop-web-1", "com.docker.compose.project": "shop", "com.docker.compose.service": "web"},
	}}
	b.ResetTimer()
	began := time.Now()
	go func() {
		for range b.N {
			e.Emit(msg)
		}
	}()
	for i := range b.N {
		select {
		case <-res.Messages:
		case err := <-res.Err:
			b.Fatalf("after %d events: %v", i, err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(began).Seconds(), "events/s")
}

// BenchmarkRandom measures actions with their events, no stream open.
func BenchmarkRandom(b *testing.B) {
	e := New(Options{})
	defer e.Close()
	e.Populate(1000, 1)
	rng := rand.New(rand.NewPCG(1, 1))
	for b.Loop() {
		e.Random(rng)
	}
}

// BenchmarkEventsRaw measures how many events a second the engine pushes
// through /events to a reader that only counts lines.
func BenchmarkEventsRaw(b *testing.B) {
	e := New(Options{StreamBuffer: 1 << 20})
	defer e.Close()
	if err := e.ListenUnix(b.TempDir() + "/d.sock"); err != nil {
		b.Fatal(err)
	}
	hc := socketClient(e)
	defer hc.CloseIdleConnections()
	resp, err := hc.Get("http://docker/v1.41/events")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	msg := events.Message{Type: events.ContainerEventType, Action: "start", Actor: events.Actor{
		ID:         strings.Repeat("c", 64),
		Attributes: map[string]string{"image": "nginx:1.27", "name": "shop-web-1", "com.docker.compose.project": "shop", "com.docker.compose.service": "web"},
	}}
	b.ResetTimer()
	began := time.Now()
	go func() {
		for range b.N {
			e.Emit(msg)
		}
	}()
	buf := make([]byte, 64<<10)
	for lines := 0; lines < b.N; {
		n, err := resp.Body.Read(buf)
		if err != nil {
			b.Fatal(err)
		}
		lines += bytes.Count(buf[:n], []byte{'\n'})
	}
	b.ReportMetric(float64(b.N)/time.Since(began).Seconds(), "events/s")
}
