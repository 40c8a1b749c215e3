#!/usr/bin/env bash
# test.sh — install forklift with its test needs and run the whole test suite (as root).
#
# Installs forklift and what it runs (install.sh), the interop tools (skopeo, umoci,
# Debian's docker-registry and docker.io, the OCI JSON schemas, Docker's Engine API schema
# from golang-github-docker-docker-dev, Compose 1.29), debootstrap for the
# fresh-machine check, then runs pytest.
# Extra arguments go to pytest.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
FORKLIFT_EDITABLE=1 bash "$here/scripts/install.sh"

need=()
for pkg in skopeo umoci docker-registry docker.io apache2-utils openssl debootstrap \
           golang-github-opencontainers-image-spec-dev golang-github-opencontainers-specs-dev \
           golang-github-docker-docker-dev docker-compose; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ "${#need[@]}" -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need[@]}" >/dev/null
fi
# the Debian registry package starts a system service on port 5000; the tests start their own
systemctl disable --now docker-registry >/dev/null 2>&1 || true

venv=${FORKLIFT_VENV:-/opt/forklift/venv}
export PATH="$venv/bin:$PATH"
cd "$here"
"$venv/bin/ruff" check src tests bench
"$venv/bin/mypy"
exec "$venv/bin/python" -m pytest -q -n 2 --dist loadgroup --durations=15 "$@"
