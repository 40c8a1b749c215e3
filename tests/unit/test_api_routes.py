"""The Engine API's pure parts: routing and versions, the create body as the engine's
options, Docker's stream frames (no store, no service)."""

from __future__ import annotations

import pytest

from forklift.api import containers, server
from forklift.api import service as _service  # noqa: F401 (registers every route)
from forklift.errors import InvalidArgument


@pytest.mark.parametrize("path, handler", [
    ("/_ping", "ping"), ("/v1.41/_ping", "ping"), ("/v1.12/info", "info"),
    ("/containers/abc/json", "inspect_container"), ("/v1.40/containers/json", "list_containers"),
    ("/images/json", "list_images"), ("/images/quay.io/a/b:1/json", "inspect_image"),
])
def test_routes(path: str, handler: str) -> None:
    found, params = server.resolve("GET", path)
    assert found.__name__ == handler
    if handler == "inspect_image":
        assert params == {"name": "quay.io/a/b:1"}


@pytest.mark.parametrize("method, path, status", [
    ("GET", "/v1.42/_ping", 400), ("GET", "/v1.11/_ping", 400), ("GET", "/v1/_ping", 404),
    ("GET", "/nothing", 404), ("PUT", "/_ping", 405), ("GET", "/containers/create", 405),
])
def test_refused_paths(method: str, path: str, status: int) -> None:
    with pytest.raises(server.ApiError) as caught:
        server.resolve(method, path)
    assert caught.value.status == status


@pytest.mark.parametrize("method, target, inline", [
    ("HEAD", "/_ping", True), ("GET", "/v1.41/containers/json?all=1", True),
    ("GET", "/containers/json?size=1", False), ("GET", "/images/json", True),
    ("GET", "/version", False), ("GET", "/containers/abc/json", False),
    ("POST", "/containers/create", False), ("GET", "/events", False),
])
def test_which_requests_are_answered_on_the_loop(method: str, target: str, inline: bool) -> None:
    """Only short reads skip the worker thread: a size walk, a subprocess (``/version``
    runs runc), a stream or a write waits in a thread of its own."""
    import h11

    from forklift.api.service import _request

    req = _request(h11.Request(method=method, target=target, headers=[("Host", "x")]))
    handler, req.params = server.resolve(req.method, req.path)
    assert server.answers_inline(handler, req) is inline


def test_create_body_as_options() -> None:
    image, command, opts = containers.create_options({
        "Image": "busybox", "Cmd": ["-c", "echo"], "Entrypoint": ["sh", "-x"],
        "Env": ["A=1"], "WorkingDir": "/w", "User": "1:1", "Hostname": "", "Labels": {"k": "v"},
        "ExposedPorts": {"80/tcp": {}}, "Volumes": {"/data": {}}, "Tty": False, "OpenStdin": True,
        "HostConfig": {"Binds": ["/h:/c:ro"], "NetworkMode": "default", "AutoRemove": True,
                       "PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]},
                       "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 2},
                       "Memory": 1 << 20, "NanoCpus": 500_000_000, "Tmpfs": {"/t": "size=1m"}},
    }, "n1")
    assert (image, command) == ("busybox", ["-c", "echo"])
    assert (opts.name, opts.entrypoint, opts.env, opts.workdir, opts.user, opts.hostname) == \
        ("n1", ["sh", "-x"], ["A=1"], "/w", "1:1", None)
    assert (opts.labels, opts.expose, opts.volumes) == (["k=v"], ["80/tcp"], ["/data", "/h:/c:ro"])
    assert (opts.network, opts.auto_remove, opts.interactive, opts.publish) == \
        ("bridge", True, True, ["8080:80/tcp"])
    assert (opts.restart, opts.memory, opts.cpus, opts.tmpfs) == \
        ("on-failure:2", "1048576", 0.5, ["/t:size=1m"])


def test_create_body_rarer_fields_as_flags() -> None:
    _, _, opts = containers.create_options({
        "Image": "busybox", "StopTimeout": 3, "Domainname": "example.org",
        "Healthcheck": {"Test": ["CMD", "wget", "-q", "http://x y"], "Interval": 2_000_000_000,
                        "Retries": 4},
        "HostConfig": {"NetworkMode": "proj_back", "ShmSize": 1 << 20,
                       "Sysctls": {"net.ipv4.ip_forward": "1"}, "GroupAdd": ["audio"],
                       "DnsSearch": ["a.b"], "DnsOptions": ["ndots:2"],
                       "Ulimits": [{"Name": "nofile", "Soft": 100, "Hard": 200}],
                       "Links": ["db:database"], "VolumesFrom": ["data:ro"]},
        "NetworkingConfig": {"EndpointsConfig": {"proj_back": {"Aliases": ["web"]}}},
    }, None)
    rf = opts.run_flags
    assert rf is not None
    assert (rf.stop_timeout, rf.domainname, rf.shm_size, rf.sysctls, rf.group_add) == \
        (3, "example.org", "1048576", ["net.ipv4.ip_forward=1"], ["audio"])
    assert (rf.dns_search, rf.dns_options, rf.network_aliases, opts.ulimits) == \
        (["a.b"], ["ndots:2"], ["web"], ["nofile=100:200"])
    assert (rf.links, opts.volumes_from) == (["db:database"], ["data:ro"])
    assert (opts.health_cmd, opts.health_interval, opts.health_retries) == \
        ("wget -q 'http://x y'", "2000000000ns", 4)
    _, _, off = containers.create_options({"Image": "b", "Healthcheck": {"Test": ["NONE"]}}, None)
    assert off.no_healthcheck and off.health_cmd is None


@pytest.mark.parametrize("body", [{}, {"Image": ""}, {"Image": "b", "Cmd": [1]},
                                  {"Image": "b", "HostConfig": []}, {"Image": "b", "Labels": []},
                                  {"Image": "b", "HostConfig": {"Memory": "lots"}},
                                  {"Image": "b", "HostConfig": {"PortBindings": {"80": [3]}}},
                                  {"Image": "b", "HostConfig": {"Ulimits": [{"Name": "n"}]}},
                                  {"Image": "b", "Healthcheck": {"Test": "x", "Retries": "z"}}])
def test_create_body_refused(body: dict[str, object]) -> None:
    with pytest.raises(InvalidArgument):
        containers.create_options(body, None)


def test_frames() -> None:
    assert containers.frame(1, b"hi\n") == b"\x01\x00\x00\x00\x00\x00\x00\x03hi\n"
    assert containers.frame(2, b"x" * 300)[:8] == b"\x02\x00\x00\x00\x00\x00\x01\x2c"
    assert containers.frame(None, b"raw") == b"raw"


def test_error_reply_is_one_line() -> None:
    reply = server.error_reply(500, "first\nsecond")
    assert reply.status == 500 and reply.body == b'{"message": "first"}\n'


@pytest.mark.parametrize("exc, status, message", [
    (RuntimeError("boom\nmore"), 500, "internal error: RuntimeError: boom"),
    (InvalidArgument("bad"), 400, "bad"),
    (server.ApiError(409, "busy"), 409, "busy"),
])
def test_a_failing_endpoint_answers_one_line(exc: Exception, status: int, message: str,
                                             caplog: pytest.LogCaptureFixture) -> None:
    import json

    def handler(ctx: server.Context, req: server.Request) -> server.Reply:
        raise exc

    req = server.Request("GET", "/x", {}, {}, b"")
    reply = server.call(server.Context(None), handler, req)
    assert isinstance(reply, server.Reply) and reply.status == status
    assert json.loads(reply.body) == {"message": message}
    # the traceback of an unexpected one goes to the service's log only
    assert ("Traceback" in caplog.text) == isinstance(exc, RuntimeError)
