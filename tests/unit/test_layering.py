"""Dependencies point one way: the layer order of docs/architecture.md, checked on the source.

Every ``import`` of a forklift module counts, at the top of a module or inside a function
alike (a function-local import dodges a cycle at run time, not in the design).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "forklift"

# Left to right: a module may import its own tier (without cycles) or tiers to its right.
TIERS: list[tuple[str, ...]] = [
    ("__main__",),
    ("cli", "api"),
    ("build",),
    ("engine",),
    ("registry", "formats"),
    ("store",),
    ("archive", "tarreader", "tarsplit", "fswalk", "oci", "digest", "reference", "changes",
     "limits"),
    ("runtime",),
    ("programs", "procs", "faults", "gotemplate", "records", "fastjson", "threads"),
    ("errors", "__init__"),
]
RANK = {name: i for i, tier in enumerate(TIERS) for name in tier}


def _modules() -> dict[str, Path]:
    out = {}
    for path in SRC.rglob("*.py"):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    found = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            candidates = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for cand in candidates:
            # the deepest known module the name refers to (``from forklift.store import db``)
            while cand and cand not in known:
                cand = cand.rpartition(".")[0]
            if cand and cand != name and cand != "forklift":
                found.add(cand)
    return found


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    return {name: _imports(name, path, set(mods)) for name, path in mods.items()}


def _rank(module: str) -> int:
    parts = module.split(".")
    key = parts[1] if len(parts) > 1 else "__init__"
    assert key in RANK, f"{module} is in no tier of the layer order: add it to TIERS"
    return RANK[key]


def test_no_module_imports_a_higher_layer() -> None:
    upward = sorted(f"{a} -> {b}" for a, targets in _graph().items() for b in targets
                    if _rank(b) < _rank(a))
    assert upward == []


def test_no_import_cycles() -> None:
    graph = _graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert cycles == []


def test_the_checker_sees_imports_of_every_form() -> None:
    """The check itself can fail: it finds the imports it is meant to find."""
    graph = _graph()
    assert "forklift.errors" in graph["forklift.archive"]          # from forklift.errors import …
    assert "forklift.cli.fast" in graph["forklift.__main__"]
    assert "forklift.cli.main" in graph["forklift.cli.fast"]         # … inside a function
    edges = defaultdict(set)
    for a, targets in graph.items():
        for b in targets:
            edges[a.split(".")[1] if "." in a else a].add(b)
    assert any(b.startswith("forklift.store") for b in edges["engine"])
