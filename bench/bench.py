#!/usr/bin/env python3
"""Side-by-side benchmark: forklift vs Docker (and Podman where it runs).

Standard library only (Python >= 3.11). Normally started through bench/run.sh,
which makes sure dockerd is up; see bench/README.md.

Every tool gets the same busybox rootfs tarball (scripts/make-busybox-rootfs.sh)
imported as bench-busybox:latest, then each workload is timed N times per tool,
repetitions interleaved across tools so slow drifts of a shared machine hit all
of them alike. Reported: median, min, and the ratio of medians against Docker.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
MAKE_ROOTFS = REPO / "scripts" / "make-busybox-rootfs.sh"
RESULTS = HERE / "results"

ALL_TOOLS = ("docker", "forklift", "podman")
ALL_WORKLOADS = ("run", "diff", "commit", "export", "import")

BASE_IMAGE = "bench-busybox:latest"
BIG = "bench-big"
IMPORT_CHANGES = [
    "-c",
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "-c",
    'CMD ["sh"]',
]
DIRS = 50
FILE_BYTES = 40960
CMD_TIMEOUT = 1800  # seconds, for any single command


class BenchError(Exception):
    """A tool command failed; the message is the one line shown in the table."""


def first_error_line(stderr: str, stdout: str = "") -> str:
    lines = [ln.strip() for ln in (stderr or stdout).splitlines() if ln.strip()]
    if not lines:
        return "no output"
    # A Python traceback's first line says nothing; its last line says what broke.
    if lines[0].startswith("Traceback"):
        return lines[-1]
    return lines[0]


@dataclass
class Tool:
    name: str
    argv: list[str]  # command prefix, global options included
    run_opts: list[str] = field(default_factory=list)  # extra options for `run`
    import_cmd: list[str] = field(default_factory=lambda: ["import"])
    env: dict[str, str] | None = None
    error: str | None = None  # set when setup failed: every workload is n/a
    version: str = ""
    root: Path | None = None  # private store root (forklift)
    notes: dict[str, object] = field(default_factory=dict)

    def cmd(self, *args: str) -> list[str]:
        return [*self.argv, *args]

    def call(
        self,
        *args: str,
        stdout: int | None = subprocess.DEVNULL,
        check: bool = True,
        timeout: float = CMD_TIMEOUT,
    ) -> subprocess.CompletedProcess[str]:
        try:
            proc = subprocess.run(
                self.cmd(*args),
                stdin=subprocess.DEVNULL,
                stdout=stdout if stdout is not None else subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=self.env,
                timeout=timeout,
            )
        except FileNotFoundError as exc:
            raise BenchError(f"{self.argv[0]}: not found") from exc
        except subprocess.TimeoutExpired as exc:
            raise BenchError(f"timed out after {timeout:.0f}s: {' '.join(args[:2])}") from exc
        if check and proc.returncode != 0:
            raise BenchError(first_error_line(proc.stderr, proc.stdout or ""))
        return proc

    def timed(self, *args: str) -> float:
        t0 = time.perf_counter()
        self.call(*args)
        return time.perf_counter() - t0

    def quiet(self, *args: str) -> None:
        """Best-effort cleanup command: errors ignored."""
        try:
            self.call(*args, check=False, timeout=300)
        except BenchError:
            pass


def make_tools(args: argparse.Namespace) -> list[Tool]:
    tools: list[Tool] = []
    for name in args.only:
        if name == "docker":
            tools.append(Tool("docker", ["docker"]))
        elif name == "forklift":
            root = Path(tempfile.mkdtemp(prefix="forklift-bench-", dir=args.tmp_base))
            argv = [*args.forklift_cmd.split(), "--root", str(root)]
            tool = Tool("forklift", argv, import_cmd=["image", "import"], root=root)
            tools.append(tool)
        elif name == "podman":
            tools.append(
                Tool(
                    "podman",
                    ["podman", "--runtime", "runc"],
                    run_opts=["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"],
                )
            )
    return tools


def populate_script(files: int) -> str:
    # busybox sh: 50 dirs, `files` files of FILE_BYTES random bytes spread over them.
    return (
        f"set -e; d=0; while [ $d -lt {DIRS} ]; do mkdir -p /data/dir$d; d=$((d+1)); done; "
        f"i=0; while [ $i -lt {files} ]; do "
        f"head -c {FILE_BYTES} /dev/urandom > /data/dir$((i % {DIRS}))/file$i; i=$((i+1)); done"
    )


def tool_version(tool: Tool) -> str:
    for args in (["version", "--format", "{{.Server.Version}}"], ["--version"]):
        try:
            out = tool.call(*args, stdout=None, timeout=60).stdout.strip()
        except BenchError:
            continue
        if out:
            return out.splitlines()[0]
    return "unknown"


def cleanup_tool(tool: Tool, max_tag: int) -> None:
    tool.quiet("rm", "-f", BIG)
    for n in range(max_tag):
        tool.quiet("rmi", f"bench-big-img:{n}")
        tool.quiet("rmi", f"bench-flat:{n}")


def setup_tool(tool: Tool, rootfs: Path, args: argparse.Namespace) -> None:
    """Import the base image; create the big container if a workload needs it."""
    if tool.name == "podman" and shutil.which("podman") is None:
        raise BenchError("podman not installed")
    tool.version = tool_version(tool)
    cleanup_tool(tool, args.repeat)
    tool.quiet("rmi", "-f", BASE_IMAGE)
    t = tool.timed(*tool.import_cmd, *IMPORT_CHANGES, str(rootfs), BASE_IMAGE)
    tool.notes["import_base_s"] = round(t, 4)
    # Sanity check and warm-up (first container start pays one-off costs).
    tool.call("run", "--rm", *tool.run_opts, BASE_IMAGE, "true")
    if set(args.workloads) - {"run"}:
        content: list[str] = ["sh", "-c", populate_script(args.files)]
        if args.content_tar:  # the tarball bound in read-only, unpacked by busybox tar
            src = str(args.content_tar.resolve())
            content = ["-v", f"{src}:/content.tar:ro", BASE_IMAGE,
                       "sh", "-c", "mkdir /data && tar xf /content.tar -C /data"]
        else:
            content = [BASE_IMAGE, *content]
        t = tool.timed("run", "--name", BIG, *tool.run_opts, *content)
        tool.notes["populate_s"] = round(t, 3)


def remove_root(tool: Tool) -> None:
    root = tool.root
    if root is None or not root.exists():
        return
    # Never rm -rf through a mount left behind under the store root.
    mounts = []
    with open("/proc/self/mountinfo") as fh:
        for line in fh:
            mnt = line.split()[4].replace("\\040", " ")
            if mnt == str(root) or mnt.startswith(f"{root}/"):
                mounts.append(mnt)
    for mnt in sorted(mounts, key=len, reverse=True):
        subprocess.run(["umount", "-l", mnt], stderr=subprocess.DEVNULL, check=False)
    with open("/proc/self/mountinfo") as fh:
        left = [ln for ln in fh if f" {root}/" in ln or f" {root} " in ln]
    if left:
        print(f"warning: mounts remain under {root}; not removing it", file=sys.stderr)
        return
    shutil.rmtree(root, ignore_errors=True)


@dataclass
class Cell:
    samples: list[float] = field(default_factory=list)
    error: str | None = None
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def median(self) -> float | None:
        return statistics.median(self.samples) if self.samples and not self.error else None

    def to_json(self) -> dict[str, object]:
        return {
            "samples_s": [round(s, 4) for s in self.samples],
            "median_s": None if self.median is None else round(self.median, 4),
            "min_s": round(min(self.samples), 4) if self.samples and not self.error else None,
            "error": self.error,
            **self.extra,
        }


def measure(
    workload: str,
    tools: list[Tool],
    args: argparse.Namespace,
    workdir: Path,
    cells: dict[str, Cell],
    import_tar: Path | None,
) -> None:
    """Run `workload` args.repeat times per tool, interleaving tools each repetition."""
    for n in range(args.repeat):
        for tool in tools:
            cell = cells[tool.name]
            if cell.error:
                continue
            if args.sync:
                # Flush the previous sample's dirty pages (e.g. a 200 MB commit) so their
                # write-back is not charged to whichever sample happens to run next.
                os.sync()
            if args.settle and workload in SETTLED:
                settle(tool, [import_tar] if import_tar else [])
            try:
                cell.samples.append(one_sample(workload, tool, n, workdir, import_tar, cell))
            except BenchError as exc:
                cell.error = str(exc)
        if args.verbose:
            done = ", ".join(
                f"{t.name}={cells[t.name].samples[-1]:.3f}s"
                for t in tools
                if cells[t.name].samples and not cells[t.name].error
            )
            print(f"  {workload} #{n + 1}: {done}", file=sys.stderr)


def one_sample(
    workload: str, tool: Tool, n: int, workdir: Path, import_tar: Path | None, cell: Cell
) -> float:
    if workload == "run":
        return tool.timed("run", "--rm", *tool.run_opts, BASE_IMAGE, "true")
    if workload == "diff":
        return tool.timed("diff", BIG)
    if workload == "commit":
        tag = f"bench-big-img:{n}"
        try:
            return tool.timed("commit", BIG, tag)
        finally:
            tool.quiet("rmi", tag)
    if workload == "export":
        out = workdir / f"{tool.name}-export-{n}.tar"
        try:
            t = tool.timed("export", BIG, "-o", str(out))
            if out.exists():
                cell.extra["bytes"] = out.stat().st_size
            return t
        finally:
            out.unlink(missing_ok=True)
    if workload == "import":
        if import_tar is None:
            raise BenchError("no exported tarball to import")
        tag = f"bench-flat:{n}"
        try:
            return tool.timed("import", str(import_tar), tag)
        finally:
            tool.quiet("rmi", tag)
    raise AssertionError(workload)


# Workloads that create thousands of inodes right after the previous repetition
# deleted as many: on ext4 without a journal, inode allocation searches past every
# inode freed in the last 30 s whose inode-table block is still cached
# (``recently_deleted``), which swings one import's system time 0.2-3 s with whatever
# was removed nearby. ``settle`` drops those cached blocks before each sample.
SETTLED = frozenset({"import", "load", "reload"})


def settle(tool: Tool, inputs: list[Path]) -> None:
    """Untimed, before a sample: write back and drop the page cache (so no cached
    inode-table block marks freed inodes as recently deleted), then read the inputs
    and run one no-op command of ``tool`` so the sample starts warm again.
    Needs root; without it, a no-op."""
    os.sync()
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("1\n")
    except OSError:
        return
    for path in inputs:
        with open(path, "rb") as f:
            while f.read(1 << 20):
                pass
    tool.quiet("images", "-q")


def make_import_tar(tools: list[Tool], workdir: Path) -> tuple[Path | None, str | None]:
    """One exported tarball shared by every tool's import workload: same bytes, same work."""
    out = workdir / "flat.tar"
    for tool in tools:
        if tool.error:
            continue
        try:
            tool.call("export", BIG, "-o", str(out))
            return out, tool.name
        except BenchError:
            out.unlink(missing_ok=True)
    return None, None


def fmt_s(cell: Cell | None) -> str:
    if cell is None:
        return "-"
    if cell.error:
        return f"n/a (error: {cell.error})"
    if not cell.samples:
        return "-"
    return f"{cell.median:.3f}s (min {min(cell.samples):.3f})"


def ratio(a: Cell | None, b: Cell | None) -> float | None:
    if a is None or b is None or a.median is None or b.median is None or b.median == 0:
        return None
    return a.median / b.median


def fmt_ratio(r: float | None) -> str:
    return "-" if r is None else f"{r:.2f}x"


def print_table(results: dict[str, dict[str, Cell]], tools: list[Tool]) -> None:
    headers = ["workload", "docker median", "forklift median", "ratio", "podman median", "ratio"]
    rows = []
    for workload, cells in results.items():
        d, f, p = cells.get("docker"), cells.get("forklift"), cells.get("podman")
        rows.append(
            [
                workload,
                fmt_s(d),
                fmt_s(f),
                fmt_ratio(ratio(f, d)),
                fmt_s(p),
                fmt_ratio(ratio(p, d)),
            ]
        )
    print_rows(headers, rows)
    print("ratio = tool median / docker median (lower is faster than docker)")


def print_rows(headers: list[str], rows: list[list[str]]) -> None:
    """The benchmarks' one table layout: columns padded, a rule under the headers."""
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
    print(" | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    print("-+-".join("-" * w for w in widths))
    for r in rows:
        print(" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--only",
        default=",".join(ALL_TOOLS),
        help="comma-separated tools to benchmark (default: docker,forklift,podman)",
    )
    p.add_argument(
        "--workloads",
        default=",".join(ALL_WORKLOADS),
        help="comma-separated workloads: run,diff,commit,export,import (default: all)",
    )
    p.add_argument("--repeat", type=int, default=None, help="repetitions per workload (default 7)")
    p.add_argument(
        "--files", type=int, default=None, help="files in the big container (default 5000)"
    )
    p.add_argument("--quick", action="store_true", help="repeat 3, 1,000 files")
    p.add_argument(
        "--content-tar",
        type=Path,
        default=None,
        help="fill the big container with this tarball's tree under /data instead of random\n"
        "files (a real distribution: scripts/make-debian-rootfs.sh OUT.tar)",
    )
    p.add_argument(
        "--forklift-cmd",
        default=os.environ.get("FORKLIFT", "forklift"),
        help="command that runs forklift (default: $FORKLIFT or 'forklift')",
    )
    p.add_argument(
        "--tmp-base",
        default="/var/tmp",
        help="where forklift's private --root and scratch files go (default /var/tmp)",
    )
    p.add_argument(
        "--json",
        type=Path,
        default=RESULTS / "latest.json",
        help="where to write results (default bench/results/latest.json)",
    )
    p.add_argument(
        "--no-sync",
        dest="sync",
        action="store_false",
        help="do not sync(2) (untimed) before every sample",
    )
    p.add_argument(
        "--no-settle",
        dest="settle",
        action="store_false",
        help="do not drop the page cache (untimed) before import samples (see settle())",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="print every sample")
    args = p.parse_args(argv)

    args.only = [t.strip() for t in args.only.split(",") if t.strip()]
    bad = [t for t in args.only if t not in ALL_TOOLS]
    if bad or not args.only:
        p.error(f"--only: unknown tool(s) {bad}; choose from {','.join(ALL_TOOLS)}")
    args.workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    bad = [w for w in args.workloads if w not in ALL_WORKLOADS]
    if bad or not args.workloads:
        p.error(f"--workloads: unknown workload(s) {bad}; choose from {','.join(ALL_WORKLOADS)}")
    if args.repeat is None:
        args.repeat = 3 if args.quick else 7
    if args.files is None:
        args.files = 1000 if args.quick else 5000
    if args.repeat < 1 or args.files < 1:
        p.error("--repeat and --files must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="forklift-bench-work-", dir=args.tmp_base))
    tools = make_tools(args)
    results: dict[str, dict[str, Cell]] = {}
    import_src: str | None = None
    started = time.time()
    try:
        rootfs = workdir / "busybox.tar"
        subprocess.run(
            ["bash", str(MAKE_ROOTFS), str(rootfs)], check=True, stdout=subprocess.DEVNULL
        )
        rootfs_sha = hashlib.sha256(rootfs.read_bytes()).hexdigest()
        print(
            f"busybox rootfs: {rootfs.stat().st_size} bytes, sha256 {rootfs_sha[:16]}…; "
            f"repeat {args.repeat}, {args.files} files x {FILE_BYTES} B "
            f"(~{args.files * FILE_BYTES / 1e6:.0f} MB) in {DIRS} dirs",
            flush=True,
        )

        for tool in tools:
            print(f"[{tool.name}] setup: import base image, warm up", end="", flush=True)
            if set(args.workloads) - {"run"}:
                print(f", populate {BIG}", end="", flush=True)
            print(" …", flush=True)
            try:
                setup_tool(tool, rootfs, args)
                extra = ", ".join(f"{k}={v}" for k, v in tool.notes.items())
                print(f"[{tool.name}] {tool.version}: ready ({extra})", flush=True)
            except BenchError as exc:
                tool.error = str(exc)
                print(f"[{tool.name}] skipped: {tool.error}", flush=True)

        import_tar = None
        if "import" in args.workloads:
            import_tar, import_src = make_import_tar(tools, workdir)
            if import_tar is not None:
                print(
                    f"import workload tarball: exported by {import_src}, "
                    f"{import_tar.stat().st_size} bytes",
                    flush=True,
                )

        for workload in args.workloads:
            print(f"measuring {workload} …", flush=True)
            cells = {t.name: Cell(error=t.error) for t in tools}
            measure(workload, tools, args, workdir, cells, import_tar)
            results[workload] = cells

        print()
        print_table(results, tools)
    finally:
        for tool in tools:
            cleanup_tool(tool, args.repeat)
            tool.quiet("rmi", BASE_IMAGE)
            remove_root(tool)
        shutil.rmtree(workdir, ignore_errors=True)

    report = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "duration_s": round(time.time() - started, 1),
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
        },
        "params": {
            "repeat": args.repeat,
            "content_tar": str(args.content_tar) if args.content_tar else None,
            "files": args.files,
            "file_bytes": FILE_BYTES,
            "dirs": DIRS,
            "workloads": args.workloads,
            "sync_before_sample": args.sync,
            "settle_before_sample": args.settle,
            "rootfs_sha256": rootfs_sha,
            "import_tarball_from": import_src,
        },
        "tools": {t.name: {"version": t.version, "error": t.error, **t.notes} for t in tools},
        "results": {
            w: {
                **{name: c.to_json() for name, c in cells.items()},
                "forklift_vs_docker": ratio(cells.get("forklift"), cells.get("docker")),
                "podman_vs_docker": ratio(cells.get("podman"), cells.get("docker")),
            }
            for w, cells in results.items()
        },
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"results written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
