#!/usr/bin/env python3
"""Side-by-side benchmark of image save and load: forklift vs Docker.

Standard library only (Python >= 3.11); run as root. Follows bench/bench.py's
conventions (and reuses its table helpers): same image in every tool,
repetitions interleaved across tools, medians and ratios against Docker, a sync
(untimed) before every sample, everything removed at the end.

Setup (untimed): a rootfs tarball with busybox and --files random files of
--file-bytes each (default 5,000 x 40 KiB ~ 200 MB) is imported into each tool
as bench-save:latest. dockerd is started if it is not running (as bench/run.sh
does; log /tmp/forklift-bench-dockerd.log) and stopped at the end only if this
script started it.

Workloads:
  save    save -o FILE bench-save:latest    (docker-archive, to a file)
  load    load -i FILE, image absent        (the same archive for every tool)
  reload  load -i FILE, image present       (forklift verifies and copies nothing)

Peak memory is the maximum resident set of the timed process (wait4 rusage):
for forklift that is all the work; for Docker it is only the CLI, the work
happens in dockerd, so it is shown for information.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench import (  # noqa: E402  (bench.py is a script next to this one)
    BenchError,
    Cell,
    Tool,
    first_error_line,
    fmt_ratio,
    fmt_s,
    print_rows,
    ratio,
    remove_root,
    settle,
)

IMAGE = "bench-save:latest"
WORKLOADS = ("save", "load", "reload")
DOCKERD_LOG = "/tmp/forklift-bench-dockerd.log"
CMD_TIMEOUT = 1800


@dataclass
class Run:
    seconds: float
    maxrss_kib: int


@dataclass
class Result:
    cell: Cell = field(default_factory=Cell)
    rss: list[int] = field(default_factory=list)


def timed_rusage(tool: Tool, *args: str) -> Run:
    """Run a tool command (with its env); wall time and the child's own peak RSS (wait4)."""
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        try:
            proc = subprocess.Popen(tool.cmd(*args), stdin=subprocess.DEVNULL, env=tool.env,
                                    stdout=subprocess.DEVNULL, stderr=err)
        except FileNotFoundError as exc:
            raise BenchError(f"{tool.argv[0]}: not found") from exc
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            err.seek(0)
            raise BenchError(first_error_line(err.read().decode(errors="replace")))
    return Run(elapsed, int(usage.ru_maxrss))


# ----------------------------------------------------------------------------- setup

def make_rootfs(path: Path, files: int, file_bytes: int) -> int:
    """busybox + ``files`` random files in 50 dirs; returns bytes of file content."""
    busybox = shutil.which("busybox") or "/bin/busybox"
    total = 0
    with tarfile.open(path, "w") as tf:
        tf.add(busybox, "bin/busybox")
        for applet in ("sh", "ls", "cat", "true"):
            info = tarfile.TarInfo(f"bin/{applet}")
            info.type, info.linkname, info.mode = tarfile.SYMTYPE, "busybox", 0o777
            tf.addfile(info)
        for i in range(files):
            info = tarfile.TarInfo(f"data/dir{i % 50}/file{i}")
            info.size, info.mode, info.mtime = file_bytes, 0o644, 1_700_000_000
            tf.addfile(info, io.BytesIO(os.urandom(file_bytes)))
            total += file_bytes
    return total


def docker_up() -> bool:
    return subprocess.run(["docker", "info"], capture_output=True).returncode == 0


def start_dockerd() -> subprocess.Popen[bytes] | None:
    """Start dockerd if it is not running, as bench/run.sh does; None if already up."""
    if shutil.which("docker") is None or docker_up():
        return None
    print(f"dockerd not running; starting it (log: {DOCKERD_LOG})", file=sys.stderr)
    with open(DOCKERD_LOG, "wb") as log:
        proc = subprocess.Popen(["dockerd"], stdout=log, stderr=subprocess.STDOUT)
    for _ in range(120):
        if docker_up():
            return proc
        if proc.poll() is not None:
            raise SystemExit(f"dockerd exited; see {DOCKERD_LOG}")
        time.sleep(0.5)
    stop_dockerd(proc)
    raise SystemExit(f"dockerd did not come up in 60s; see {DOCKERD_LOG}")


def stop_dockerd(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None:
        return
    print(f"stopping the dockerd this script started (pid {proc.pid})", file=sys.stderr)
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def make_tools(args: argparse.Namespace) -> list[Tool]:
    tools = []
    if "docker" in args.only:
        tools.append(Tool("docker", ["docker"]))
    if "forklift" in args.only:
        root = Path(tempfile.mkdtemp(prefix="forklift-bench-", dir=args.tmp_base))
        tools.append(Tool("forklift", [*args.forklift_cmd.split(), "--root", str(root)], root=root))
    return tools


def setup(tool: Tool, rootfs: Path) -> None:
    tool.quiet("rmi", IMAGE)
    t = tool.timed("import", "-c", "ENV PATH=/bin", str(rootfs), IMAGE)
    tool.notes["import_s"] = round(t, 3)


# ----------------------------------------------------------------------------- workloads

def sample(workload: str, tool: Tool, n: int, workdir: Path, archive: Path | None,
           settle_caches: bool = True) -> Run:
    if workload == "save":
        out = workdir / f"{tool.name}-save-{n}.tar"
        try:
            run = timed_rusage(tool, "save", "-o", str(out), IMAGE)
            tool.notes["archive_bytes"] = out.stat().st_size
            return run
        finally:
            out.unlink(missing_ok=True)
    if archive is None:
        raise BenchError("no archive to load")
    if workload == "load":
        tool.quiet("rmi", IMAGE)
        if tool.name == "docker":
            tool.quiet("image", "prune", "-f")
    if settle_caches:
        settle(tool, [archive])  # as bench.py's import: the same state for every tool
    else:
        os.sync()
    return timed_rusage(tool, "load", "-i", str(archive))


def measure(workload: str, tools: list[Tool], args: argparse.Namespace, workdir: Path,
            archive: Path | None) -> dict[str, Result]:
    results = {t.name: Result(Cell(error=t.error)) for t in tools}
    for n in range(args.repeat):
        for tool in tools:
            res = results[tool.name]
            if res.cell.error:
                continue
            if args.sync:
                os.sync()
            try:
                run = sample(workload, tool, n, workdir, archive, args.settle)
            except BenchError as exc:
                res.cell.error = str(exc)
                continue
            res.cell.samples.append(run.seconds)
            res.rss.append(run.maxrss_kib)
            if args.verbose:
                print(f"  {workload} #{n + 1} {tool.name}: {run.seconds:.3f}s"
                      f" {run.maxrss_kib / 1024:.0f} MiB", file=sys.stderr)
    return results


def shared_archive(tools: list[Tool], workdir: Path) -> tuple[Path | None, str | None]:
    """One docker-archive every tool loads (Docker's when present): same bytes, same work."""
    out = workdir / "load.tar"
    for tool in tools:
        if tool.error:
            continue
        try:
            tool.call("save", "-o", str(out), IMAGE)
            return out, tool.name
        except BenchError:
            out.unlink(missing_ok=True)
    return None, None


# ----------------------------------------------------------------------------- report

def fmt_rss(res: Result | None) -> str:
    if res is None or not res.rss or res.cell.error:
        return "-"
    return f"{statistics.median(res.rss) / 1024:.0f} MiB (max {max(res.rss) / 1024:.0f})"


def print_table(results: dict[str, dict[str, Result]]) -> None:
    headers = ["workload", "docker median", "forklift median", "ratio",
               "forklift peak RSS", "docker CLI peak RSS"]
    rows = []
    for workload, cells in results.items():
        d, f = cells.get("docker"), cells.get("forklift")
        dc, fc = (d.cell if d else None), (f.cell if f else None)
        rows.append([workload, fmt_s(dc), fmt_s(fc), fmt_ratio(ratio(fc, dc)), fmt_rss(f), fmt_rss(d)])
    print_rows(headers, rows)
    print("ratio = forklift median / docker median (lower is faster than docker);"
          " docker's work happens in dockerd, its CLI RSS is not the work's")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--only", default="docker,forklift", help="tools (default docker,forklift)")
    p.add_argument("--workloads", default=",".join(WORKLOADS), help="save,load,reload (default all)")
    p.add_argument("--repeat", type=int, default=5, help="repetitions per workload (default 5)")
    p.add_argument("--files", type=int, default=5000, help="random files in the image (default 5000)")
    p.add_argument("--rootfs", type=Path, default=None,
                   help="use this rootfs tarball as the image instead of random files (a real"
                   " distribution: scripts/make-debian-rootfs.sh OUT.tar)")
    p.add_argument("--file-bytes", type=int, default=40960, help="bytes per file (default 40960)")
    p.add_argument("--forklift-cmd", default=os.environ.get("FORKLIFT", "forklift"),
                   help="command that runs forklift (default: $FORKLIFT or 'forklift')")
    p.add_argument("--tmp-base", default="/var/tmp", help="forklift store and scratch (default /var/tmp)")
    p.add_argument("--json", type=Path, default=HERE / "results" / "save_load.json",
                   help="results file (default bench/results/save_load.json)")
    p.add_argument("--no-sync", dest="sync", action="store_false", help="no sync(2) before samples")
    p.add_argument("--no-settle", dest="settle", action="store_false",
                   help="no page-cache drop before load samples (bench.py's settle())")
    p.add_argument("-v", "--verbose", action="store_true", help="print every sample")
    args = p.parse_args(argv)
    args.only = [t.strip() for t in args.only.split(",") if t.strip()]
    args.workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    if set(args.only) - {"docker", "forklift"} or set(args.workloads) - set(WORKLOADS):
        p.error("unknown tool or workload")
    if args.repeat < 1 or args.files < 0:
        p.error("--repeat must be >= 1")
    return args


def report_json(args: argparse.Namespace, tools: list[Tool], results: dict[str, dict[str, Result]],
                started: float, content: int, archive_from: str | None) -> None:
    doc = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "duration_s": round(time.time() - started, 1),
        "machine": {"platform": platform.platform(), "python": platform.python_version(),
                    "cpus": os.cpu_count()},
        "params": {"repeat": args.repeat, "rootfs": str(args.rootfs) if args.rootfs else None, "files": args.files, "file_bytes": args.file_bytes,
                   "content_bytes": content, "load_archive_from": archive_from,
                   "settle_before_sample": args.settle},
        "tools": {t.name: {"version": t.version, "error": t.error, **t.notes} for t in tools},
        "results": {w: {**{n: {**r.cell.to_json(), "peak_rss_kib": r.rss} for n, r in cells.items()},
                        "forklift_vs_docker": ratio(cells["forklift"].cell, cells["docker"].cell)
                        if "forklift" in cells and "docker" in cells else None}
                    for w, cells in results.items()},
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"results written to {args.json}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.time()
    dockerd = start_dockerd() if "docker" in args.only else None
    workdir = Path(tempfile.mkdtemp(prefix="forklift-bench-saveload-", dir=args.tmp_base))
    tools = make_tools(args)
    results: dict[str, dict[str, Result]] = {}
    archive_from = None
    try:
        rootfs = workdir / "rootfs.tar"
        if args.rootfs:
            rootfs = args.rootfs.resolve()
            content = rootfs.stat().st_size
            print(f"image content: {rootfs} ({rootfs.stat().st_size / 1e6:.0f} MB);"
                  f" repeat {args.repeat}", flush=True)
        else:
            content = make_rootfs(rootfs, args.files, args.file_bytes)
            print(f"image content: {args.files} files x {args.file_bytes} B"
                  f" (~{content / 1e6:.0f} MB); repeat {args.repeat}", flush=True)
        for tool in tools:
            try:
                tool.version = _version(tool)
                setup(tool, rootfs)
                print(f"[{tool.name}] {tool.version}: ready ({tool.notes})", flush=True)
            except BenchError as exc:
                tool.error = str(exc)
                print(f"[{tool.name}] skipped: {tool.error}", flush=True)
        rootfs.unlink()
        archive, archive_from = shared_archive(tools, workdir)
        if archive is not None:
            print(f"load archive: saved by {archive_from}, {archive.stat().st_size} bytes", flush=True)
        for workload in args.workloads:
            print(f"measuring {workload} …", flush=True)
            results[workload] = measure(workload, tools, args, workdir, archive)
        print()
        print_table(results)
    finally:
        for tool in tools:
            tool.quiet("rmi", IMAGE)
            remove_root(tool)
        shutil.rmtree(workdir, ignore_errors=True)
        stop_dockerd(dockerd)
    report_json(args, tools, results, started, content, archive_from)
    return 0


def _version(tool: Tool) -> str:
    args = ["version", "--format", "{{.Server.Version}}"] if tool.name == "docker" else ["--version"]
    return tool.call(*args, stdout=None, timeout=60).stdout.strip().splitlines()[0]


if __name__ == "__main__":
    sys.exit(main())
