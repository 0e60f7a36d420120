package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

// committed is the dashboard in the repository, relative to this package.
// It lies outside this module, so go test's cache does not see it change:
// run these tests with -count=1.
const committed = "../dashboard.json"

func TestCommittedDashboardEqualsFreshGeneration(t *testing.T) {
	want, err := render()
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(committed)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs from the generator's output at %s; regenerate it with\n"+
			"  cd examples/grafana/generate && go run . -o ../dashboard.json",
			committed, firstDifference(string(got), string(want)))
	}
}

// The SDK's strict decoder checks the JSON against Grafana's schema: required
// fields present and non-null, known fields only, and each panel's options
// and each query of the types their plugin declares.
func TestCommittedDashboardDecodesWithTheSDKsStrictSchema(t *testing.T) {
	plugins.RegisterDefaultPlugins()
	b, err := os.ReadFile(committed)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard.Dashboard
	// It returns its error list as an error even when the list is empty.
	if err := d.UnmarshalJSONStrict(b); err != nil {
		if errs, ok := err.(cog.BuildErrors); !ok || len(errs) > 0 {
			t.Fatalf("%s: %v", committed, err)
		}
	}
	if d.Uid == nil || *d.Uid != dashboardUID || d.Title == nil || *d.Title != dashboardTitle {
		t.Errorf("uid %v, title %v; want %q, %q", d.Uid, d.Title, dashboardUID, dashboardTitle)
	}
}

func TestRunWritesTheSameDashboardToStdoutAndToAFile(t *testing.T) {
	want, err := render()
	if err != nil {
		t.Fatal(err)
	}
	var stdout bytes.Buffer
	if err := run("", &stdout); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(stdout.Bytes(), want) {
		t.Errorf("stdout: got %d bytes differing at %s", stdout.Len(), firstDifference(stdout.String(), string(want)))
	}

	path := filepath.Join(t.TempDir(), "dashboard.json")
	var none bytes.Buffer
	if err := run(path, &none); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("file: differs at %s", firstDifference(string(got), string(want)))
	}
	if none.Len() != 0 {
		t.Errorf("with a file, run also wrote %d bytes to stdout", none.Len())
	}
}

func TestRenderIsDeterministic(t *testing.T) {
	first, err := render()
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		again, err := render()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(first, again) {
			t.Fatalf("two renders differ at %s", firstDifference(string(first), string(again)))
		}
	}
}

// firstDifference names the first line where got and want differ.
func firstDifference(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := range max(len(g), len(w)) {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl || i >= len(g) || i >= len(w) {
			return fmt.Sprintf("line %d", i+1) + ":\n  got:  " + gl + "\n  want: " + wl
		}
	}
	return "no line (identical)"
}
