package main

import (
	"os"
	"strings"
	"testing"

	"github.com/docker-exporter/docker_exporter/internal/promtest"
)

// TestReadmeQueriesRun runs every query of the README's PromQL examples
// through a real Prometheus: a query users copy must at least parse and
// evaluate.
func TestReadmeQueriesRun(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	queries := promqlExamples(string(readme))
	if len(queries) < 5 {
		t.Fatalf("found %d queries in the README's promql blocks, want the examples", len(queries))
	}
	p := promtest.StartPrometheus(t, "global:\n  scrape_interval: 1m\n", nil)
	for _, q := range queries {
		if _, err := p.Query(t, q); err != nil {
			t.Errorf("README query fails: %v\n%s", err, q)
		}
	}
}

// promqlExamples returns the queries of the ```promql blocks: each one is
// the lines after a comment, up to a blank line or the next comment.
func promqlExamples(markdown string) []string {
	var queries []string
	var current []string
	flush := func() {
		if len(current) > 0 {
			queries = append(queries, strings.Join(current, "\n"))
			current = nil
		}
	}
	inBlock := false
	for line := range strings.Lines(markdown) {
		line = strings.TrimRight(line, "\n")
		switch {
		case strings.HasPrefix(line, "```promql"):
			inBlock = true
		case inBlock && strings.HasPrefix(line, "```"):
			flush()
			inBlock = false
		case !inBlock:
		case strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#"):
			flush()
		default:
			current = append(current, line)
		}
	}
	return queries
}
