// Command generate writes the Grafana dashboard for docker_exporter as JSON.
//
//	go run .                          # to stdout
//	go run . -o ../dashboard.json     # to a file (the committed one)
//
// The committed examples/grafana/dashboard.json is its output; main_test.go
// fails when the two differ.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
)

func main() {
	out := flag.String("o", "", "write the dashboard to this file instead of stdout")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "generate: unexpected arguments %q\n", flag.Args())
		os.Exit(2)
	}
	if err := run(*out, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "generate:", err)
		os.Exit(1)
	}
}

// run writes the dashboard to path, or to stdout if path is "".
func run(path string, stdout io.Writer) error {
	b, err := render()
	if err != nil {
		return err
	}
	if path == "" {
		_, err = stdout.Write(b)
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// render is the dashboard as indented JSON with a final newline.
func render() ([]byte, error) {
	d, err := buildDashboard()
	if err != nil {
		return nil, fmt.Errorf("build dashboard: %w", err)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	// Keep PromQL's <, > and & readable in the JSON.
	enc.SetEscapeHTML(false)
	if err := enc.Encode(d); err != nil {
		return nil, fmt.Errorf("encode dashboard: %w", err)
	}
	return buf.Bytes(), nil
}
