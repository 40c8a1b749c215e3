"""What of the store can be known without SQLite: its default root and the schema
version this forklift writes (`forklift.store.peek` reads the store with neither the
``sqlite3`` package nor `db`)."""

from __future__ import annotations

import os

SCHEMA_VERSION = 4


def default_root() -> str:
    """``$FORKLIFT_ROOT``, else ``/var/lib/forklift`` for root, else under
    ``$XDG_DATA_HOME``. Pure: touches nothing."""
    env = os.environ.get("FORKLIFT_ROOT")
    if env:
        return env
    if os.geteuid() == 0:
        return "/var/lib/forklift"
    data = os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share")
    return os.path.join(data, "forklift")
