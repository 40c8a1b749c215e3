"""Every external program forklift executes, and the Debian package that provides it.

forklift itself is Python, but it drives a few programs: the OCI runtime, the CNI
plugins and iptables for bridge networks, ``ip`` to delete a network's bridge,
``ps`` for ``top``, ``cp`` to seed volumes, ``git`` for ``ADD`` of a repository,
``tini-static`` as the init of ``run --init`` and the credential helpers a user names in ~/.docker/config.json. Every call site
looks its program up here, so a missing one is reported the same way everywhere:
one line naming the program and the package to install, exit status 125 (Docker's
"the engine could not do it"), before anything was changed.

``scripts/install.sh`` installs the packages of ``PACKAGES`` and ``CNI_PLUGINS``
(a test checks its list against them); credential helpers are the user's choice.

CNI plugins are not looked up in ``$PATH`` but in the CNI directories:
``$FORKLIFT_CNI_PATH`` (a ``:``-separated list; set but empty means none) or
else Debian's, the upstream default and Fedora's.
"""

from __future__ import annotations

import os

from forklift.errors import MissingProgram

CNI_DIRS = ("/usr/lib/cni", "/opt/cni/bin", "/usr/libexec/cni")
CNI_PATH_ENV = "FORKLIFT_CNI_PATH"

# program -> Debian package
PACKAGES = {
    "runc": "runc",
    "iptables": "iptables",
    "ip": "iproute2",
    "ps": "procps",
    "cp": "coreutils",
    "git": "git",
    "tini-static": "tini",
    "nsenter": "util-linux",
}
CNI_PLUGINS = {
    "bridge": "containernetworking-plugins",
    "host-local": "containernetworking-plugins",
    "portmap": "containernetworking-plugins",
}
CREDENTIAL_HELPER_PREFIX = "docker-credential-"
CREDENTIAL_HELPERS = {
    "docker-credential-pass": "golang-docker-credential-helpers",
    "docker-credential-secretservice": "golang-docker-credential-helpers",
}


def cni_dirs() -> list[str]:
    override = os.environ.get(CNI_PATH_ENV)
    if override is None:
        return list(CNI_DIRS)
    return [d for d in override.split(os.pathsep) if d]


def _which(program: str) -> str | None:
    """shutil.which for an executable file on PATH (shutil brings bz2 and lzma to every
    command's start-up)."""
    if os.sep in program:
        dirs = [""]
    else:
        dirs = [d for d in os.environ.get("PATH", os.defpath).split(os.pathsep) if d]
    for d in dirs:
        path = os.path.join(d, program)
        if os.access(path, os.X_OK) and not os.path.isdir(path):
            return path
    return None


def find(program: str) -> str:
    """The absolute path of ``program`` (a name from the tables above); MissingProgram if absent."""
    if program in CNI_PLUGINS:
        dirs = cni_dirs()
        for d in dirs:
            path = os.path.join(d, program)
            if os.access(path, os.X_OK) and not os.path.isdir(path):
                return path
        where = os.pathsep.join(dirs) or f"${CNI_PATH_ENV} (empty)"
        raise MissingProgram(f"CNI plugin {program} not found in {where}:"
                             f" install the Debian package {CNI_PLUGINS[program]}")
    found = _which(program)
    if found:
        return os.path.abspath(found)  # posix_spawn and a changed cwd need a path, not a name
    package = PACKAGES.get(program) or CREDENTIAL_HELPERS.get(program)
    if package:
        raise MissingProgram(f"{program} not found: install the Debian package {package}")
    if program.startswith(CREDENTIAL_HELPER_PREFIX):
        raise MissingProgram(f"credential helper {program} not found in PATH: install it or"
                             " remove it from the Docker config file")
    raise MissingProgram(f"{program} not found in PATH")
