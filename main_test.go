package main

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestFlagsFromArgsAndEnvironment(t *testing.T) {
	t.Setenv("DOCKER_EXPORTER_STORE_RETENTION", "1h")
	t.Setenv("DOCKER_EXPORTER_DOCKER_HOST", "tcp://10.0.0.1:2376")
	var stdout, stderr bytes.Buffer
	opts, code, done := parseFlags([]string{
		"--container.labels=a,b", "--container.labels", " c ", "--docker.timeout=3s",
	}, &stdout, &stderr)
	if done {
		t.Fatalf("exited %d: %s", code, stderr.String())
	}
	if want := []string{"a", "b", "c"}; !slices.Equal(opts.containerLabels, want) {
		t.Errorf("labels = %q, want %q", opts.containerLabels, want)
	}
	if opts.retention != time.Hour || opts.dockerTimeout != 3*time.Second {
		t.Errorf("retention %v, timeout %v", opts.retention, opts.dockerTimeout)
	}
	if opts.dockerHost != "tcp://10.0.0.1:2376" {
		t.Errorf("docker host %q", opts.dockerHost)
	}
	if opts.telemetryPath != "/metrics" || opts.maxRequests != 40 || opts.resyncInterval != time.Minute {
		t.Errorf("defaults: %+v", opts)
	}
}

func TestDockerHostDefaultsToDOCKER_HOST(t *testing.T) {
	t.Setenv("DOCKER_HOST", "unix:///run/user/1000/docker.sock")
	opts, _, done := parseFlags(nil, &bytes.Buffer{}, &bytes.Buffer{})
	if done || opts.dockerHost != "unix:///run/user/1000/docker.sock" {
		t.Errorf("docker host %q", opts.dockerHost)
	}
	t.Setenv("DOCKER_HOST", "")
	opts, _, _ = parseFlags(nil, &bytes.Buffer{}, &bytes.Buffer{})
	if opts.dockerHost != "unix:///var/run/docker.sock" {
		t.Errorf("docker host %q", opts.dockerHost)
	}
}

func TestBadFlagsStopWithOneLineNamingTheFlag(t *testing.T) {
	for _, tt := range []struct {
		args []string
		flag string
	}{
		{[]string{"--docker.timeout=abc"}, "--docker.timeout"},
		{[]string{"--store.retention=-1m"}, "--store.retention"},
		{[]string{"--store.resync-interval=-1s"}, "--store.resync-interval"},
		{[]string{"--store.resync-interval=often"}, "--store.resync-interval"},
		{[]string{"--stats.source=magic"}, "--stats.source"},
		{[]string{"--stats.interval=0s"}, "--stats.interval"},
		{[]string{"--stats.source=cgroup", "--stats.cgroup-root=/nonexistent", "--web.listen-address=127.0.0.1:0"}, "--stats.source=cgroup"},
		{[]string{"--web.max-requests=-3"}, "--web.max-requests"},
		{[]string{"--docker.host=/var/run/docker.sock"}, "--docker.host"},
		{[]string{"--docker.host=ftp://x"}, "--docker.host"},
		{[]string{"--web.telemetry-path=metrics"}, "--web.telemetry-path"},
		{[]string{"--log.level=loud"}, "loud"},
		{[]string{"--no-such-flag"}, "--no-such-flag"},
	} {
		var stderr bytes.Buffer
		code := run(tt.args, &bytes.Buffer{}, &stderr)
		lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
		if code == 0 || len(lines) != 1 || !strings.Contains(lines[0], tt.flag) {
			t.Errorf("%q: exit %d, stderr %q; want non-zero and one line naming %s", tt.args, code, stderr.String(), tt.flag)
		}
	}
}

func TestVersionAndHelpExitZero(t *testing.T) {
	for _, arg := range []string{"--version", "--help"} {
		var stdout, stderr bytes.Buffer
		if code := run([]string{arg}, &stdout, &stderr); code != 0 {
			t.Errorf("%s: exit %d, stderr %q", arg, code, stderr.String())
		}
		if !strings.Contains(stdout.String()+stderr.String(), "docker_exporter") {
			t.Errorf("%s printed %q", arg, stdout.String()+stderr.String())
		}
	}
}

func TestResyncIntervalZeroTurnsItOff(t *testing.T) {
	opts, code, done := parseFlags([]string{"--store.resync-interval=0"}, &bytes.Buffer{}, &bytes.Buffer{})
	if done || opts.resyncInterval != 0 {
		t.Errorf("--store.resync-interval=0: exit %d (%v), interval %v; want accepted as 0", code, done, opts.resyncInterval)
	}
}
