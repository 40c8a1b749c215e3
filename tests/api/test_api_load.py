"""Load: one service, 50 clients at once, each with 20 requests of mixed reads and writes
(listings, inspects, a container's create/start/stop/rm, a volume, a tag, an exec, logs)
over raw HTTP on its socket, while the CLI works on the same store. Every request gets a
well-formed answer in time, every JSON document validates against Docker's swagger, and
afterwards the store is sound and holds nothing the clients did not remove."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from support import Forklift, swagger
from support.service import Answer, Service
from support.store import assert_clean

pytestmark = pytest.mark.root

CLIENTS = 50
REQUESTS = 20
TIMEOUT = 60.0   # per request: a hang fails the test instead of holding it


@dataclass
class Call:
    client: int
    method: str
    template: str          # the swagger path, e.g. /containers/{id}/json
    status: int
    body: bytes
    content_type: str
    as_docker: bool


@dataclass
class Client:
    """One client's script: what it sent, what it got, what went wrong."""

    n: int
    service: Service
    shared: str            # the long-running container every client execs in and reads logs of
    calls: list[Call] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def ask(self, method: str, path: str, template: str, expect: tuple[int, ...],
            body: Any = None, *, as_docker: bool = False) -> Answer | None:
        try:
            answer = self.service.request(method, path, body, timeout=TIMEOUT)
        except Exception as exc:  # noqa: BLE001 (a timeout or a reset: recorded, not raised)
            self.errors.append(f"{method} {path}: {type(exc).__name__}: {exc}")
            return None
        self.calls.append(Call(self.n, method, template, answer.status, answer.body,
                               answer.headers.get("content-type", ""), as_docker))
        if answer.status not in expect:
            self.errors.append(f"{method} {path}: {answer.status} {answer.body[:200]!r}")
            return None
        return answer

    def script(self) -> None:
        n, v = self.n, "/v1.41"
        name, vol, repo = f"load-{n}", f"load-vol-{n}", f"load/c{n}"
        self.ask("GET", f"{v}/_ping", "/_ping", (200,))
        self.ask("GET", f"{v}/containers/json?all=1", "/containers/json", (200,), as_docker=True)
        made = self.ask("POST", f"{v}/containers/create?name={name}", "/containers/create",
                        (201,), {"Image": "busybox", "Cmd": ["sleep", "60"],
                                 "HostConfig": {"NetworkMode": "none"}})
        cid = made.json()["Id"] if made else name
        self.ask("GET", f"{v}/containers/{cid}/json", "/containers/{id}/json", (200,),
                 as_docker=True)
        self.ask("POST", f"{v}/volumes/create", "/volumes/create", (201,), {"Name": vol})
        self.ask("GET", f"{v}/images/json", "/images/json", (200,))
        self.ask("POST", f"{v}/images/busybox/tag?repo={repo}&tag=t", "", (201,))
        self.ask("GET", f"{v}/images/{repo}:t/json", "/images/{name}/json", (200,),
                 as_docker=True)
        self.ask("POST", f"{v}/containers/{cid}/start", "", (204,))
        self._exec()
        self.ask("GET", f"{v}/containers/{self.shared}/logs?stdout=1&tail=5", "", (200,))
        self.ask("GET", f"{v}/volumes/{vol}", "/volumes/{name}", (200,))
        self.ask("GET", f"{v}/containers/json", "/containers/json", (200,), as_docker=True)
        self.ask("POST", f"{v}/containers/{cid}/stop?t=0", "", (204,))
        self.ask("DELETE", f"{v}/containers/{cid}?v=1", "", (204,))
        self.ask("DELETE", f"{v}/volumes/{vol}", "", (204,))
        self.ask("DELETE", f"{v}/images/{repo}:t", "/images/{name}", (200,))
        self.ask("GET", f"{v}/containers/{cid}/json", "/containers/{id}/json", (404,))

    def _exec(self) -> None:
        """Three requests: create, start (not upgraded: the framed output, then the close)
        and inspect, whose exit code is the command's."""
        v = "/v1.41"
        made = self.ask("POST", f"{v}/containers/{self.shared}/exec", "/containers/{id}/exec",
                        (201,), {"AttachStdout": True, "AttachStderr": True,
                                 "Cmd": ["sh", "-c", f"echo exec-{self.n}; exit 3"]})
        if made is None:
            return
        exec_id = made.json()["Id"]
        out = self.ask("POST", f"{v}/exec/{exec_id}/start", "", (200,), {"Detach": False})
        if out is not None and out.body != _frame(1, f"exec-{self.n}\n".encode()):
            self.errors.append(f"exec output {out.body!r}")
        done = self.ask("GET", f"{v}/exec/{exec_id}/json", "/exec/{id}/json", (200,))
        if done is not None and done.json()["ExitCode"] != 3:
            self.errors.append(f"exec inspect {done.json()}")


def _frame(stream: int, data: bytes) -> bytes:
    return bytes([stream, 0, 0, 0]) + len(data).to_bytes(4, "big") + data


def _validate(call: Call) -> None:
    if not call.body or "json" not in call.content_type:
        return
    doc = json.loads(call.body)
    if call.status >= 400:
        assert list(doc) == ["message"] and "\n" not in doc["message"], doc
        swagger.validate(doc, "ErrorResponse")
    elif call.template:
        swagger.validate_response(doc, call.method, call.template, call.status,
                                  as_docker=call.as_docker)


@pytest.fixture
def shared(fl: Forklift) -> Iterator[str]:
    cid = fl.out("run", "-d", "--network", "none", "--name", "load-shared", "busybox", "sh",
                 "-c", "echo ready; exec sleep 300").strip()
    try:
        _wait(lambda: fl.out("logs", cid).strip() == "ready", "the shared container's output")
        yield cid
    finally:
        fl("rm", "-f", cid, check=False)


def _wait(pred: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _cli_during_load(fl: Forklift, stop: threading.Event, errors: list[str]) -> None:
    """The CLI on the same store while the clients run: ``ps`` and ``run --rm``."""
    rounds = 0
    while not stop.is_set() or rounds == 0:
        rounds += 1
        ps = fl("ps", "-a", check=False)
        ran = fl("run", "--rm", "--network", "none", "busybox", "echo", "cli", check=False)
        if ps.code != 0 or ran.code != 0 or ran.out.strip() != "cli":
            errors.append(f"CLI during the load: {ps!r} {ran!r}")


def test_fifty_clients_of_twenty_requests(service: Service, fl: Forklift, shared: str) -> None:
    clients = [Client(n, service, shared) for n in range(CLIENTS)]
    threads = [threading.Thread(target=c.script, daemon=True) for c in clients]
    stop, cli_errors = threading.Event(), []
    cli = threading.Thread(target=_cli_during_load, args=(fl, stop, cli_errors), daemon=True)
    started = time.monotonic()
    cli.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(1.0, started + 240 - time.monotonic()))
    stop.set()
    cli.join(60)
    assert not any(t.is_alive() for t in [*threads, cli]), "a client hung"
    errors = [f"client {c.n}: {e}" for c in clients for e in c.errors] + cli_errors
    assert not errors, "\n".join(errors[:20])
    calls = [call for c in clients for call in c.calls]
    assert len(calls) == CLIENTS * REQUESTS
    for call in calls:
        _validate(call)
    assert service.alive()

    fl("rm", "-f", shared)
    assert fl.out("ps", "-aq") == ""
    assert fl.out("volume", "ls", "-q") == ""
    assert fl.out("images", "--format", "{{.Repository}}:{{.Tag}}").split() == ["busybox:latest"]
    assert_clean(fl.root)
    fl("system", "check")
