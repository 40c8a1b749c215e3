"""Debian's docker-compose (1.29, docker-py underneath) driving the service: a two-service
project on a user-defined network, one service with a named volume, the other reaching
it by its service name; up -d, ps, logs, exec -T, down -v leaving nothing behind."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from support import Forklift
from support.cli import Result, run
from support.service import Service

pytestmark = pytest.mark.root

COMPOSE = "/usr/bin/docker-compose"

PROJECT = """\
version: "3.7"
services:
  web:
    image: busybox
    command: ["sh", "-c", "echo web-up; echo hello > /srv/index.html; exec httpd -f -p 8080 -h /srv"]
    volumes:
      - content:/srv
    networks: [back]
    ports: ["127.0.0.1::8080"]
    labels:
      role: web
  client:
    image: busybox
    command: ["sh", "-c", "echo client-up; exec sleep 300"]
    environment:
      TARGET: web
    networks: [back]
    depends_on: [web]
volumes:
  content:
networks:
  back:
"""


@pytest.fixture
def compose(service: Service, tmp_path: Path) -> tuple[Service, Path]:
    if not os.access(COMPOSE, os.X_OK):
        pytest.skip(f"{COMPOSE} missing: scripts/test.sh installs Debian's docker-compose")
    (tmp_path / "docker-compose.yml").write_text(PROJECT)
    return service, tmp_path


def _compose(svc: Service, project: Path, *args: str, check: bool = True,
             timeout: float = 180) -> Result:
    env = dict(os.environ, DOCKER_HOST=svc.host, COMPOSE_PROJECT_NAME="flc",
               COMPOSE_INTERACTIVE_NO_CLI="1", HOME=str(project))
    env.pop("DOCKER_CONFIG", None)
    return run([COMPOSE, "--no-ansi", "-f", str(project / "docker-compose.yml"), *args],
               env=env, check=check, timeout=timeout)


def _left(fl: Forklift) -> tuple[list[str], list[str], list[str]]:
    return ([n for n in fl.out("ps", "-a", "--format", "{{.Names}}").split() if "flc" in n],
            [n for n in fl.out("network", "ls", "--format", "{{.Name}}").split() if "flc" in n],
            [n for n in fl.out("volume", "ls", "-q").split() if "flc" in n])


def test_up_ps_logs_exec_down(compose: tuple[Service, Path], fl: Forklift) -> None:
    svc, project = compose
    try:
        _compose(svc, project, "up", "-d")
        names, networks, volumes = _left(fl)
        assert sorted(names) == ["flc_client_1", "flc_web_1"]
        assert networks == ["flc_back"] and volumes == ["flc_content"]
        ps = _compose(svc, project, "ps").out
        assert "flc_web_1" in ps and "flc_client_1" in ps and ps.count(" Up ") == 2, ps
        again = _compose(svc, project, "up", "-d")  # its labels tell Compose nothing changed
        assert again.err.count("is up-to-date") == 2, again
        _until_logged(svc, project, "web", "web-up")
        _until_logged(svc, project, "client", "client-up")
        # the other service by its name, over the project's network
        fetched = _fetch(svc, project)
        assert fetched.code == 0 and fetched.out == "hello\n", fetched
        assert _compose(svc, project, "exec", "-T", "web", "cat", "/srv/index.html").out == "hello\n"
        published = _compose(svc, project, "port", "web", "8080").out.strip()
        assert published.startswith("127.0.0.1:"), published
        assert _from_host(published) == b"hello\n"
        assert _compose(svc, project, "exec", "-T", "client", "sh", "-c", "exit 3",
                        check=False).code == 3
        ran = _compose(svc, project, "run", "--rm", "-T", "client", "sh", "-c",
                       "sleep 1; wget -q -O - http://web:8080/index.html; exit 5", check=False)
        assert (ran.code, ran.out) == (5, "hello\n"), ran
        # (the sleep: the attaches find it running; a faster one: the next test)
        _compose(svc, project, "stop", "-t", "1", "client")
        assert "Exit" in _compose(svc, project, "ps", "client").out
        _compose(svc, project, "start", "client")  # reconnected without a network connect
        assert _fetch(svc, project).out == "hello\n"
    finally:
        down = _compose(svc, project, "down", "-v", check=False)
    assert down.code == 0, down
    assert _left(fl) == ([], [], [])


def _until_logged(svc: Service, project: Path, service: str, text: str) -> None:
    deadline = time.monotonic() + 30
    while text not in _compose(svc, project, "logs", "--no-color", service).out:
        assert time.monotonic() < deadline, f"{service} never logged {text!r}"
        time.sleep(0.2)


def _from_host(address: str) -> bytes:
    """The published port's answer from the host, tried for up to 30 s (a connection can
    time out while other tests on this machine rework the NAT rules)."""
    import urllib.request

    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"http://{address}/index.html", timeout=5) as answer:
                return bytes(answer.read())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _fetch(svc: Service, project: Path) -> Result:
    """The client service's wget of the web service by name (httpd may still be starting)."""
    deadline = time.monotonic() + 30
    while True:
        got = _compose(svc, project, "exec", "-T", "client", "wget", "-q", "-O", "-",
                       "http://web:8080/index.html", check=False)
        if got.code == 0 or time.monotonic() > deadline:
            return got
        time.sleep(0.2)



def test_run_of_a_command_that_ends_before_the_attach(compose: tuple[Service, Path]) -> None:
    """dockerpty starts the container, then attaches (stdin, stdout, stderr apart, without
    logs), then starts it again if it no longer runs: Docker's attach to a stopped container
    waits for its next start, whose output it carries."""
    svc, project = compose
    try:
        ran = _compose(svc, project, "run", "--rm", "-T", "client", "echo", "hi", check=False,
                       timeout=60)
        assert (ran.code, ran.out) == (0, "hi\n"), ran
        ran = _compose(svc, project, "run", "--rm", "-T", "client", "sh", "-c",
                       "echo out; echo err >&2; exit 4", check=False, timeout=60)
        assert (ran.code, ran.out) == (4, "out\n") and "err" in ran.err.splitlines(), ran
    finally:
        _compose(svc, project, "down", "-v", check=False)


BUILT = """\
version: "3.7"
services:
  app:
    build:
      context: ./app
      labels:
        org.example.from: compose
    command: ["sh", "-c", "cat /srv/hello.txt /built.txt; exec sleep 300"]
    networks: [front, back]
  peer:
    image: busybox
    command: ["sleep", "300"]
    networks: [back]
  edge:
    image: busybox
    command: ["sleep", "300"]
    networks: [front]
networks:
  front:
  back:
"""

DOCKERFILE = """\
FROM busybox
COPY hello.txt /srv/hello.txt
RUN echo built > /built.txt
LABEL org.example.role=app
"""


@pytest.fixture
def built(service: Service, tmp_path: Path) -> tuple[Service, Path]:
    if not os.access(COMPOSE, os.X_OK):
        pytest.skip(f"{COMPOSE} missing: scripts/test.sh installs Debian's docker-compose")
    (tmp_path / "docker-compose.yml").write_text(BUILT)
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "Dockerfile").write_text(DOCKERFILE)
    (tmp_path / "app" / "hello.txt").write_text("hello one\n")
    return service, tmp_path


def test_build_and_two_networks(built: tuple[Service, Path], fl: Forklift) -> None:
    """A ``build:`` service (``build``, then ``up -d --build`` after a change of its
    context) on two user-defined networks: Compose creates it on one and connects the
    other, with the service's name as an alias, before the start."""
    svc, project = built
    try:
        _compose(svc, project, "build")
        labels = fl.inspect("flc_app")["Config"]["Labels"]
        assert labels == {"org.example.role": "app", "org.example.from": "compose"}, labels
        _compose(svc, project, "up", "-d")
        _until_logged(svc, project, "app", "| built")
        assert "| hello one" in _compose(svc, project, "logs", "--no-color", "app").out
        nets = fl.inspect("flc_app_1")["NetworkSettings"]["Networks"]
        assert sorted(nets) == ["flc_back", "flc_front"], nets
        assert all(n["IPAddress"] and "app" in n["Aliases"] for n in nets.values()), nets
        first = fl.inspect("flc_app_1")["HostConfig"]["NetworkMode"]
        assert first in nets, first  # the other one connected before the start
        _pings(svc, project)
        assert _compose(svc, project, "up", "-d").err.count("is up-to-date") == 3
        _compose(svc, project, "stop", "-t", "1", "app")
        _compose(svc, project, "start", "app")  # both networks again, without a connect
        _pings(svc, project)
        (project / "app" / "hello.txt").write_text("hello two\n")
        _compose(svc, project, "up", "-d", "--build")
        _until_logged(svc, project, "app", "| hello two")
    finally:
        down = _compose(svc, project, "down", "-v", "--rmi", "local", check=False)
    assert down.code == 0, down
    assert _left(fl) == ([], [], [])
    assert "flc_app" not in fl.out("images", "--format", "{{.Repository}}").split()


def _pings(svc: Service, project: Path) -> None:
    """Names both ways on both of app's networks (one of them the connected one)."""
    for source, target in (("peer", "app"), ("edge", "app"), ("app", "peer"), ("app", "edge")):
        pinged = _compose(svc, project, "exec", "-T", source, "ping", "-c", "1", "-W", "5",
                          target, check=False)
        assert pinged.code == 0, (source, target, pinged)


ADDRESSED = """\
version: "3.7"
services:
  db:
    image: busybox
    command: ["sleep", "300"]
    networks:
      back:
        ipv4_address: 10.231.99.10
  app:
    image: busybox
    command: ["sleep", "300"]
    links: ["db:database"]
    networks:
      back:
        ipv4_address: 10.231.99.11
      front:
networks:
  back:
    ipam:
      config:
        - subnet: 10.231.99.0/24
  front:
"""


def test_ipv4_address_and_links(service: Service, tmp_path: Path, fl: Forklift) -> None:
    """``ipv4_address:`` on a network with an explicit subnet, and ``links:`` on a service
    with a second network (Compose sends both at create and at connect): each container
    has its address, the link's name resolves."""
    if not os.access(COMPOSE, os.X_OK):
        pytest.skip(f"{COMPOSE} missing: scripts/test.sh installs Debian's docker-compose")
    (tmp_path / "docker-compose.yml").write_text(ADDRESSED)
    try:
        _compose(service, tmp_path, "up", "-d")
        for svc, address in (("db", "10.231.99.10"), ("app", "10.231.99.11")):
            nets = fl.inspect(f"flc_{svc}_1")["NetworkSettings"]["Networks"]
            assert nets["flc_back"]["IPAddress"] == address, nets
        assert sorted(nets) == ["flc_back", "flc_front"], nets
        shown = _compose(service, tmp_path, "exec", "-T", "db", "ip", "-4", "-o", "addr").out
        assert "10.231.99.10/24" in shown, shown
        pinged = _compose(service, tmp_path, "exec", "-T", "app", "ping", "-c", "1", "-W", "5",
                          "database", check=False)
        assert pinged.code == 0 and "10.231.99.10" in pinged.out, pinged
    finally:
        down = _compose(service, tmp_path, "down", check=False)
    assert down.code == 0, down
    assert _left(fl) == ([], [], [])
