#!/usr/bin/env python3
"""Push/pull benchmark against a local registry: forklift vs Docker vs skopeo.

Standard library only (Python >= 3.11); run as root. Conventions follow
bench/bench.py: medians (min …) in seconds, ratios of medians against Docker,
repetitions interleaved across tools, results in bench/results/registry-latest.json.

Setup (not timed): Debian's docker-registry on 127.0.0.1 (random port, storage in
a scratch dir), a private dockerd (own data/exec root and socket under
--tmp-base), a busybox rootfs (scripts/make-busybox-rootfs.sh) imported into
forklift, plus one container layer of --size-mb MB of random data committed on
top: the ~200 MB test image. It is pushed once (warm-up: forklift compresses its
new layer here and caches the gzip blob) and Docker and skopeo get their copy
from the registry.

Timed:
- push: the image to an EMPTY registry (the registry is restarted on a wiped
  storage dir before every sample), so every tool uploads every byte;
- pull: the image from the registry into an empty local store (forklift: a new
  --root; docker: after `rmi` of the image; skopeo: into a new OCI layout dir).

- push-new: the first push of a layer no tool has pushed before (before each sample,
  untimed, every tool imports a new tarball: --size-mb MB of random files plus a marker
  unique to the sample), to an empty registry: forklift must compress it (and play its
  tar back) as part of the push, as Docker compresses every layer it uploads.

Peak memory: maximum RSS of the client process (wait4 rusage). Docker's client
only talks to dockerd, which does the work: its figure is dockerd's VmHWM growth
over the run, reported once.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"
ALL_TOOLS = ("docker", "forklift", "skopeo")
WORKLOADS = ("push", "pull", "push-new")
NEW_PATH = "bench/new"
IMAGE_PATH = "bench/big"
CMD_TIMEOUT = 1800


class BenchError(Exception):
    """A command failed; the message is the one line shown in the table."""


def first_error_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not lines:
        return "no output"
    return lines[-1] if lines[0].startswith("Traceback") else lines[0]


def run(argv: list[str], timeout: float = CMD_TIMEOUT, env: dict[str, str] | None = None
        ) -> tuple[float, int]:
    """Run argv; return (seconds, max RSS in KiB). Raise BenchError on failure."""
    t0 = time.perf_counter()
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, env=env)
    except FileNotFoundError as exc:
        raise BenchError(f"{argv[0]}: not found") from exc
    assert proc.stderr is not None
    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            proc.kill()
            raise BenchError(f"timed out after {timeout:.0f}s: {' '.join(argv[:3])}")
        time.sleep(0.005)
    elapsed = time.perf_counter() - t0
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise BenchError(first_error_line(err))
    return elapsed, int(usage.ru_maxrss)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], what: str, limit: float = 20) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"{what} exited")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise BenchError(f"{what} did not start")


# ----------------------------------------------------------------------------- registry

class Registry:
    def __init__(self, work: Path) -> None:
        self.dir = work / "registry"
        self.dir.mkdir()
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        (self.dir / "config.yml").write_text(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n"
            f"storage:\n  filesystem:\n    rootdirectory: {self.dir / 'data'}\n"
            f"  delete:\n    enabled: true\nhttp:\n  addr: {self.host}\n  secret: bench\n")

    def start(self, wipe: bool = False) -> None:
        self.stop()
        if wipe:
            shutil.rmtree(self.dir / "data", ignore_errors=True)
        if not shutil.which("docker-registry"):
            raise BenchError("docker-registry not installed (apt-get install docker-registry)")
        log = open(self.dir / "registry.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(["docker-registry", "serve", str(self.dir / "config.yml")],
                                     stdout=log, stderr=subprocess.STDOUT)
        log.close()
        wait_port(self.port, self.proc, "docker-registry")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(20)
        self.proc = None


# ----------------------------------------------------------------------------- tools

@dataclass
class Tool:
    name: str
    argv: list[str]
    error: str | None = None
    notes: dict[str, object] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None  # dockerd we started


def start_dockerd(tool: Tool, work: Path, registry: Registry) -> None:
    base = work / "dockerd"
    base.mkdir()
    sock = base / "docker.sock"
    log = open(base / "dockerd.log", "wb")  # noqa: SIM115
    tool.proc = subprocess.Popen(
        ["dockerd", "--data-root", str(base / "data"), "--exec-root", str(base / "exec"),
         "-H", f"unix://{sock}", "--pidfile", str(base / "docker.pid"), "--iptables=false",
         "--bridge=none", "--insecure-registry", registry.host],
        stdout=log, stderr=subprocess.STDOUT)
    log.close()
    tool.argv = ["docker", "-H", f"unix://{sock}"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if tool.proc.poll() is not None:
            break
        if subprocess.run([*tool.argv, "info"], capture_output=True).returncode == 0:
            return
        time.sleep(0.5)
    raise BenchError("dockerd did not start within 30s")


def stop_dockerd(tool: Tool, work: Path) -> None:
    if tool.proc is None:
        return
    tool.proc.terminate()
    try:
        tool.proc.wait(30)
    except subprocess.TimeoutExpired:
        tool.proc.kill()
        tool.proc.wait()
    subprocess.run(["umount", "-R", str(work / "dockerd" / "data")], capture_output=True)


def vm_hwm_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def build_image(forklift: list[str], work: Path, size_mb: int) -> None:
    rootfs = work / "rootfs.tar"
    subprocess.run(["bash", str(REPO / "scripts" / "make-busybox-rootfs.sh"), str(rootfs)],
                   check=True, capture_output=True)
    run([*forklift, "import", "-c", "ENV PATH=/bin", str(rootfs), "bench-busybox:latest"])
    script = (f"set -e; i=0; while [ $i -lt {size_mb} ]; do mkdir -p /data/d$((i % 20)); "
              f"head -c 1048576 /dev/urandom > /data/d$((i % 20))/f$i; i=$((i+1)); done")
    run([*forklift, "run", "--network", "none", "--name", "bench-big", "bench-busybox", "sh", "-c", script])
    run([*forklift, "commit", "bench-big", "bench-big:1"])
    run([*forklift, "rm", "bench-big"])


# ----------------------------------------------------------------------------- samples

@dataclass
class Cell:
    samples: list[float] = field(default_factory=list)
    rss_kib: list[int] = field(default_factory=list)
    error: str | None = None

    @property
    def median(self) -> float | None:
        return statistics.median(self.samples) if self.samples and not self.error else None

    def show(self) -> str:
        if self.error:
            return f"n/a (error: {self.error})"
        if not self.samples:
            return "n/a"
        return f"{self.median:.2f} (min {min(self.samples):.2f})"

    def to_json(self) -> dict[str, object]:
        return {"samples_s": [round(s, 4) for s in self.samples],
                "median_s": None if self.median is None else round(self.median, 4),
                "min_s": round(min(self.samples), 4) if self.samples else None,
                "max_rss_kib": max(self.rss_kib) if self.rss_kib else None,
                "error": self.error}


def push_sample(tool: Tool, ref: str, layout: Path) -> tuple[float, int]:
    if tool.name == "forklift":
        return run([*tool.argv, "push", "-q", ref])
    if tool.name == "docker":
        return run([*tool.argv, "push", "-q", ref])
    return run(["skopeo", "copy", "-q", "--dest-tls-verify=false", f"oci:{layout}:1",
                f"docker://{ref}"])


def pull_sample(tool: Tool, ref: str, work: Path, n: int) -> tuple[float, int]:
    if tool.name == "forklift":
        root = Path(tempfile.mkdtemp(prefix=f"pull-{n}-", dir=work))
        argv = [a for a in tool.argv]
        argv[argv.index("--root") + 1] = str(root)
        try:
            return run([*argv, "pull", "-q", ref])
        finally:
            shutil.rmtree(root, ignore_errors=True)
    if tool.name == "docker":
        subprocess.run([*tool.argv, "rmi", "-f", ref], capture_output=True)
        return run([*tool.argv, "pull", "-q", ref])
    dest = work / f"skopeo-pull-{n}"
    try:
        return run(["skopeo", "copy", "-q", "--src-tls-verify=false", f"docker://{ref}",
                    f"oci:{dest}:1"])
    finally:
        shutil.rmtree(dest, ignore_errors=True)


def new_layer_tar(work: Path, size_mb: int, n: int) -> Path:
    """--size-mb MB of random 1 MiB files (the same every sample) and a marker unique to
    sample ``n``: a layer no tool has seen."""
    import tarfile

    pool = work / "pool.bin"
    if not pool.exists():
        with open(pool, "wb") as f:
            for _ in range(size_mb):
                f.write(os.urandom(1 << 20))
    out = work / f"new-{n}.tar"
    with open(pool, "rb") as src, tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tf:
        for i in range(size_mb):
            info = tarfile.TarInfo(f"data/d{i % 20}/f{i}")
            info.size, info.mtime = 1 << 20, 1_700_000_000
            tf.addfile(info, src)
        marker = f"sample {n} {time.time()}\n".encode()
        info = tarfile.TarInfo("marker")
        info.size, info.mtime = len(marker), 1_700_000_000
        tf.addfile(info, io.BytesIO(marker))
    return out


def push_new_sample(tool: Tool, registry: Registry, work: Path, size_mb: int,
                    n: int) -> tuple[float, int]:
    """Import a new layer (untimed), push it to an empty registry (timed), forget it."""
    ref = f"{registry.host}/{NEW_PATH}:{n}"
    tar = new_layer_tar(work, size_mb, n)
    try:
        if tool.name == "forklift":
            run([*tool.argv, "import", str(tar), ref])
        elif tool.name == "docker":
            run([*tool.argv, "import", str(tar), ref])
        else:
            raise BenchError("not measured")
        registry.start(wipe=True)
        os.sync()
        return run([*tool.argv, "push", "-q", ref])
    finally:
        tar.unlink(missing_ok=True)
        subprocess.run([*tool.argv, "rmi", "-f", ref], capture_output=True)


def measure(args: argparse.Namespace, tools: list[Tool], registry: Registry, work: Path,
            layout: Path) -> dict[str, dict[str, Cell]]:
    cells = {w: {t.name: Cell() for t in tools} for w in args.workloads}
    ref = f"{registry.host}/{IMAGE_PATH}:1"
    for workload in args.workloads:
        for n in range(args.repeat):
            for tool in tools:
                cell = cells[workload][tool.name]
                if tool.error or cell.error:
                    continue
                try:
                    if workload == "push-new":
                        if tool.name == "skopeo":
                            continue  # copies a layout: nothing to compress
                        t, rss = push_new_sample(tool, registry, work, args.size_mb, n)
                    elif workload == "push":
                        registry.start(wipe=True)
                        os.sync()
                        t, rss = push_sample(tool, ref, layout)
                    else:
                        os.sync()
                        t, rss = pull_sample(tool, ref, work, n)
                except BenchError as exc:
                    cell.error = str(exc)
                    continue
                cell.samples.append(t)
                cell.rss_kib.append(rss)
                if args.verbose:
                    print(f"  {workload} #{n + 1} {tool.name}: {t:.3f}s rss={rss // 1024}MiB",
                          file=sys.stderr)
        if workload in ("push", "push-new"):
            registry.start(wipe=True)
            seed(tools, ref, layout)
    return cells


def seed(tools: list[Tool], ref: str, layout: Path) -> None:
    """Put the image in the registry (forklift's copy) and give docker its local copy."""
    forklift = next(t for t in tools if t.name == "forklift")
    run([*forklift.argv, "push", "-q", ref])


def setup(args: argparse.Namespace, work: Path, registry: Registry) -> tuple[list[Tool], Path]:
    root = work / "forklift-root"
    forklift = Tool("forklift", [*args.forklift_cmd.split(), "--root", str(root)])
    tools = [forklift]
    build_image(forklift.argv, work, args.size_mb)
    ref = f"{registry.host}/{IMAGE_PATH}:1"
    run([*forklift.argv, "tag", "bench-big:1", ref])
    t, _ = run([*forklift.argv, "push", "-q", ref])
    forklift.notes["first_push_s_incl_gzip"] = round(t, 3)
    layout = work / "layout"
    if "skopeo" in args.only:
        skopeo = Tool("skopeo", ["skopeo"])
        try:
            run(["skopeo", "copy", "-q", "--src-tls-verify=false", f"docker://{ref}",
                 f"oci:{layout}:1"])
        except BenchError as exc:
            skopeo.error = str(exc)
        tools.append(skopeo)
    if "docker" in args.only:
        docker = Tool("docker", ["docker"])
        try:
            start_dockerd(docker, work, registry)
            run([*docker.argv, "pull", "-q", ref])
            docker.notes["dockerd_hwm_start_kib"] = vm_hwm_kib(docker.proc.pid)  # type: ignore[union-attr]
        except BenchError as exc:
            docker.error = str(exc)
        tools.insert(0, docker)
    return [t for t in tools if t.name in args.only], layout


def report(args: argparse.Namespace, tools: list[Tool], cells: dict[str, dict[str, Cell]]) -> None:
    names = [t.name for t in tools]
    header = ["workload"] + [f"{n} median" + ("" if n == "docker" else " | ratio") for n in names]
    print(" | ".join(header))
    for workload, row in cells.items():
        base = row.get("docker").median if "docker" in row else None
        parts = [workload]
        for n in names:
            cell = row[n]
            text = cell.show()
            if n != "docker":
                ratio = f"{cell.median / base:.2f}x" if base and cell.median else "n/a"
                text += f" | {ratio}"
            parts.append(text)
        print(" | ".join(parts))
    print("\npeak RSS of the client process (MiB):")
    for workload, row in cells.items():
        print(f"  {workload}: " + ", ".join(
            f"{n}={max(row[n].rss_kib) // 1024 if row[n].rss_kib else 'n/a'}" for n in names))
    for t in tools:
        if t.notes:
            print(f"  {t.name} notes: {t.notes}")


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", default=",".join(ALL_TOOLS))
    p.add_argument("--workloads", default=",".join(WORKLOADS))
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--size-mb", type=int, default=200)
    p.add_argument("--quick", action="store_true", help="--repeat 3 --size-mb 50")
    p.add_argument("--forklift-cmd", default=os.environ.get("FORKLIFT", "forklift"))
    p.add_argument("--tmp-base", default="/var/tmp")
    p.add_argument("--json", default=str(RESULTS / "registry-latest.json"))
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)
    if args.quick:
        args.repeat = 3 if "--repeat" not in argv else args.repeat
        args.size_mb = 50 if "--size-mb" not in argv else args.size_mb
    args.only = [t for t in args.only.split(",") if t]
    args.workloads = [w for w in args.workloads.split(",") if w]
    if "forklift" not in args.only:
        args.only.append("forklift")  # forklift builds and seeds the image
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="forklift-regbench-", dir=args.tmp_base))
    registry = Registry(work)
    tools: list[Tool] = []
    try:
        registry.start()
        tools, layout = setup(args, work, registry)
        cells = measure(args, tools, registry, work, layout)
        for t in tools:
            if t.name == "docker" and t.proc is not None:
                t.notes["dockerd_hwm_end_kib"] = vm_hwm_kib(t.proc.pid)
            if t.error:
                for row in cells.values():
                    row[t.name].error = t.error
        report(args, tools, cells)
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({
            "size_mb": args.size_mb, "repeat": args.repeat,
            "tools": {t.name: {"error": t.error, **t.notes} for t in tools},
            "results": {w: {n: c.to_json() for n, c in row.items()} for w, row in cells.items()},
        }, indent=2))
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        for t in tools:
            if t.name == "docker":
                stop_dockerd(t, work)
        registry.stop()
        subprocess.run([*args.forklift_cmd.split(), "--root", str(work / "forklift-root"),
                        "rm", "-f", "bench-big"], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
