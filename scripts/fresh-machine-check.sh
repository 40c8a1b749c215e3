#!/usr/bin/env bash
# fresh-machine-check.sh [REPO [COMMIT]] — prove the README's first command on a machine
# that has nothing (as root).
#
# Makes a Debian 12 root with `debootstrap --variant=minbase bookworm` (made once by
# scripts/make-debian-rootfs.sh, a fresh copy extracted per run), copies in this machine's package-index
# settings (apt sources and 99* options, pip configuration, CA certificates,
# resolv.conf), puts a clean clone of COMMIT (default HEAD) of REPO (default this
# checkout) at /root/forklift and runs `bash scripts/demo.sh` there, chrooted inside a
# private mount namespace. Prints the demo's output; exits non-zero if it fails.
#
# The chroot shares this machine's network namespace, so the `forklift0` bridge and
# its iptables rules are shared with every other forklift here: /run/forklift (where
# IP allocations live) is bound into the chroot so addresses stay unique host-wide.
#
#   FORKLIFT_FRESH_CACHE   where the debootstrap tarball is kept (/var/cache/forklift)
#   FORKLIFT_FRESH_WORK    parent of the per-run directory (/var/tmp)
#   DEBIAN_MIRROR          debootstrap's mirror (http://deb.debian.org/debian)
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
repo=$(cd "${1:-$here}" && pwd)
commit=$(git -C "$repo" rev-parse --verify "${2:-HEAD}^{commit}")
cache_dir=${FORKLIFT_FRESH_CACHE:-/var/cache/forklift}
work_parent=${FORKLIFT_FRESH_WORK:-/var/tmp}
base_tar=$cache_dir/debian-bookworm-minbase.tar

say() { echo "fresh-machine-check: $*" >&2; }
die() { say "$*"; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root"
for tool in unshare chroot git; do
    command -v "$tool" >/dev/null || die "$tool is missing (scripts/test.sh installs it)"
done

# -- removing a tree that may have mounts under it -------------------------------------

mounts_under() {  # mount points at or below $1 in this mount namespace, deepest first
    awk -v p="$1" '$2 == p || index($2, p "/") == 1 { print $2 }' /proc/self/mounts | sort -r
}

unmount_under() {
    local point
    for point in $(mounts_under "$1"); do
        umount -l "$point" 2>/dev/null || true
    done
}

# Never rm -rf a tree with anything mounted under it: the removal would go through bind
# mounts into the host's /dev and beyond. Unmount, check /proc/mounts, then remove.
safe_remove() {
    local dir=$1 left
    [ -e "$dir" ] || return 0
    unmount_under "$dir"
    left=$(mounts_under "$dir")
    if [ -n "$left" ]; then
        say "refusing to remove $dir, still mounted:"
        echo "$left" >&2
        return 1
    fi
    rm -rf --one-file-system -- "$dir"
}

# Leftovers of runs that were killed (their pid is gone).
for old in "$work_parent"/forklift-fresh.*; do
    [ -d "$old" ] || continue
    pid=$(cat "$old/pid" 2>/dev/null || echo 0)
    if [ "$pid" -gt 0 ] && ! kill -0 "$pid" 2>/dev/null; then
        safe_remove "$old" || true
    fi
done

# -- the pristine Debian root, made once (shared with the tests' cache) ----------------

make_base() {
    bash "$here/scripts/make-debian-rootfs.sh" "$base_tar" >/dev/null
}

make_base
work=$(mktemp -d "$work_parent/forklift-fresh.XXXXXX")
echo $$ >"$work/pid"
root=$work/root
cleanup() {
    local code=$?
    trap - EXIT INT TERM
    safe_remove "$work" || code=1
    exit "$code"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir "$root"
tar -C "$root" --numeric-owner -xpf "$base_tar"

# -- this machine's package-index settings ---------------------------------------------

shopt -s nullglob
sources=(/etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list)
if [ "${#sources[@]}" -gt 0 ] || [ -f /etc/apt/sources.list ]; then
    rm -f "$root/etc/apt/sources.list"  # debootstrap's one line would duplicate them
    [ ! -f /etc/apt/sources.list ] || cp /etc/apt/sources.list "$root/etc/apt/"
    [ "${#sources[@]}" = 0 ] || cp "${sources[@]}" "$root/etc/apt/sources.list.d/"
fi
apt_conf=(/etc/apt/apt.conf.d/99*)
[ "${#apt_conf[@]}" = 0 ] || cp "${apt_conf[@]}" "$root/etc/apt/apt.conf.d/"
[ ! -f /etc/pip.conf ] || cp /etc/pip.conf "$root/etc/"
if [ -d /etc/xdg/pip ]; then
    mkdir -p "$root/etc/xdg"
    cp -a /etc/xdg/pip "$root/etc/xdg/"
fi
mkdir -p "$root/etc/ssl/certs" "$root/usr/local/share"
[ ! -f /etc/ssl/certs/ca-certificates.crt ] || cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
[ ! -d /usr/local/share/ca-certificates ] || cp -a /usr/local/share/ca-certificates "$root/usr/local/share/"
cp -L /etc/resolv.conf "$root/etc/resolv.conf"
shopt -u nullglob

# -- the commit under test, cloned clean -----------------------------------------------

src=$root/root/forklift
git init -q "$src"
# any commit, not only a branch tip (a detached HEAD, an older commit to compare with)
# (the -c reaches the local upload-pack through the environment)
git -C "$src" -c uploadpack.allowAnySHA1InWant=true fetch -q "$repo" "$commit"
git -C "$src" checkout -q --detach FETCH_HEAD
say "demo of $(git -C "$src" log -1 --format='%h %s') in a fresh Debian 12 (minbase)"

# -- the demo, chrooted in a private mount namespace -----------------------------------

mkdir -p /run/forklift "$root/run/forklift"
env_keep=()
for var in http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY; do
    [ -z "${!var:-}" ] || env_keep+=("$var=${!var}")
done
export -f mounts_under unmount_under
start=$SECONDS
set +e
unshare --mount --propagation private -- bash -euo pipefail -c '
    root=$1; shift
    # everything below must stay in this namespace: refuse to mount in the host one
    [ "$(readlink /proc/self/ns/mnt)" != "$(readlink /proc/1/ns/mnt)" ] || exit 90
    leave() {
        unmount_under "$root"
        if [ -n "$(mounts_under "$root")" ]; then
            echo "fresh-machine-check: still mounted in the chroot namespace:" >&2
            mounts_under "$root" >&2
        fi
    }
    trap leave EXIT
    mount --bind "$root" "$root"            # a mount point, so runc can pivot_root
    mount -t proc proc "$root/proc"
    mount --rbind /sys "$root/sys" && mount --make-rslave "$root/sys"
    mount --rbind /dev "$root/dev" && mount --make-rslave "$root/dev"
    mount --bind /run/forklift "$root/run/forklift"   # host-wide IP allocation
    chroot "$root" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        HOME=/root LANG=C.UTF-8 TERM=dumb "$@" \
        bash -c "cd /root/forklift && bash scripts/demo.sh"
' fresh-machine "$root" "${env_keep[@]}"
demo=$?
set -e
say "demo exited $demo after $((SECONDS - start)) s"
[ "$demo" != 90 ] || die "unshare did not give a private mount namespace"
[ "$demo" = 0 ] || exit "$demo"

# The chroot's iptables adds rules to the same kernel tables as the host's: both must be
# the same variant (nf_tables or legacy), or each would see only its own rules.
variant() { sed -n 's/.*(\(.*\)).*/\1/p'; }
inner=$(chroot "$root" iptables --version | variant)
outer=$(iptables --version 2>/dev/null | variant || true)
say "iptables: chroot $inner, host ${outer:-none}"
[ -z "$outer" ] || [ "$inner" = "$outer" ] || die "iptables variants differ"
say "ok"
