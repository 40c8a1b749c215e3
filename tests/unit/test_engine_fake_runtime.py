"""The engine on the runtime seam: a fake runtime drives what the engine decides itself.

No runc, no overlay mount, no network: a store in a temporary directory, container
records written straight into it (``HostConfig.Runtime = "fake"``, network none), and
`FakeRuntime` in ``forklift.runtime.RUNTIMES``. Covered: the start-failure codes, the
monitor's status pipe, exec's process (user, env, working directory, rlimits), the
stop/kill signals and their escalation, and a record's states from claim to finish,
through pause, a dead monitor and removal. What needs a mount keeps its real test in
tests/containers.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from forklift import errors, runtime
from forklift.engine import containers, lifecycle, monitor, process, rootfs, runner
from forklift.engine.exec import ExecOptions, exec_
from forklift.errors import (
    CommandNotExecutable,
    CommandNotFound,
    Conflict,
    ForkliftError,
    InvalidArgument,
    MissingProgram,
    NotFound,
    RuntimeFailure,
)
from forklift.store import containers as container_store
from forklift.store.containers import ContainerRecord, State
from forklift.store.db import Store

PASSWD = "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n"
GROUP = "root:x:0:\nwheel:x:10:alice\nalice:x:1000:\n"


class FakeRuntime:
    """A `forklift.runtime.Runtime` that records every call; ``fail[verb]`` is raised by
    that verb, ``on_kill(container_id, sig, all)`` plays the container's reaction."""

    name = "fake"

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.fail: dict[str, ForkliftError] = {}
        self.on_kill: Callable[[str, int | str, bool], None] = lambda *_: None
        self.exit_code = 0
        self.processes: list[dict[str, Any]] = []

    def _call(self, verb: str, *args: Any) -> None:
        self.calls.append((verb, *args))
        if verb in self.fail:
            raise self.fail[verb]

    def verbs(self) -> list[str]:
        return [c[0] for c in self.calls]

    def run(self, container_id: str, bundle: str, **kw: Any) -> int:
        self._call("run", container_id)
        return self.exit_code

    def create(self, container_id: str, bundle: str, **kw: Any) -> None:
        self._call("create", container_id)

    def start(self, container_id: str) -> None:
        self._call("start", container_id)

    def exec(self, container_id: str, process: str, *, detach: bool = False, **kw: Any) -> int:
        import json

        with open(process) as f:
            self.processes.append(json.load(f))
        self._call("exec", container_id, detach)
        return 0 if detach else self.exit_code

    def kill(self, container_id: str, sig: int | str = signal.SIGTERM, all: bool = False) -> None:
        self._call("kill", container_id, sig, all)
        self.on_kill(container_id, sig, all)

    def delete(self, container_id: str, force: bool = False) -> None:
        self._call("delete", container_id, force)

    def state(self, container_id: str) -> dict[str, Any] | None:
        self._call("state", container_id)
        return None

    def pause(self, container_id: str) -> None:
        self._call("pause", container_id)

    def resume(self, container_id: str) -> None:
        self._call("resume", container_id)

    def pids(self, container_id: str) -> list[int]:
        self._call("pids", container_id)
        return [os.getpid()]

    def update(self, container_id: str, resources: dict[str, Any]) -> None:
        self._call("update", container_id, resources)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeRuntime:
    rt = FakeRuntime()
    monkeypatch.setitem(runtime.RUNTIMES, "fake", lambda state_root: rt)
    return rt


def dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def add(store: Store, *, state: State = State.CREATED, pid: int | None = None,
        config: dict[str, Any] | None = None, host_config: dict[str, Any] | None = None,
        name: str = "c1") -> ContainerRecord:
    """A container record on the fake runtime, with a root filesystem directory holding
    /etc/passwd and /etc/group (standing in for its mounted rootfs)."""
    rec = ContainerRecord(os.urandom(32).hex(), name, "sha256:" + "0" * 64, "img", time.time(),
                          state=state, pid=pid,
                          config={"Cmd": ["sh"], "Hostname": "h0st", **(config or {})},
                          host_config={"Runtime": "fake", "NetworkMode": "none",
                                       **(host_config or {})})
    etc = Path(store.container_path(rec.id)) / "merged" / "etc"
    etc.mkdir(parents=True)
    (etc / "passwd").write_text(PASSWD)
    (etc / "group").write_text(GROUP)
    with store.transaction():
        container_store.insert(store, rec)
    return rec


def running(store: Store, **kw: Any) -> ContainerRecord:
    """A container whose waiting process is alive (this test's own process)."""
    return add(store, state=State.RUNNING, pid=os.getpid(), **kw)


def record(store: Store, rec: ContainerRecord) -> ContainerRecord:
    current = container_store.get(store, rec.id)
    assert current is not None
    return current


def exits_on(store: Store, *signals: int) -> Callable[[str, int | str, bool], None]:
    """What a container's monitor does when one of ``signals`` ends it: record the exit."""

    def react(container_id: str, sig: int | str, all: bool) -> None:
        if sig in signals:
            container_store.update_state(store, container_id, state=State.EXITED, pid=None,
                                         exit_code=128 + int(sig))
    return react


# ----------------------------------------------------------------------------- start failures

@pytest.mark.parametrize(("error", "code"), [
    (CommandNotFound('exec: "x": executable file not found in $PATH'), 127),
    (CommandNotExecutable('exec: "/etc": permission denied'), 126),
    (RuntimeFailure("runc create failed: mount failed"), 128),
    (MissingProgram("runc not found: install the Debian package runc"), 128),
])
def test_start_failure_codes(error: ForkliftError, code: int) -> None:
    assert runtime.start_failure_code(error) == code


def test_runtime_factory(fake: FakeRuntime) -> None:
    assert runtime.for_container("/unused", {"Runtime": "fake"}) is fake
    with pytest.raises(InvalidArgument, match="unknown or invalid runtime name: kata"):
        runtime.get("/unused", "kata")


# ----------------------------------------------------------------------------- the status pipe

def _error_classes() -> list[type[ForkliftError]]:
    return [c for c in vars(errors).values()
            if isinstance(c, type) and issubclass(c, ForkliftError)]


@pytest.mark.parametrize("cls", _error_classes(), ids=lambda c: c.__name__)
def test_monitor_wire_keeps_the_error_class(cls: type[ForkliftError]) -> None:
    got = monitor.from_wire(monitor.to_wire(cls("it failed: 'x' \"y\" é")))
    assert type(got) is cls
    assert got.message == "it failed: 'x' \"y\" é"


@pytest.mark.parametrize(("data", "message"), [
    (b"", "the container monitor exited before the container started"),
    (b"NotFound No such image", "the container monitor exited before the container started"),
    (b'{"error": "NoSuchClass", "message": "m"}', "m"),
    (b'{"error": "ValueError", "message": "m"}', "m"),
    (b'{"ok": false}', "the container could not be started"),
])
def test_monitor_wire_reads_anything_else_as_a_runtime_failure(data: bytes, message: str) -> None:
    got = monitor.from_wire(data)
    assert type(got) is RuntimeFailure
    assert got.message == message


def test_monitor_wire_ok() -> None:
    assert monitor.from_wire(monitor.to_wire(None)) is None


# ----------------------------------------------------------------------------- exec's process

def _process(store: Store, rec: ContainerRecord, command: list[str], **kw: Any) -> dict[str, Any]:
    opts = {"tty": False, "user": None, "workdir": None, "env": [], **kw}
    return process.exec_process(rec, os.path.join(store.container_path(rec.id), "merged"),
                               command, **opts)


def test_exec_process_takes_the_containers_user_env_and_workdir(store: Store) -> None:
    rec = running(store, config={"User": "alice", "WorkingDir": "/srv",
                                 "Env": ["A=1", "PATH=/bin"]})
    proc = _process(store, rec, ["id", "-u"])
    assert proc["args"] == ["id", "-u"]
    assert proc["user"] == {"uid": 1000, "gid": 1000, "additionalGids": [1000, 10]}
    assert proc["cwd"] == "/srv"
    assert proc["env"] == ["A=1", "PATH=/bin", "HOSTNAME=h0st", "HOME=/home/alice"]
    assert proc["terminal"] is False
    assert proc["capabilities"]["effective"] == []  # a non-root user has none


def test_exec_process_overrides(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FROM_HOST", "h")
    monkeypatch.delenv("NOT_SET", raising=False)
    rec = running(store, config={"User": "alice", "Env": ["A=1"]})
    proc = _process(store, rec, ["sh"], tty=True, user="0:10", workdir="/tmp",
                    env=["A=2", "FROM_HOST", "NOT_SET", "C=3"])
    assert proc["user"] == {"uid": 0, "gid": 10, "additionalGids": [10]}
    assert proc["cwd"] == "/tmp"
    assert proc["terminal"] is True
    env = proc["env"]
    assert env[0].startswith("PATH=") and "A=2" in env and "A=1" not in env
    assert {"FROM_HOST=h", "C=3", "TERM=xterm", "HOME=/root"} <= set(env)
    assert not any(e.startswith("NOT_SET") for e in env)
    assert "CAP_CHOWN" in proc["capabilities"]["effective"]


def test_exec_process_refuses_a_relative_workdir_and_unknown_user(store: Store) -> None:
    rec = running(store)
    with pytest.raises(InvalidArgument, match="'rel' is invalid, it needs to be an absolute path"):
        _process(store, rec, ["true"], workdir="rel")
    with pytest.raises(InvalidArgument):
        _process(store, rec, ["true"], user="nobody-here")


def test_exec_process_rlimits(store: Store) -> None:
    _, host_hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    default = _process(store, running(store, name="a"), ["true"])["rlimits"]
    want = 1048576 if host_hard == resource.RLIM_INFINITY else min(1048576, host_hard)
    assert default == [{"type": "RLIMIT_NOFILE", "soft": want, "hard": want}]
    rec = running(store, name="b", host_config={"Ulimits": [
        {"Name": "nofile", "Soft": 100, "Hard": 200}, {"Name": "nproc", "Soft": -1, "Hard": -1}]})
    limits = {r["type"]: (r["soft"], r["hard"]) for r in _process(store, rec, ["true"])["rlimits"]}
    assert limits["RLIMIT_NOFILE"] == (100, 200)
    host_nproc = resource.getrlimit(resource.RLIMIT_NPROC)[1]
    unlimited = 2**64 - 1 if host_nproc == resource.RLIM_INFINITY else host_nproc
    assert limits["RLIMIT_NPROC"] == (unlimited, unlimited)


def test_exec_hands_the_process_to_the_runtime(store: Store, fake: FakeRuntime) -> None:
    rec = running(store)
    fake.exit_code = 4
    assert exec_(store, rec.name, ["sh", "-c", "exit 4"], ExecOptions()) == 4
    assert exec_(store, rec.name, ["sleep", "9"], ExecOptions(detach=True)) == 0
    assert [c for c in fake.calls if c[0] == "exec"] == [("exec", rec.id, False),
                                                         ("exec", rec.id, True)]
    assert [p["args"] for p in fake.processes] == [["sh", "-c", "exit 4"], ["sleep", "9"]]
    assert os.listdir(store.tmp_dir) == []  # its process.json is gone


@pytest.mark.parametrize(("error", "code"), [
    (CommandNotFound('exec: "nosuch": executable file not found in $PATH'), 127),
    (CommandNotExecutable('exec: "/etc": permission denied'), 126),
])
def test_exec_of_a_command_that_cannot_run(store: Store, fake: FakeRuntime,
                                           error: ForkliftError, code: int) -> None:
    rec = running(store)
    fake.fail["exec"] = error
    assert exec_(store, rec.name, ["nosuch"], ExecOptions()) == code


def test_exec_refusals(store: Store, fake: FakeRuntime) -> None:
    fake.fail["exec"] = RuntimeFailure("runc exec failed: something else")
    rec = running(store)
    with pytest.raises(RuntimeFailure, match="something else"):
        exec_(store, rec.name, ["true"], ExecOptions())
    with pytest.raises(InvalidArgument, match="exec requires at least 1 argument"):
        exec_(store, rec.name, [], ExecOptions())
    paused = add(store, name="p", state=State.PAUSED, pid=os.getpid())
    with pytest.raises(Conflict, match="is paused, unpause the container before exec"):
        exec_(store, paused.name, ["true"], ExecOptions())
    stopped = add(store, name="s", state=State.EXITED)
    with pytest.raises(Conflict, match=f"Container {stopped.id} is not running"):
        exec_(store, stopped.name, ["true"], ExecOptions())
    assert fake.verbs() == ["exec"]


# ----------------------------------------------------------------------------- stop and kill

def test_stop_sends_sigterm_and_waits_for_the_exit(store: Store, fake: FakeRuntime) -> None:
    rec = running(store)
    fake.on_kill = exits_on(store, signal.SIGTERM)
    lifecycle.stop(store, rec.name)
    assert fake.calls == [("kill", rec.id, signal.SIGTERM, False)]
    assert record(store, rec).state == State.EXITED


def test_stop_signal_from_the_config_or_the_caller(store: Store, fake: FakeRuntime) -> None:
    rec = running(store, config={"StopSignal": "SIGUSR1"})
    fake.on_kill = exits_on(store, signal.SIGUSR1, signal.SIGHUP)
    lifecycle.stop(store, rec.name)
    container_store.update_state(store, rec.id, state=State.RUNNING, pid=os.getpid())
    lifecycle.stop(store, rec.name, sig="HUP")
    assert [c[2] for c in fake.calls] == [signal.SIGUSR1, signal.SIGHUP]


def test_stop_escalates_to_sigkill_of_every_process(store: Store, fake: FakeRuntime) -> None:
    rec = running(store)
    fake.on_kill = exits_on(store, signal.SIGKILL)
    started = time.monotonic()
    lifecycle.stop(store, rec.name, timeout=0)
    assert time.monotonic() - started < 5
    assert fake.calls == [("kill", rec.id, signal.SIGTERM, False),
                          ("kill", rec.id, signal.SIGKILL, True)]


def test_stop_waits_out_the_grace_period(store: Store, fake: FakeRuntime) -> None:
    rec = running(store)
    fake.on_kill = exits_on(store, signal.SIGKILL)
    started = time.monotonic()
    lifecycle.stop(store, rec.name, timeout=1)
    assert time.monotonic() - started >= 1
    assert [c[2] for c in fake.calls] == [signal.SIGTERM, signal.SIGKILL]


def test_stop_resumes_a_paused_container_first(store: Store, fake: FakeRuntime) -> None:
    rec = add(store, state=State.PAUSED, pid=os.getpid())
    fake.on_kill = exits_on(store, signal.SIGTERM)
    lifecycle.stop(store, rec.name)
    assert fake.verbs() == ["resume", "kill"]


def test_stop_of_a_stopped_container_does_nothing(store: Store, fake: FakeRuntime) -> None:
    rec = add(store, state=State.EXITED)
    lifecycle.stop(store, rec.name)
    assert fake.calls == []


def test_kill_signals(store: Store, fake: FakeRuntime) -> None:
    rec = running(store)
    fake.on_kill = exits_on(store, signal.SIGKILL)
    lifecycle.kill(store, rec.name)           # returns once the exit is recorded
    assert record(store, rec).state == State.EXITED
    container_store.update_state(store, rec.id, state=State.RUNNING, pid=os.getpid())
    lifecycle.kill(store, rec.name, "hup")    # other signals: at once, the container still up
    assert record(store, rec).state == State.RUNNING
    lifecycle.kill(store, rec.name, "SIGUSR2")
    lifecycle.kill(store, rec.name, "15")
    assert [c[2] for c in fake.calls] == [signal.SIGKILL, signal.SIGHUP, signal.SIGUSR2, 15]
    assert all(c[3] is False for c in fake.calls)  # the init only
    with pytest.raises(InvalidArgument, match="Invalid signal: NOPE"):
        lifecycle.kill(store, rec.name, "NOPE")
    paused = add(store, name="p", state=State.PAUSED, pid=os.getpid())
    with pytest.raises(Conflict, match="is paused. Unpause the container before stopping"):
        lifecycle.kill(store, paused.name)
    with pytest.raises(Conflict, match="is not running"):
        lifecycle.kill(store, add(store, name="c", state=State.CREATED).name)


def test_kill_gives_up_on_a_container_that_survives_sigkill(store: Store, fake: FakeRuntime,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    rec = running(store)
    monkeypatch.setattr(lifecycle, "_wait_gone", lambda store, rec, timeout: False)
    with pytest.raises(ForkliftError, match="did not exit after SIGKILL"):
        lifecycle.kill(store, rec.name)


# ----------------------------------------------------------------------------- states

def test_claim_and_finish(store: Store, fake: FakeRuntime) -> None:
    rec = add(store)
    claimed = runner.claim(store, rec, pid=os.getpid())
    now = record(store, rec)
    assert (claimed.id, claimed.state, claimed.pid) == (rec.id, State.RUNNING, os.getpid())
    assert (now.state, now.pid, now.exit_code) == (State.RUNNING, os.getpid(), None)
    assert now.started_at and now.effective_state() == State.RUNNING
    with pytest.raises(Conflict, match="is already running"):
        runner.claim(store, rec, pid=os.getpid())
    runner.finish(store, now, fake, 3, oom_killed=True)
    done = record(store, rec)
    assert (done.state, done.pid, done.exit_code) == (State.EXITED, None, 3)
    assert done.finished_at
    assert fake.calls == [("delete", rec.id, True)]
    assert rootfs.exit_info(store, rec.id) == {"OOMKilled": True}
    runner.claim(store, rec, pid=os.getpid())  # a restart forgets the last run's details
    assert rootfs.exit_info(store, rec.id) == {}


def test_claim_of_a_missing_container(store: Store) -> None:
    rec = add(store)
    container_store.delete(store, rec.id)
    with pytest.raises(NotFound):
        runner.claim(store, rec, pid=os.getpid())


def test_a_dead_monitor_means_exited(store: Store, fake: FakeRuntime) -> None:
    rec = add(store, state=State.RUNNING, pid=dead_pid())
    assert rec.state == State.RUNNING and rec.effective_state() == State.EXITED
    assert lifecycle.wait(store, rec.name) == 255
    assert containers.inspect(store, rec.name)["State"]["Status"] == "exited"
    runner.claim(store, rec, pid=os.getpid())  # it may be started again
    assert record(store, rec).effective_state() == State.RUNNING


def test_stop_of_a_dead_monitors_container_tidies_up(store: Store, fake: FakeRuntime) -> None:
    rec = add(store, state=State.RUNNING, pid=dead_pid())
    lifecycle.stop(store, rec.name)
    assert fake.calls == [("kill", rec.id, signal.SIGKILL, True), ("delete", rec.id, True)]
    done = record(store, rec)
    assert (done.state, done.exit_code) == (State.EXITED, 255)


def test_finish_of_an_auto_remove_container_removes_it(store: Store, fake: FakeRuntime) -> None:
    rec = running(store, host_config={"AutoRemove": True})
    runner.finish(store, rec, fake, 0)
    assert container_store.get(store, rec.id) is None
    assert not os.path.exists(store.container_path(rec.id))


def test_pause_and_unpause(store: Store, fake: FakeRuntime) -> None:
    rec = running(store)
    lifecycle.pause(store, rec.name)
    assert record(store, rec).state == State.PAUSED
    with pytest.raises(Conflict, match="is already paused"):
        lifecycle.pause(store, rec.name)
    lifecycle.unpause(store, rec.name)
    assert record(store, rec).state == State.RUNNING
    with pytest.raises(Conflict, match="is not paused"):
        lifecycle.unpause(store, rec.name)
    assert fake.verbs() == ["pause", "resume"]


def test_top_lists_the_runtimes_processes(store: Store, fake: FakeRuntime) -> None:
    rec = running(store)
    header, rows = lifecycle.top(store, rec.name, ["-o", "pid,comm"])
    assert header == ["PID", "COMMAND"]
    assert [int(r[0]) for r in rows] == [os.getpid()]


def test_remove(store: Store, fake: FakeRuntime) -> None:
    rec = running(store)
    with pytest.raises(Conflict, match="You cannot remove a running container"):
        containers.remove(store, rec.name)
    assert fake.calls == []
    fake.on_kill = exits_on(store, signal.SIGKILL)
    assert containers.remove(store, rec.name, force=True) == rec.name
    assert fake.calls == [("kill", rec.id, signal.SIGKILL, True), ("delete", rec.id, True)]
    assert container_store.get(store, rec.id) is None
    assert not os.path.exists(store.container_path(rec.id))
    stopped = add(store, name="s", state=State.EXITED)
    containers.remove(store, stopped.name)
    assert container_store.get(store, stopped.id) is None


def test_state_is_stored_as_docker_names_it(store: Store) -> None:
    rec = add(store, state=State.PAUSED, pid=os.getpid())
    row = store.conn.execute("SELECT state, typeof(state) FROM containers WHERE id=?",
                             (rec.id,)).fetchone()
    assert tuple(row) == ("paused", "text")
    assert record(store, rec).state is State.PAUSED
    assert State.RUNNING.up and State.PAUSED.up
    assert not State.CREATED.up and not State.EXITED.up


# ----------------------------------------------------------------------------- update

def test_update_of_a_running_container_goes_to_the_runtime_then_the_record(
        store: Store, fake: FakeRuntime) -> None:
    from forklift.engine.update import UpdateOptions, update

    rec = running(store, host_config={"PidsLimit": 50})
    update(store, rec.id, UpdateOptions(memory="64m", memory_swap="128m", cpus=0.5,
                                        pids_limit=-1, restart="on-failure:3"))
    ((verb, cid, resources),) = [c for c in fake.calls if c[0] == "update"]
    assert cid == rec.id
    assert resources["memory"]["limit"] == 64 << 20
    assert resources["cpu"] == {"period": 100000, "quota": 50000}
    assert resources["pids"] == {"limit": -1}  # a removed limit is lifted live
    hc = record(store, rec).host_config
    assert hc["Memory"] == 64 << 20 and hc["NanoCpus"] == 500_000_000
    assert "PidsLimit" not in hc
    assert hc["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    fake.calls.clear()
    update(store, rec.id, UpdateOptions(restart="always"))  # no limit changed: no runtime call
    assert fake.verbs() == []


def test_update_of_a_stopped_container_is_stored_for_its_next_start(
        store: Store, fake: FakeRuntime) -> None:
    from forklift.engine import hostconfig
    from forklift.engine.update import UpdateOptions, update

    rec = add(store, state=State.EXITED)
    update(store, rec.id, UpdateOptions(memory="32m", memory_swap="64m", cpu_shares=512,
                                        pids_limit=20))
    assert fake.verbs() == []
    res = hostconfig.resources(record(store, rec).host_config)
    assert res["memory"]["limit"] == 32 << 20 and res["cpu"] == {"shares": 512}
    assert res["pids"] == {"limit": 20}


@pytest.mark.parametrize(("opts", "host_config", "error"), [
    ({}, {}, "you must provide one or more flags"),
    ({"memory": "1m"}, {}, "Minimum memory limit allowed is 6MB"),
    ({"memory": "lots"}, {}, "invalid size: 'lots'"),
    ({"memory_swap": "64m"}, {}, "You should always set the Memory limit"),
    ({"memory": "64m", "memory_swap": "32m"}, {}, "Minimum memoryswap limit should be larger"),
    ({"memory": "128m"}, {"Memory": 32 << 20, "MemorySwap": 64 << 20},
     "Memory limit should be smaller than already set memoryswap limit"),
    ({"memory": "65m"}, {"Memory": 32 << 20}, "smaller than already set memoryswap"),
    ({"memory": "64m"}, {}, "smaller than already set memoryswap"),  # Docker's too
    ({"cpus": 0.001}, {}, "Range of CPUs is from 0.01"),
    ({"cpu_shares": 1}, {}, "invalid CPU shares 1"),
    ({"restart": "sometimes"}, {}, "invalid restart policy 'sometimes'"),
    ({"restart": "always:3"}, {}, "maximum retry count cannot be used with restart policy 'always'"),
    ({"restart": "on-failure:x"}, {}, "maximum retry count must be an integer"),
    ({"restart": "on-failure:-1"}, {}, "maximum retry count cannot be negative"),
    ({"restart": "always"}, {"AutoRemove": True}, "Restart policy cannot be updated because AutoRemove"),
])
def test_update_refuses_what_docker_refuses_and_changes_nothing(
        store: Store, fake: FakeRuntime, opts: dict[str, Any], host_config: dict[str, Any],
        error: str) -> None:
    from forklift.engine.update import UpdateOptions, update

    rec = running(store, host_config=host_config)
    with pytest.raises((InvalidArgument, Conflict), match=error):
        update(store, rec.id, UpdateOptions(**opts))
    assert fake.verbs() == []
    assert record(store, rec).host_config == rec.host_config


def test_update_of_an_unknown_container(store: Store) -> None:
    from forklift.engine.update import UpdateOptions, update

    with pytest.raises(NotFound, match="No such container: nope"):
        update(store, "nope", UpdateOptions(cpus=1))


def test_a_failed_live_update_keeps_the_record(store: Store, fake: FakeRuntime) -> None:
    from forklift.engine.update import UpdateOptions, update

    rec = running(store)
    fake.fail["update"] = RuntimeFailure("runc update failed: no such cgroup")
    with pytest.raises(RuntimeFailure):
        update(store, rec.id, UpdateOptions(memory="64m", memory_swap="-1"))
    assert record(store, rec).host_config == rec.host_config


def test_update_keeps_the_swap_limit_in_force(store: Store, fake: FakeRuntime) -> None:
    from forklift.engine.update import UpdateOptions, update

    rec = add(store, state=State.EXITED, host_config={"Memory": 32 << 20})
    update(store, rec.id, UpdateOptions(memory="48m"))  # under the 64m swap limit in force
    hc = record(store, rec).host_config
    assert (hc["Memory"], hc["MemorySwap"]) == (48 << 20, 64 << 20)


# ----------------------------------------------------------------------------- network connect

def test_network_connect_of_a_stopped_container_is_stored(store: Store, fake: FakeRuntime) -> None:
    from forklift.engine import network

    network.create(store, "appnet", subnet="10.99.7.0/24")
    rec = add(store, state=State.EXITED, host_config={"NetworkMode": "bridge"})
    network.connect(store, "appnet", rec.name)
    assert record(store, rec).host_config["ExtraNetworks"] == ["appnet"]
    assert [r.id for r in network.users(store, network.get(store, "appnet"))] == [rec.id]
    network.connect(store, "appnet", rec.name)  # connected already: nothing to do
    assert record(store, rec).host_config["ExtraNetworks"] == ["appnet"]
    with pytest.raises(Conflict, match="in use|active endpoints"):
        network.remove(store, "appnet")
    # its first network goes: the one connect added takes its place
    network.disconnect(store, "bridge", rec.name)
    hc = record(store, rec).host_config
    assert hc["NetworkMode"] == "appnet" and "ExtraNetworks" not in hc
    with pytest.raises(Conflict, match="is not connected to the network bridge"):
        network.disconnect(store, "bridge", rec.name)
    network.disconnect(store, "bridge", rec.name, force=True)
    assert fake.verbs() == []


def test_network_connect_refuses_host_and_none(store: Store) -> None:
    from forklift.engine import network

    network.create(store, "appnet", subnet="10.99.8.0/24")
    for mode, error in (("none", "cannot be connected to any other network"),
                        ("host", "connected to host network")):
        rec = add(store, state=State.EXITED, host_config={"NetworkMode": mode}, name=mode)
        with pytest.raises(Conflict, match=error):
            network.connect(store, "appnet", rec.id)
        assert "ExtraNetworks" not in record(store, rec).host_config
    with pytest.raises(NotFound, match="network nope not found"):
        network.connect(store, "nope", "none")
