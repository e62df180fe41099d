# wasmalived — the two commands a user needs are `make demo` and `make test`.
# Both run as root on Debian 12 and install what is missing first (scripts/setup.sh).

CARGO     ?= cargo
WASM      := --target wasm32-wasip2
GUESTS    := --workspace --exclude wasmalived --exclude wasmalived-e2e
# e2e tests build several namespaces each; two at a time suits a 2-core machine.
E2E_JOBS  ?= 2

.PHONY: all setup build plugins plugins-release test test-unit test-e2e demo bench lint fmt clean

all: build plugins

setup:
	@scripts/setup.sh

build:
	$(CARGO) build -p wasmalived -p wasmalived-e2e

## Guest plugins (stock + test fixtures) as wasm32-wasip2 components.
plugins:
	$(CARGO) build $(WASM) $(GUESTS)

plugins-release:
	$(CARGO) build --release $(WASM) $(GUESTS)

## The whole test suite: unit + integration tests of the daemon, then the namespace e2e tests.
test: setup plugins
	$(CARGO) build -p wasmalived -p wasmalived-e2e
	CARGO=$(CARGO) E2E_JOBS=$(E2E_JOBS) scripts/test.sh

## Two-node namespace demo (see README).
demo: setup plugins
	$(CARGO) build -p wasmalived
	scripts/demo.sh

## Benchmarks (not tests): plugin check cost vs fork/exec, failover timing vs keepalived.
bench: setup plugins-release
	$(CARGO) bench -p wasmalived
	$(CARGO) build --release -p wasmalived -p wasmalived-e2e
	WASMALIVED_BIN=target/release/wasmalived target/release/failover_bench

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy -p wasmalived -p wasmalived-e2e --all-targets -- -D warnings
	$(CARGO) clippy $(WASM) $(GUESTS) -- -D warnings

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
