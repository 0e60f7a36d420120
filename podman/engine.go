// Package podman lets the store follow a Podman service (`podman system
// service`) through its Docker-compatible API. Engine wraps the moby client;
// while the daemon it reaches says it is Podman, it turns what Podman says
// differently into what dockerd would say, so that the store keeps one model:
//
//   - a container's `remove` event is Docker's `destroy`;
//   - `health_status` carries its status in a top-level HealthStatus field,
//     which the moby event type drops, so the stream is decoded here; before
//     Podman 4.7 the event is written when a check starts, so its result is
//     read from the container's health log once the check is over;
//   - the attributes Podman adds to every container event beside the labels
//     (containerExitCode, podId) are dropped;
//   - `since` is parsed by Podman as a float, which may replay a few events
//     from just before it: those are dropped;
//   - a container's pod comes from the libpod API (ContainerPod);
//   - the states Podman has and dockerd not ("stopped" between a death and
//     its cleanup, "stopping", "initialized") are worded as dockerd's.
//
// Everything else passes through: actions Docker does not have (init,
// cleanup, exec_died, …) reach the store, which counts and ignores them.
// Against dockerd, Engine is the moby client and nothing more.
package podman

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/client"

	"github.com/docker-exporter/docker_exporter/store"
)

// Config tunes an Engine.
type Config struct {
	// UserAgent is sent on the requests Engine makes itself (the event
	// stream and the libpod calls), as the client sends it on its own.
	UserAgent string
	// Timeout bounds each request Engine makes of its own accord, the
	// inspects that read a health check's result (default 10s).
	Timeout time.Duration
	Logger  *slog.Logger
}

// Engine is the store's view of a daemon that may be Podman.
type Engine struct {
	*client.Client
	cfg  Config
	http *http.Client

	mu     sync.Mutex
	daemon daemon
	pods   map[string]string // pod id -> name; pods are never renamed
}

var (
	_ store.Engine    = (*Engine)(nil)
	_ store.PodFinder = (*Engine)(nil)
)

// maxPods bounds the pod name cache; past it the cache starts over.
const maxPods = 1024

// daemon is what the last version answer said about the daemon.
type daemon struct {
	podman bool
	// libpod is the path prefix of Podman's own API, e.g. "/v4.3.1/libpod".
	libpod string
	// healthAtStart is true before Podman 4.7, which writes health_status
	// when a check starts rather than when its result is known.
	healthAtStart bool
}

// New wraps cli.
func New(cli *client.Client, cfg Config) *Engine {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	dial := cli.Dialer()
	return &Engine{
		Client: cli,
		cfg:    cfg,
		// The client's own transport is not exported; its dialer is, and
		// reaches the same socket (or TLS endpoint) as the client.
		http: &http.Client{Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) { return dial(ctx) },
		}},
		pods: make(map[string]string),
	}
}

// Close closes the connections Engine opened of its own and the client's.
func (e *Engine) Close() error {
	e.http.CloseIdleConnections()
	return e.Client.Close()
}

// ServerVersion is the client's, and tells Engine which daemon it talks
// to: the store asks at every (re)connect, before it subscribes to events.
func (e *Engine) ServerVersion(ctx context.Context, opts client.ServerVersionOptions) (client.ServerVersionResult, error) {
	v, err := e.Client.ServerVersion(ctx, opts)
	if err == nil {
		e.mu.Lock()
		e.daemon = daemonOf(v)
		e.mu.Unlock()
	}
	return v, err
}

func (e *Engine) current() daemon {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.daemon
}

var majorMinor = regexp.MustCompile(`^v?(\d+)\.(\d+)`)

func daemonOf(v client.ServerVersionResult) daemon {
	if store.FlavorOf(v) != store.FlavorPodman {
		return daemon{}
	}
	version, api := v.Version, ""
	for _, c := range v.Components {
		if strings.HasPrefix(strings.ToLower(c.Name), "podman") {
			version, api = c.Version, c.Details["APIVersion"]
		}
	}
	if api == "" {
		api = version
	}
	d := daemon{podman: true, libpod: "/v" + url.PathEscape(api) + "/libpod"}
	if m := majorMinor.FindStringSubmatch(version); m != nil {
		major, _ := strconv.Atoi(m[1])
		minor, _ := strconv.Atoi(m[2])
		d.healthAtStart = major < 4 || major == 4 && minor < 7
	}
	return d
}

// ContainerPod returns the name of the pod container id belongs to, ""
// when it is in none or the daemon is not Podman (then without a request).
func (e *Engine) ContainerPod(ctx context.Context, id string) (string, error) {
	d := e.current()
	if !d.podman {
		return "", nil
	}
	var c struct{ Pod string }
	if err := e.getJSON(ctx, d.libpod+"/containers/"+url.PathEscape(id)+"/json", &c); err != nil {
		return "", err
	}
	if c.Pod == "" {
		return "", nil
	}
	e.mu.Lock()
	name, ok := e.pods[c.Pod]
	e.mu.Unlock()
	if ok {
		return name, nil
	}
	var p struct{ Name string }
	if err := e.getJSON(ctx, d.libpod+"/pods/"+url.PathEscape(c.Pod)+"/json", &p); err != nil {
		return "", err
	}
	e.mu.Lock()
	if len(e.pods) >= maxPods {
		clear(e.pods)
	}
	e.pods[c.Pod] = p.Name
	e.mu.Unlock()
	return p.Name, nil
}

// get makes one GET request of Engine's own to the daemon and returns the
// response, whose body the caller closes, or an error that says what the
// daemon answered.
func (e *Engine) get(ctx context.Context, path string, query url.Values) (*http.Response, error) {
	u := url.URL{Scheme: "http", Host: "podman", Path: path, RawQuery: query.Encode()}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	if e.cfg.UserAgent != "" {
		req.Header.Set("User-Agent", e.cfg.UserAgent)
	}
	resp, err := e.http.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		var msg struct{ Message string }
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		if json.Unmarshal(body, &msg) != nil || msg.Message == "" {
			msg.Message = strings.TrimSpace(string(body))
		}
		return nil, fmt.Errorf("GET %s: %s: %s", path, resp.Status, msg.Message)
	}
	return resp, nil
}

func (e *Engine) getJSON(ctx context.Context, path string, v any) error {
	resp, err := e.get(ctx, path, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	return nil
}
