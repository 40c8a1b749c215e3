"""Typed errors carrying a one-line, user-facing message.

The CLI prints ``Error: <message>`` and exits with ``exit_code``; nothing else
ever reaches the user as a traceback.
"""

from __future__ import annotations


class ForkliftError(Exception):
    """Base of every error forklift reports to a user."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class NotFound(ForkliftError):
    """An image, container, volume or blob does not exist."""


class Conflict(ForkliftError):
    """The request clashes with the store's state (name in use, image in use...)."""


class InvalidArgument(ForkliftError):
    """Malformed user input: a reference, a flag value, a --change line."""


class BadArchive(ForkliftError):
    """A tarball or image archive is malformed or hostile."""


class DigestMismatch(BadArchive):
    """Content did not match the digest that names it."""


class RuntimeFailure(ForkliftError):
    """The OCI runtime (runc) or a kernel mount failed."""


class MissingProgram(ForkliftError):
    """A program forklift runs (runc, iptables, a CNI plugin...) is not installed."""

    exit_code = 125


class StoreCorrupt(ForkliftError):
    """The store holds something inconsistent."""


class NoSpace(ForkliftError):
    """The filesystem holding the store is full."""


class RegistryError(ForkliftError):
    """A registry refused a request or answered badly."""


class LimitExceeded(ForkliftError):
    """Input is larger than a configured limit (layer size, layer count)."""


class InvalidFilter(InvalidArgument):
    """A ``--filter`` key or value that a listing or prune does not accept."""


class FilterSyntax(InvalidArgument):
    """A ``--filter`` that is not ``key=value``: a bad flag, which Docker's CLI exits 125 for."""

    exit_code = 125
