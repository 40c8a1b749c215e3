"""Dockerfile-style configuration instructions (``commit -c``, ``import -c``; later ``build``).

Each instruction edits a Docker container Config dict (``Env``, ``Cmd``, ...).
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable
from typing import Any

from forklift.errors import InvalidArgument

# Docker's list for commit and import (its daemon refuses STOPSIGNAL, ARG, RUN… there)
ALLOWED = ("CMD", "ENTRYPOINT", "ENV", "EXPOSE", "HEALTHCHECK", "LABEL", "ONBUILD", "USER",
           "VOLUME", "WORKDIR")

_VAR_RE = re.compile(r"\\\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::([-+])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def env_map(config: dict[str, Any]) -> dict[str, str]:
    out = {}
    for item in config.get("Env") or []:
        key, _, value = item.partition("=")
        out[key] = value
    return out


def expand(text: str, env: dict[str, str]) -> str:
    """Expand $VAR, ${VAR}, ${VAR:-default}, ${VAR:+alt} as Dockerfiles do."""

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "\\$":
            return "$"
        name = m.group(1) or m.group(4)
        value = env.get(name, "")
        if m.group(2) == "-":
            return value if value else (m.group(3) or "")
        if m.group(2) == "+":
            return (m.group(3) or "") if value else ""
        return value

    return _VAR_RE.sub(sub, text)


def _split_words(rest: str, what: str) -> list[str]:
    try:
        return shlex.split(rest, posix=True)
    except ValueError as exc:
        raise InvalidArgument(f"{what}: {exc}") from None


def _json_or_shell(rest: str) -> list[str]:
    text = rest.strip()
    if text.startswith("["):
        try:
            value = json.loads(text)
        except (ValueError, RecursionError):
            value = None
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
    return ["/bin/sh", "-c", text]


def _pairs(rest: str, what: str, env: dict[str, str]) -> list[tuple[str, str]]:
    words = _split_words(rest, what)
    if not words:
        raise InvalidArgument(f"{what} requires at least one argument")
    if "=" not in words[0]:
        # legacy form: ENV key value with spaces
        parts = rest.strip().split(None, 1)
        if len(parts) != 2:
            raise InvalidArgument(f"{what} must have two arguments")
        return [(parts[0], expand(parts[1], env))]
    pairs = []
    for word in words:
        key, sep, value = word.partition("=")
        if not sep or not key:
            raise InvalidArgument(f"{what}: syntax error - can't find = in {word!r}; must be of the form: name=value")
        pairs.append((key, expand(value, env)))
    return pairs


def _set_env(cfg: dict[str, Any], rest: str) -> None:
    env = env_map(cfg)
    for key, value in _pairs(rest, "ENV", env):
        env[key] = value
    cfg["Env"] = [f"{k}={v}" for k, v in env.items()]


def _set_label(cfg: dict[str, Any], rest: str) -> None:
    labels = dict(cfg.get("Labels") or {})
    for key, value in _pairs(rest, "LABEL", env_map(cfg)):
        labels[key] = value
    cfg["Labels"] = labels


def _is_number(text: str) -> bool:
    return text.isascii() and text.isdigit()  # "²".isdigit() is True, int("²") fails


def _set_expose(cfg: dict[str, Any], rest: str) -> None:
    ports = dict(cfg.get("ExposedPorts") or {})
    for word in _split_words(expand(rest, env_map(cfg)), "EXPOSE"):
        port, _, proto = word.partition("/")
        proto = (proto or "tcp").lower()
        if proto not in ("tcp", "udp", "sctp"):
            raise InvalidArgument(f"invalid proto: {proto}")
        low, _, high = port.partition("-")
        if not _is_number(low) or (high and not _is_number(high)) or not 0 < int(low) <= 65535:
            raise InvalidArgument(f"invalid containerPort: {port}")
        if high and not int(low) <= int(high) <= 65535:  # else range() below could run for ever
            raise InvalidArgument(f"invalid containerPort: {port}")
        for number in range(int(low), int(high or low) + 1):
            ports[f"{number}/{proto}"] = {}
    cfg["ExposedPorts"] = ports


def _set_volume(cfg: dict[str, Any], rest: str) -> None:
    text = expand(rest.strip(), env_map(cfg))
    paths: list[str]
    if text.startswith("["):
        try:
            paths = json.loads(text)
        except (ValueError, RecursionError):
            paths = _split_words(text, "VOLUME")
    else:
        paths = _split_words(text, "VOLUME")
    volumes = dict(cfg.get("Volumes") or {})
    for path in paths:
        if not isinstance(path, str) or not path.strip():
            raise InvalidArgument("VOLUME specified can not be an empty string")
        volumes[path] = {}
    cfg["Volumes"] = volumes


def _set_workdir(cfg: dict[str, Any], rest: str) -> None:
    import posixpath

    path = expand(rest.strip(), env_map(cfg))
    if not path:
        raise InvalidArgument("WORKDIR requires exactly one argument")
    if not path.startswith("/"):
        path = posixpath.join(cfg.get("WorkingDir") or "/", path)
    cfg["WorkingDir"] = posixpath.normpath(path) if path != "/" else "/"


def _set_simple(key: str) -> Callable[[dict[str, Any], str], None]:
    def setter(cfg: dict[str, Any], rest: str) -> None:
        value = expand(rest.strip(), env_map(cfg))
        if not value:
            raise InvalidArgument(f"{key.upper()} requires exactly one argument")
        cfg[key] = value
    return setter


def _set_cmd(cfg: dict[str, Any], rest: str) -> None:
    cfg["Cmd"] = _json_or_shell(rest)


def _set_entrypoint(cfg: dict[str, Any], rest: str) -> None:
    cfg["Entrypoint"] = _json_or_shell(rest)


def _set_onbuild(cfg: dict[str, Any], rest: str) -> None:
    word = rest.strip().split(None, 1)[0].upper() if rest.strip() else ""
    if word in ("ONBUILD", "FROM", "MAINTAINER"):
        raise InvalidArgument(f"{word} isn't allowed as an ONBUILD trigger")
    if not word:
        raise InvalidArgument("ONBUILD requires at least one argument")
    cfg["OnBuild"] = list(cfg.get("OnBuild") or []) + [rest.strip()]


_DURATION_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000,
                   "s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000}
_HEALTH_FLAGS = {"interval": "Interval", "timeout": "Timeout", "start-period": "StartPeriod",
                 "retries": "Retries"}


def _go_duration(text: str) -> int:
    """Go's ``time.ParseDuration`` in nanoseconds ("1m30s", "1.5h", "-2s")."""
    parts = re.findall(r"(\d*\.?\d+|\d+\.)(ns|us|µs|μs|ms|s|m|h)", text.lstrip("+-"))
    if text in ("0", "+0", "-0"):
        return 0
    if not parts or "".join(n + u for n, u in parts) != text.lstrip("+-"):
        raise InvalidArgument(f'time: invalid duration "{text}"')
    ns = int(sum(float(n) * _DURATION_UNITS[u] for n, u in parts))
    return -ns if text.startswith("-") else ns


def _health_flags(rest: str) -> tuple[dict[str, str], str]:
    """The ``--name=value`` words before HEALTHCHECK's type, and what follows them."""
    flags: dict[str, str] = {}
    rest = rest.strip()
    while rest.startswith("--"):
        word, _, rest = rest.partition(" ")
        rest = rest.strip()
        name, sep, value = word[2:].partition("=")
        if name not in _HEALTH_FLAGS:
            raise InvalidArgument(f"Unknown flag: {name}")
        if not sep:
            raise InvalidArgument(f"Missing a value on flag: {name}")
        flags[name] = value
    return flags, rest


def _set_healthcheck(cfg: dict[str, Any], rest: str) -> None:
    """``HEALTHCHECK [--interval=D --timeout=D --start-period=D --retries=N] CMD command``
    or ``HEALTHCHECK NONE``, checked and worded as Docker 20.10's daemon does."""
    flags, rest = _health_flags(rest)
    if not rest:
        raise InvalidArgument("HEALTHCHECK requires at least one argument")
    kind, _, command = rest.partition(" ")
    kind, command = kind.upper(), command.strip()
    if kind == "NONE":
        if command:
            raise InvalidArgument("HEALTHCHECK NONE takes no arguments")
        cfg["Healthcheck"] = {"Test": ["NONE"]}
        return
    if kind != "CMD":
        raise InvalidArgument(f'Unknown type "{kind}" in HEALTHCHECK (try CMD)')
    if not command:
        raise InvalidArgument("Missing command after HEALTHCHECK CMD")
    words = _json_or_shell(command)
    shell = words == ["/bin/sh", "-c", command]    # not a JSON list of strings
    health: dict[str, Any] = {"Test": ["CMD-SHELL", command] if shell else ["CMD", *words]}
    for flag in ("interval", "timeout", "start-period"):
        if flags.get(flag):
            ns = _go_duration(flags[flag])
            if ns < 1_000_000:
                raise InvalidArgument(f'Interval "{flag}" cannot be less than 1ms')
            health[_HEALTH_FLAGS[flag]] = ns
    if flags.get("retries"):
        try:
            retries = int(flags["retries"], 10)
        except ValueError:
            raise InvalidArgument(f'strconv.ParseInt: parsing "{flags["retries"]}": invalid syntax') from None
        if retries < 1:
            raise InvalidArgument(f"--retries must be at least 1 (not {retries})")
        health["Retries"] = retries
    cfg["Healthcheck"] = health


_HANDLERS: dict[str, Callable[[dict[str, Any], str], None]] = {
    "CMD": _set_cmd,
    "ENTRYPOINT": _set_entrypoint,
    "ENV": _set_env,
    "EXPOSE": _set_expose,
    "LABEL": _set_label,
    "ONBUILD": _set_onbuild,
    "USER": _set_simple("User"),
    "VOLUME": _set_volume,
    "WORKDIR": _set_workdir,
    "HEALTHCHECK": _set_healthcheck,
}


def apply(config: dict[str, Any], changes: list[str]) -> dict[str, Any]:
    """Return a copy of ``config`` with each ``--change`` line applied in order."""
    cfg = json.loads(json.dumps(config))
    for line in changes:
        text = line.strip()
        if not text:
            continue
        word, _, rest = text.partition(" ")
        if "\t" in word:
            word, _, tail = word.partition("\t")
            rest = tail + " " + rest
        handler = _HANDLERS.get(word.upper())
        if handler is None:
            raise InvalidArgument(f"{word.lower()} is not a valid change command")
        handler(cfg, rest)
    return cfg
