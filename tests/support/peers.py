"""Other projects' test data in ``shared/peer-tests`` beside the project, read in place.

The folder sits at ``../shared`` from the main checkout and one level further up from a
git worktree in a folder of its own (``/work/wt/NAME``), so every parent is tried, then
``$FORKLIFT_PEER_TESTS`` and the machines' usual place, /work/shared/peer-tests (a clone
made elsewhere, e.g. under /var/tmp, still finds it). Tests
that need it skip, saying so, where it is absent; it is never copied into the project.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def peer_path(relative: str) -> Path | None:
    """``shared/peer-tests/<relative>`` under the nearest parent of the project, or None."""
    roots = [parent / "shared" / "peer-tests" for parent in REPO.parents]
    roots += [Path(os.environ.get("FORKLIFT_PEER_TESTS", "/work/shared/peer-tests"))]
    for root in roots:
        if (root / relative).exists():
            return root / relative
    return None
