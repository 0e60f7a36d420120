package scrape

import (
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/docker-exporter/docker_exporter/internal/wait"
)

// Target is an exporter's /metrics, wherever it runs.
type Target struct {
	URL    string
	Client *http.Client
	// Log, if set, tells what the exporter logged, for failure messages.
	Log func() string
}

// Get fetches /metrics once and returns the body of a 200.
func (t *Target) Get() ([]byte, error) {
	resp, err := t.Client.Get(t.URL)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %s", t.URL, resp.Status, body)
	}
	return body, nil
}

// Scrape fetches and parses /metrics; an error fails tb.
func (t *Target) Scrape(tb testing.TB) *Scrape {
	tb.Helper()
	body, err := t.Get()
	if err != nil {
		tb.Fatalf("scrape: %v%s", err, t.logTail())
	}
	return MustParse(tb, body)
}

// WaitFor scrapes until cond holds and returns that scrape. At the deadline
// (wait.Timeout) it fails, showing the last scrape's lines that contain any
// of show.
func (t *Target) WaitFor(tb testing.TB, what string, cond func(*Scrape) bool, show ...string) *Scrape {
	tb.Helper()
	var s *Scrape
	wait.For(tb, wait.Timeout, what, func() bool {
		s = t.Scrape(tb)
		return cond(s)
	}, func() string { return s.Lines(show...) + t.logTail() })
	return s
}

func (t *Target) logTail() string {
	if t.Log == nil {
		return ""
	}
	return "\nexporter output (tail):\n" + t.Log()
}
