#!/usr/bin/env bash
# The whole test suite (what `make test` runs after building the plugins): every unit,
# simulation and integration test of the workspace (`make check`, plus the root-only
# integration tests of the `lab-tests` feature), then the end-to-end tests (network
# namespaces, real keepalived, nginx, etcd).
#
# Every suite runs whatever happened before it, each cargo call with --no-fail-fast so one
# failing test binary never hides the next. Ends with the time each suite took and one
# summary line, "N passed, N failed", naming the failing tests.
set -uo pipefail

cargo=${CARGO:-cargo}
e2e_jobs=${E2E_JOBS:-2}
# The Makefile's feature set (root-only tests, fault injection), so the suites share one build.
read -r -a features <<< "${TEST_FEATURES:---features wasmalived/lab-tests,wasmalived/fault-injection,wasmalived-lvs/lab-tests}"
log=$(mktemp /tmp/wasmalived-test.XXXXXX)
trap 'rm -f "$log"' EXIT
status=0
timings=()

if [ "$(id -u)" -ne 0 ]; then
    echo "test.sh: the end-to-end suite needs root (network namespaces, raw sockets);" >&2
    echo "         run 'make check' for everything that does not." >&2
    exit 2
fi

suite() {
    local name=$1
    shift
    echo "==> [$name] $*"
    local start=$SECONDS
    "$@" 2>&1 | tee -a "$log"
    local rc=${PIPESTATUS[0]}
    timings+=("$(printf '%-10s %4ds  %s' "$name" $((SECONDS - start)) "$([ "$rc" -eq 0 ] && echo ok || echo "FAILED (exit $rc)")")")
    [ "$rc" -eq 0 ] || status=$rc
}

suite unit "$cargo" test --workspace --exclude wasmalived-e2e "${features[@]}" --no-fail-fast
# The e2e tests from one queue across their binaries, E2E_JOBS at a time (cargo would run the
# binaries one after another, each tail leaving a slot idle).
suite e2e env CARGO="$cargo" "$(dirname "$0")/run-tests-parallel.sh" "$e2e_jobs" -p wasmalived-e2e

echo
echo "suite times:"
printf '  %s\n' "${timings[@]}"
# libtest prints "test NAME ... FAILED" for each failing test; e2e failures also print the
# directory where their logs were kept ("logs kept in ...").
failed=$(grep -E '^test .* \.\.\. FAILED$' "$log" | sed -E 's/^test (.*) \.\.\. FAILED$/\1/' | sort -u)
kept=$(grep -oE 'logs kept in [^ ]+' "$log" | sed 's/^logs kept in //' | sort -u)
summary=$(awk '/^test result:/ {
        for (i = 1; i <= NF; i++) {
            if ($(i) ~ /^passed/) p += $(i - 1)
            if ($(i) ~ /^failed/) f += $(i - 1)
        }
    } END { printf "%d passed, %d failed", p, f }' "$log")
if [ -n "$kept" ]; then
    echo "logs of failing e2e tests:"
    printf '  %s\n' "$kept"
fi
echo
if [ -n "$failed" ]; then
    echo "$summary: $(echo "$failed" | paste -sd ' ')"
else
    echo "$summary"
fi
exit "$status"
