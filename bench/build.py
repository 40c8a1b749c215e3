#!/usr/bin/env python3
"""Side-by-side benchmark of `build`: forklift vs Docker's classic builder vs BuildKit.

Standard library only (Python >= 3.11); run as root. Follows bench/save_load.py (and
reuses bench.py's and save_load.py's helpers): the same base image and context for
every builder, repetitions interleaved across builders, medians, minimums and ratios
against Docker's classic builder, everything removed at the end. dockerd is started if
it is not running (log /tmp/forklift-bench-dockerd.log) and stopped at the end only if
this script started it.

The context: --files files of --file-bytes random bytes each (default 2,000 x 25 KiB,
~50 MB) in 40 directories, and this Dockerfile on busybox (scripts/make-busybox-rootfs.sh,
imported into both stores as bench-busybox:latest):

    FROM bench-busybox:latest
    RUN mkdir -p /app && echo one > /app/one
    RUN echo two > /app/two
    COPY src/ /app/src/
    RUN ls -R /app/src | wc -l > /app/count

Workloads:
  fresh    build --no-cache (the build cache also pruned, untimed, before each sample)
  cached   the same build again, every step a cache hit
  changed  one source file rewritten (new content), then build: COPY and the last RUN run
  stages   build --no-cache (cache pruned first) of Dockerfile.stages: three independent
           stages (two hash 200 MB each, one copies a directory of the context) and a
           last one copying from each; BuildKit and forklift build the three at once
           (FORKLIFT_BUILD_JOBS=1 in forklift's environment builds them one by one)

Builders:
  classic   DOCKER_BUILDKIT=0 docker build
  buildkit  DOCKER_BUILDKIT=1 docker build (no `# syntax=` line: the daemon's built-in
            Dockerfile frontend, nothing fetched); the first docker CLI among `docker`
            and /usr/bin/docker that can build with it is used (Docker >= 23's CLI needs
            the buildx plugin for that, 20.10's has BuildKit built in)
  forklift  forklift --root <fresh store> build

Peak memory is ru_maxrss of wait4 on the timed command: for forklift, forklift itself
and the processes it waited for (runc, the RUN containers); for Docker only the CLI
(the work happens in dockerd), shown for information.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from save_load import Result, Run, fmt_rss, start_dockerd, stop_dockerd, timed_rusage  # noqa: E402

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
)

BASE = "bench-busybox:latest"
MAKE_ROOTFS = HERE.parent / "scripts" / "make-busybox-rootfs.sh"
WORKLOADS = ("fresh", "cached", "changed", "stages")
BUILDERS = ("classic", "buildkit", "forklift")
DOCKERFILE = """\
FROM bench-busybox:latest
RUN mkdir -p /app && echo one > /app/one
RUN echo two > /app/two
COPY src/ /app/src/
RUN ls -R /app/src | wc -l > /app/count
"""
STAGES_DOCKERFILE = """\
FROM bench-busybox:latest AS one
RUN dd if=/dev/zero bs=1M count=200 2>/dev/null | sha256sum > /sum
FROM bench-busybox:latest AS two
RUN dd if=/dev/zero bs=1M count=200 2>/dev/null | md5sum > /sum
FROM bench-busybox:latest AS three
COPY src/dir1/ /src/
RUN ls /src | wc -l > /sum
FROM bench-busybox:latest
COPY --from=one /sum /one
COPY --from=two /sum /two
COPY --from=three /sum /three
"""


def make_context(path: Path, files: int, file_bytes: int) -> int:
    path.mkdir()
    (path / "Dockerfile").write_text(DOCKERFILE)
    (path / "Dockerfile.stages").write_text(STAGES_DOCKERFILE)
    for i in range(files):
        d = path / "src" / f"dir{i % 40}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"file{i}").write_bytes(os.urandom(file_bytes))
    return files * file_bytes


def docker_env(buildkit: bool) -> dict[str, str]:
    return {**os.environ, "DOCKER_BUILDKIT": "1" if buildkit else "0"}


def buildkit_cli(probe_dir: Path) -> tuple[str | None, str]:
    """A docker CLI that builds with BuildKit here (a one-line scratch build), or why none."""
    (probe_dir / "Dockerfile").write_text("FROM scratch\nCOPY Dockerfile /probe\n")
    why = "no docker CLI"
    for cli in dict.fromkeys([shutil.which("docker"), "/usr/bin/docker"]):
        if cli is None or not os.path.exists(cli):
            continue
        proc = subprocess.run([cli, "build", "-q", str(probe_dir)], env=docker_env(True),
                              capture_output=True, text=True, timeout=300, check=False)
        if proc.returncode == 0:
            subprocess.run([cli, "rmi", "-f", proc.stdout.strip()], capture_output=True, check=False)
            return cli, ""
        why = f"{cli}: {first_error_line(proc.stderr, proc.stdout)}"
    return None, why


def make_tools(args: argparse.Namespace, workdir: Path) -> list[Tool]:
    tools = []
    if "classic" in args.only:
        tools.append(Tool("classic", ["docker"], env=docker_env(False)))
    if "buildkit" in args.only:
        probe = workdir / "probe"
        probe.mkdir()
        cli, why = buildkit_cli(probe)
        tools.append(Tool("buildkit", [cli or "docker"], env=docker_env(True),
                          error=None if cli else f"BuildKit unusable: {why}"))
    if "forklift" in args.only:
        root = Path(tempfile.mkdtemp(prefix="forklift-bench-", dir=args.tmp_base))
        tools.append(Tool("forklift", [*args.forklift_cmd.split(), "--root", str(root)],
                          import_cmd=["image", "import"], root=root))
    return tools


def setup(tools: list[Tool], rootfs: Path) -> None:
    imported: set[str] = set()
    for tool in tools:
        if tool.error:
            continue
        try:
            tool.version = _version(tool)
            if tool.name == "forklift" or "docker" not in imported:
                tool.call(*tool.import_cmd, "-c", "ENV PATH=/bin:/usr/bin", "-c", 'CMD ["sh"]',
                          str(rootfs), BASE)
                imported.add("forklift" if tool.name == "forklift" else "docker")
            print(f"[{tool.name}] {tool.version}: ready", flush=True)
        except BenchError as exc:
            tool.error = str(exc)
            print(f"[{tool.name}] skipped: {tool.error}", flush=True)


# ----------------------------------------------------------------------------- workloads

def tag(tool: Tool) -> str:
    return f"bench-build-{tool.name}:latest"


def forget_cache(tool: Tool) -> None:
    """Untimed, before a fresh sample: the previous builds' cache and images dropped."""
    tool.quiet("rmi", "-f", tag(tool))
    if tool.name == "forklift":
        tool.quiet("builder", "prune", "-a", "-f")
    elif tool.name == "buildkit":
        tool.quiet("builder", "prune", "-a", "-f")
    else:
        tool.quiet("image", "prune", "-f")


def sample(workload: str, tool: Tool, n: int, context: Path, network: list[str]) -> Run:
    build = ["build", *network, "-t", tag(tool)]
    if workload == "stages":
        build += ["-f", str(context / "Dockerfile.stages")]
    if workload in ("fresh", "stages"):
        forget_cache(tool)
        os.sync()
        return timed_rusage(tool, *build, "--no-cache", str(context))
    if workload == "changed":
        (context / "src" / "dir0" / "file0").write_bytes(f"{tool.name} {n} {time.time()}\n".encode())
    os.sync()
    return timed_rusage(tool, *build, str(context))


def measure(workload: str, tools: list[Tool], args: argparse.Namespace,
            context: Path) -> dict[str, Result]:
    results = {t.name: Result(Cell(error=t.error)) for t in tools}
    network = ["--network", args.network] if args.network else []
    if workload not in ("fresh", "stages"):   # every builder's cache holds this context's build first
        for tool in tools:
            if not results[tool.name].cell.error:
                try:
                    timed_rusage(tool, "build", *network, "-t", tag(tool), str(context))
                except BenchError as exc:
                    results[tool.name].cell.error = str(exc)
    for n in range(args.repeat):
        for tool in tools:
            res = results[tool.name]
            if res.cell.error:
                continue
            try:
                run = sample(workload, tool, n, context, network)
            except BenchError as exc:
                res.cell.error = str(exc)
                continue
            res.cell.samples.append(run.seconds)
            res.rss.append(run.maxrss_kib)
            if args.verbose:
                print(f"  {workload} #{n + 1} {tool.name}: {run.seconds:.3f}s"
                      f" {run.maxrss_kib / 1024:.0f} MiB", file=sys.stderr)
    return results


# ----------------------------------------------------------------------------- report

def print_table(results: dict[str, dict[str, Result]]) -> None:
    headers = ["workload", "classic median", "buildkit median", "forklift median",
               "fl/classic", "fl/buildkit", "forklift peak RSS"]
    rows = []
    for workload, cells in results.items():
        c, b, f = (cells[k].cell if k in cells else None for k in BUILDERS)
        rows.append([workload, fmt_s(c), fmt_s(b), fmt_s(f), fmt_ratio(ratio(f, c)),
                     fmt_ratio(ratio(f, b)), fmt_rss(cells.get("forklift"))])
    print_rows(headers, rows)
    print("ratio = forklift median / that builder's median (below 1.00x: forklift is faster)")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--only", default=",".join(BUILDERS), help="builders (default all three)")
    p.add_argument("--workloads", default=",".join(WORKLOADS), help="fresh,cached,changed,stages (default all)")
    p.add_argument("--repeat", type=int, default=5, help="repetitions per workload (default 5)")
    p.add_argument("--files", type=int, default=2000, help="files in the context (default 2000)")
    p.add_argument("--file-bytes", type=int, default=25600, help="bytes per file (default 25600)")
    p.add_argument("--network", default="", help="RUN's network for every builder (default: each one's default)")
    p.add_argument("--forklift-cmd", default=os.environ.get("FORKLIFT", "forklift"),
                   help="command that runs forklift (default: $FORKLIFT or 'forklift')")
    p.add_argument("--tmp-base", default="/var/tmp", help="context, forklift store (default /var/tmp)")
    p.add_argument("--json", type=Path, default=HERE / "results" / "build.json",
                   help="results file (default bench/results/build.json)")
    p.add_argument("-v", "--verbose", action="store_true", help="print every sample")
    args = p.parse_args(argv)
    args.only = [t.strip() for t in args.only.split(",") if t.strip()]
    args.workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    if set(args.only) - set(BUILDERS) or set(args.workloads) - set(WORKLOADS):
        p.error("unknown builder or workload")
    if args.repeat < 1 or args.files < 1:
        p.error("--repeat and --files must be >= 1")
    return args


def report_json(args: argparse.Namespace, tools: list[Tool], results: dict[str, dict[str, Result]],
                started: float, content: int) -> None:
    doc = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "duration_s": round(time.time() - started, 1),
        "machine": {"platform": platform.platform(), "python": platform.python_version(),
                    "cpus": os.cpu_count(), "loadavg": os.getloadavg()},
        "params": {"repeat": args.repeat, "files": args.files, "file_bytes": args.file_bytes,
                   "content_bytes": content, "network": args.network or "default"},
        "tools": {t.name: {"cli": t.argv[0], "version": t.version, "error": t.error} for t in tools},
        "results": {w: {**{n: {**r.cell.to_json(), "peak_rss_kib": r.rss} for n, r in cells.items()},
                        **{f"forklift_vs_{k}": ratio(cells["forklift"].cell, cells[k].cell)
                           for k in ("classic", "buildkit") if k in cells and "forklift" in cells}}
                    for w, cells in results.items()},
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"results written to {args.json}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.time()
    docker_wanted = bool({"classic", "buildkit"} & set(args.only))
    dockerd = start_dockerd() if docker_wanted else None
    workdir = Path(tempfile.mkdtemp(prefix="forklift-bench-build-", dir=args.tmp_base))
    tools: list[Tool] = []
    results: dict[str, dict[str, Result]] = {}
    content = 0
    try:
        tools = make_tools(args, workdir)
        rootfs = workdir / "busybox.tar"
        subprocess.run(["bash", str(MAKE_ROOTFS), str(rootfs)], check=True, capture_output=True)
        setup(tools, rootfs)
        context = workdir / "ctx"
        content = make_context(context, args.files, args.file_bytes)
        print(f"context: {args.files} files x {args.file_bytes} B (~{content / 1e6:.0f} MB);"
              f" repeat {args.repeat}; load average {os.getloadavg()[0]:.2f}", flush=True)
        for workload in args.workloads:
            print(f"measuring {workload} …", flush=True)
            results[workload] = measure(workload, tools, args, context)
        print()
        print_table(results)
        print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    finally:
        for tool in tools:
            tool.quiet("rmi", "-f", tag(tool))
            if tool.name in ("buildkit", "forklift"):
                tool.quiet("builder", "prune", "-a", "-f")
        for tool in tools:
            if tool.name == "classic":
                tool.quiet("image", "prune", "-f")
                tool.quiet("rmi", BASE)
            remove_root(tool)
        shutil.rmtree(workdir, ignore_errors=True)
        stop_dockerd(dockerd)
    report_json(args, tools, results, started, content)
    return 0


def _version(tool: Tool) -> str:
    args = ["version", "--format", "{{.Server.Version}}"] if tool.name != "forklift" else ["--version"]
    return tool.call(*args, stdout=None, timeout=60).stdout.strip().splitlines()[0]


if __name__ == "__main__":
    sys.exit(main())
