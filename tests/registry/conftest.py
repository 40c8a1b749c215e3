"""Fixtures for tests/registry live in registry_support.py (a unique module name: several
test directories import helpers, and every conftest module is named "conftest")."""

from registry_support import *  # noqa: F401,F403
