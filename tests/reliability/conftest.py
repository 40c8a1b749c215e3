"""Fixtures for tests/reliability live in reliability_support.py (a unique module name: several
test directories import helpers, and every conftest module is named "conftest")."""

from reliability_support import *  # noqa: F401,F403
