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


class CommandNotFound(RuntimeFailure):
    """The container's command does not exist in it (Docker's exit status 127)."""

    exit_code = 127


class CommandNotExecutable(RuntimeFailure):
    """The container's command exists but cannot be executed (Docker's exit status 126)."""

    exit_code = 126


class NoSuchRuntimeContainer(RuntimeFailure):
    """The OCI runtime holds no container of that ID (never created, or deleted)."""
