package cgroupstats

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The search walks the tree once for every container there, again only for
// a container asked for after that walk began, and not at every ask for one
// that is nowhere.
func TestTheSearchWalksTheTreeOnlyForNewcomers(t *testing.T) {
	root := t.TempDir()
	id := func(c byte) string { return strings.Repeat(string(c), 64) }
	mkdir := func(rel string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Join(root, rel), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	mkdir("system.slice/docker-" + id('a') + ".scope")
	mkdir("docker/" + id('b'))
	mkdir("machine.slice/libpod-conmon-" + id('c') + ".scope")
	mkdir("machine.slice/libpod-" + id('c') + ".scope/container")
	mkdir("a/b/c/d/e/f/g/h/i/docker-" + id('d') + ".scope") // deeper than any runtime nests

	x := newIndex(root)
	find := func(id string) (string, bool) {
		t.Helper()
		dir, err := x.find(id)
		return strings.TrimPrefix(dir, root+"/"), err == nil
	}
	if dir, ok := find(id('a')); !ok || dir != "system.slice/docker-"+id('a')+".scope" {
		t.Fatalf("a: %q, %v", dir, ok)
	}
	first := x.walked
	if dir, ok := find(id('b')); !ok || dir != "docker/"+id('b') {
		t.Fatalf("b: %q, %v", dir, ok)
	}
	if dir, ok := find(id('c')); !ok || dir != "machine.slice/libpod-"+id('c')+".scope" {
		t.Fatalf("c: %q, %v; want the container's scope, not conmon's", dir, ok)
	}
	if x.walked != first {
		t.Fatal("containers the first walk saw cost another walk")
	}
	if _, ok := find(id('d')); ok {
		t.Fatal("found a cgroup deeper than maxSearchDepth")
	}
	if x.walked == first {
		t.Fatal("a container the last walk had not been asked for cost no walk")
	}
	second := x.walked
	for range 3 {
		if _, ok := find(id('d')); ok || x.walked != second {
			t.Fatal("a container found nowhere walked the tree again within retryMissing")
		}
	}
	// A container that starts after the last walk is found by the next.
	mkdir("system.slice/docker-" + id('e') + ".scope")
	if dir, ok := find(id('e')); !ok || dir != "system.slice/docker-"+id('e')+".scope" {
		t.Fatalf("e: %q, %v", dir, ok)
	}
}

func TestContainerIDInACgroupName(t *testing.T) {
	hex := strings.Repeat("0123456789abcdef", 4)
	for name, want := range map[string]string{
		hex:                                hex,
		"docker-" + hex + ".scope":         hex,
		"libpod-" + hex + ".scope":         hex,
		"cri-containerd-" + hex + ".scope": hex,
		hex + "0":                          "", // 65 digits: not an id
		"docker-" + hex[:63] + ".scope":    "",
		"docker-" + strings.ToUpper(hex):   "",
		"system.slice":                     "",
	} {
		got, ok := containerIDIn(name)
		if got != want || ok != (want != "") {
			t.Errorf("containerIDIn(%q) = %q, %v; want %q", name, got, ok, want)
		}
	}
}
