# The README's test command is `make test`; .ci/run calls the same target.
GO        ?= go
VERSION   := $(shell cat VERSION)

# Release builds go through promu, pinned in the separate tools module
# (tools/go.mod) so that the exporter's own go.mod stays free of it. promu
# reads .promu.yml: static (CGO_ENABLED=0, netgo) and the version ldflags
# (version from VERSION; revision and branch from git; user, host, date).
# Only `promu build` is used: `promu crossbuild` would run Docker images.
GOOS      ?= $(shell $(GO) env GOOS)
GOARCH    ?= $(shell $(GO) env GOARCH)
PROMU     := $(GO) tool -modfile=tools/go.mod promu
# gotestsum (pinned in the same tools module) runs go test and prints a line
# per test and subtest, so the output names the engine each ran on, with
# the whole output of any test that failed.
GOTESTSUM := $(GO) tool -modfile=tools/go.mod gotestsum
BUILD_DIR := .build/$(GOOS)-$(GOARCH)

DOCKER            ?= docker
DOCKER_IMAGE_NAME ?= docker_exporter
DOCKER_IMAGE_TAG  ?= $(VERSION)
DOCKERFILE        ?= Dockerfile
# Extra `docker build` flags, e.g. --build-arg BASE_IMAGE=<a local base>.
DOCKER_BUILD_ARGS ?=

# The current Engine, which the integration tests cover beside Debian's
# dockerd 20.10: dockerd built from the Go module proxy (the containerd image
# store is on by default), run on Debian's containerd with a newer runc:
# Debian's 1.1.5 fails with it on the "time" namespace, and a runc without
# seccomp on its default profile (so cgo, libseccomp-dev and pkg-config).
# The versions are pinned here alone. Each binary is built once into a cache
# outside the clone, named by version; delete the folder to build it again.
DOCKERD_MODULE  := github.com/moby/moby/v2
DOCKERD_VERSION := v2.0.0-beta.24
RUNC_MODULE     := github.com/opencontainers/runc
RUNC_VERSION    := v1.5.3
ENGINES_DIR     ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/docker_exporter/engines
CURRENT_DOCKERD := $(ENGINES_DIR)/dockerd-$(DOCKERD_VERSION)/dockerd
CURRENT_RUNC    := $(ENGINES_DIR)/runc-$(RUNC_VERSION)/runc

.PHONY: all build promu docker tarball engines test vet bench clean

all: vet test build

# .build/<os>-<arch>/docker_exporter; e.g. `make build GOARCH=arm64`.
build:
	GOOS=$(GOOS) GOARCH=$(GOARCH) $(PROMU) build --prefix $(BUILD_DIR)

# Names the pinned promu and shows what it stamps into a build (it warns
# where the clone has no remote "origin"; the build does not need one). To move
# it: cd tools && go get -tool github.com/prometheus/promu@<version>.
promu:
	@$(GO) list -modfile=tools/go.mod -m -f '{{.Path}} {{.Version}}' github.com/prometheus/promu
	$(PROMU) info

# The image from $(DOCKERFILE) (or DOCKERFILE=Dockerfile.distroless) with the
# binary of `make build`, tagged $(DOCKER_IMAGE_TAG) and latest (the tag
# examples/compose uses). The build context is only the Dockerfile and that
# binary, streamed as a tar.
docker: build
	tar -c $(DOCKERFILE) $(BUILD_DIR)/docker_exporter | \
		$(DOCKER) build -f $(DOCKERFILE) --build-arg OS=$(GOOS) --build-arg ARCH=$(GOARCH) $(DOCKER_BUILD_ARGS) \
		-t $(DOCKER_IMAGE_NAME):$(DOCKER_IMAGE_TAG) -t $(DOCKER_IMAGE_NAME):latest -

# .tarballs/docker_exporter-<version>.<os>-<arch>.tar.gz: the binary and the
# files .promu.yml lists under tarball. (`promu tarball` names the archive
# after the git remote's repository, which a local clone does not have.)
TARBALL := docker_exporter-$(VERSION).$(GOOS)-$(GOARCH)
tarball: build
	rm -rf .tarballs/$(TARBALL)
	mkdir -p .tarballs/$(TARBALL)
	cp $(BUILD_DIR)/docker_exporter README.md CHANGELOG.md .tarballs/$(TARBALL)/
	tar -czf .tarballs/$(TARBALL).tar.gz -C .tarballs $(TARBALL)
	rm -rf .tarballs/$(TARBALL)

engines: $(CURRENT_DOCKERD) $(CURRENT_RUNC)

# dockerd reports the version it is stamped with (else "library-import").
$(CURRENT_DOCKERD):
	GOBIN=$(@D) $(GO) install -ldflags '-X $(DOCKERD_MODULE)/dockerversion.Version=$(DOCKERD_VERSION:v%=%)' \
		$(DOCKERD_MODULE)/cmd/dockerd@$(DOCKERD_VERSION)

$(CURRENT_RUNC):
	CGO_ENABLED=1 GOBIN=$(@D) $(GO) install -tags seccomp $(RUNC_MODULE)@$(RUNC_VERSION)

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l .)" || { echo "gofmt needed:"; gofmt -l .; exit 1; }

# Every test: unit, golden, and the integration tests against a private
# dockerd of each engine, Debian's and the current one of `make engines`
# (they skip without one unless DOCKER_EXPORTER_REQUIRE_DOCKERD=1, which
# .ci/run sets). internal/testdaemon reads the engines' paths from the
# environment.
#
# The dashboard generator is a module of its own, tested with -count=1: the
# JSON it checks lies outside that module, where the test cache does not look.
# The fuzz targets run briefly too; `go test` files any crasher under the
# package's testdata/fuzz/, to commit as a regression case.
FUZZTIME ?= 10s

test: vet engines
	DOCKER_EXPORTER_CURRENT_DOCKERD=$(CURRENT_DOCKERD) DOCKER_EXPORTER_CURRENT_RUNC=$(CURRENT_RUNC) \
		$(GOTESTSUM) --format testname --format-hide-empty-pkg -- -race -count=1 -timeout 30m ./...
	cd examples/grafana/generate && $(GO) vet ./... && $(GO) test -count=1 ./...
	$(GO) test -run '^$$' -fuzz '^FuzzEventSequence$$' -fuzztime $(FUZZTIME) ./store/
	$(GO) test -run '^$$' -fuzz '^FuzzLabelsGiveValidExposition$$' -fuzztime $(FUZZTIME) ./collector/

# Benchmarks; the figures go to BENCHMARKS.md with the machine and date.
# The end-to-end ones drive a real dockerd through the CLI (about 0.1 s per
# iteration outside the timer), so they run a fixed count; the resource ones
# measure the exporter binary once (idle CPU takes a minute).
E2E_BENCHTIME ?= 30x
BENCH_FILTER  := grep -E '^(Benchmark|goos|goarch|cpu|pkg|ok|FAIL|---)'

bench:
	@{ echo "# Benchmarks"; echo; \
	   echo "Measured $$(date -u +%Y-%m-%d) on $$(nproc) cores ($$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $$(awk '/MemTotal/ {printf "%.0f GiB", $$2/1048576}' /proc/meminfo), $$($(GO) version | cut -d' ' -f3), $$(uname -sr)."; \
	   echo "Run with \`make bench\`; what each measures is in the benchmark's doc comment. Raw \`go test -bench\` output:"; echo; echo '```'; \
	   $(GO) test -run '^$$' -bench . -benchmem -count=1 ./collector ./store ./stats ./cgroupstats ./internal/fakeengine ./liveview | $(BENCH_FILTER); \
	   $(GO) test -run '^$$' -bench 'Scrape50Containers|EventToMetric' -benchmem -count=1 -benchtime $(E2E_BENCHTIME) . | $(BENCH_FILTER); \
	   $(GO) test -run '^$$' -bench 'ExporterRSS|ExporterIdleCPU' -count=1 -benchtime 1x . | $(BENCH_FILTER); \
	   echo '```'; } > BENCHMARKS.md.tmp
	mv BENCHMARKS.md.tmp BENCHMARKS.md
	cat BENCHMARKS.md

clean:
	rm -f docker_exporter BENCHMARKS.md.tmp
	rm -rf .build .tarballs
