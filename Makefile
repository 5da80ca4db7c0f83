# Tollgate: `make run` starts it, `make test` runs every test. Both install what is missing
# (Debian packages) first, so they work on a fresh Debian machine with Swift installed.

SWIFT      ?= swift
export PATH := $(PATH):/opt/swift/usr/bin
DATA_DIR   ?= .tollgate
PORT       ?= 8080
SUDO       := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_PACKAGES := redis-server redis-tools libhiredis-dev pkg-config nginx-light chromium chromium-driver python3-selenium zbar-tools python3-venv

.PHONY: cluster cluster-stop cluster-demo run test deps test-deps build release bench bench-check bench-thresholds compare compare-debit lua-cost lua-instructions workloads http-bench report-memory stream-bench proxy-bench soak clean

## deps: install the Debian packages Tollgate builds and tests with, if any is missing.
deps:
	@missing=""; \
	for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

## test-deps: what only the tests use beyond Debian's packages: schemathesis (PyPI, pinned),
## in its own virtual environment under .build-schemathesis; the official openai SDK (PyPI,
## pinned), the OpenAI proxy's caller in its tests and benchmark, under .build-openai.
SCHEMATHESIS_VERSION := 4.32.5
OPENAI_VERSION := 3.51.0
test-deps: deps
	@[ -x .build-schemathesis/bin/schemathesis ] || { \
	  echo "installing schemathesis $(SCHEMATHESIS_VERSION) (PyPI) into .build-schemathesis"; \
	  python3 -m venv .build-schemathesis && .build-schemathesis/bin/pip install -q "schemathesis==$(SCHEMATHESIS_VERSION)"; }
	@.build-openai/bin/python -c 'import openai, sys; sys.exit(openai.__version__ != "$(OPENAI_VERSION)")' 2>/dev/null || { \
	  echo "installing openai $(OPENAI_VERSION) (PyPI) into .build-openai"; \
	  python3 -m venv .build-openai && .build-openai/bin/pip install -q "openai==$(OPENAI_VERSION)"; }

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release --product tollgate

## run: `tollgate serve --demo` on the embedded Redis (AOF on, unix socket, data in
## $(DATA_DIR)): seeds a demo account, prints the tokens and curl lines. ^C stops it.
run: release
	"$$($(SWIFT) build -c release --show-bin-path)/tollgate" serve --demo --data-dir "$(DATA_DIR)" --port "$(PORT)"

## test: the whole suite, against real redis-server processes the tests start; then the engine
## and HTTP suites again on local Redis Clusters (3 primaries, 3 replicas; TOLLGATE_TEST_REDIS=cluster).
## Each run is bounded (Tests/bounded): a hang fails, naming the tests still running.
test: test-deps
	$(SWIFT) build --build-tests
	Tests/bounded 25m $(SWIFT) test --skip-build --skip TollgateLoadTestTests
	# The load tests measure a machine under load: they run on their own, after the rest.
	Tests/bounded 10m $(SWIFT) test --skip-build --filter TollgateLoadTestTests
	TOLLGATE_TEST_REDIS=cluster Tests/bounded 20m $(SWIFT) test --skip-build --filter TollgateCoreTests --filter TollgateServerTests

## cluster: a local Redis Cluster (3 primaries, 3 replicas) on 127.0.0.1:7000-7005, data in
## .tollgate-cluster; prints the --redis-cluster seeds. `make cluster-stop` stops it.
cluster: deps
	Benchmarks/cluster start --dir .tollgate-cluster

cluster-stop:
	Benchmarks/cluster stop --dir .tollgate-cluster

## cluster-demo: throughput on 1 vs 3 primaries, then a reshard and a killed primary under load
## with the books checked afterwards (not part of CI).
cluster-demo: deps
	Benchmarks/cluster-demo

## bench: the micro-benchmarks (ordo-one/package-benchmark): money, prices, RESP, each Lua
## entry point, Redis round trips, in-process debits. Scratch path Benchmarks/.build-bench.
BENCH := cd Benchmarks && $(SWIFT) package --scratch-path .build-bench
bench: deps
	$(BENCH) --allow-writing-to-package-directory benchmark --target 'CoreBenchmarks|LuaBenchmarks|EngineBenchmarks'

## bench-check: allocations per operation against Benchmarks/Thresholds (the metric that is
## stable on a shared machine; instructions need perf counters, missing on this VM). Exit 2 on
## a regression. `make bench-thresholds` rewrites the thresholds after a deliberate change.
bench-check: deps
	$(BENCH) benchmark thresholds check --target 'CoreBenchmarks|LuaBenchmarks' --metric mallocCountTotal --no-progress

bench-thresholds: deps
	$(BENCH) --allow-writing-to-package-directory benchmark thresholds update --target 'CoreBenchmarks|LuaBenchmarks' --metric mallocCountTotal --no-progress

## compare: one table from one run: the redis-benchmark limit on Tollgate's authorize Lua,
## Tollgate in-process and over HTTP (loadtest and wrk), the Python `limits` library and a
## redis-py asyncio check-and-debit Lua (installed into .build-py/). See docs/PERFORMANCE.md.
compare: deps
	@command -v wrk >/dev/null || { $(SUDO) apt-get install -y -qq wrk; }
	@python3 -c 'import ensurepip' 2>/dev/null || { $(SUDO) apt-get install -y -qq python3-venv; }
	Benchmarks/compare

## compare-debit: the engine's debit and authorize against redis-benchmark, 1/16/64 callers.
compare-debit: deps
	Benchmarks/compare-debit
	Benchmarks/compare-debit --operation authorize --skip-build

## lua-cost: what each script costs inside Redis (INFO commandstats).
lua-cost: deps
	Benchmarks/lua-cost

## lua-instructions: instructions per FCALL authorize inside redis-server (valgrind callgrind).
lua-instructions: deps
	Benchmarks/lua-instructions

## workloads: tollgate loadtest per workload (calls, stream, hot), in-process and over HTTP.
workloads: deps
	Benchmarks/workloads

## http-bench: wrk against /v1/authorize, /v1/check and /healthz (needs Debian's wrk).
http-bench: deps
	@command -v wrk >/dev/null || { $(SUDO) apt-get install -y -qq wrk; }
	Benchmarks/http-bench

## report-memory: stream a transaction report over 1,000,000 ledger entries and print the
## server's resident memory (flat: it does not grow with the report).
report-memory: deps
	Benchmarks/report-memory

## stream-bench: debit-to-subscriber latency (p50/p99) with 1 and 1,000 SSE subscribers, events/s delivered.
stream-bench: release
	Benchmarks/stream-latency --subscribers 1 --debits 300 --binary "$$($(SWIFT) build -c release --show-bin-path)/tollgate"
	Benchmarks/stream-latency --subscribers 1000 --debits 300 --binary "$$($(SWIFT) build -c release --show-bin-path)/tollgate"

## proxy-bench: the OpenAI proxy beside a direct call to the same upstream, in one run: added
## latency to the first token and per chunk (p50, p99), proxied streams per second.
proxy-bench: release test-deps
	Benchmarks/proxy-bench --binary "$$($(SWIFT) build -c release --show-bin-path)/tollgate"

## soak: 10 minutes of mixed load against `tollgate serve` (release build); resident memory and
## fds sampled every 10 s. Exit 1 when the books, the error rate, the voids, RSS growth after
## the 60 s warm-up (over 10%) or the fd count (over +2) fail. Not part of `make test`.
soak: deps
	Benchmarks/soak 600s 400

clean:
	rm -rf .build
