package collector

import (
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/docker-exporter/docker_exporter/store"
)

func scrapeHandler(t *testing.T, h http.Handler, acceptEncoding string) (*http.Response, string) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	if acceptEncoding != "" {
		req.Header.Set("Accept-Encoding", acceptEncoding)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	resp := rec.Result()
	var body io.Reader = resp.Body
	if resp.Header.Get("Content-Encoding") == "gzip" {
		gz, err := gzip.NewReader(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		body = gz
	}
	b, err := io.ReadAll(body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func TestHandlerServesTheExpositionThenTheExtraMetrics(t *testing.T) {
	extra := prometheus.NewRegistry()
	extra.MustRegister(prometheus.NewGauge(prometheus.GaugeOpts{Name: "extra_metric", Help: "An extra metric."}))
	h := Handler(New(fixedSource(mixed), Config{}), HandlerOpts{Extra: extra})
	plainResp, plain := scrapeHandler(t, h, "")
	if ct := plainResp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("content type %q", ct)
	}
	for _, want := range []string{`docker_container_state{name="batch",state="exited"} 1`, "docker_up 1", "extra_metric 0"} {
		if !strings.Contains(plain, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
	for _, enc := range []string{"gzip", "deflate, gzip;q=0.5", "GZIP"} {
		resp, body := scrapeHandler(t, h, enc)
		if resp.Header.Get("Content-Encoding") != "gzip" || body != plain {
			t.Errorf("Accept-Encoding %q: encoding %q, same body %t", enc, resp.Header.Get("Content-Encoding"), body == plain)
		}
	}
	for _, enc := range []string{"gzip;q=0", "deflate", "identity"} {
		if resp, _ := scrapeHandler(t, h, enc); resp.Header.Get("Content-Encoding") != "" {
			t.Errorf("Accept-Encoding %q got %q", enc, resp.Header.Get("Content-Encoding"))
		}
	}
}

// blockingSource holds each scrape inside Snapshot until released.
type blockingSource struct {
	entered, release chan struct{}
}

func (b blockingSource) Snapshot() store.Snapshot {
	b.entered <- struct{}{}
	<-b.release
	return store.Snapshot{}
}

func TestHandlerRefusesScrapesPastTheLimit(t *testing.T) {
	src := blockingSource{entered: make(chan struct{}), release: make(chan struct{})}
	h := Handler(New(src, Config{}), HandlerOpts{MaxRequestsInFlight: 1})
	done := make(chan int)
	go func() {
		resp, _ := scrapeHandler(t, h, "")
		done <- resp.StatusCode
	}()
	<-src.entered // the first scrape holds the only slot
	if resp, _ := scrapeHandler(t, h, ""); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("second scrape: %d, want 503", resp.StatusCode)
	}
	close(src.release)
	if code := <-done; code != http.StatusOK {
		t.Errorf("first scrape: %d", code)
	}
}
