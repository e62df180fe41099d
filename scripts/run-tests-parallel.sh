#!/usr/bin/env bash
# run-tests-parallel.sh JOBS CARGO_TEST_ARGS...: build the test binaries `cargo test
# CARGO_TEST_ARGS --no-run` names, then run every test of every binary as its own process,
# JOBS at a time, from one queue.
#
# `cargo test` runs test binaries one after another, so a binary with one long test holds the
# whole suite while the other slot idles; one queue across binaries keeps JOBS tests running
# until the end. The load is the same as `--test-threads=JOBS` (JOBS tests at a time), and the
# output is libtest's own: each test's lines are printed together when it ends ("test NAME
# ... ok", its captured output if it failed, and a "test result:" line), so the callers'
# summaries read it as before. Exit status: 0 if every test passed.
#
# Tests known to be long start first (SLOW_FIRST, binary names), so none of them starts last
# and stretches the run alone.
set -uo pipefail

jobs=$1
shift
cargo=${CARGO:-cargo}
SLOW_FIRST=${SLOW_FIRST:-"chaos keepalived_compat lvs_director checks_failover split_brain interop"}

work=$(mktemp -d /tmp/wasmalived-tests.XXXXXX)
trap 'rm -rf "$work"' EXIT

# The test executables, from cargo's build messages (one JSON object per line).
if ! "$cargo" test "$@" --no-run --message-format=json-render-diagnostics > "$work/build.json"; then
    echo "run-tests-parallel: the build failed" >&2
    exit 101
fi
# "EXECUTABLE<TAB>PACKAGE DIR" per test binary (cargo runs each in its package's directory).
python3 - "$work/build.json" > "$work/binaries" <<'PY'
import json, os, sys
seen = set()
for line in open(sys.argv[1]):
    try:
        msg = json.loads(line)
    except ValueError:
        continue
    if msg.get("reason") != "compiler-artifact" or not msg.get("profile", {}).get("test"):
        continue
    exe = msg.get("executable")
    if exe and exe not in seen:
        seen.add(exe)
        print(f"{exe}\t{os.path.dirname(msg['manifest_path'])}")
PY

# One queue line per test: "BINARY<TAB>DIR<TAB>TEST", the slow binaries' tests first.
: > "$work/slow"
: > "$work/rest"
while IFS=$'\t' read -r bin dir; do
    name=$(basename "$bin" | sed -E 's/-[0-9a-f]{16}$//')
    queue="$work/rest"
    for slow in $SLOW_FIRST; do
        [ "$name" = "$slow" ] && queue="$work/slow"
    done
    "$bin" --list --format terse 2>/dev/null | sed -nE 's/^(.*): test$/\1/p' \
        | while read -r test; do printf '%s\t%s\t%s\n' "$bin" "$dir" "$test"; done >> "$queue"
done < "$work/binaries"
cat "$work/slow" "$work/rest" > "$work/queue"
echo "running $(wc -l < "$work/queue") tests from $(wc -l < "$work/binaries") binaries, $jobs at a time"

# One test: its output goes to a file of its own, printed whole under a lock when it ends.
run_one() {
    local bin=$1 dir=$2 test=$3 out
    out=$(mktemp "$work/out.XXXXXX")
    (cd "$dir" && "$bin" --exact "$test" --test-threads=1) > "$out" 2>&1
    local rc=$?
    flock "$work/print.lock" cat "$out"
    rm -f "$out"
    # Any failure is 1: xargs would stop the whole queue on a 255.
    [ "$rc" -eq 0 ]
}
export -f run_one
export work

# xargs exits 123 when any test failed; every test runs either way.
awk -F '\t' '{ printf "%s%c%s%c%s%c", $1, 0, $2, 0, $3, 0 }' "$work/queue" \
    | xargs -0 -n 3 -P "$jobs" bash -c 'run_one "$0" "$1" "$2"'
