"""The OCI distribution client (pull, push, auth, credentials).

httpx's ``__init__`` imports its command-line client (``httpx._main``: rich, pygments,
click's terminal machinery), some 45 ms that no registry request uses. It guards that
import with ``except ImportError`` and then defines a stub ``httpx.main``; a ``None`` in
``sys.modules`` makes the import fail that way. This package is imported before any of
its modules, so the first ``import httpx`` of a forklift process goes through here; the
entry is removed again so nothing else in the process is affected.
"""

import sys

if "httpx" not in sys.modules and "httpx._main" not in sys.modules:
    sys.modules["httpx._main"] = None  # type: ignore[assignment]
    try:
        import httpx  # noqa: F401 - imported here, without its CLI, for every module below
    finally:
        del sys.modules["httpx._main"]
