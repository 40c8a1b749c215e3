#!/usr/bin/env python3
"""Side-by-side lifecycle benchmark: forklift vs Docker.

Standard library only (Python >= 3.11). Run as root:

    python3 bench/lifecycle.py [--repeat 7] [--only docker,forklift] [-v]

Starts dockerd if it is not running (log /tmp/forklift-bench-dockerd.log) and
stops it at the end only if it started it, like bench/run.sh. Both tools import
the same busybox rootfs (scripts/make-busybox-rootfs.sh) as bench-busybox:latest;
forklift uses a fresh private store under --tmp-base, removed at the end.

Workloads (timed per repetition, interleaved across tools):

| workload | command(s) timed |
|---|---|
| `run-d`      | `run -d --name X bench-busybox sleep 1000` (returns once it runs) |
| `stop`       | `stop -t 10 X` of that container (its shell traps TERM and exits at once) |
| `run-d+stop` | the two above together |
| `exec`       | `exec X true` in a running container |
| `run-rm`     | `run --rm bench-busybox true` (default network) |

Prints `workload | docker median (min) | forklift median (min) | ratio`
and writes bench/results/lifecycle.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
MAKE_ROOTFS = REPO / "scripts" / "make-busybox-rootfs.sh"
RESULTS = HERE / "results"
DOCKERD_LOG = "/tmp/forklift-bench-dockerd.log"
BASE = "bench-busybox:latest"
IMPORT_CHANGES = ["-c", "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                  "-c", 'CMD ["sh"]']
# Exits promptly on SIGTERM even as PID 1 (which ignores signals without handlers).
SERVER = ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.05; done"]
WORKLOADS = ("run-d", "stop", "run-d+stop", "exec", "run-rm")


def sh(argv: list[str], check: bool = True, **kw: object) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300, **kw)  # type: ignore[call-overload]
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc


def timed(argv: list[str]) -> float:
    t0 = time.perf_counter()
    sh(argv)
    return time.perf_counter() - t0


def ensure_dockerd() -> subprocess.Popen[bytes] | None:
    if shutil.which("docker") is None:
        return None
    if sh(["docker", "info"], check=False).returncode == 0:
        return None
    if shutil.which("dockerd") is None:
        return None
    print(f"lifecycle.py: starting dockerd (log: {DOCKERD_LOG})", file=sys.stderr)
    log = open(DOCKERD_LOG, "ab")  # noqa: SIM115
    proc = subprocess.Popen(["dockerd"], stdout=log, stderr=log)
    for _ in range(120):
        if sh(["docker", "info"], check=False).returncode == 0:
            return proc
        if proc.poll() is not None:
            return None
        time.sleep(0.5)
    return proc


def stop_dockerd(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None:
        return
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--only", default="docker,forklift")
    ap.add_argument("--forklift-cmd", default=os.environ.get("FORKLIFT", "forklift"))
    ap.add_argument("--tmp-base", default="/var/tmp")
    ap.add_argument("--json", default=str(RESULTS / "lifecycle.json"))
    ap.add_argument("-v", action="store_true")
    args = ap.parse_args()
    only = set(args.only.split(","))

    work = Path(tempfile.mkdtemp(prefix="forklift-lifecycle-", dir=args.tmp_base))
    started = ensure_dockerd() if "docker" in only else None
    tools: dict[str, list[str]] = {}
    errors: dict[str, str] = {}
    try:
        rootfs = work / "busybox.tar"
        sh(["bash", str(MAKE_ROOTFS), str(rootfs)])
        if "docker" in only:
            if sh(["docker", "info"], check=False).returncode == 0:
                tools["docker"] = ["docker"]
            else:
                errors["docker"] = "docker not available"
        if "forklift" in only:
            tools["forklift"] = [*args.forklift_cmd.split(), "--root", str(work / "store")]
        for name, argv in list(tools.items()):
            try:
                sh([*argv, "import", *IMPORT_CHANGES, str(rootfs), BASE])
                sh([*argv, "run", "--rm", BASE, "true"])  # warm-up
            except RuntimeError as exc:
                errors[name] = str(exc).splitlines()[0]
                del tools[name]
        samples: dict[str, dict[str, list[float]]] = {t: {w: [] for w in WORKLOADS} for t in tools}
        for i in range(args.repeat):
            for name, argv in tools.items():
                cname = f"bench-lc-{os.getpid()}-{i}"
                s = samples[name]
                try:
                    a = timed([*argv, "run", "-d", "--name", cname, BASE, *SERVER])
                    e = statistics.median([timed([*argv, "exec", cname, "true"]) for _ in range(3)])
                    b = timed([*argv, "stop", "-t", "10", cname])
                    r = timed([*argv, "run", "--rm", BASE, "true"])
                except RuntimeError as exc:
                    errors[name] = str(exc).splitlines()[0]
                    continue
                finally:
                    sh([*argv, "rm", "-f", cname], check=False)
                s["run-d"].append(a)
                s["stop"].append(b)
                s["run-d+stop"].append(a + b)
                s["exec"].append(e)
                s["run-rm"].append(r)
                if args.v:
                    print(f"{name} #{i}: run-d {a:.3f} exec {e:.3f} stop {b:.3f} run-rm {r:.3f}",
                          file=sys.stderr)
        for argv in tools.values():
            sh([*argv, "rmi", BASE], check=False)
    finally:
        stop_dockerd(started)
        subprocess.run(["rm", "-rf", str(work)], check=False)

    def cell(xs: list[float]) -> str:
        return f"{statistics.median(xs):.3f} ({min(xs):.3f} …)" if xs else "n/a"

    print(f"{'workload':<12} | {'docker median':<22} | {'forklift median':<22} | ratio")
    for w in WORKLOADS:
        d = samples.get("docker", {}).get(w, [])
        f = samples.get("forklift", {}).get(w, [])
        ratio = f"{statistics.median(f) / statistics.median(d):.2f}x" if d and f else "n/a"
        print(f"{w:<12} | {cell(d):<22} | {cell(f):<22} | {ratio}")
    for name, err in errors.items():
        print(f"{name}: error: {err}")
    RESULTS.mkdir(exist_ok=True)
    with open(args.json, "w") as fh:
        json.dump({"samples": samples, "errors": errors, "repeat": args.repeat}, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
