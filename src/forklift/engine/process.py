"""A container process's environment, user and limits, as Docker gives them.

Both the container's own process (`forklift.engine.bundle.spec`) and an ``exec``'d one
(`exec_process`) get Docker's environment (PATH, HOSTNAME, TERM, HOME), the user
resolved inside the container's root filesystem, and its ulimits clamped to the host.
"""

from __future__ import annotations

import os

from forklift.errors import InvalidArgument
from forklift.runtime import spec as spec_mod
from forklift.runtime.user import resolve_user

TYPE_CHECKING = False  # not typing's: its import (and re's) is on the hot paths
if TYPE_CHECKING:  # the store's modules are not on the light exec path (engine/quickexec)
    from typing import Any

    from forklift.store.containers import ContainerRecord


def merge_env(base: list[str], extra: list[str]) -> list[str]:
    """``base`` with ``-e``/``--env-file`` entries over it: ``K=V`` sets, a bare ``K``
    takes our own value (and is skipped when we have none); InvalidArgument for ``=V``."""
    env: dict[str, str] = {}
    for item in base:
        key, _, value = item.partition("=")
        env[key] = value
    for item in extra:
        key, sep, value = item.partition("=")
        if not key:
            raise InvalidArgument(f"invalid environment variable: {item}")
        if not sep:
            if key not in os.environ:
                continue
            value = os.environ[key]
        env[key] = value
    return [f"{k}={v}" for k, v in env.items()]


def process_env(cfg: dict[str, Any], home: str) -> list[str]:
    """The environment Docker gives a container's process: its Env, then PATH (if
    unset), HOSTNAME, TERM (with a terminal) and HOME (if unset)."""
    env = list(cfg.get("Env") or [])
    keys = {item.partition("=")[0] for item in env}
    if "PATH" not in keys:
        env.insert(0, f"PATH={spec_mod.DEFAULT_PATH}")
    env.append(f"HOSTNAME={cfg.get('Hostname', '')}")
    if cfg.get("Tty") and "TERM" not in keys:
        env.append("TERM=xterm")
    if "HOME" not in keys:
        env.append(f"HOME={home}")
    return env


def ulimits(hc: dict[str, Any]) -> dict[str, tuple[int, int]]:
    """HostConfig.Ulimits as the runtime spec's rlimits (before clamping)."""
    return {u["Name"]: (u["Soft"], u["Hard"]) for u in hc.get("Ulimits") or []}


def exec_process(rec: ContainerRecord, merged: str, command: list[str], *, tty: bool,
                 user: str | None, workdir: str | None, env: list[str]) -> dict[str, Any]:
    """runc exec's process.json for ``command`` in the running container whose root
    filesystem is mounted at ``merged``: see `process_for`."""
    return process_for(rec.config, rec.host_config, merged, command, tty=tty, user=user,
                       workdir=workdir, env=env)


def process_for(cfg: dict[str, Any], host_config: dict[str, Any], merged: str,
                command: list[str], *, tty: bool, user: str | None, workdir: str | None,
                env: list[str]) -> dict[str, Any]:
    """runc exec's process.json for ``command`` in a running container of Config ``cfg``
    and HostConfig ``host_config``, its root filesystem mounted at ``merged``: the
    container's user, working directory and environment unless overridden, its ulimits.
    InvalidArgument for a relative ``workdir`` or an unknown user."""
    uid, gid, groups, home = resolve_user(merged, user if user is not None
                                          else (cfg.get("User") or ""))
    environ = process_env({**cfg, "Tty": tty}, home)
    if env:
        environ = merge_env(environ, env)
    cwd = workdir or cfg.get("WorkingDir") or "/"
    if not cwd.startswith("/"):
        raise InvalidArgument(f"the working directory '{cwd}' is invalid, it needs to be an absolute path")
    proc = spec_mod.ProcessConfig(args=list(command), env=environ, cwd=cwd, uid=uid,
                                  gid=gid, additional_gids=groups, terminal=tty)
    return spec_mod.process_spec(proc, ulimits(host_config))
