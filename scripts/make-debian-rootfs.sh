#!/usr/bin/env bash
# make-debian-rootfs.sh OUT.tar — a real distribution's root filesystem as a tarball,
# made once and kept (as root).
#
# `debootstrap --variant=minbase bookworm` from the mirror apt already uses, tarred with
# numeric owners, device nodes, security.capability xattrs and sorted names, as
# `docker import` would take it. About 30 s and 120 MB. If OUT.tar exists it is kept
# (a cache: the tests and scripts/fresh-machine-check.sh share one); FORCE=1 remakes it.
# Concurrent callers wait on OUT.tar.lock for one build. Installs debootstrap if missing.
#
#   DEBIAN_SUITE  (bookworm)   DEBIAN_MIRROR  (http://deb.debian.org/debian)
set -euo pipefail

[ "$#" -eq 1 ] && [ -n "$1" ] || { echo "usage: $0 OUT.tar" >&2; exit 2; }
suite=${DEBIAN_SUITE:-bookworm}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
mkdir -p "$(dirname -- "$1")"
out="$(cd "$(dirname -- "$1")" && pwd)/$(basename -- "$1")"

say() { echo "make-debian-rootfs: $*" >&2; }

mounts_under() {  # mount points at or below $1, deepest first
    awk -v p="$1" '$2 == p || index($2, p "/") == 1 { print $2 }' /proc/self/mounts | sort -r
}

# Never rm -rf a tree with anything mounted under it: the removal would go through
# bind mounts into the host's /dev and beyond. Unmount, check /proc/mounts, remove.
safe_remove() {
    local point
    for point in $(mounts_under "$1"); do umount -l "$point" 2>/dev/null || true; done
    if [ -n "$(mounts_under "$1")" ]; then
        say "refusing to remove $1: still mounted"
        return 1
    fi
    rm -rf --one-file-system -- "$1"
}

exec {lock}>"$out.lock"
flock "$lock"
if [ -s "$out" ] && [ "${FORCE:-0}" != 1 ]; then
    echo "$out"
    exit 0
fi
for stale in "$out".stage.*; do  # a killed build's leftovers (we hold the lock)
    [ ! -e "$stale" ] || safe_remove "$stale"
done

if ! command -v debootstrap >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq debootstrap >/dev/null 2>&1 || {
        apt-get update -qq
        apt-get install -y -qq debootstrap >/dev/null
    }
fi

stage=$(mktemp -d "$out.stage.XXXXXX")
trap 'safe_remove "$stage"' EXIT
say "debootstrap --variant=minbase $suite (cached in $out)"
# debootstrap mounts proc and sys in the new root: in a private mount namespace they
# go away with it, even if this build is killed
if ! unshare --mount --propagation private -- \
        debootstrap --variant=minbase "$suite" "$stage/root" "$mirror" >"$stage/log" 2>&1; then
    tail -20 "$stage/log" >&2
    exit 1
fi
# downloaded packages and package lists are not part of a root filesystem image
rm -rf --one-file-system "$stage/root/var/cache/apt/archives/"*.deb "$stage/root/var/lib/apt/lists/"*_Packages
LC_ALL=C tar --create --file="$stage/rootfs.tar" --directory="$stage/root" --numeric-owner \
    --sort=name --xattrs --xattrs-include='security.capability' --one-file-system .
chmod 0644 "$stage/rootfs.tar"
mv -f -- "$stage/rootfs.tar" "$out"
echo "$out"
