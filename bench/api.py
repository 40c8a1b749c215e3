#!/usr/bin/env python3
"""The Engine API side by side with dockerd: one docker CLI binary, DOCKER_HOST at
forklift's service socket or at a dockerd's.

Standard library only (Python >= 3.11). Run as root:

    python3 bench/api.py [--repeat 15] [--listings 8] [--docker /usr/bin/docker]
                         [--forklift NAME=PYTHONPATH ...] [--containers N] [--images N]
                         [--requests N] [--pause MS] [-v]

Starts a private dockerd (its own data-root, exec-root and socket; no bridge, no iptables:
other dockerds on the machine are left alone), and one `forklift system service` per
`--forklift` entry (default: the `forklift` on PATH), each with `PYTHONPATH` set to the
given source tree, all on one fresh private store under --tmp-base: several trees (main
and a branch, say) are measured in the same run. Both engines import the same busybox
rootfs (scripts/make-busybox-rootfs.sh) as bench-busybox:latest and run one long-lived
container for exec; ``--containers N`` and ``--images N`` add that many containers (a
third running, a third exited, a third created) and images (commits) to each store, so
that ``ps`` and ``images`` list rows (two trees on one store share them). ``--requests N``
then sends the CLI's two requests of ``ps`` and ``images`` (``HEAD /_ping``, the listing)
N times per engine straight to the socket, ``--pause`` ms apart (default 20, about a
CLI's own start and end): the server's part without the CLI around it, wall time and the
serving process's CPU time per pair.

Workloads (every repetition runs each workload once per engine, ``ps`` and ``images``
``--listings`` times, the engines' order alternating between runs):

| workload | command timed |
|---|---|
| `run-rm` | `docker run --rm --network none bench-busybox true` |
| `ps`     | `docker ps` |
| `images` | `docker images` |
| `exec`   | `docker exec C true` in the running container |

`--network none` for both: the private dockerd has no bridge, and the figure is about the
API path, not network set-up. Prints median and minimum per engine, and each forklift's
ratios to dockerd (of medians and of minimums); writes bench/results/api.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
MAKE_ROOTFS = HERE.parent / "scripts" / "make-busybox-rootfs.sh"
RESULTS = HERE / "results"
BASE = "bench-busybox:latest"
IMPORT_CHANGES = ["-c", "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                  "-c", 'CMD ["sh"]']
SERVER = ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
EXEC_NAME = "bench-api-exec"
PIDS: dict[str, int] = {}  # DOCKER_HOST -> the serving process (its CPU time is read)
SOCKET_REQUESTS = {"ps": "/v1.41/containers/json", "images": "/v1.41/images/json"}
POPULATED = "bench-api-pop"  # --containers/--images: their names' prefix
WORKLOADS = {
    "run-rm": ["run", "--rm", "--network", "none", BASE, "true"],
    "ps": ["ps"],
    "images": ["images"],
    "exec": ["exec", EXEC_NAME, "true"],
}


def sh(argv: list[str], env: dict[str, str] | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300, env=env)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc


def wait_socket(path: Path, proc: subprocess.Popen[bytes], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited {proc.returncode}")
        with contextlib.closing(socket.socket(socket.AF_UNIX)) as s:
            try:
                s.connect(str(path))
                return
            except OSError:
                time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on {path}")


@contextlib.contextmanager
def background(argv: list[str], log: Path, sock: Path, what: str,
               env: dict[str, str] | None = None) -> Iterator[str]:
    """``argv`` running until the block ends (SIGTERM, then SIGKILL); its DOCKER_HOST."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=out, stdin=subprocess.DEVNULL, env=env)
    try:
        wait_socket(sock, proc, what)
        PIDS[f"unix://{sock}"] = proc.pid
        yield f"unix://{sock}"
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def dockerd(work: Path) -> contextlib.AbstractContextManager[str]:
    base = work / "dockerd"
    base.mkdir()
    sock = base / "docker.sock"
    argv = ["dockerd", "--data-root", str(base / "data"), "--exec-root", str(base / "exec"),
            "-H", f"unix://{sock}", "--pidfile", str(base / "docker.pid"),
            "--iptables=false", "--ip6tables=false", "--bridge=none"]
    return background(argv, base / "dockerd.log", sock, "dockerd")


def forklift_service(name: str, pythonpath: str, store: Path,
                     work: Path) -> contextlib.AbstractContextManager[str]:
    sock = work / f"forklift-{name}.sock"
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    argv = [*forklift_argv(pythonpath), "--root", str(store), "system", "service",
            "--socket", f"unix://{sock}", "--time", "0"]
    return background(argv, work / f"forklift-{name}.log", sock, f"forklift ({name})", env)


def forklift_argv(pythonpath: str) -> list[str]:
    """The venv's interpreter with a source tree first on the path, or the installed CLI."""
    if pythonpath:
        return [os.environ.get("FORKLIFT_PYTHON", "/opt/forklift/venv/bin/python"), "-m", "forklift"]
    return ["forklift"]


def prepare(docker: str, host: str, rootfs: Path, containers: int = 0, images: int = 0) -> None:
    env = dict(os.environ, DOCKER_HOST=host)
    if sh([docker, "image", "inspect", BASE], env, check=False).returncode != 0:
        sh([docker, "import", *IMPORT_CHANGES, str(rootfs), BASE], env)
    sh([docker, "rm", "-f", EXEC_NAME], env, check=False)
    sh([docker, "run", "-d", "--network", "none", "--name", EXEC_NAME, BASE, *SERVER], env)
    populate(docker, env, containers, images)
    sh([docker, *WORKLOADS["run-rm"]], env)  # warm-up


def populate(docker: str, env: dict[str, str], containers: int, images: int) -> None:
    """``containers`` more containers (a third running, a third exited, the rest created)
    and ``images`` more images (commits of the exited ones, each its own ID), so that the
    listings have rows to list; once per store (several trees share one)."""
    names = [f"{POPULATED}{i}" for i in range(containers)]
    have = sh([docker, "ps", "-a", "--filter", f"name={POPULATED}", "--format", "{{.Names}}"],
              env).stdout.split()
    if sorted(have) == sorted(names):
        return
    exited: list[str] = []
    for i, name in enumerate(names):
        if i % 3 == 0:
            sh([docker, "run", "-d", "--network", "none", "--name", name, BASE, *SERVER], env)
        elif i % 3 == 1:
            sh([docker, "run", "--network", "none", "--name", name, BASE, "true"], env)
            exited.append(name)
        else:
            sh([docker, "create", "--network", "none", "--name", name, BASE, "true"], env)
    for j in range(images if exited else 0):
        sh([docker, "commit", exited[j % len(exited)], f"{POPULATED}img{j}:v{j}"], env)


def remove_populated(docker: str, env: dict[str, str], containers: int) -> None:
    names = [f"{POPULATED}{i}" for i in range(containers)]
    if names:
        sh([docker, "rm", "-f", *names], env, check=False)


def timed(docker: str, host: str, args: list[str]) -> float:
    env = dict(os.environ, DOCKER_HOST=host)
    t0 = time.perf_counter()
    sh([docker, *args], env)
    return time.perf_counter() - t0


def measure(docker: str, hosts: dict[str, str], repeat: int, listings: int,
            verbose: bool) -> dict[str, dict[str, list[float]]]:
    """Every workload once per engine and repetition, ``ps`` and ``images`` ``listings``
    times: their difference between engines is a millisecond or two of ~35 (the CLI's
    own start), where a single run varies by several."""
    samples: dict[str, dict[str, list[float]]] = {e: {w: [] for w in WORKLOADS} for e in hosts}
    order = list(hosts)
    for i in range(repeat):
        for workload, args in WORKLOADS.items():
            for j in range(listings if workload in SOCKET_REQUESTS else 1):
                for engine in order if (i + j) % 2 == 0 else order[::-1]:
                    samples[engine][workload].append(timed(docker, hosts[engine], args))
        if verbose:
            print(f"#{i}: " + "  ".join(f"{e} " + " ".join(
                f"{w} {samples[e][w][-1]:.3f}" for w in WORKLOADS) for e in order), file=sys.stderr)
    return samples


def socket_pairs(hosts: dict[str, str], count: int, pause: float,
                 rounds: int = 5) -> dict[str, dict[str, dict[str, float]]]:
    """The docker CLI's two requests without the CLI: ``HEAD /_ping``, then the listing,
    on one connection, ``count`` times per engine and listing, in ``rounds`` alternating
    batches, ``pause`` seconds between pairs (the CLI's own start and end lie between two
    commands: a server that has just served is faster than one that waited). Per engine
    and listing: median and minimum wall time of a pair, and the serving process's CPU
    time per pair (all its threads; /proc's clock ticks, hence batches)."""
    out: dict[str, dict[str, dict[str, float]]] = {e: {} for e in hosts}
    order = list(hosts)
    for workload, target in SOCKET_REQUESTS.items():
        walls: dict[str, list[float]] = {e: [] for e in hosts}
        cpu = dict.fromkeys(hosts, 0.0)
        for r in range(rounds):
            for engine in order if r % 2 == 0 else order[::-1]:
                path, pid = hosts[engine].removeprefix("unix://"), PIDS[hosts[engine]]
                before = cpu_seconds(pid)
                for _ in range(max(1, count // rounds)):
                    walls[engine].append(pair(path, target))
                    time.sleep(pause)
                cpu[engine] += cpu_seconds(pid) - before
        for engine in hosts:
            out[engine][workload] = {"median": statistics.median(walls[engine]),
                                     "min": min(walls[engine]),
                                     "cpu": cpu[engine] / len(walls[engine])}
    return out


def pair(path: str, target: str) -> float:
    import http.client

    class Unix(http.client.HTTPConnection):
        def connect(self) -> None:
            self.sock = socket.socket(socket.AF_UNIX)
            self.sock.connect(path)

    t0 = time.perf_counter()
    conn = Unix("docker")
    try:
        for method, url in (("HEAD", "/_ping"), ("GET", target)):
            conn.request(method, url)
            answer = conn.getresponse()
            answer.read()
            if answer.status != 200:
                raise RuntimeError(f"{method} {url}: {answer.status}")
    finally:
        conn.close()
    return time.perf_counter() - t0


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def socket_table(found: dict[str, dict[str, dict[str, float]]], pause: float) -> list[str]:
    lines = [f"request pair (HEAD /_ping + listing, {pause * 1e3:g} ms apart) at the socket: "
             "wall median (min), service CPU per pair, in ms"]
    for workload in SOCKET_REQUESTS:
        cells = [f"{e} {d[workload]['median'] * 1e3:.2f} ({d[workload]['min'] * 1e3:.2f}) "
                 f"cpu {d[workload]['cpu'] * 1e3:.2f}" for e, d in found.items()]
        lines.append(f"{workload:<8} | " + " | ".join(cells))
    return lines


def table(samples: dict[str, dict[str, list[float]]]) -> list[str]:
    engines = list(samples)
    forklifts = [e for e in engines if e != "docker"]
    head = f"{'workload':<8} | " + " | ".join(f"{e + ' median (min)':<28}" for e in engines)
    head += "".join(f" | {e} / docker" for e in forklifts if "docker" in samples)
    lines = [head]
    for w in WORKLOADS:
        cells = [f"{statistics.median(samples[e][w]):.3f} ({min(samples[e][w]):.3f})"
                 for e in engines]
        row = f"{w:<8} | " + " | ".join(f"{c:<28}" for c in cells)
        if "docker" in samples:
            d = samples["docker"][w]
            for e in forklifts:
                f = samples[e][w]
                low, mid, high = paired_difference(f, d)
                row += (f" | {statistics.median(f) / statistics.median(d):.2f}x"
                        f" (min {min(f) / min(d):.2f}x; {mid * 1e3:+.1f} ms [{low * 1e3:+.1f}, {high * 1e3:+.1f}])")
        lines.append(row)
    lines.append("ratios of medians (of minimums; the median of the differences between runs side "
                 "by side, in ms, with its 95% bootstrap interval)")
    return lines


def paired_difference(these: list[float], those: list[float],
                      resamples: int = 2000) -> tuple[float, float, float]:
    """The median of ``these[k] - those[k]`` (runs made side by side, so the machine's
    drift cancels out) and a 95% bootstrap interval of it: (low, median, high)."""
    import random

    diffs = [a - b for a, b in zip(these, those, strict=True)]
    rng = random.Random(0)
    medians = sorted(statistics.median(rng.choices(diffs, k=len(diffs)))
                     for _ in range(resamples))
    return medians[resamples // 40], statistics.median(diffs), medians[resamples - 1 - resamples // 40]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--listings", type=int, default=8,
                    help="runs of ps and of images per engine and repetition (default 8)")
    ap.add_argument("--docker", default="/usr/bin/docker", help="the one docker CLI binary")
    ap.add_argument("--forklift", action="append", default=[], metavar="NAME=PYTHONPATH",
                    help="a forklift tree to serve (repeatable); default: forklift on PATH")
    ap.add_argument("--no-docker", action="store_true", help="forklift trees only")
    ap.add_argument("--containers", type=int, default=0,
                    help="more containers in each store (a third running, exited, created)")
    ap.add_argument("--images", type=int, default=0,
                    help="more images in each store (commits of the exited containers)")
    ap.add_argument("--requests", type=int, default=0,
                    help="also time N request pairs per engine at the socket, without the CLI")
    ap.add_argument("--pause", type=float, default=20.0,
                    help="milliseconds between two pairs at the socket (default 20: a CLI's start)")
    ap.add_argument("--tmp-base", default="/var/tmp")
    ap.add_argument("--json", default=str(RESULTS / "api.json"))
    ap.add_argument("-v", action="store_true")
    args = ap.parse_args()
    trees = dict(item.split("=", 1) for item in args.forklift) or {"forklift": ""}

    work = Path(tempfile.mkdtemp(prefix="fl-bench-api-", dir=args.tmp_base))
    store = work / "store"
    hosts: dict[str, str] = {}
    try:
        with contextlib.ExitStack() as running:
            rootfs = work / "busybox.tar"
            sh(["bash", str(MAKE_ROOTFS), str(rootfs)])
            if not args.no_docker:
                hosts["docker"] = running.enter_context(dockerd(work))
            for name, pythonpath in trees.items():
                hosts[name] = running.enter_context(
                    forklift_service(name, pythonpath, store, work))
            for host in dict.fromkeys(hosts.values()):
                prepare(args.docker, host, rootfs, args.containers, args.images)
            samples = measure(args.docker, hosts, args.repeat, args.listings, args.v)
            sockets = socket_pairs(hosts, args.requests, args.pause / 1e3) if args.requests else {}
            for host in hosts.values():
                env = dict(os.environ, DOCKER_HOST=host)
                sh([args.docker, "rm", "-f", EXEC_NAME], env, check=False)
                remove_populated(args.docker, env, args.containers)
    finally:
        cleanup(work)
    for line in table(samples) + (socket_table(sockets, args.pause / 1e3) if sockets else []):
        print(line)
    RESULTS.mkdir(exist_ok=True)
    with open(args.json, "w") as fh:
        json.dump({"samples": samples, "repeat": args.repeat, "docker": args.docker,
                   "listings": args.listings, "trees": trees, "containers": args.containers, "images": args.images,
                   "socket": sockets, "pause_ms": args.pause},
                  fh, indent=2)
    return 0


def cleanup(work: Path) -> None:
    """The store may hold overlay mounts of a container still going away: unmount
    everything under the work directory before removing it."""
    with open("/proc/mounts") as f:
        mounts = [line.split()[1] for line in f if line.split()[1].startswith(str(work))]
    for target in sorted(mounts, key=len, reverse=True):
        subprocess.run(["umount", "-l", target], check=False)
    subprocess.run(["rm", "-rf", "--one-file-system", str(work)], check=False)


if __name__ == "__main__":
    sys.exit(main())
