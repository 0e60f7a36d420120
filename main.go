// Command docker_exporter serves the state of a Docker daemon's containers as
// Prometheus metrics, from an in-memory store fed by the daemon's events.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/moby/moby/client"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/promslog"
	"github.com/prometheus/common/promslog/flag"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"
	"github.com/prometheus/exporter-toolkit/web/kingpinflag"

	"github.com/docker-exporter/docker_exporter/cgroupstats"
	"github.com/docker-exporter/docker_exporter/collector"
	"github.com/docker-exporter/docker_exporter/liveview"
	"github.com/docker-exporter/docker_exporter/podman"
	"github.com/docker-exporter/docker_exporter/stats"
	"github.com/docker-exporter/docker_exporter/store"
)

const (
	exporterName   = "docker_exporter"
	defaultAddress = ":9417"
	// shutdownGrace bounds how long in-flight scrapes may take to finish
	// after SIGINT/SIGTERM.
	shutdownGrace = 15 * time.Second
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// options are the parsed flags.
type options struct {
	dockerHost      string
	dockerTimeout   time.Duration
	containerLabels []string
	retention       time.Duration
	resyncInterval  time.Duration
	telemetryPath   string
	disableExporter bool
	maxRequests     int
	stats           statsOptions
	liveView        liveViewOptions
	web             *web.FlagConfig
	log             promslog.Config
}

// parseFlags parses args. done is true when the program should exit now
// with code (after --help, --version or a bad flag).
func parseFlags(args []string, stdout, stderr io.Writer) (opts options, code int, done bool) {
	app := kingpin.New(exporterName, "Prometheus exporter for the state of Docker containers, served from an event-fed cache.")
	app.Version(version.Print(exporterName))
	app.HelpFlag.Short('h')
	app.UsageWriter(stdout)
	app.ErrorWriter(stderr)
	app.Terminate(func(c int) { code, done = c, true })
	app.DefaultEnvars()

	app.Flag("docker.host", "Docker daemon address (unix://, tcp:// with DOCKER_TLS_VERIFY and DOCKER_CERT_PATH, ...).").
		Default(defaultDockerHost()).StringVar(&opts.dockerHost)
	app.Flag("docker.timeout", "Timeout of each request to the daemon (the event stream itself stays open).").
		Default("10s").SetValue(positiveDuration("docker.timeout", &opts.dockerTimeout))
	app.Flag("container.labels", "Container label keys to export on docker_container_labels; repeatable or comma-separated; '*' for all.").
		StringsVar(&opts.containerLabels)
	app.Flag("store.retention", "How long the counters of a destroyed container's name are kept, so that their last increase is scraped.").
		Default("15m").SetValue(positiveDuration("store.retention", &opts.retention))
	app.Flag("store.resync-interval", "How often to compare the state with one list of the daemon's containers and mend what lost events left wrong; 0 turns it off.").
		Default("1m").SetValue(nonNegativeDuration("store.resync-interval", &opts.resyncInterval))
	app.Flag("collector.stats", "Export the containers' resource usage (CPU, memory, network, block I/O, pids); --no-collector.stats turns it off entirely.").
		Default("true").BoolVar(&opts.stats.enabled)
	app.Flag("stats.source", "Where resource usage comes from: cgroup (the kernel's files, no daemon request), api (the Engine's stats API, one request per container per --stats.interval), or auto (cgroup where its files are readable and the daemon is local, else api).").
		Default("auto").SetValue(oneOf("stats.source", &opts.stats.source, "auto", "cgroup", "api"))
	app.Flag("stats.cgroup-root", "Where the host's cgroup filesystem is mounted (e.g. /host/sys/fs/cgroup in a container).").
		Default("/sys/fs/cgroup").StringVar(&opts.stats.cgroupRoot)
	app.Flag("stats.proc-root", "Where the host's /proc is mounted (e.g. /host/proc in a container).").
		Default("/proc").StringVar(&opts.stats.procRoot)
	app.Flag("stats.interval", "How often the containers' resource usage is sampled, in the background; a scrape serves the latest sample.").
		Default("15s").SetValue(positiveDuration("stats.interval", &opts.stats.interval))
	app.Flag("web.telemetry-path", "Path under which to expose metrics.").
		Default("/metrics").StringVar(&opts.telemetryPath)
	app.Flag("web.disable-exporter-metrics", "Exclude the exporter's own go_*, process_* and promhttp_* metrics.").
		BoolVar(&opts.disableExporter)
	app.Flag("web.max-requests", "Maximum number of parallel scrape requests; 0 means no limit.").
		Default("40").SetValue(nonNegativeInt("web.max-requests", &opts.maxRequests))
	app.Flag("web.live-view", "Serve the live view: a table of the containers on the landing page, kept current by a server-sent event stream ("+liveview.EventsPath+"), and the same state as JSON ("+liveview.ContainersPath+"); --no-web.live-view turns them off.").
		Default("true").BoolVar(&opts.liveView.enabled)
	app.Flag("web.live-view.max-clients", "Maximum number of live view event streams open at once; past it a new one gets 503.").
		Default("64").SetValue(positiveInt("web.live-view.max-clients", &opts.liveView.maxClients))
	opts.web = kingpinflag.AddFlags(app, defaultAddress)
	flag.AddFlags(app, &opts.log)

	_, err := app.Parse(args)
	if done {
		return opts, code, true
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: error: %v\n", exporterName, err)
		return opts, 2, true
	}
	opts.containerLabels = splitList(opts.containerLabels)
	if err := checkDockerHost(opts.dockerHost); err != nil {
		fmt.Fprintf(stderr, "%s: error: --docker.host: %v\n", exporterName, err)
		return opts, 2, true
	}
	if !strings.HasPrefix(opts.telemetryPath, "/") {
		fmt.Fprintf(stderr, "%s: error: --web.telemetry-path must start with /: %q\n", exporterName, opts.telemetryPath)
		return opts, 2, true
	}
	if opts.telemetryPath == "/" {
		fmt.Fprintf(stderr, "%s: error: --web.telemetry-path cannot be /, the landing page\n", exporterName)
		return opts, 2, true
	}
	if opts.liveView.enabled && (opts.telemetryPath == liveview.ContainersPath || opts.telemetryPath == liveview.EventsPath) {
		fmt.Fprintf(stderr, "%s: error: --web.telemetry-path cannot be %s, which the live view serves (or --no-web.live-view)\n", exporterName, opts.telemetryPath)
		return opts, 2, true
	}
	return opts, 0, false
}

// checkedFlag parses and checks a flag's value, and names the flag in its
// error, which kingpin's own typed flags do not.
type checkedFlag[T any] struct {
	name  string
	p     *T
	parse func(string) (T, error)
}

func (f *checkedFlag[T]) Set(s string) error {
	v, err := f.parse(s)
	if err != nil {
		return fmt.Errorf("--%s: %w", f.name, err)
	}
	*f.p = v
	return nil
}

func (f *checkedFlag[T]) String() string { return fmt.Sprint(*f.p) }

func positiveDuration(name string, p *time.Duration) *checkedFlag[time.Duration] {
	return &checkedFlag[time.Duration]{name, p, func(s string) (time.Duration, error) {
		d, err := time.ParseDuration(s)
		if err == nil && d <= 0 {
			err = fmt.Errorf("must be positive, got %s", s)
		}
		return d, err
	}}
}

func nonNegativeDuration(name string, p *time.Duration) *checkedFlag[time.Duration] {
	return &checkedFlag[time.Duration]{name, p, func(s string) (time.Duration, error) {
		d, err := time.ParseDuration(s)
		if err == nil && d < 0 {
			err = fmt.Errorf("must not be negative, got %s", s)
		}
		return d, err
	}}
}

func oneOf(name string, p *string, choices ...string) *checkedFlag[string] {
	return &checkedFlag[string]{name, p, func(s string) (string, error) {
		if !slices.Contains(choices, s) {
			return "", fmt.Errorf("must be one of %s, got %q", strings.Join(choices, ", "), s)
		}
		return s, nil
	}}
}

func positiveInt(name string, p *int) *checkedFlag[int] {
	return &checkedFlag[int]{name, p, func(s string) (int, error) {
		n, err := strconv.Atoi(s)
		if err == nil && n <= 0 {
			err = fmt.Errorf("must be positive, got %d", n)
		}
		return n, err
	}}
}

func nonNegativeInt(name string, p *int) *checkedFlag[int] {
	return &checkedFlag[int]{name, p, func(s string) (int, error) {
		n, err := strconv.Atoi(s)
		if err == nil && n < 0 {
			err = fmt.Errorf("must not be negative, got %d", n)
		}
		return n, err
	}}
}

func defaultDockerHost() string {
	if h := os.Getenv(client.EnvOverrideHost); h != "" {
		return h
	}
	return "unix:///var/run/docker.sock"
}

// checkDockerHost rejects an address the Docker client would accept but
// could never reach, so a typo stops the program instead of retrying forever.
func checkDockerHost(host string) error {
	scheme, rest, ok := strings.Cut(host, "://")
	if !ok || rest == "" {
		return fmt.Errorf("%q is not of the form unix:///path or tcp://host:port", host)
	}
	switch scheme {
	case "unix", "tcp", "http", "https", "npipe":
		return nil
	}
	return fmt.Errorf("unsupported scheme %q in %q (want unix, tcp, http, https or npipe)", scheme, host)
}

// splitList accepts both repeated flags and comma-separated values.
func splitList(in []string) []string {
	var out []string
	for _, v := range in {
		for part := range strings.SplitSeq(v, ",") {
			if part = strings.TrimSpace(part); part != "" {
				out = append(out, part)
			}
		}
	}
	return out
}

func run(args []string, stdout, stderr io.Writer) int {
	opts, code, done := parseFlags(args, stdout, stderr)
	if done {
		return code
	}
	opts.log.Writer = stderr
	logger := promslog.New(&opts.log)

	if err := web.Validate(*opts.web.WebConfigFile); err != nil {
		fmt.Fprintf(stderr, "%s: error: --web.config.file %s: %v\n", exporterName, *opts.web.WebConfigFile, oneLine(err))
		return 1
	}
	userAgent := exporterName + "/" + version.Version
	docker, err := client.New(
		client.WithHost(opts.dockerHost),
		client.WithTLSClientConfigFromEnv(),
		client.WithAPIVersionFromEnv(),
		client.WithUserAgent(userAgent),
	)
	if err != nil {
		fmt.Fprintf(stderr, "%s: error: --docker.host %s: %v\n", exporterName, opts.dockerHost, oneLine(err))
		return 1
	}
	defer docker.Close()

	if opts.stats.enabled && opts.stats.source == "cgroup" {
		// Asked for by name, unreadable files are a bad flag.
		if _, err := cgroupstats.New(cgroupstats.Config{CgroupRoot: opts.stats.cgroupRoot, ProcRoot: opts.stats.procRoot}); err != nil {
			fmt.Fprintf(stderr, "%s: error: --stats.source=cgroup: %v\n", exporterName, oneLine(err))
			return 1
		}
	}
	logger.Info("starting "+exporterName, "version", version.Info(), "build_context", version.BuildContext(), "docker_host", opts.dockerHost)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	// Against Podman's service, podman.Engine speaks its dialect; against
	// dockerd it is the client as it is.
	engine := podman.New(docker, podman.Config{UserAgent: userAgent, Timeout: opts.dockerTimeout, Logger: logger.With("component", "podman")})
	defer engine.Close()
	st := store.New(engine, store.Config{
		Retention:      opts.retention,
		Timeout:        opts.dockerTimeout,
		ResyncInterval: opts.resyncInterval,
		Logger:         logger.With("component", "store"),
	})
	var wg sync.WaitGroup
	storeCtx, stopStore := context.WithCancel(ctx)
	defer func() {
		stopStore()
		wg.Wait()
	}()
	wg.Go(func() { st.Run(storeCtx) })
	var usage collector.UsageSource
	if opts.stats.enabled {
		src, fallback, err := newStatsSource(opts, docker, st, logger)
		if err != nil {
			fmt.Fprintf(stderr, "%s: error: %v\n", exporterName, oneLine(err))
			return 1
		}
		sampler := stats.New(st, src, stats.Config{Interval: opts.stats.interval, Timeout: opts.dockerTimeout, Fallback: fallback,
			Hints: statsHints, Logger: logger.With("component", "stats")})
		wg.Go(func() { sampler.Run(storeCtx) })
		usage = sampler
	}

	// The live view follows the store until it stops, which ends every
	// event stream before the server's shutdown waits for its handlers.
	live := newLiveView(st, opts, logger)
	if live != nil {
		wg.Go(func() { live.Run(storeCtx) })
	}
	srv := &http.Server{
		Handler:           newMux(st, usage, live, opts, logger),
		ReadHeaderTimeout: 10 * time.Second,
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- web.ListenAndServe(srv, opts.web, logger) }()

	select {
	case err := <-serveErr:
		logger.Error("cannot serve HTTP", "err", err)
		return 1
	case <-ctx.Done():
	}
	logger.Info("shutting down: finishing in-flight scrapes, ending live view streams")
	stopStore()
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		logger.Error("shutdown did not finish in time", "err", err)
		return 1
	}
	if err := <-serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
		logger.Error("HTTP server failed", "err", err)
		return 1
	}
	return 0
}

// liveViewOptions are the flags of the live view.
type liveViewOptions struct {
	enabled    bool
	maxClients int
}

// newLiveView makes the live view's hub, or nil with --no-web.live-view.
// It serves nothing until Run.
func newLiveView(st *store.Store, opts options, logger *slog.Logger) *liveview.Hub {
	if !opts.liveView.enabled {
		return nil
	}
	return liveview.New(st, liveview.Config{
		Labels:     opts.containerLabels,
		MaxClients: opts.liveView.maxClients,
		Logger:     logger.With("component", "liveview"),
	})
}

// newMux serves the landing page and the metrics on a mux of its own, so
// nothing registered on http.DefaultServeMux (pprof, say) is exposed; with
// live (not nil), also the live view: its table on the landing page, and
// its API. Whatever the mux serves, web.ListenAndServe puts behind the
// --web.config.file's TLS and basic auth, as it wraps the whole handler.
func newMux(st *store.Store, usage collector.UsageSource, live *liveview.Hub, opts options, logger *slog.Logger) *http.ServeMux {
	extra := prometheus.NewRegistry()
	extra.MustRegister(versioncollector.NewCollector(exporterName))
	var handler http.Handler = collector.Handler(
		collector.New(st, collector.Config{Labels: opts.containerLabels, Usage: usage}),
		collector.HandlerOpts{
			Extra:               extra,
			ErrorLog:            logger,
			MaxRequestsInFlight: opts.maxRequests,
		})
	if !opts.disableExporter {
		extra.MustRegister(
			collectors.NewGoCollector(),
			collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		)
		handler = promhttp.InstrumentMetricHandler(extra, handler)
	}

	mux := http.NewServeMux()
	mux.Handle(opts.telemetryPath, handler)
	landingConfig := web.LandingConfig{
		Name:        exporterName,
		Description: "Prometheus exporter for the state of Docker containers",
		Version:     version.Info(),
		Links:       []web.LandingLinks{{Address: opts.telemetryPath, Text: "Metrics"}},
		// No pprof is served, so the page offers no profiles.
		Profiling: "false",
	}
	var landing http.Handler
	var err error
	if live != nil {
		mux.HandleFunc(liveview.ContainersPath, live.ServeContainers)
		mux.HandleFunc(liveview.EventsPath, live.ServeEvents)
		landingConfig.Links = append(landingConfig.Links,
			web.LandingLinks{Address: liveview.ContainersPath, Text: "Containers", Description: "the same state as JSON"})
		landing, err = live.LandingPage(landingConfig)
	} else {
		landing, err = web.NewLandingPage(landingConfig)
	}
	if err != nil {
		// Only a broken built-in template gets here.
		panic(err)
	}
	mux.Handle("/", landing)
	return mux
}

// statsOptions are the flags of the resource usage collector.
type statsOptions struct {
	enabled              bool
	source               string
	cgroupRoot, procRoot string
	interval             time.Duration
}

// newStatsSource picks where resource usage comes from, and says so once.
// The cgroup files of a daemon over TCP are on its own host, so auto takes
// them only for a unix socket, and only where they can be read.
// newStatsSource picks where usage comes from, and with
// --stats.source=auto the source to fall back to should the cgroup files
// prove unreadable for the running containers.
func newStatsSource(opts options, docker *client.Client, st *store.Store, logger *slog.Logger) (src, fallback stats.Source, err error) {
	api := func() stats.Source {
		return stats.NewAPISource(docker, func() uint64 { return uint64(max(st.Status().Daemon.MemTotal, 0)) })
	}
	useAPI := func(why string) stats.Source {
		logger.Info("resource usage from the Engine's stats API, sampled in the background", "reason", why, "interval", opts.stats.interval)
		return api()
	}
	cgroup := func() (stats.Source, error) {
		src, err := stats.NewCgroupSource(cgroupstats.Config{CgroupRoot: opts.stats.cgroupRoot, ProcRoot: opts.stats.procRoot})
		if err != nil {
			return nil, err
		}
		logger.Info("resource usage from the kernel's cgroup files, sampled in the background", "layout", src.Layout(),
			"cgroup_root", opts.stats.cgroupRoot, "proc_root", opts.stats.procRoot, "interval", opts.stats.interval)
		return src, nil
	}
	switch opts.stats.source {
	case "api":
		return useAPI("--stats.source=api"), nil, nil
	case "cgroup":
		src, err := cgroup()
		if err != nil {
			return nil, nil, fmt.Errorf("--stats.source=cgroup: %w", err)
		}
		return src, nil, nil
	}
	if !strings.HasPrefix(opts.dockerHost, "unix://") {
		return useAPI("the daemon is not on a local socket, so its cgroup files are out of sight"), nil, nil
	}
	src, err = cgroup()
	if err != nil {
		logger.Warn("cannot read the cgroup files; falling back to the Engine's stats API", "err", err, "hint", statsHints[stats.ReasonNoCgroup])
		return useAPI("the cgroup files cannot be read"), nil, nil
	}
	return src, api(), nil
}

// statsHints say what to do about each reason a container's usage cannot
// be read; the sampler logs one with the first failure of its reason.
var statsHints = map[string]string{
	stats.ReasonNoCgroup: "--stats.cgroup-root must be the host's cgroup tree: in a container, mount it read-only " +
		"(-v /sys/fs/cgroup:/host/sys/fs/cgroup:ro --stats.cgroup-root=/host/sys/fs/cgroup)",
	stats.ReasonNoPid: "--stats.proc-root must show the host's processes: in a container, mount the host's /proc " +
		"(-v /proc:/host/proc:ro --stats.proc-root=/host/proc)",
	stats.ReasonPermission: "run the exporter as a user that may read the host's /proc/<pid>/cgroup and cgroup files " +
		"(world-readable unless /proc has hidepid or a security module forbids it), or use --stats.source=api",
	stats.ReasonTimeout: "the daemon answers the stats API more slowly than --docker.timeout: give it more CPU, " +
		"raise --docker.timeout, or read the cgroup files (--stats.source=cgroup)",
}

func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}
