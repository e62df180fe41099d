#!/usr/bin/env bash
# Every benchmark in one run (what `make bench` calls after building the release daemon, the
# release plugins and the bench binaries): each one measures wasmalived against its real
# alternative in the same run (fork/exec, keepalived, HAProxy) and prints its own tables.
#
# Writes bench/results/<date>-<revision>.md: the machine (CPU, cores, memory, kernel, load,
# toolchain, keepalived and HAProxy versions), then per benchmark its exact command, wall
# time, exit status and output. Two such files diff line by line between versions. One
# failing benchmark does not stop the others; the script exits non-zero if any failed.
#
# BENCH_QUICK=1 runs every benchmark with the fewest runs and shortest windows (a smoke run of
# the whole pipeline, minutes instead of most of an hour: the figures are not worth keeping).
# BENCH_ONLY="check_cost memory_bench" runs a subset. BENCH_OUT=FILE writes there instead.
set -uo pipefail
cd "$(dirname "$0")/.."

cargo=${CARGO:-cargo}
root=$PWD
release_bin=$root/target/release/wasmalived
release_plugins=$root/target/wasm32-wasip2/release
rev=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD 2>/dev/null || rev="$rev-dirty"
out=${BENCH_OUT:-bench/results/$(date -u +%Y-%m-%d)-$rev.md}
mkdir -p "$(dirname "$out")"

quick=${BENCH_QUICK:-0}
# name | command (run from the repository root) | quick variant
benches=(
    "check_cost|$cargo bench -p wasmalived --bench check_cost|CHECK_COST_RUNS=200 $cargo bench -p wasmalived --bench check_cost"
    "failover_bench|target/debug/failover_bench --runs 10|target/debug/failover_bench --runs 1"
    "check_failover_bench_v2|target/debug/check_failover_bench --runs 10 --proto v2|target/debug/check_failover_bench --runs 1 --proto v2"
    "check_failover_bench_v3_0.1|target/debug/check_failover_bench --runs 6 --proto v3-0.1|target/debug/check_failover_bench --runs 1 --proto v3-0.1"
    "check_failover_bench_v3_1|target/debug/check_failover_bench --runs 6 --proto v3-1|target/debug/check_failover_bench --runs 1 --proto v3-1"
    "guard_bench|target/debug/guard_bench --partition-secs 30 --runs 10|target/debug/guard_bench --partition-secs 5 --runs 1"
    "lvs_bench|target/debug/lvs_bench|target/debug/lvs_bench --cpu-rounds 1 --cpu-window 4 --runs 1 --data-rounds 1 --data-secs 2"
    "memory_bench|target/debug/memory_bench --runs 5|target/debug/memory_bench --runs 1"
    "reload_bench|target/debug/reload_bench --starts 5 --reloads 100 --cold-reloads 5|target/debug/reload_bench --starts 1 --reloads 5 --cold-reloads 1"
    "check_load_bench|target/debug/check_load_bench --window-secs 20|target/debug/check_load_bench --window-secs 3 --rates 1,1000"
    "chaos_bench|target/debug/chaos_bench --rounds 30|target/debug/chaos_bench --rounds 7"
    "chaos_bench_rt|target/debug/chaos_bench --rounds 30 --rt|target/debug/chaos_bench --rounds 7 --rt"
    "stability_bench|target/debug/stability_bench --minutes 10 --failovers 5|target/debug/stability_bench --minutes 1 --failovers 2"
)

first_line() { "$@" 2>&1 | head -n1 || true; }

machine() {
    local cpu cores mem
    cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)
    cores=$(nproc)
    mem=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
    echo "| | |"
    echo "|---|---|"
    echo "| revision | $rev |"
    echo "| date (UTC) | $(date -u '+%Y-%m-%d %H:%M') |"
    echo "| mode | $([ "$quick" = 1 ] && echo 'quick (smoke run: fewest runs, short windows)' || echo full) |"
    echo "| CPU | $cpu, $cores cores |"
    echo "| memory | $mem |"
    echo "| kernel | $(uname -r) |"
    echo "| OS | $(. /etc/os-release && echo "$PRETTY_NAME") |"
    echo "| load average at start | $(cut -d' ' -f1-3 /proc/loadavg) |"
    echo "| rustc | $(first_line rustc --version) |"
    echo "| wasmalived | $(first_line "$release_bin" --version) |"
    echo "| keepalived | $(first_line keepalived --version) |"
    echo "| HAProxy | $(first_line haproxy -v) |"
}

want() { [ -z "${BENCH_ONLY:-}" ] || [[ " $BENCH_ONLY " == *" $1 "* ]]; }

export WASMALIVED_BIN=$release_bin WASMALIVED_PLUGIN_DIR=$release_plugins
tmp=$(mktemp -d /tmp/wasmalived-bench.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
{
    echo "# wasmalived benchmarks, $rev"
    echo
    echo "Written by \`make bench\` (scripts/bench.sh); the README's Benchmarks section explains each table."
    echo
    machine
} > "$tmp/report.md"

# A tracing line of a daemon the benchmark started (text format, with or without colours).
daemon_log_line=$'^(\e\\[[0-9;]*m)?[0-9]{4}-[0-9]{2}-[0-9]{2}T'
failed=()
summary=()
for entry in "${benches[@]}"; do
    IFS='|' read -r name full short <<< "$entry"
    want "$name" || continue
    cmd=$full
    [ "$quick" = 1 ] && cmd=$short
    echo "== $name: $cmd" >&2
    start=$(date +%s)
    # The command line is ours (the table above), not input: word splitting is intended.
    # shellcheck disable=SC2086
    env $cmd > "$tmp/$name.out" 2> "$tmp/$name.err"
    status=$?
    secs=$(( $(date +%s) - start ))
    [ "$status" = 0 ] || failed+=("$name")
    summary+=("| $name | $secs s | $([ "$status" = 0 ] && echo ok || echo "failed ($status)") |")
    {
        echo
        echo "## $name"
        echo
        echo "\`WASMALIVED_BIN=target/release/wasmalived WASMALIVED_PLUGIN_DIR=target/wasm32-wasip2/release $cmd\`"
        echo "— $secs s, exit status $status"
        echo
        echo '```'
        cat "$tmp/$name.out"
        if [ "$status" != 0 ]; then
            echo "--- last lines of stderr (the daemons' own log lines left out) ---"
            grep -Ev "$daemon_log_line" "$tmp/$name.err" | tail -n 20
        fi
        echo '```'
    } >> "$tmp/report.md"
    cat "$tmp/$name.out"
done

{
    echo
    echo "## Runs"
    echo
    echo "| benchmark | wall time | result |"
    echo "|---|---|---|"
    printf '%s\n' "${summary[@]}"
    echo
    echo "Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
} >> "$tmp/report.md"
cp "$tmp/report.md" "$out"
echo "results: $out" >&2
if [ "${#failed[@]}" -gt 0 ]; then
    echo "failed: ${failed[*]}" >&2
    exit 1
fi
