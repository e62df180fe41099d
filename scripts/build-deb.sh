#!/usr/bin/env bash
# Builds the Debian package of wasmalived from binaries that are already built, with
# dpkg-deb alone (no debian/ source tree, no cargo tool): what goes where is this file.
#
#   scripts/build-deb.sh [--profile release|debug] [--bin FILE] [--plugins DIR] [--out DIR]
#                        [--compression xz|gzip|none]
#
# --profile picks the defaults of --bin (target/PROFILE/wasmalived) and --plugins
# (target/wasm32-wasip2/PROFILE); `make deb` builds and packages release, the package test
# packages what `make test` already built (debug), uncompressed to save time. Prints the
# path of the .deb.
#
# Contents: /usr/sbin/wasmalived (stripped), the stock plugins in
# /usr/lib/wasmalived/plugins, the administrator's empty /etc/wasmalived/plugins (first in
# the default plugin search path), the systemd unit (neither enabled nor started: there is
# no maintainer script at all), wasmalived(8) rendered by the binary itself, a sample
# configuration, the copyright file and the changelog. Depends: from dpkg-shlibdeps.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
profile=release
bin=
plugins=
out="$root/target/deb"
compression=xz
while [ $# -gt 0 ]; do
    case $1 in
        --profile) profile=$2; shift 2 ;;
        --bin) bin=$2; shift 2 ;;
        --plugins) plugins=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        --compression) compression=$2; shift 2 ;;
        *) echo "build-deb.sh: unknown argument '$1'" >&2; exit 2 ;;
    esac
done
bin=${bin:-$root/target/$profile/wasmalived}
plugins=${plugins:-$root/target/wasm32-wasip2/$profile}
# The stock plugins, as the package names them (crate plugin-NAME builds plugin_NAME.wasm).
stock=(nginx-process http tcp dns smtp disk-lock quorum file)

die() { echo "build-deb.sh: $*" >&2; exit 1; }
[ -x "$bin" ] || die "no daemon binary at $bin (build it first: make deb)"
for p in "${stock[@]}"; do
    [ -f "$plugins/plugin_${p//-/_}.wasm" ] || die "no $p plugin in $plugins (build it first: make plugins-release)"
done

version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' "$root/Cargo.toml")
changelog_version=$(sed -n '1s/^wasmalived (\([^)]*\)).*/\1/p' "$root/packaging/deb/changelog")
[ "$version" = "$changelog_version" ] \
    || die "Cargo.toml says version $version, packaging/deb/changelog $changelog_version: add a changelog entry"
arch=$(dpkg --print-architecture)

work=$(mktemp -d "${TMPDIR:-/tmp}/wasmalived-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
# dpkg-shlibdeps wants the tree at debian/PACKAGE next to a debian/control.
stage="$work/debian/wasmalived"
doc="$stage/usr/share/doc/wasmalived"

install -D -m 0755 "$bin" "$stage/usr/sbin/wasmalived"
strip --remove-section=.comment --remove-section=.note --strip-unneeded "$stage/usr/sbin/wasmalived"
install -d -m 0755 "$stage/usr/lib/wasmalived/plugins" "$stage/etc/wasmalived/plugins"
for p in "${stock[@]}"; do
    install -m 0644 "$plugins/plugin_${p//-/_}.wasm" "$stage/usr/lib/wasmalived/plugins/$p.wasm"
done
install -D -m 0644 "$root/examples/systemd/wasmalived.service" "$stage/lib/systemd/system/wasmalived.service"
install -D -m 0644 "$root/examples/stock-plugins.conf" "$doc/examples/keepalived.conf"
install -m 0644 "$root/packaging/deb/copyright" "$doc/copyright"
gzip -9n < "$root/packaging/deb/changelog" > "$doc/changelog.gz"
install -d -m 0755 "$stage/usr/share/man/man8"
"$stage/usr/sbin/wasmalived" man | gzip -9n > "$stage/usr/share/man/man8/wasmalived.8.gz"
chmod 0644 "$doc/changelog.gz" "$stage/usr/share/man/man8/wasmalived.8.gz"

install -d -m 0755 "$stage/DEBIAN"
printf 'Source: wasmalived\n\nPackage: wasmalived\nArchitecture: any\n' > "$work/debian/control"
# (It warns that the binary is not "installed in its package's directory" outside a source
# package's build; that one line is dropped, any other message is kept.)
depends=$(cd "$work" && dpkg-shlibdeps -O -e "$stage/usr/sbin/wasmalived" 2> >(grep -v "installed in their package's directory" >&2) \
    | sed -n 's/^shlibs:Depends=//p')
[ -n "$depends" ] || die "dpkg-shlibdeps found no dependencies"

(cd "$stage" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) > "$stage/DEBIAN/md5sums"
installed_size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
cat > "$stage/DEBIAN/control" <<CONTROL
Package: wasmalived
Version: $version
Architecture: $arch
Maintainer: $(sed -n 's/^ -- \(.*>\)  .*/\1/p' "$root/packaging/deb/changelog" | head -n1)
Installed-Size: $installed_size
Depends: $depends
Suggests: nginx
Section: net
Priority: optional
Description: VRRP high-availability daemon with WebAssembly health checks
 wasmalived moves a virtual IP address between machines when one fails,
 speaking VRRP (v2 and v3) as keepalived does and reading keepalived's
 configuration. Its health checks can be sandboxed WebAssembly components:
 the stock ones (nginx-process, http, tcp, disk-lock, quorum, file) are in
 /usr/lib/wasmalived/plugins, and a plugin of the same name in
 /etc/wasmalived/plugins takes precedence.
 .
 The service is neither enabled nor started on installation, and an
 upgrade does not restart it: restarting is a failover, the administrator's
 decision (see wasmalived(8)).
CONTROL
chmod 0644 "$stage/DEBIAN/control" "$stage/DEBIAN/md5sums"

mkdir -p "$out"
deb="$out/wasmalived_${version}_${arch}.deb"
dpkg-deb --root-owner-group "-Z$compression" --build "$stage" "$deb" >/dev/null
echo "$deb"
