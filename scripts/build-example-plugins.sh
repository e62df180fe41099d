#!/usr/bin/env bash
# Builds the example check plugins in other languages (examples/plugins/) into
# target/example-plugins/*.wasm, installing the tools each needs first (idempotently: a tool
# already at its pinned version is not installed again).
#
#   scripts/build-example-plugins.sh [--only python|js|c]...   install what is missing, build
#   scripts/build-example-plugins.sh --tools [--only ...]      install what is missing only
#                                                               (scripts/setup.sh runs this)
#
# Tools (all pinned):
#   python  componentize-py (PyPI, in a venv under target/example-plugins/tools/)
#   js      @bytecodealliance/componentize-js (npm, from examples/plugins/js-check/package-lock.json)
#   c       clang, lld, wasi-libc, libclang-rt-dev-wasm32 (Debian); wasmalived-wit-c, this
#           workspace's tool (tools/wit-c: the C bindings generator and the preview-1 adapter,
#           as libraries), built with cargo unless $WIT_C names a built one
#
# Each build prints its time and the component's size.
set -euo pipefail

COMPONENTIZE_PY_VERSION=0.25.1
C_PACKAGES=(clang lld wasi-libc libclang-rt-dev-wasm32)

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$ROOT/target/example-plugins"
TOOLS="$OUT/tools"
EX="$ROOT/examples/plugins"

usage() {
    echo "usage: $0 [--tools] [--only python|js|c]..." >&2
    exit 2
}

tools_only=false
only=()
while [ $# -gt 0 ]; do
    case "$1" in
        --tools)
            tools_only=true
            shift
            ;;
        --only)
            [ $# -ge 2 ] || usage
            case "$2" in python | js | c) only+=("$2") ;; *) usage ;; esac
            shift 2
            ;;
        -h | --help) usage ;;
        *) usage ;;
    esac
done
[ ${#only[@]} -gt 0 ] || only=(python js c)

mkdir -p "$OUT" "$TOOLS"

log() { printf '==> %s\n' "$*" >&2; }

report() {
    local wasm="$1" seconds="$2"
    log "built $(basename "$wasm"): $(stat -c %s "$wasm") bytes in ${seconds}s"
}

# Install Debian packages that are missing (as root, or through sudo).
apt_install() {
    local missing=()
    for p in "$@"; do
        [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" = "install ok installed" ] || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        log "apt-get install ${missing[*]}"
        local sudo=()
        [ "$(id -u)" -eq 0 ] || sudo=(sudo)
        "${sudo[@]}" apt-get update -qq || return 1
        DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" || return 1
    fi
}

# --- Python ----------------------------------------------------------------------------------

# The venv holding componentize-py.
tools_python() {
    local py="$TOOLS/venv/bin/python"
    if [ ! -x "$py" ]; then
        log "creating venv $TOOLS/venv"
        # Debian's python3 needs python3-venv for this; other builds carry venv themselves.
        if ! python3 -m venv "$TOOLS/venv"; then
            rm -rf "$TOOLS/venv"
            apt_install python3-venv && python3 -m venv "$TOOLS/venv" || return 1
        fi
    fi
    # (no `| grep -q`: with pipefail, pip's SIGPIPE would read as "not installed")
    if [ "$("$py" -m pip show componentize-py 2>/dev/null | sed -n 's/^Version: //p')" != "$COMPONENTIZE_PY_VERSION" ]; then
        log "pip install componentize-py==$COMPONENTIZE_PY_VERSION"
        "$py" -m pip install --quiet --disable-pip-version-check "componentize-py==$COMPONENTIZE_PY_VERSION" || return 1
    fi
}

build_python() {
    local dir="$EX/python-process-check" wasm="$OUT/python-process-check.wasm" t0=$SECONDS
    log "python: componentize-py $COMPONENTIZE_PY_VERSION"
    (cd "$dir" && "$TOOLS/venv/bin/componentize-py" -d wit -w python-process-check \
        componentize --stub-wasi app -o "$wasm") || return 1
    report "$wasm" $((SECONDS - t0))
}

# --- JavaScript ------------------------------------------------------------------------------

tools_js() {
    local dir="$EX/js-check"
    if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
        apt_install nodejs npm || return 1
    fi
    # `npm ci` only when node_modules does not match the lock.
    if ! (cd "$dir" && npm ls --depth=0 >/dev/null 2>&1); then
        log "js: npm ci"
        (cd "$dir" && npm ci --no-audit --no-fund) || return 1
    fi
}

build_js() {
    local dir="$EX/js-check" wasm="$OUT/js-check.wasm" t0=$SECONDS
    (cd "$dir" && node build.mjs "$wasm") || return 1
    report "$wasm" $((SECONDS - t0))
}

# --- C ---------------------------------------------------------------------------------------

tools_c() {
    apt_install "${C_PACKAGES[@]}"
}

# The path of wasmalived-wit-c: $WIT_C, or built from this workspace.
wit_c() {
    if [ -n "${WIT_C:-}" ]; then
        printf '%s\n' "$WIT_C"
        return
    fi
    cargo build --quiet -p wasmalived-wit-c --manifest-path "$ROOT/Cargo.toml" >&2 || return 1
    printf '%s\n' "$(cargo metadata --format-version 1 --no-deps --manifest-path "$ROOT/Cargo.toml" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/debug/wasmalived-wit-c"
}

build_c() {
    local tool
    tool="$(wit_c)" || return 1
    local t0=$SECONDS
    make -C "$EX/c-check" --no-print-directory --always-make \
        WIT_C="$tool" BUILD="$OUT/build/c-check" OUT="$OUT/c-check.wasm" >&2 || return 1
    report "$OUT/c-check.wasm" $((SECONDS - t0))
}

status=0
for lang in "${only[@]}"; do
    if ! "tools_$lang"; then
        log "$lang: installing the tools FAILED"
        status=1
        continue
    fi
    if ! $tools_only && ! "build_$lang"; then
        log "$lang: FAILED"
        status=1
    fi
done
exit $status
