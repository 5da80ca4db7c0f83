# Tollgate: `make run` starts it, `make test` runs every test. Both install what is missing
# (Debian packages) first, so they work on a fresh Debian machine with Swift installed.

SWIFT      ?= swift
export PATH := $(PATH):/opt/swift/usr/bin
DATA_DIR   ?= .tollgate
SUDO       := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_PACKAGES := redis-server redis-tools libhiredis-dev pkg-config nginx-light

.PHONY: run test deps build release bench compare clean stop

## deps: install the Debian packages Tollgate builds and tests with, if any is missing.
deps:
	@missing=""; \
	for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release --product tollgate

## run: start a private redis-server (AOF on, unix socket under $(DATA_DIR)), install
## Tollgate's Lua, seed a demo account, and print how to drive it with the CLI.
run: release
	@scripts/run-embedded "$(DATA_DIR)" "$$($(SWIFT) build -c release --show-bin-path)/tollgate"

## stop: stop the redis-server that `make run` started.
stop:
	@if [ -f "$(DATA_DIR)/redis.pid" ]; then kill "$$(cat $(DATA_DIR)/redis.pid)" && echo "stopped"; else echo "not running"; fi

## test: the whole suite, against real redis-server processes the tests start.
test: deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build

## bench: the micro-benchmarks (ordo-one/package-benchmark).
bench: deps
	cd Benchmarks && $(SWIFT) package --allow-writing-to-package-directory benchmark

## compare: the engine against redis-benchmark running the same Lua, in one run.
compare: deps
	Benchmarks/compare-debit

clean:
	rm -rf .build
