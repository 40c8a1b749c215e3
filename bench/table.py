#!/usr/bin/env python3
"""One table of every workload issue 14 names, from the JSON the benchmarks wrote.

Standard library only. Reads bench/results/{latest,lifecycle,save_load,registry-latest,api}.json
(bench.py, lifecycle.py, save_load.py, registry.py, api.py: `bash bench/run.sh --all` runs them all,
then this) and prints, per workload: Docker's and forklift's median (min) in seconds,
forklift ÷ Docker, the other tool's ratio (podman, or skopeo for pull/push), forklift's peak
RSS where the benchmark records it, and issue 14's aim. A file that is missing leaves its
rows out; `--json PATH` writes the table as JSON too.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"

# workload -> (results file, its name there, issue 14's aim for forklift ÷ Docker)
ROWS: dict[str, tuple[str, str, str]] = {
    "run --rm true": ("lifecycle.json", "run-rm", "<= 0.35x"),
    "run -d": ("lifecycle.json", "run-d", "<= 0.5x"),
    "exec true": ("lifecycle.json", "exec", "<= 0.8x"),
    "stop": ("lifecycle.json", "stop", "<= 0.8x"),
    "diff": ("latest.json", "diff", "<= 0.7x"),
    "commit": ("latest.json", "commit", "<= 0.5x"),
    "export": ("latest.json", "export", "<= 0.5x"),
    "import": ("latest.json", "import", "<= 0.6x"),
    "save": ("save_load.json", "save", "keep (0.16x)"),
    "load": ("save_load.json", "load", "<= 0.6x"),
    "pull": ("registry-latest.json", "pull", "<= 0.7x, <= 1.3x skopeo"),
    "push": ("registry-latest.json", "push", "keep (0.20x)"),
    # issue 15: the docker CLI through forklift's API service vs through dockerd (api.py)
    "API: docker run --rm": ("api.json", "run-rm", "<= 1.0x"),
    "API: docker ps": ("api.json", "ps", "<= 1.0x"),
    "API: docker images": ("api.json", "images", "<= 1.0x"),
    "API: docker exec": ("api.json", "exec", "<= 1.0x"),
}


def cell(doc: dict[str, Any], file: str, workload: str, tool: str) -> dict[str, Any] | None:
    """{median, min, rss_kib} of one tool's samples, or None."""
    if file in ("lifecycle.json", "api.json"):   # {samples: {tool: {workload: [s, …]}}}
        samples = doc.get("samples", {}).get(tool, {}).get(workload)
        if not samples:
            return None
        return {"median": statistics.median(samples), "min": min(samples), "rss_kib": None}
    entry = doc.get("results", {}).get(workload, {}).get(tool)
    if not entry or entry.get("median_s") is None:
        return None
    rss = entry.get("max_rss_kib") or max(entry.get("peak_rss_kib") or [0]) or None
    return {"median": entry["median_s"], "min": entry["min_s"], "rss_kib": rss}


def rows(results: Path) -> list[dict[str, Any]]:
    docs: dict[str, dict[str, Any]] = {}
    for name in {file for file, _, _ in ROWS.values()}:
        path = results / name
        if path.is_file():
            docs[name] = json.loads(path.read_text())
    out = []
    for label, (file, workload, aim) in ROWS.items():
        if file not in docs:
            continue
        doc = docs[file]
        cells = {tool: cell(doc, file, workload, tool)
                 for tool in ("docker", "forklift", "podman", "skopeo")}
        out.append({"workload": label, "aim": aim, **cells})
    return out


def _ratio(a: dict[str, Any] | None, b: dict[str, Any] | None) -> str:
    if not a or not b or not b["median"]:
        return "n/a"
    return f"{a['median'] / b['median']:.2f}x"


def _time(c: dict[str, Any] | None) -> str:
    return "n/a" if not c else f"{c['median']:.3f} ({c['min']:.3f})"


def render(table: list[dict[str, Any]]) -> str:
    head = ["workload", "docker s (min)", "forklift s (min)", "fl/docker", "other/docker",
            "fl peak RSS", "aim"]
    lines = [head]
    for r in table:
        other = r["skopeo"] or r["podman"]
        name = "skopeo" if r["skopeo"] else "podman"
        rss = r["forklift"]["rss_kib"] if r["forklift"] else None
        lines.append([r["workload"], _time(r["docker"]), _time(r["forklift"]),
                      _ratio(r["forklift"], r["docker"]),
                      f"{name} {_ratio(other, r['docker'])}" if other else "",
                      f"{rss / 1024:.0f} MiB" if rss else "", r["aim"]])
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    text = [" | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
            for line in lines]
    text.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(text)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--results", type=Path, default=RESULTS)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    table = rows(args.results)
    if not table:
        print(f"no results in {args.results}: run bash bench/run.sh --all first")
        return 1
    print(render(table))
    if args.json:
        args.json.write_text(json.dumps(table, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
