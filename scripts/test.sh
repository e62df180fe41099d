#!/usr/bin/env bash
# The whole test suite (what `make test` runs after building the plugins): unit and
# integration tests of the daemon, the plugins' native unit tests, then the namespace
# end-to-end tests. Ends with one summary line, "N passed, N failed", over every suite.
set -uo pipefail

cargo=${CARGO:-cargo}
e2e_jobs=${E2E_JOBS:-2}
log=$(mktemp /tmp/wasmalived-test.XXXXXX)
trap 'rm -f "$log"' EXIT
status=0

run() {
    echo "==> $*"
    "$@" 2>&1 | tee -a "$log"
    local rc=${PIPESTATUS[0]}
    [ "$rc" -eq 0 ] || status=$rc
}

run "$cargo" test -p wasmalived
run "$cargo" test -p plugin-http -p plugin-disk-lock -p plugin-quorum -p plugin-guest-util
run "$cargo" test -p wasmalived-e2e -- --test-threads="$e2e_jobs"

summary=$(awk '/^test result:/ {
        for (i = 1; i <= NF; i++) {
            if ($(i) ~ /^passed/) p += $(i - 1)
            if ($(i) ~ /^failed/) f += $(i - 1)
        }
    } END { printf "%d passed, %d failed", p, f }' "$log")
echo
echo "$summary"
exit "$status"
