"""``version``: the client and the "server" as Docker's ``version`` reports them.

forklift has no daemon: the process that runs a command is the engine, so the Server
section describes this same program and says so (``Platform.Name``, ``Details.Daemon``).
The API version is the Engine API whose CLI forklift follows (Docker 20.10)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from importlib import metadata
from typing import Any

from forklift import programs
from forklift.errors import MissingProgram

API_VERSION = "1.41"       # Docker 20.10's Engine API, the CLI reference forklift follows
MIN_API_VERSION = "1.12"
DAEMONLESS = "none: every forklift process is the engine (no daemon, no socket)"


def _own_version() -> str:
    try:
        return metadata.version("forklift")
    except metadata.PackageNotFoundError:
        return "unknown"


def own_version() -> str:
    """forklift's version (the Server Version of ``info``)."""
    return _own_version()


def _arch() -> str:
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}.get(machine, machine)


def runc_version() -> dict[str, str] | None:
    """runc's version and commit (``runc --version``), None when runc is not installed
    or does not answer."""
    try:
        binary = programs.find("runc")
        out = subprocess.run([binary, "--version"], capture_output=True, text=True,
                             timeout=10, check=False).stdout
    except (MissingProgram, OSError, subprocess.TimeoutExpired):
        return None
    lines = out.splitlines()
    commit = next((line.split(":", 1)[1].strip() for line in lines
                   if line.startswith("commit:")), "")
    return {"Version": lines[0].removeprefix("runc version").strip() if lines else "",
            "GitCommit": commit}


def version() -> dict[str, Any]:
    """Docker's ``version`` document: ``Client`` and ``Server`` with Docker's keys (the
    Python version where Docker names Go's, as ``PythonVersion``)."""
    own, arch = _own_version(), _arch()
    python = "python" + platform.python_version()
    client = {"Platform": {"Name": "forklift"}, "Version": own, "ApiVersion": API_VERSION,
              "DefaultAPIVersion": API_VERSION, "GitCommit": "", "PythonVersion": python,
              "Os": sys.platform, "Arch": arch, "BuildTime": "", "Context": "default"}
    details = {"ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION, "GitCommit": "",
               "PythonVersion": python, "Os": sys.platform, "Arch": arch,
               "KernelVersion": os.uname().release, "BuildTime": "", "Experimental": "false",
               "Daemon": DAEMONLESS}
    components: list[dict[str, Any]] = [{"Name": "Engine", "Version": own, "Details": details}]
    runc = runc_version()
    if runc is not None:
        components.append({"Name": "runc", "Version": runc["Version"],
                           "Details": {"GitCommit": runc["GitCommit"]}})
    server = {"Platform": {"Name": "forklift (daemonless)"}, "Components": components,
              "Version": own, "ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION,
              "GitCommit": "", "PythonVersion": python, "Os": sys.platform, "Arch": arch,
              "KernelVersion": os.uname().release, "BuildTime": "", "Daemon": DAEMONLESS}
    return {"Client": client, "Server": server}
