# wasmalived — the two commands a user needs are `make demo` and `make test`.
# Both run as root on Debian 12 and install what is missing first (scripts/setup.sh).

CARGO     ?= cargo
WASM      := --target wasm32-wasip2
# The guest crates: everything but the host crates and the e2e crate.
HOSTS     := wasmalived wasmalived-proto wasmalived-config wasmalived-sys wasmalived-lvs wasmalived-plugin-host wasmalived-testkit wasmalived-e2e wasmalived-wit-c
GUESTS    := --workspace $(foreach c,$(HOSTS),--exclude $(c))
# The plugin SDK and the stock plugins: their unit tests run natively against fakes, so they
# are linted for the host target too.
SDK_CRATES := wasmalived-plugin-sdk plugin-nginx-process plugin-http plugin-tcp plugin-dns plugin-smtp plugin-disk-lock plugin-quorum plugin-file
# e2e tests build several namespaces each; two at a time suits a 2-core machine.
E2E_JOBS  ?= 2
# The daemon the tests run: root-only integration tests and fault injection compiled in
# (never in `make build` or the package). One feature set everywhere, so nothing rebuilds
# the binary between the suites.
TEST_FEATURES := --features wasmalived/lab-tests,wasmalived/fault-injection,wasmalived-lvs/lab-tests

.PHONY: all setup build plugins plugins-release deb check test vm-test demo bench hot-symbols chaos fuzz fuzz-cmin lint fmt clean

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

## The Debian package (target/deb/wasmalived_VERSION_ARCH.deb): the release daemon, without
## the test features, and the release stock plugins (scripts/build-deb.sh says what goes where).
deb: plugins-release
	$(CARGO) build --release -p wasmalived
	scripts/build-deb.sh --profile release

## The contributors' loop: every unit, simulation and integration test that needs neither
## root nor keepalived nor network namespaces (no setup, no sudo).
check: plugins
	$(CARGO) test --workspace --exclude wasmalived-e2e

## The whole test suite (root): everything `check` runs plus the root-only integration tests
## (`--features lab-tests`; among them the plugins in Python, JavaScript and C and the
## `plugin new` projects, built with the toolchains setup installs and `wasmalived-wit-c`)
## and the namespace e2e tests.
## The build is `cargo test --no-run` over the unit suite's own package set, so the daemon the
## e2e tests run and every test binary share one resolution of features (dev-dependencies turn
## on tokio's `test-util`; a plain `cargo build` first would compile wasmtime and the daemon twice).
test: setup plugins
	$(CARGO) test --no-run --workspace --exclude wasmalived-e2e $(TEST_FEATURES)
	$(CARGO) build -p wasmalived-wit-c -p wasmalived-e2e
	CARGO=$(CARGO) E2E_JOBS=$(E2E_JOBS) TEST_FEATURES="$(TEST_FEATURES)" scripts/test.sh

## The IPVS backend against a real kernel: Debian's kernel and its ip_vs modules in a
## software-emulated VM (qemu, TCG; a few minutes), wasmalived programming IPVS and ipvsadm
## reading it back, then keepalived's LVS samples run by keepalived and by wasmalived with
## the stock checker plugins, table against table (scripts/ipvs-vm.sh, tests/tests/ipvs_vm.rs).
## Not part of `make test`: this machine's kernel has no IPVS, and the first run downloads
## Debian's kernel package.
vm-test:
	@command -v qemu-system-x86_64 >/dev/null || apt-get install -y qemu-system-x86
	@command -v keepalived >/dev/null || apt-get install -y keepalived
	$(CARGO) build $(WASM) -p plugin-tcp -p plugin-http -p plugin-dns -p plugin-smtp
	$(CARGO) build -p wasmalived -p wasmalived-e2e $(TEST_FEATURES)
	$(CARGO) build -p wasmalived-lvs --example ipvs_sync
	$(CARGO) test -p wasmalived-e2e --test ipvs_vm -- --include-ignored

## Two-node namespace demo (see README).
demo: setup plugins
	$(CARGO) build -p wasmalived
	scripts/demo.sh

## Chaos with measured availability (issue 15; figures in the README): a long seeded fault
## schedule against a wasmalived trio (hostile plugins next to its good checks) and a
## keepalived trio; MTTR per fault kind, availability against 99.9/99.99/99.999 %, advert
## gaps. CHAOS_SEED=N replays a schedule, CHAOS_ROUNDS sets its length; the markdown report
## goes to target/chaos.md. Runs the daemon `make test` builds (set WASMALIVED_BIN for another).
CHAOS_ROUNDS ?= 40
chaos: setup plugins
	$(CARGO) build -p wasmalived -p wasmalived-e2e $(TEST_FEATURES)
	target/debug/chaos_bench --rounds $(CHAOS_ROUNDS) --out target/chaos.md

## Benchmarks (not tests; figures in the README): plugin check cost vs fork/exec, failover
## timing vs keepalived, nginx-killed-to-VIP with plugin vs shell script, split-brain guards,
## the LVS director (checker CPU vs HAProxy, detection time, data path) with release plugins,
## memory vs keepalived, start-up and hot-reload latency;
## a node's CPU and advert gaps at 1–1,000 checks/s (plugins vs keepalived scripts, hostile plugins);
## chaos MTTR and availability, wasmalived trio vs keepalived trio (`make chaos` alone runs longer);
## a pair at VRRPv3 advert_int 0.01 under that load for 10 minutes, wasmalived vs keepalived
## (BENCH_ONLY=stability_bench runs it alone, about 25 minutes).
## Every table also goes to bench/results/<date>-<revision>.md (machine, commands, output);
## BENCH_QUICK=1 is a smoke run of the whole pipeline, BENCH_ONLY="name ..." a subset.
bench: setup plugins plugins-release
	$(CARGO) build --release -p wasmalived
	$(CARGO) build -p wasmalived-e2e --bins
	CARGO=$(CARGO) scripts/bench.sh

## The release link's function order (host/daemon/link/hot-symbols.txt, which
## host/daemon/build.rs passes to lld): the functions a settled node with the four stock
## plugin checks runs, from a `perf` profile of the release daemon (tests/src/bin/hot_symbols.rs).
## Regenerate and commit it after large changes to the steady state's code (the current list
## is kept as a base, less the names the build no longer defines); a stale file only costs
## resident memory (README "Memory vs keepalived"). Each of the HOT_SYMBOLS_ROUNDS rounds links
## with the last round's list and profiles the result: a page fault maps a whole page-cache
## folio, so only the first function of a folio to run faults, and the ones that always run
## after it show up once it has moved into the list.
HOT_SYMBOLS_SECS ?= 30
HOT_SYMBOLS_ROUNDS ?= 3
hot-symbols: setup plugins-release
	@command -v perf >/dev/null || apt-get install -y linux-perf
	$(CARGO) build -p wasmalived-e2e --bins
	for round in $$(seq $(HOT_SYMBOLS_ROUNDS)); do \
		$(CARGO) build --release -p wasmalived && \
		WASMALIVED_BIN=target/release/wasmalived WASMALIVED_PLUGIN_DIR=target/wasm32-wasip2/release \
			target/debug/hot_symbols --seconds $(HOT_SYMBOLS_SECS) \
			--base host/daemon/link/hot-symbols.txt --out host/daemon/link/hot-symbols.txt \
		|| exit 1; \
	done
	$(CARGO) build --release -p wasmalived

## Fuzzing (cargo-fuzz on the nightly toolchain; neither `make test` nor CI runs it): each
## target for FUZZ_SECS seconds on one core, adding what it finds to fuzz/corpus/NAME and
## reading fuzz/regressions/NAME too; a crash stops with its input in fuzz/artifacts/NAME
## (keep it under fuzz/regressions/NAME once fixed). `make test` replays both directories
## on stable. `make fuzz-cmin` minimises the corpora (edge coverage only) before they are committed. Only
## plugin_verdict builds wasmtime (instrumented, a long first build): `--features plugin`.
FUZZ_SECS    ?= 60
FUZZ_TARGETS ?= vrrp_packet config_parse router_sim plugin_verdict
FUZZ_FLAGS   := -timeout=10 -rss_limit_mb=2048 -max_len=8192
fuzz:
	@command -v cargo-fuzz >/dev/null || $(CARGO) install --locked cargo-fuzz
	cd fuzz && for t in $(FUZZ_TARGETS); do \
		mkdir -p corpus/$$t regressions/$$t && \
		cargo +nightly fuzz run $$([ $$t = plugin_verdict ] && echo --features plugin) \
			$$t corpus/$$t regressions/$$t -- \
			-max_total_time=$(FUZZ_SECS) $(FUZZ_FLAGS) -print_final_stats=1 || exit 1; \
	done

fuzz-cmin:
	cd fuzz && for t in $(FUZZ_TARGETS); do \
		cargo +nightly fuzz cmin $$([ $$t = plugin_verdict ] && echo --features plugin) $$t corpus/$$t -- $(FUZZ_FLAGS) -use_counters=0 -use_value_profile=0 || exit 1; \
	done

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy $(foreach c,$(HOSTS),-p $(c)) --all-targets $(TEST_FEATURES) -- -D warnings
	$(CARGO) clippy $(WASM) $(GUESTS) -- -D warnings
	$(CARGO) clippy $(foreach c,$(SDK_CRATES),-p $(c)) --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
