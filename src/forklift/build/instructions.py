"""The instructions that only change the image config (ENV, LABEL, CMD, …): each edits
the Docker container Config of the stage and returns the text Docker's classic builder
records for it in the history (``ENV a=b`` in ``/bin/sh -c #(nop)  ENV a=b``)."""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Callable, Mapping
from typing import Any

from forklift import changes
from forklift.build import words
from forklift.build.dockerfile import Instruction
from forklift.errors import InvalidArgument

Env = Mapping[str, str]
Handler = Callable[[dict[str, Any], Instruction, Env, str], str]

DEFAULT_SHELL = ["/bin/sh", "-c"]


def go_quote_list(items: list[str]) -> str:
    """Go's ``%q`` of a string slice: ``["a" "b"]``."""
    return "[" + " ".join(json.dumps(i, ensure_ascii=False) for i in items) + "]"


def _pairs(ins: Instruction, env: Env, escape: str) -> list[tuple[str, str]]:
    args = list(ins.args)
    if not args or len(args) % 2:
        raise InvalidArgument(f"{ins.keyword} requires at least one argument")
    return [(words.expand(args[i], env, escape), words.expand(args[i + 1], env, escape))
            for i in range(0, len(args), 2)]


def _env(cfg: dict[str, Any], ins: Instruction, env: Env, escape: str) -> str:
    current = changes.env_map(cfg)
    pairs = _pairs(ins, env, escape)
    for key, value in pairs:
        if not key:
            raise InvalidArgument("ENV names can not be blank")
        current[key] = value   # a name set again keeps its place, as in Docker
    cfg["Env"] = [f"{k}={v}" for k, v in current.items()]
    return "ENV " + " ".join(f"{k}={v}" for k, v in pairs)


def _label(cfg: dict[str, Any], ins: Instruction, env: Env, escape: str) -> str:
    pairs = _pairs(ins, env, escape)
    labels = dict(cfg.get("Labels") or {})
    for key, value in pairs:
        if not key:
            raise InvalidArgument("LABEL names can not be blank")
        labels[key] = value
    cfg["Labels"] = labels
    return "LABEL " + " ".join(f"{k}={v}" for k, v in pairs)


def _words(ins: Instruction, env: Env, escape: str) -> list[str]:
    if ins.json_form:
        return [words.expand(a, env, escape) for a in ins.args]
    out: list[str] = []
    for arg in ins.args:
        out += words.expand_words(arg, env, escape)
    return out


def _expose(cfg: dict[str, Any], ins: Instruction, env: Env, escape: str) -> str:
    ports = _words(ins, env, escape)
    if not ports:
        raise InvalidArgument("EXPOSE requires at least one argument")
    cfg.update(changes.apply(cfg, ["EXPOSE " + " ".join(ports)]))
    return "EXPOSE " + " ".join(ports)


def _volume(cfg: dict[str, Any], ins: Instruction, env: Env, escape: str) -> str:
    paths = _words(ins, env, escape)
    if not paths or any(not p.strip() for p in paths):
        raise InvalidArgument("VOLUME specified can not be an empty string")
    cfg["Volumes"] = {**(cfg.get("Volumes") or {}), **{p: {} for p in paths}}
    return "VOLUME [" + " ".join(paths) + "]"


def _single(ins: Instruction, env: Env, escape: str) -> str:
    text = " ".join(ins.args).strip()
    value = words.expand(text, env, escape) if text else ""
    if not value:
        raise InvalidArgument(f"{ins.keyword} requires exactly one argument")
    return value


def _user(cfg: dict[str, Any], ins: Instruction, env: Env, escape: str) -> str:
    cfg["User"] = _single(ins, env, escape)
    return "USER " + cfg["User"]


def _stopsignal(cfg: dict[str, Any], ins: Instruction, env: Env, escape: str) -> str:
    value = _single(ins, env, escape)
    if not re.fullmatch(r"(SIG)?[A-Z0-9+-]+|\d+", value.upper()):
        raise InvalidArgument(f"Invalid signal: {value}")
    cfg["StopSignal"] = value
    return "STOPSIGNAL " + value


def command(cfg: dict[str, Any], ins: Instruction) -> list[str]:
    """CMD/ENTRYPOINT/RUN's argv: the JSON list, or the shell form through SHELL."""
    if ins.json_form:
        return list(ins.args)
    return list(cfg.get("Shell") or DEFAULT_SHELL) + [" ".join(ins.args)]


def _cmd(cfg: dict[str, Any], ins: Instruction, env: Env, escape: str) -> str:
    cfg["Cmd"] = command(cfg, ins)
    return "CMD " + go_quote_list(cfg["Cmd"])


def _entrypoint(cfg: dict[str, Any], ins: Instruction, env: Env, escape: str) -> str:
    argv = command(cfg, ins)
    cfg["Entrypoint"] = argv
    return "ENTRYPOINT " + go_quote_list(argv)


def _shell(cfg: dict[str, Any], ins: Instruction, env: Env, escape: str) -> str:
    if not ins.json_form or not ins.args:
        raise InvalidArgument("SHELL requires the arguments to be in JSON form")
    cfg["Shell"] = list(ins.args)
    return "SHELL [" + " ".join(cfg["Shell"]) + "]"   # Go's %v, as Docker prints it


def _onbuild(cfg: dict[str, Any], ins: Instruction, env: Env, escape: str) -> str:
    trigger = ins.trigger
    if trigger is None:
        raise InvalidArgument("ONBUILD requires at least one argument")
    if trigger.keyword in ("ONBUILD", "FROM", "MAINTAINER"):
        raise InvalidArgument(f"{trigger.keyword} isn't allowed as an ONBUILD trigger")
    expression = re.sub(r"^\s*onbuild\s+", "", ins.original, flags=re.IGNORECASE)
    cfg["OnBuild"] = list(cfg.get("OnBuild") or []) + [expression]
    return "ONBUILD " + expression


# --------------------------------------------------------------------------- HEALTHCHECK

_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
          "m": 60_000_000_000, "h": 3_600_000_000_000}


def parse_duration(text: str, flag: str) -> int:
    """A Go duration ("30s", "1m30s") in nanoseconds."""
    parts = re.findall(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)", text)
    if not text or "".join(n + u for n, u in parts) != text:
        raise InvalidArgument(f'time: invalid duration "{text}" for --{flag}')
    return int(sum(float(n) * _UNITS[u] for n, u in parts))


def format_duration(ns: int) -> str:
    """Go's Duration.String() for whole units (what %q of a HealthConfig shows)."""
    if ns == 0:
        return "0s"
    hours, rest = divmod(ns, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    seconds = rest / 1e9
    out = f"{hours}h" if hours else ""
    if hours or minutes:
        out += f"{minutes}m"
    return out + (f"{seconds:.9f}".rstrip("0").rstrip(".") + "s")


def _flags(ins: Instruction, allowed: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for flag in ins.flags:
        name, _, value = flag.lstrip("-").partition("=")
        if name not in allowed:
            raise InvalidArgument(f"unknown flag: {name}")
        out[name] = value
    return out


def _healthcheck(cfg: dict[str, Any], ins: Instruction, env: Env, escape: str) -> str:
    args = list(ins.args)
    if len(args) == 1 and not ins.json_form:
        head, _, tail = args[0].strip().partition(" ")
        args = [head] + ([tail.strip()] if tail.strip() else [])
    kind = args[0].upper() if args else ""
    if kind == "NONE":
        if len(args) > 1 or ins.flags:
            raise InvalidArgument("HEALTHCHECK NONE takes no arguments")
        cfg["Healthcheck"] = {"Test": ["NONE"]}
        return "HEALTHCHECK " + "&{[\"NONE\"] \"0s\" \"0s\" \"0s\" '\\x00'}"
    if kind != "CMD" or len(args) < 2:
        raise InvalidArgument("Unknown type in HEALTHCHECK (try CMD)")
    flags = _flags(ins, ("interval", "timeout", "start-period", "start-interval", "retries"))
    json_cmd = ins.json_form or len(args) > 2
    test = ["CMD", *args[1:]] if json_cmd else ["CMD-SHELL", args[1]]
    health: dict[str, Any] = {"Test": test}
    durations = {}
    for flag, key in (("interval", "Interval"), ("timeout", "Timeout"),
                      ("start-period", "StartPeriod"), ("start-interval", "StartInterval")):
        durations[key] = parse_duration(flags[flag], flag) if flag in flags else 0
        if durations[key]:
            health[key] = durations[key]
    retries = 0
    if "retries" in flags:
        if not flags["retries"].isdigit():
            raise InvalidArgument(f"invalid --retries: {flags['retries']}")
        retries = int(flags["retries"])
        if retries:
            health["Retries"] = retries
    cfg["Healthcheck"] = health
    # Go's %q of the HealthConfig of Docker 20.10 (the machine's): no StartInterval in it
    shown = " ".join(f'"{format_duration(durations[k])}"' for k in ("Interval", "Timeout", "StartPeriod"))
    return f"HEALTHCHECK &{{{go_quote_list(test)} {shown} '\\x{retries:02x}'}}"


def workdir_path(cfg: dict[str, Any], ins: Instruction, env: Env, escape: str) -> str:
    """WORKDIR's new working directory (relative to the current one), cleaned."""
    path = _single(ins, env, escape)
    if not path.startswith("/"):
        path = posixpath.join(cfg.get("WorkingDir") or "/", path)
    return posixpath.normpath(path) if path != "/" else "/"


HANDLERS: dict[str, Handler] = {
    "ENV": _env, "LABEL": _label, "EXPOSE": _expose, "VOLUME": _volume, "USER": _user,
    "STOPSIGNAL": _stopsignal, "CMD": _cmd, "ENTRYPOINT": _entrypoint, "SHELL": _shell,
    "ONBUILD": _onbuild, "HEALTHCHECK": _healthcheck,
}
