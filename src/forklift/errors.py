"""Typed errors carrying a one-line, user-facing message, and the exit status of each.

The CLI prints ``Error: <message>`` and exits with the error's ``exit_code``;
nothing else ever reaches the user as a traceback. The codes are Docker's:

=====  =========================================================  ==========================
code   meaning                                                    raised as
=====  =========================================================  ==========================
1      the request failed (no such object, conflict, bad input)   every class unless below
64     a ``--format`` template does not parse, in ``inspect``     InspectTemplateError
125    forklift itself could not do it: a flag's value is         InvalidFlag, EngineError,
       malformed, the container could not be created or started,  MissingProgram
       a program forklift runs is missing
126    the container's command cannot be executed                 a RuntimeFailure subclass
127    the container's command is not found                       when it cannot start; else
                                                                  the container's own status
=====  =========================================================  ==========================

A command whose error exits differently gets a subclass here, never a changed
``exit_code`` on a caught instance.
"""

from __future__ import annotations

EXIT_FAILURE = 1
EXIT_USAGE = 64            # EX_USAGE: Docker's inspect on a template parse error
EXIT_ENGINE = 125          # Docker: "the error is with the daemon itself"
EXIT_CANNOT_EXECUTE = 126  # the container's command is not executable
EXIT_NOT_FOUND = 127       # the container's command does not exist


class ForkliftError(Exception):
    """Base of every error forklift reports to a user."""

    exit_code = EXIT_FAILURE

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


class InvalidFlag(InvalidArgument):
    """A flag's value is malformed where Docker's CLI refuses it while parsing flags
    (e.g. ``--filter foo``: 'bad format of filter')."""

    exit_code = EXIT_ENGINE


class InspectTemplateError(InvalidArgument):
    """``inspect --format`` was given a template that does not parse (elsewhere a
    template error exits 1)."""

    exit_code = EXIT_USAGE


class EngineError(ForkliftError):
    """``run``/``create``/``start`` could not create or start the container; the cause
    is chained (``__cause__``) and its message is this one's."""

    exit_code = EXIT_ENGINE


class BadArchive(ForkliftError):
    """A tarball or image archive is malformed or hostile."""


class DigestMismatch(BadArchive):
    """Content did not match the digest that names it."""


class RuntimeFailure(ForkliftError):
    """The OCI runtime (runc) or a kernel mount failed."""


class MissingProgram(ForkliftError):
    """A program forklift runs (runc, iptables, a CNI plugin...) is not installed."""

    exit_code = EXIT_ENGINE


class StoreCorrupt(ForkliftError):
    """The store holds something inconsistent."""


class NoSpace(ForkliftError):
    """The filesystem holding the store is full."""


class RegistryError(ForkliftError):
    """A registry refused a request or answered badly."""


class RegistryUnreachable(RegistryError):
    """No usable connection to the registry, or the connection broke mid-request."""


class RegistryAuthError(RegistryError):
    """The registry or its token service refused access (401/403, bad credentials)."""


class RegistryTooLarge(RegistryError):
    """The registry sent more bytes than the descriptor or a limit allows."""


class LimitExceeded(ForkliftError):
    """Input is larger than a configured limit (layer size, layer count)."""


class InvalidFilter(InvalidArgument):
    """A ``--filter`` key or value that a listing or prune does not accept."""


class CommandNotFound(RuntimeFailure):
    """The container's command does not exist in it (Docker's exit status 127)."""

    exit_code = EXIT_NOT_FOUND


class CommandNotExecutable(RuntimeFailure):
    """The container's command exists but cannot be executed (Docker's exit status 126)."""

    exit_code = EXIT_CANNOT_EXECUTE


class NoSuchRuntimeContainer(RuntimeFailure):
    """The OCI runtime holds no container of that ID (never created, or deleted)."""
