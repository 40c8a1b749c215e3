"""What the test directories share (tests/README.md says how the tiers use it).

``cli`` runs programs and the forklift CLI (``Forklift``, ``Result``); ``store`` makes and
releases test stores and checks what they hold; ``images`` makes the busybox, Debian and
small tarballs and images from them; ``mounts`` unmounts and removes; ``docker`` starts a
private dockerd; ``registry`` real registries, TLS material and a rewriting proxy;
``tarcraft`` tar archives byte by byte; ``fixtures`` the pytest fixtures over all of it.
"""

from support.cli import Forklift, Result, one_line_error, run, wait_for
from support.images import REPO

__all__ = ["REPO", "Forklift", "Result", "one_line_error", "run", "wait_for"]
