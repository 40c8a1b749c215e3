"""The console entry point, and the hot commands without click.

Importing click and building its commands costs tens of milliseconds, as much as a whole
``docker exec``. `main` therefore reads the command line of the commands in `SPECS`
(``exec``, ``stop``, ``kill``, ``run``, ``create``, ``export``, ``diff``, ``import``,
``load``) itself when it uses only their plain forms (`parse`), and runs the same bodies
the click commands run (`BODIES`); anything else — ``--help``, a flag it does not
know, a ``--flag=value`` or ``-t5`` form, ``--``, a missing value — goes to click
(`forklift.cli.main`) untouched, so every help text, error message and exit code is
click's. tests/unit/test_cli_fast.py checks that whatever this parser accepts, click
parses to the same values.
"""

from __future__ import annotations

import os
import sys

from forklift.cli import session
from forklift.cli.run_body import CREATE_DEFAULTS

TYPE_CHECKING = False  # not typing's: its import (and re's) is on the hot paths
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    # command -> (flags, options taking a value, options that may repeat, int options,
    #             defaults, positional names, options only before the first positional)
    _Spec = tuple[dict[str, str], dict[str, str], frozenset[str], frozenset[str], dict[str, Any],
                  tuple[str, str], bool]

# run's and create's plain forms; their other options go to click, and every default comes
# from CREATE_DEFAULTS (cli/run_body.py), which a unit test checks against click's options
_RUN_FLAGS = {"--rm": "auto_remove", "-d": "detach", "--detach": "detach", "-i": "interactive",
              "--interactive": "interactive", "-t": "tty", "--tty": "tty",
              "--privileged": "privileged", "--init": "init", "--read-only": "read_only"}
_CREATE_VALUED = {"--name": "name", "-e": "env", "--env": "env", "--network": "network",
                  "--net": "network", "-w": "workdir", "--workdir": "workdir", "-u": "user",
                  "--user": "user", "--entrypoint": "entrypoint", "-v": "volumes",
                  "--volume": "volumes", "-p": "publish", "--publish": "publish",
                  "-l": "labels", "--label": "labels", "--pull": "pull"}
_CREATE_MULTIPLE = frozenset({"env", "volumes", "publish", "labels"})
_NO_COMMAND_NEEDED = frozenset({"run", "create"})  # the image's own
SPECS: dict[str, _Spec] = {
    "exec": ({"-d": "detach", "--detach": "detach", "-i": "interactive",
              "--interactive": "interactive", "-t": "tty", "--tty": "tty",
              "--privileged": "privileged"},
             {"-u": "user", "--user": "user", "-w": "workdir", "--workdir": "workdir",
              "-e": "env", "--env": "env"},
             frozenset({"env"}), frozenset(),
             {"detach": False, "interactive": False, "tty": False, "privileged": False,
              "user": None, "workdir": None, "env": ()},
             ("container", "command"), True),
    "stop": ({}, {"-t": "timeout", "--time": "timeout", "-s": "sig", "--signal": "sig"},
             frozenset(), frozenset({"timeout"}), {"timeout": None, "sig": None},
             ("", "containers"), False),
    "kill": ({}, {"-s": "sig", "--signal": "sig"}, frozenset(), frozenset(),
             {"sig": "KILL"}, ("", "containers"), False),
    # one operand and no rest: ("container", "")
    "export": ({}, {"-o": "output", "--output": "output"}, frozenset(), frozenset(),
               {"output": None}, ("container", ""), False),
    "diff": ({}, {}, frozenset(), frozenset(), {}, ("container", ""), False),
    # no operand: ("", ""); an optional second one: "repository?"
    "load": ({"-q": "quiet", "--quiet": "quiet"},
             {"-i": "source", "--input": "source", "--platform": "platform",
              "--max-size": "max_size"}, frozenset(), frozenset(),
             {"source": None, "quiet": False, "platform": None, "max_size": None}, ("", ""),
             False),
    "import": ({}, {"-c": "changes", "--change": "changes", "-m": "message",
                    "--message": "message", "--platform": "platform", "--max-size": "max_size"},
               frozenset({"changes"}), frozenset(),
               {"repository": None, "changes": (), "message": "", "platform": None,
                "max_size": None}, ("source", "repository?"), False),
    "run": (_RUN_FLAGS, _CREATE_VALUED, _CREATE_MULTIPLE, frozenset(),
            {**CREATE_DEFAULTS, "detach": False}, ("image", "command"), True),
    "create": ({k: v for k, v in _RUN_FLAGS.items() if v != "detach"}, _CREATE_VALUED,
               _CREATE_MULTIPLE, frozenset(), CREATE_DEFAULTS, ("image", "command"), True),
}


def parse(argv: list[str]) -> tuple[str | None, bool, str, dict[str, Any]] | None:
    """``(root, debug, command, params)`` for a plain hot command line (params as click
    would pass them to the command), None for anything click must read."""
    root, debug, i = None, False, 0
    while i < len(argv) and argv[i] in ("--root", "-D", "--debug"):
        if argv[i] == "--root":
            if i + 1 == len(argv) or argv[i + 1].startswith("-") or root is not None:
                return None
            root, i = argv[i + 1], i + 2
        else:
            debug, i = True, i + 1
    if argv[i:i + 1] == ["container"]:
        i += 1
    if i == len(argv) or argv[i] not in SPECS:
        return None
    params = _command_params(argv[i], argv[i + 1:])
    return None if params is None else (root, debug, argv[i], params)


def _command_params(command: str, args: list[str]) -> dict[str, Any] | None:
    flags, valued, multiple, ints, defaults, (first, rest), stop_at_first = SPECS[command]
    params: dict[str, Any] = {}
    positional: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if stop_at_first and positional:  # the container's command, verbatim
            positional.extend(args[i:])
            break
        if not arg.startswith("-"):
            positional.append(arg)
        elif arg in flags and flags[arg] not in params:
            params[flags[arg]] = True
        elif arg in valued and (valued[arg] not in params or valued[arg] in multiple):
            if i + 1 == len(args) or args[i + 1].startswith("-"):
                return None
            value: Any = args[i + 1]
            name = valued[arg]
            if name in ints:
                if not (value.isascii() and value.isdigit()):
                    return None
                value = int(value)
            params[name] = (*params.get(name, ()), value) if name in multiple else value
            i += 1
        elif _short_flags(arg, flags) and not set(_short_flags(arg, flags)) & set(params):
            params.update(dict.fromkeys(_short_flags(arg, flags), True))
        else:
            return None
        i += 1
    if not rest or rest.endswith("?"):  # a fixed number of operands, the last optional
        names = [n for n in (first, rest.rstrip("?")) if n]
        if not len(names) - bool(rest) <= len(positional) <= len(names):
            return None
        return {**defaults, **params, **dict(zip(names, positional, strict=False))}
    if len(positional) < (2 if first and command not in _NO_COMMAND_NEEDED else 1):
        return None
    if first:
        params[first], positional = positional[0], positional[1:]
    params[rest] = tuple(positional)
    return {**defaults, **params}


def _short_flags(arg: str, flags: dict[str, str]) -> list[str]:
    """The flags of ``-it``: every letter one of the command's short flags, else none."""
    names = [flags.get(f"-{c}", "") for c in arg[1:]]
    if len(arg) < 3 or arg[1] == "-" or not all(names) or len(set(names)) < len(names):
        return []
    return names


State = session.State


# -- the bodies, shared with the click commands (cli/lifecycle_cmds.py) ---------------------


def exec_(state: Any, container: str, command: tuple[str, ...], detach: bool,
          interactive: bool, tty: bool, user: str | None, workdir: str | None,
          env: tuple[str, ...], privileged: bool) -> None:
    if not tty and not detach:
        from forklift.engine import quickexec  # the common case, in a tenth of the modules

        code = quickexec.run(state.root, container, list(command), interactive=interactive,
                             user=user, workdir=workdir, env=list(env))
        if code is not None:
            raise SystemExit(code)
    from forklift.engine import exec as exec_mod  # rootfs, process: not on stop's path

    opts = exec_mod.ExecOptions(tty=tty, interactive=interactive, detach=detach, user=user,
                                workdir=workdir, env=list(env), privileged=privileged)
    code = exec_mod.exec_(state.store, container, list(command), opts, stdin=sys.stdin)
    raise SystemExit(code)


def stop(state: Any, containers: tuple[str, ...], timeout: int | None, sig: str | None) -> None:
    from forklift.engine import lifecycle

    each(containers, lambda n: lifecycle.stop(state.store, n, timeout, sig))


def kill(state: Any, containers: tuple[str, ...], sig: str) -> None:
    from forklift.engine import lifecycle

    lifecycle.parse_signal(sig)
    each(containers, lambda n: lifecycle.kill(state.store, n, sig),
         wrap=lambda name, message: f"Cannot kill container: {name}: {message}")


def export(state: Any, container: str, output: str | None) -> None:
    from forklift.engine import containers
    from forklift.errors import InvalidArgument
    from forklift.formats.output import atomic_output

    if output is None and sys.stdout.isatty():
        raise InvalidArgument("cowardly refusing to save to a terminal. Use the -o flag or redirect")
    with atomic_output(output) as out:
        containers.export(state.store, container, out)


def diff(state: Any, container: str) -> None:
    from forklift.engine import containers

    lines = [f"{kind} {path}" for kind, path in containers.diff(state.store, container)]
    if lines:
        # paths as the file system names them (undecodable bytes back as they were), as
        # docker diff prints them
        sys.stdout.flush()
        sys.stdout.buffer.write("\n".join(lines).encode("utf-8", "surrogateescape") + b"\n")
        sys.stdout.buffer.flush()


def load(state: Any, source: str | None, quiet: bool, platform: str | None,
         max_size: str | None) -> None:
    from forklift.engine import transfer

    lines = transfer.load(state.store, source, platform, max_size=max_size)
    if lines:
        sys.stdout.write("\n".join(lines) + "\n")
        sys.stdout.flush()


def import_(state: Any, source: str, repository: str | None, changes: tuple[str, ...],
            message: str, platform: str | None, max_size: str | None) -> None:
    from forklift.engine import images

    image_id = images.import_tarball(state.store, source, repository, list(changes), message,
                                     max_size=max_size)
    sys.stdout.write(image_id + "\n")
    sys.stdout.flush()


def each(names: tuple[str, ...], fn: Callable[[str], Any],
         wrap: Callable[[str, str], str] | None = None) -> None:
    """`forklift.cli.common.for_each` (echo each name done): one name here, without click,
    several there."""
    if len(names) != 1:
        from forklift.cli.common import for_each

        for_each(names, fn, wrap=wrap)
        return
    from forklift.errors import ForkliftError

    try:
        fn(names[0])
    except ForkliftError as exc:
        if wrap is not None:
            exc.message = wrap(names[0], exc.message)
        raise
    # a name that found its container is plain text: click.echo would write it as is
    sys.stdout.write(names[0] + "\n")
    sys.stdout.flush()


def run(state: Any, image: str, command: tuple[str, ...], detach: bool, **kw: Any) -> None:
    from forklift.cli import run_body

    run_body.run(state, image, command, detach, **kw)


def create(state: Any, image: str, command: tuple[str, ...], **kw: Any) -> None:
    from forklift.cli import run_body

    run_body.create(state, image, command, **kw)


BODIES: dict[str, Callable[..., None]] = {"exec": exec_, "stop": stop, "kill": kill,
                                          "export": export, "diff": diff, "load": load,
                                          "import": import_, "run": run, "create": create}


def main() -> None:
    """Console entry point: a plain hot command here, anything else through click; both
    leave through `session.leave`."""
    parsed = parse(sys.argv[1:])
    if parsed is None:
        from forklift.cli.main import main as click_main

        click_main()
        return
    root, debug, command, params = parsed
    if debug:
        os.environ["FORKLIFT_DEBUG"] = "1"
    if root is None:
        root = os.environ.get("FORKLIFT_ROOT") or None
    try:
        BODIES[command](State(root), **params)
    except SystemExit as exc:
        session.leave(exc.code)
    except BaseException as exc:  # noqa: BLE001 - mapped exactly as the click path maps it
        from forklift.cli.main import fail

        try:
            fail(exc)
        except SystemExit as done:
            session.leave(done.code)
    session.leave(0)
