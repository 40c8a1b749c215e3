#!/usr/bin/env bash
# make-busybox-rootfs.sh OUT.tar
#
# Build a minimal busybox root filesystem tarball from Debian's busybox-static
# (/bin/busybox). The output is deterministic: running it twice on the same
# busybox binary gives byte-identical tarballs (sorted entries, mtime 0,
# uid/gid 0, numeric owners, GNU format, explicit modes, relative names).
#
# Contents: bin/busybox, one bin/<applet> -> busybox symlink per applet that
# `busybox --list` prints, the directories etc root tmp(1777) home var usr/bin
# usr/sbin sbin dev proc sys, and etc/passwd, etc/group. Nothing else.
#
# Installs busybox-static with apt-get if /bin/busybox is missing.
set -euo pipefail

usage() {
    echo "usage: $0 OUT.tar" >&2
    exit 2
}

[ "$#" -eq 1 ] || usage
out=$1
[ -n "$out" ] || usage

BUSYBOX=${BUSYBOX:-/bin/busybox}

if [ ! -x "$BUSYBOX" ]; then
    echo "make-busybox-rootfs: $BUSYBOX missing, installing busybox-static" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y busybox-static >&2 || {
        apt-get update >&2
        apt-get install -y busybox-static >&2
    }
fi
[ -x "$BUSYBOX" ] || { echo "make-busybox-rootfs: $BUSYBOX still missing" >&2; exit 1; }

# The binary must be static: the rootfs has no libc.
if command -v file >/dev/null 2>&1 && file -L "$BUSYBOX" | grep -q 'dynamically linked'; then
    echo "make-busybox-rootfs: $BUSYBOX is dynamically linked; need busybox-static" >&2
    exit 1
fi

out_dir=$(cd "$(dirname -- "$out")" && pwd)
out_abs="$out_dir/$(basename -- "$out")"

umask 022
stage=$(mktemp -d "${TMPDIR:-/tmp}/busybox-rootfs.XXXXXX")
tmp_out=$(mktemp "$out_dir/.$(basename -- "$out").XXXXXX")
cleanup() {
    rm -rf -- "$stage"
    rm -f -- "$tmp_out"
}
trap cleanup EXIT

cd "$stage"

mkdir -p bin etc root tmp home var usr/bin usr/sbin sbin dev proc sys
cp -- "$BUSYBOX" bin/busybox

# One symlink per applet, all in /bin, target "busybox" (relative).
"$BUSYBOX" --list | LC_ALL=C sort -u | while IFS= read -r applet; do
    case "$applet" in
        '' | busybox | */* | . | ..) continue ;;
    esac
    ln -s busybox "bin/$applet"
done

cat >etc/passwd <<'EOF'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
EOF

cat >etc/group <<'EOF'
root:x:0:
daemon:x:1:
nogroup:x:65534:
EOF

# Explicit modes so the host umask or cp defaults never leak into the tarball.
chmod 0755 bin etc root home var usr usr/bin usr/sbin sbin dev proc sys
chmod 0700 root
chmod 1777 tmp
chmod 0755 bin/busybox
chmod 0644 etc/passwd etc/group

# List top-level entries explicitly (not ".") so member names are relative
# without a leading "./".
LC_ALL=C tar \
    --create \
    --file="$tmp_out" \
    --format=gnu \
    --sort=name \
    --mtime='@0' \
    --owner=0 --group=0 --numeric-owner \
    --no-acls --no-xattrs --no-selinux \
    bin dev etc home proc root sbin sys tmp usr var

chmod 0644 "$tmp_out"
mv -f -- "$tmp_out" "$out_abs"
echo "$out_abs"
