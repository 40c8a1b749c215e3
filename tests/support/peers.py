"""Other projects' test data in ``shared/peer-tests`` beside the project, read in place.

The folder sits at ``../shared`` from the main checkout and one level further up from a
git worktree in a folder of its own (``/work/wt/NAME``), so every parent is tried. Tests
that need it skip, saying so, where it is absent; it is never copied into the project.
"""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def peer_path(relative: str) -> Path | None:
    """``shared/peer-tests/<relative>`` under the nearest parent of the project, or None."""
    for parent in REPO.parents:
        candidate = parent / "shared" / "peer-tests" / relative
        if candidate.exists():
            return candidate
    return None
