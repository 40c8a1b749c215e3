#!/usr/bin/env bash
# bench/run.sh [bench.py options]   e.g.  bash bench/run.sh --only docker --quick
# bench/run.sh --all [--quick]      every workload of issues 14 and 15, then one table (table.py)
#
# Entry point of the forklift vs Docker (vs Podman) benchmark:
#   - installs docker.io / podman with apt-get when missing (skipped for a tool
#     left out with --only, or entirely with FORKLIFT_BENCH_NO_INSTALL=1);
#   - starts dockerd when it is not running (log: /tmp/forklift-bench-dockerd.log)
#     and stops it at the end only if this script started it;
#   - runs bench/bench.py with the given options.
set -euo pipefail

here=$(cd "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
DOCKERD_LOG=/tmp/forklift-bench-dockerd.log

# Which tools were asked for (mirror of bench.py's --only; default all).
only="docker,forklift,podman"
prev=""
for arg in "$@"; do
    case "$arg" in
        --only=*) only=${arg#--only=} ;;
    esac
    if [ "$prev" = "--only" ]; then only=$arg; fi
    prev=$arg
done
wants() { case ",$only," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }

apt_install() {
    if [ "${FORKLIFT_BENCH_NO_INSTALL:-0}" = 1 ]; then
        echo "run.sh: $1 missing and FORKLIFT_BENCH_NO_INSTALL=1; not installing" >&2
        return 1
    fi
    echo "run.sh: installing $1 with apt-get" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y "$1" >&2 || { apt-get update >&2 && apt-get install -y "$1" >&2; }
}

# Docker is the reference every ratio is computed against; install it when asked for.
if wants docker && ! command -v docker >/dev/null 2>&1; then
    apt_install docker.io
fi
if wants podman && ! command -v podman >/dev/null 2>&1; then
    apt_install podman || echo "run.sh: podman unavailable; bench.py will skip it" >&2
fi

started_dockerd=""
# shellcheck disable=SC2317  # invoked through the EXIT trap
stop_dockerd() {
    if [ -n "$started_dockerd" ]; then
        echo "run.sh: stopping the dockerd this script started (pid $started_dockerd)" >&2
        kill -TERM "$started_dockerd" 2>/dev/null || true
        for _ in $(seq 1 60); do
            kill -0 "$started_dockerd" 2>/dev/null || break
            sleep 0.5
        done
        if kill -0 "$started_dockerd" 2>/dev/null; then
            echo "run.sh: dockerd did not stop in 30s; sending SIGKILL" >&2
            kill -KILL "$started_dockerd" 2>/dev/null || true
        fi
        started_dockerd=""
    fi
}
trap stop_dockerd EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if wants docker && ! docker info >/dev/null 2>&1; then
    echo "run.sh: dockerd not running; starting it (log: $DOCKERD_LOG)" >&2
    dockerd >"$DOCKERD_LOG" 2>&1 &
    started_dockerd=$!
    for _ in $(seq 1 120); do
        if [ -S /var/run/docker.sock ] && docker info >/dev/null 2>&1; then
            break
        fi
        if ! kill -0 "$started_dockerd" 2>/dev/null; then
            echo "run.sh: dockerd exited; last lines of $DOCKERD_LOG:" >&2
            tail -n 20 "$DOCKERD_LOG" >&2 || true
            started_dockerd=""
            exit 1
        fi
        sleep 0.5
    done
    if ! docker info >/dev/null 2>&1; then
        echo "run.sh: dockerd did not come up in 60s; see $DOCKERD_LOG" >&2
        exit 1
    fi
fi

python=${PYTHON:-python3}
status=0
if [ "${1:-}" = "--all" ]; then
    # the four benchmarks, each interleaving the tools, then one table of their JSON
    shift
    quick=()
    if [ "${1:-}" = "--quick" ]; then quick=(--quick); fi
    "$python" "$here/bench.py" --only docker,forklift,podman "${quick[@]}" || status=$?
    "$python" "$here/lifecycle.py" ${quick:+--repeat 3} || status=$?
    "$python" "$here/save_load.py" ${quick:+--repeat 3 --files 1000} || status=$?
    "$python" "$here/registry.py" "${quick[@]}" || status=$?
    "$python" "$here/api.py" ${quick:+--repeat 3 --listings 2} || status=$?
    "$python" "$here/table.py" --json "$here/results/table.json" || status=$?
else
    "$python" "$here/bench.py" "$@" || status=$?
fi
exit "$status"
