#!/usr/bin/env bash
# install.sh — install what forklift needs on Debian (as root) and forklift itself.
#
#   every program forklift runs (src/forklift/programs.py lists them: runc, iptables
#   and the CNI plugins for the default bridge network, iproute2, procps for `top`,
#   git for ADD of a git repository),
#   busybox-static (for the local base image), python3 + venv, then forklift into
#   /opt/forklift/venv with a `forklift` command in /usr/local/bin.
#
# FORKLIFT_EDITABLE=1 installs the working tree in editable mode with test extras.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
venv=${FORKLIFT_VENV:-/opt/forklift/venv}

# the programs forklift runs (tests/containers/test_missing_programs.py checks this
# list against programs.py), then what the demo and the installation need
runtime_packages=(runc iptables containernetworking-plugins iproute2 procps coreutils git tini util-linux)
other_packages=(busybox-static tar xz-utils zstd ca-certificates)
need_apt=()
for pkg in "${runtime_packages[@]}" "${other_packages[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
python_ok=0
if command -v python3 >/dev/null && python3 -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    python_ok=1
fi
[ "$python_ok" = 1 ] || need_apt+=(python3 python3-venv python3-pip)
if [ "${#need_apt[@]}" -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q --upgrade pip >/dev/null 2>&1 || true
if [ "${FORKLIFT_EDITABLE:-0}" = 1 ]; then
    "$venv/bin/python" -m pip install -q -e "$here[test]"
else
    "$venv/bin/python" -m pip install -q "$here"
fi
# compiled bytecode keeps `forklift run` fast even where PYTHONDONTWRITEBYTECODE is set
site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
"$venv/bin/python" -m compileall -q -j 0 "$here/src" "$site" >/dev/null 2>&1 || true
# the console script without site's start-up work (scripts/write-launcher.sh says why)
bash "$here/scripts/write-launcher.sh" "$venv" /usr/local/bin/forklift
echo "forklift installed: $(/usr/local/bin/forklift --version)"
