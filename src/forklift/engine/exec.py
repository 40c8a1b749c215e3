"""``exec``: run another process in a running container (runc exec --process)."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field
from typing import Any

from forklift.engine import containers, rootfs
from forklift.engine.lifecycle import require_running
from forklift.errors import InvalidArgument
from forklift.store.db import Store


@dataclass
class ExecOptions:
    tty: bool = False
    interactive: bool = False
    detach: bool = False
    user: str | None = None
    workdir: str | None = None
    env: list[str] = field(default_factory=list)
    privileged: bool = False


def process_json(store: Store, rec: Any, command: list[str], opts: ExecOptions) -> dict[str, Any]:
    from forklift.runtime import spec as spec_mod
    from forklift.runtime.user import resolve_user

    cfg = rec.config
    merged = rootfs.paths(store, rec.id)["merged"]
    uid, gid, groups, home = resolve_user(merged, opts.user if opts.user is not None
                                          else (cfg.get("User") or ""))
    env = containers._process_env({**cfg, "Tty": opts.tty}, home)
    if opts.env:
        env = containers._merge_env(env, opts.env)
    cwd = opts.workdir or cfg.get("WorkingDir") or "/"
    if not cwd.startswith("/"):
        raise InvalidArgument(f"the working directory '{cwd}' is invalid, it needs to be an absolute path")
    proc = spec_mod.ProcessConfig(args=list(command), env=env, cwd=cwd, uid=uid, gid=gid,
                                  additional_gids=groups, terminal=opts.tty)
    rl = {u["Name"]: (u["Soft"], u["Hard"]) for u in rec.host_config.get("Ulimits") or []}
    wanted = dict(spec_mod.DEFAULT_RLIMITS)
    for k, v in rl.items():
        wanted[spec_mod._rlimit_name(k)] = v
    return spec_mod._process(proc, spec_mod.clamp_rlimits(wanted))


def exec_(store: Store, name: str, command: list[str], opts: ExecOptions, *,
          stdin: Any = None, stdout: Any = None, stderr: Any = None) -> int:
    from forklift.runtime.runc import Runc, _exit_code, _truncate

    if not command:
        raise InvalidArgument("exec requires at least 1 argument")
    rec = require_running(store, name, "Container {id} is paused, unpause the container before exec")
    runc = Runc(store.runc_dir)
    scratch = store.make_tmp("exec")
    try:
        proc_path = os.path.join(scratch, "process.json")
        with open(proc_path, "w") as f:
            json.dump(process_json(store, rec, command, opts), f)
        log = os.path.join(scratch, "runc.log")
        _truncate(log)
        argv = runc._argv("--log", log, "--log-format", "json", "exec", "--process", proc_path)
        if opts.detach:
            argv += ["--detach"]
            null = os.open("/dev/null", os.O_RDWR)
            try:
                if opts.tty:
                    # runc needs someone to take the terminal; give it to a throwaway listener
                    return _detached_tty(argv, scratch, rec.id, log)
                res = subprocess.run([*argv, rec.id], stdin=null, stdout=null, stderr=null,
                                     check=False)
            finally:
                os.close(null)
            return _result(res.returncode, log)
        if opts.tty:
            from forklift.engine import tty

            pid_file = os.path.join(scratch, "exec.pid")
            cres = tty.run_with_console(
                [*argv, "--detach", "--console-socket", tty.CONSOLE_SOCKET, "--pid-file",
                 pid_file, rec.id], scratch, pid_file, interactive=opts.interactive,
                stdin=stdin, stdout=stdout)
            if cres.exit_code is None:
                return _result(cres.runc_code, log)
            return cres.exit_code
        null_in = None
        if not opts.interactive:
            null_in = open("/dev/null", "rb")  # noqa: SIM115
        try:
            res = subprocess.run([*argv, rec.id], stdin=null_in or stdin, stdout=stdout,
                                 stderr=stderr, check=False)
        finally:
            if null_in:
                null_in.close()
        code = res.returncode
        return _result(_exit_code(code << 8) if code >= 0 else 128 - code, log)
    finally:
        from forklift.store.db import remove_path

        remove_path(scratch)


def _detached_tty(argv: list[str], scratch: str, container_id: str, log: str) -> int:
    from forklift.engine import tty

    listener = tty.bind_in_dir(scratch, tty.CONSOLE_SOCKET)
    proc = subprocess.Popen([*argv, "--console-socket", tty.CONSOLE_SOCKET, container_id],
                            cwd=scratch, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        master = tty.receive_master(listener, proc)
        os.close(master)  # the process keeps its slave; output is discarded, like docker exec -dt
    except Exception:
        pass
    finally:
        listener.close()
    return _result(proc.wait(), log)


def _result(code: int, log: str) -> int:
    from forklift.runtime.runc import _last_error, _map_start_failure

    if code == 255 and _last_error(log) is not None:
        code = 1  # runc exec's own failure: map "not found" to 127 like the start path
    return _map_start_failure(code, log)
