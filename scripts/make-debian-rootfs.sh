#!/usr/bin/env bash
# make-debian-rootfs.sh OUT.tar [SUITE]
#
# A real distribution's root filesystem as a tarball: `debootstrap --variant=minbase`
# (default suite bookworm) from the mirror apt already uses, tarred with numeric
# owners, device nodes, xattrs and sorted names, as `docker import` would take it.
# About 30 s and 200 MB. Installs debootstrap if missing.
set -euo pipefail

[ "$#" -ge 1 ] && [ -n "$1" ] || { echo "usage: $0 OUT.tar [SUITE]" >&2; exit 2; }
out=$1
suite=${2:-bookworm}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

if ! command -v debootstrap >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq debootstrap >/dev/null 2>&1 || {
        apt-get update -qq
        apt-get install -y -qq debootstrap >/dev/null
    }
fi

out_dir=$(cd "$(dirname -- "$out")" && pwd)
out_abs="$out_dir/$(basename -- "$out")"
stage=$(mktemp -d /var/tmp/debian-rootfs.XXXXXX)
tmp_out=$(mktemp "$out_dir/.$(basename -- "$out").XXXXXX")

cleanup() {
    # debootstrap mounts proc/sys inside the target while it runs; never remove through a mount
    local left
    left=$(awk -v d="$stage/" 'index($2, d) == 1 {print $2}' /proc/mounts | sort -r)
    for m in $left; do umount -l "$m" || true; done
    if awk -v d="$stage/" 'index($2, d) == 1 {found=1} END {exit !found}' /proc/mounts; then
        echo "make-debian-rootfs: mounts remain under $stage; not removing it" >&2
    else
        rm -rf --one-file-system -- "$stage"
    fi
    rm -f -- "$tmp_out"
}
trap cleanup EXIT

debootstrap --variant=minbase "$suite" "$stage/root" "$mirror" >"$stage/debootstrap.log" 2>&1 || {
    tail -20 "$stage/debootstrap.log" >&2
    exit 1
}
# apt's downloaded packages are not part of a root filesystem image
rm -rf --one-file-system "$stage/root/var/cache/apt/archives/"*.deb "$stage/root/var/lib/apt/lists/"*_Packages
LC_ALL=C tar --create --file="$tmp_out" --directory="$stage/root" --numeric-owner --sort=name \
    --xattrs --xattrs-include='security.capability' --one-file-system .
chmod 0644 "$tmp_out"
mv -f -- "$tmp_out" "$out_abs"
echo "$out_abs"
