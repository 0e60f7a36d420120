# The README's test command is `make test`; .ci/run calls the same target.
GO        ?= go
VERSION   := $(shell cat VERSION)
REVISION  := $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
BRANCH    := $(shell git rev-parse --abbrev-ref HEAD 2>/dev/null || echo unknown)
VERSION_PKG := github.com/prometheus/common/version
LDFLAGS := -X $(VERSION_PKG).Version=$(VERSION) \
	-X $(VERSION_PKG).Revision=$(REVISION) \
	-X $(VERSION_PKG).Branch=$(BRANCH) \
	-X $(VERSION_PKG).BuildUser=$(shell id -un)@$(shell hostname) \
	-X $(VERSION_PKG).BuildDate=$(shell date -u +%Y%m%d-%H:%M:%S)

.PHONY: all build test vet bench clean

all: vet test build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o docker_exporter .

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l .)" || { echo "gofmt needed:"; gofmt -l .; exit 1; }

# Every test: unit, golden, and the integration tests against a private
# dockerd (they skip without one unless DOCKER_EXPORTER_REQUIRE_DOCKERD=1,
# which .ci/run sets).
test: vet
	$(GO) test -race -count=1 -timeout 30m ./...

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
	   $(GO) test -run '^$$' -bench . -benchmem -count=1 ./collector ./store ./internal/fakeengine | $(BENCH_FILTER); \
	   $(GO) test -run '^$$' -bench 'Scrape50Containers|EventToMetric' -benchmem -count=1 -benchtime $(E2E_BENCHTIME) . | $(BENCH_FILTER); \
	   $(GO) test -run '^$$' -bench 'ExporterRSS|ExporterIdleCPU' -count=1 -benchtime 1x . | $(BENCH_FILTER); \
	   echo '```'; } > BENCHMARKS.md.tmp
	mv BENCHMARKS.md.tmp BENCHMARKS.md
	cat BENCHMARKS.md

clean:
	rm -f docker_exporter BENCHMARKS.md.tmp
	rm -rf .build
