#!/usr/bin/env bash
# Installs what a fresh Debian 12 machine (as root) needs to build, demo and test wasmalived.
# Idempotent: does nothing that is already done.
set -euo pipefail

# systemd: `systemd-analyze verify` of the unit; util-linux (setpriv) and libcap2-bin (capsh):
# the daemon under exactly the unit's capabilities (tests/tests/systemd.rs).
packages=(keepalived nginx-light tcpdump nftables conntrack conntrackd iproute2 iputils-ping procps curl python3 etcd-server etcd-client haproxy systemd util-linux libcap2-bin)
# The Debian package and its test: dpkg-shlibdeps (dpkg-dev), strip (binutils), the man page
# check (groff-base, man-db), unshare and mount (util-linux, mount).
packages+=(dpkg-dev binutils groff-base man-db util-linux mount)
# prometheus: its promtool validates the metrics endpoint's text (tests/tests/metrics.rs).
packages+=(prometheus)
# python3-aiosmtpd: the SMTP server alert mails are sent to (tests/tests/notifications.rs).
packages+=(python3-aiosmtpd)
# dnsmasq-base: the DNS server the LVS DNS_CHECK test queries (the binary only, no system
# service); aiosmtpd above also answers its SMTP_CHECK (tests/tests/lvs_checkers.rs).
packages+=(dnsmasq-base)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Debian starts the packaged daemons where an init system runs; the lab starts its own copies.
for svc in nginx keepalived etcd haproxy prometheus; do
    if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then
        systemctl stop "$svc" || true
    fi
done

if ! rustup target list --installed | grep -qx wasm32-wasip2; then
    echo "setup: rustup target add wasm32-wasip2"
    rustup target add wasm32-wasip2
fi

# The toolchains of the plugins in other languages (examples/plugins/ and `wasmalived plugin
# new`), which `make test` builds and runs: clang + wasi-libc (Debian), componentize-py
# (PyPI, in a venv under target/), componentize-js (npm, examples/plugins/js-check).
"$(dirname "$0")/build-example-plugins.sh" --tools
