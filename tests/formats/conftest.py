"""Fixtures for tests/formats live in formats_support.py (a unique module name: several
test directories import helpers, and every conftest module is named "conftest")."""

from formats_support import *  # noqa: F401,F403
