#!/usr/bin/env bash
# Boots Debian's kernel (with its ip_vs modules) in a software-emulated VM (qemu, TCG: no KVM
# needed) from an initramfs carrying wasmalived, ipvsadm, a static busybox, the host's
# keepalived (the reference for keepalived's LVS samples) and the stock checker plugins, and
# runs tests/vm/ipvs/init there: wasmalived programs IPVS over generic netlink and ipvsadm
# reads it back. Writes the serial console to OUT_DIR/console.log; tests/tests/ipvs_vm.rs (make
# vm-test) reads it.
#
#   scripts/ipvs-vm.sh OUT_DIR
#
# Environment: WASMALIVED_BIN (default target/debug/wasmalived), IPVS_SYNC_BIN (default
# target/debug/examples/ipvs_sync: the sync-daemon driver), IPVS_VM_CACHE (where the
# Debian packages are kept, default target/ipvs-vm), IPVS_VM_TIMEOUT (seconds, default
# 1200: a run takes 4–8 min on a 2-core machine, more on a busier one), PLUGIN_WASM_DIR
# (the stock plugins built by `make plugins`, default target/wasm32-wasip2/debug),
# KEEPALIVED_BIN (default /usr/sbin/keepalived).
# Needs qemu-system-x86_64 (Debian's qemu-system-x86), apt-get (the packages are fetched with
# `apt-get download`, once), dpkg-deb and keepalived (scripts/setup.sh installs it).
set -euo pipefail

out=${1:?usage: scripts/ipvs-vm.sh OUT_DIR}
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${WASMALIVED_BIN:-$root/target/debug/wasmalived}
sync_bin=${IPVS_SYNC_BIN:-$root/target/debug/examples/ipvs_sync}
cache=${IPVS_VM_CACHE:-$root/target/ipvs-vm}
timeout_secs=${IPVS_VM_TIMEOUT:-1200}
plugins=${PLUGIN_WASM_DIR:-$root/target/wasm32-wasip2/debug}
keepalived=${KEEPALIVED_BIN:-/usr/sbin/keepalived}
vm=$root/tests/vm/ipvs

for tool in qemu-system-x86_64 apt-get apt-cache dpkg-deb gzip; do
    command -v "$tool" >/dev/null || { echo "ipvs-vm: $tool is missing (apt-get install qemu-system-x86)" >&2; exit 2; }
done
[ -x "$bin" ] || { echo "ipvs-vm: $bin does not exist: build wasmalived first" >&2; exit 2; }
[ -x "$keepalived" ] || { echo "ipvs-vm: $keepalived does not exist: scripts/setup.sh installs keepalived" >&2; exit 2; }
for p in tcp http dns smtp; do
    [ -f "$plugins/plugin_$p.wasm" ] || { echo "ipvs-vm: $plugins/plugin_$p.wasm does not exist: make plugins" >&2; exit 2; }
done
[ -x "$sync_bin" ] || { echo "ipvs-vm: $sync_bin does not exist: cargo build -p wasmalived-lvs --example ipvs_sync" >&2; exit 2; }

# Debian's kernel package (the one linux-image-amd64 points at) and the user-space pieces.
mkdir -p "$cache/debs" "$out"
kpkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
[ -n "$kpkg" ] || { echo "ipvs-vm: no linux-image-amd64 in apt's lists (apt-get update)" >&2; exit 2; }
pkgs=("$kpkg" ipvsadm libnl-3-200 libnl-genl-3-200 libpopt0 busybox-static)
for p in "${pkgs[@]}"; do
    if ! ls "$cache/debs/${p}_"*.deb >/dev/null 2>&1; then
        (cd "$cache/debs" && apt-get -o APT::Sandbox::User=root download "$p" >/dev/null)
    fi
done
pkgroot=$cache/root
if [ ! -e "$pkgroot/.done-$kpkg" ]; then
    rm -rf "$pkgroot"
    mkdir -p "$pkgroot"
    for deb in "$cache"/debs/*.deb; do dpkg-deb -x "$deb" "$pkgroot"; done
    touch "$pkgroot/.done-$kpkg"
fi
kver=${kpkg#linux-image-}
kernel=$pkgroot/boot/vmlinuz-$kver
mods=$pkgroot/lib/modules/$kver

# The initramfs: busybox, the modules IPVS needs (with their dependencies), ipvsadm and
# wasmalived with the shared libraries they link, the test's configurations.
img=$(mktemp -d "${TMPDIR:-/tmp}/ipvs-vm.XXXXXX")
trap 'rm -rf "$img"' EXIT
mkdir -p "$img"/{bin,sbin,etc,proc,sys,dev,run,tmp,lib64}
cp "$pkgroot/bin/busybox" "$img/bin/busybox"
for applet in $("$img/bin/busybox" --list); do
    [ -e "$img/bin/$applet" ] || ln -s busybox "$img/bin/$applet"
done
# The kernel asks /sbin/modprobe for modules it needs (schedulers, the crc32c hash).
ln -s ../bin/busybox "$img/sbin/modprobe"
kmods=(kernel/net/netfilter/ipvs kernel/net/netfilter/nf_conntrack.ko
    kernel/net/ipv4/netfilter/nf_defrag_ipv4.ko kernel/net/ipv6/netfilter/nf_defrag_ipv6.ko
    kernel/lib/libcrc32c.ko kernel/crypto/crc32c_generic.ko kernel/drivers/net/dummy.ko)
for m in "${kmods[@]}"; do
    mkdir -p "$img/lib/modules/$kver/$(dirname "$m")"
    cp -r "$mods/$m" "$img/lib/modules/$kver/$m"
done
cp "$mods"/modules.builtin* "$mods/modules.order" "$img/lib/modules/$kver/"
"$img/bin/busybox" depmod -b "$img" "$kver"

# A program and the libraries it links (from the host, or from the extracted packages).
install_program() {
    local from=$1 name=$2 lib
    cp "$from" "$img/bin/$name"
    for lib in $(LD_LIBRARY_PATH="$pkgroot/lib/x86_64-linux-gnu:$pkgroot/usr/lib/x86_64-linux-gnu" \
        ldd "$from" | awk '$3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'); do
        # A library of the extracted packages goes where the package puts it.
        local to=${lib#"$pkgroot"}
        mkdir -p "$img$(dirname "$to")"
        cp -L "$lib" "$img$to"
    done
}
install_program "$pkgroot/sbin/ipvsadm" ipvsadm
# Without its debug sections the daemon is a fraction of the size (and of the boot time).
objcopy --strip-debug "$bin" "$img/wasmalived.stripped" 2>/dev/null || cp "$bin" "$img/wasmalived.stripped"
install_program "$img/wasmalived.stripped" wasmalived
rm "$img/wasmalived.stripped"
install_program "$sync_bin" ipvs_sync
# keepalived's LVS samples, run by the host's keepalived (with its libraries) and by
# wasmalived with the stock checker plugins; the scripts the samples name (MISC_CHECK's
# misc_path, the quorum scripts); accounts for the scripts' user; a page for the real
# servers' httpd (tests/vm/ipvs/sample-lane.sh).
install_program "$keepalived" keepalived
mkdir -p "$img/etc/samples" "$img/plugins" "$img/usr/local/bin" "$img/usr/local/sbin" "$img/srv/www"
cp "$root"/tests/keepalived-samples/keepalived.conf.* "$img/etc/samples/"
for p in tcp http dns smtp; do cp "$plugins/plugin_$p.wasm" "$img/plugins/$p.wasm"; done
cp "$vm/sample-scripts/script.sh" "$img/usr/local/bin/"
cp "$vm/sample-scripts/quorum-up.sh" "$vm/sample-scripts/quorum-down.sh" "$img/usr/local/sbin/"
cp "$vm/sample-lane.sh" "$img/bin/"
echo 'root:x:0:0:root:/root:/bin/sh' > "$img/etc/passwd"
echo 'root:x:0:' > "$img/etc/group"
echo ok > "$img/srv/www/index.html"
cp "$vm/init" "$img/init"
cp "$vm"/*.conf "$vm"/*.expected "$img/etc/"
(cd "$img" && find . | "$img/bin/busybox" cpio -o -H newc 2>/dev/null) | gzip -1 > "$out/initrd.gz"

start=$(date +%s%N)
set +e
timeout "$timeout_secs" qemu-system-x86_64 -accel tcg -m 2048 -smp 1 -nic none \
    -kernel "$kernel" -initrd "$out/initrd.gz" \
    -append "console=ttyS0 panic=-1 quiet" -nographic -no-reboot \
    < /dev/null > "$out/console.log" 2>&1
status=$?
set -e
end=$(date +%s%N)
echo "ipvs-vm: kernel $kver, qemu exit $status, $(( (end - start) / 1000000 )) ms" | tee "$out/summary"
exit $status
