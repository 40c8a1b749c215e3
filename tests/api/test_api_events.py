"""``GET /events``: the store's event log (written by the CLI and the service alike) over
raw HTTP (each event against Docker's 1.41 schema, a followed stream sent line by line,
bad input refused) and through the docker CLI's ``events``."""

from __future__ import annotations

import json
import time
import urllib.parse

import pytest
from support import Forklift, swagger
from support.service import Answer, Service, _UnixConnection

pytestmark = pytest.mark.root


def _error(answer: Answer, status: int) -> str:
    return answer.refusal(status)


def _q(doc: object) -> str:
    return urllib.parse.quote(json.dumps(doc))


def test_window_of_cli_and_service_events(service: Service, fl: Forklift, name: str) -> None:
    since = time.time() - 1
    fl.out("volume", "create", name)                                    # the CLI's event
    assert service.request("DELETE", f"/volumes/{name}").status == 204  # the service's
    until = time.time() + 1
    answer = service.request("GET", f"/events?since={since:.3f}&until={until:.3f}"
                                    f"&filters={_q({'volume': [name]})}")
    assert answer.status == 200, answer
    events = [json.loads(line) for line in answer.body.splitlines()]
    for event in events:
        swagger.validate_response(event, "GET", "/events", 200)
    assert [(e["Type"], e["Action"], e["Actor"]["ID"]) for e in events] == [
        ("volume", "create", name), ("volume", "destroy", name)]
    assert all(since <= e["timeNano"] / 1e9 <= until and e["scope"] == "local" for e in events)


def test_follow_sends_each_event_as_logged(service: Service, fl: Forklift, name: str) -> None:
    conn = _UnixConnection(str(service.socket), 30)
    try:
        # since: the worker may start reading after the headers came (and the CLI ran)
        conn.request("GET", f"/events?since={time.time():.3f}&filters={_q({'type': ['volume']})}")
        resp = conn.getresponse()
        assert resp.status == 200
        fl.out("volume", "create", name)
        event = json.loads(resp.readline())
        assert (event["Action"], event["Actor"]["ID"]) == ("create", name)
        fl.out("volume", "rm", name)
        event = json.loads(resp.readline())
        assert (event["Action"], event["Actor"]["ID"]) == ("destroy", name)
    finally:
        conn.close()


def test_bad_input(service: Service) -> None:
    _error(service.request("GET", "/events?since=yesterday-ish&until=1"), 400)
    _error(service.request("GET", f"/events?until=1&filters={_q({'bogus': ['x']})}"), 400)
    _error(service.request("GET", "/events?until=1&filters=%7Bnope"), 400)


@pytest.mark.usefixtures("docker_cli")
def test_docker_cli_events(service: Service, fl: Forklift, name: str) -> None:
    since = str(int(time.time()) - 1)
    fl.out("network", "create", name)
    fl.out("network", "rm", name)
    until = str(int(time.time()) + 1)
    res = service.docker("events", "--since", since, "--until", until, "--filter",
                         f"network={name}", "--format", "{{.Type}} {{.Action}}")
    assert res.lines == ["network create", "network destroy"]
