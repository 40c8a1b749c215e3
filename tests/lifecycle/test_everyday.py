"""Everyday commands as Docker 20.10 answers them (issue 9, section 5): usage errors,
several names with a missing one, image filters, templates, up-front refusals, rmi -f of
an image a container uses."""

from __future__ import annotations

import sqlite3
import time

import pytest

from forklift.cli.format import TemplateError, parse, render
from forklift.engine.timestamps import parse_timestamp
from forklift.errors import InvalidArgument
from forklift.store.db import SCHEMA_VERSION


def one_error_line(res, text: str | None = None) -> str:  # type: ignore[no-untyped-def]
    lines = res.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), res.err
    if text is not None:
        assert text in lines[0], lines[0]
    return str(lines[0])


# ----------------------------------------------------------------------------- usage errors

@pytest.mark.parametrize(("args", "code", "text"), [
    (("ps", "--bogus"), 125, "unknown flag: --bogus"),
    (("ps", "-z"), 125, "unknown shorthand flag: 'z' in -z"),
    (("kill", "-s"), 125, "flag needs an argument: 's' in -s"),
    (("run", "--cpus", "abc", "busybox"), 125, 'invalid argument for "--cpus" flag'),
    (("stop",), 1, '"forklift stop" requires at least 1 argument.'),
    (("logs",), 1, '"forklift logs" requires exactly 1 argument.'),
    (("tag", "x"), 1, '"forklift tag" requires exactly 2 arguments.'),
    (("images", "a", "b"), 1, '"forklift images" requires at most 1 argument.'),
    (("commit",), 1, '"forklift commit" requires at least 1 and at most 2 arguments.'),
])
def test_usage_errors_exit_like_docker(fl, args, code, text):
    res = fl(*args, check=False)
    assert res.code == code, res
    one_error_line(res, text)
    assert res.out == ""


# ----------------------------------------------------------------------------- several names

@pytest.mark.root
def test_several_names_report_the_missing_one_and_go_on(fl, busybox):
    assert fl("create", "--name", "there", "busybox", "true").code == 0
    for args, message in [
        (("stop", "there", "nosuch"), "Error: No such container: nosuch"),
        (("restart", "nosuch", "there"), "Error: No such container: nosuch"),
        (("wait", "nosuch", "there"), "Error: No such container: nosuch"),
        (("kill", "nosuch"), "Error: Cannot kill container: nosuch: No such container: nosuch"),
        (("pause", "nosuch"), "Error: No such container: nosuch"),
    ]:
        res = fl(*args, check=False)
        assert res.code == 1, (args, res)
        assert res.err.strip().splitlines() == [message], (args, res.err)
    res = fl("stop", "there", "nosuch", check=False)
    assert res.out.strip() == "there"
    res = fl("wait", "nosuch", "there", check=False)
    assert res.out.strip() == "0"
    res = fl("start", "nosuch", "there", check=False)
    assert res.code == 1 and res.out.strip() == "there"
    assert res.err.strip().splitlines() == ["Error: No such container: nosuch",
                                            "Error: failed to start containers: nosuch"]
    fl("stop", "-t", "0", "there")


@pytest.mark.root
def test_rm_f_and_rmi_f_of_missing_names_exit_0(fl, busybox):
    assert fl("create", "--name", "gone", "busybox", "true").code == 0
    res = fl("rm", "-f", "nosuch", "gone")
    assert res.code == 0 and res.out.strip() == "gone"
    assert res.err.strip() == "Error: No such container: nosuch"
    res = fl("rm", "-f", "nosuch")
    assert res.code == 0 and res.err.strip() == "Error: No such container: nosuch"
    res = fl("rmi", "-f", "nosuch", check=False)
    assert res.code == 0 and "No such image: nosuch" in one_error_line(res)
    # without -f a missing name is an error, and the others are still removed
    assert fl("tag", "busybox", "other:1").code == 0
    res = fl("rmi", "nosuch", "other:1", check=False)
    assert res.code == 1 and res.out.strip() == "Untagged: other:1"
    assert fl("rm", "nosuch", check=False).code == 1


@pytest.mark.root
def test_inspect_prints_what_it_finds_then_the_missing(fl, busybox):
    assert fl("create", "--name", "seen", "busybox", "true").code == 0
    res = fl("inspect", "-f", "{{.Name}}", "seen", "nosuch", check=False)
    assert res.code == 1 and res.out == "/seen\n"
    assert res.err.strip() == "Error: No such object: nosuch"
    res = fl("container", "inspect", "nosuch", check=False)
    assert res.code == 1 and res.out.strip() == "[]"
    assert res.err.strip() == "Error: No such container: nosuch"
    res = fl("image", "inspect", "-f", "{{.Id}}", "nosuch", "busybox", check=False)
    assert res.code == 1 and res.out.strip() == busybox


# ----------------------------------------------------------------------------- images

@pytest.mark.root
def test_images_filters_follow_dockers_rules(fl, busybox_tar):
    def imp(*args: str) -> str:
        res = fl("import", *args)
        assert res.code == 0, res.err
        time.sleep(1.05)  # distinct creation times for before/since
        return res.out.strip()[7:19]

    dangling_labelled = imp("-c", "LABEL a=b", str(busybox_tar))
    two = imp("-c", "LABEL a=c", str(busybox_tar), "busybox:two")
    imp(str(busybox_tar), "busybox:latest")
    other = imp(str(busybox_tar), "other:1")
    dangling = imp(str(busybox_tar))

    def rows(*args: str) -> list[tuple[str, str, str]]:
        res = fl("images", "--format", "{{.Repository}} {{.Tag}} {{.ID}}", *args)
        assert res.code == 0, res.err
        return sorted(tuple(line.split()) for line in res.lines)  # type: ignore[misc]

    tagged = {("busybox", "two"), ("busybox", "latest"), ("other", "1")}
    assert {r[:2] for r in rows()} == tagged | {("<none>", "<none>")}
    # a repository argument or reference filter matches tagged references only
    assert {r[:2] for r in rows("busybox")} == {("busybox", "two"), ("busybox", "latest")}
    assert {r[:2] for r in rows("--filter", "reference=bus*")} == {("busybox", "two"),
                                                                  ("busybox", "latest")}
    assert {r[:2] for r in rows("--filter", "reference=*:two")} == {("busybox", "two")}
    assert {r[:2] for r in rows("-f", "reference=busybox", "-f", "reference=other")} == tagged
    assert rows("docker.io/library/busybox") == []  # matched against the familiar name
    assert rows("nosuch") == []
    assert {r[2] for r in rows("--filter", "dangling=true")} == {dangling, dangling_labelled}
    assert {r[:2] for r in rows("--filter", "dangling=false")} == tagged
    assert rows("--filter", "dangling=true", "busybox") == []
    assert {r[2] for r in rows("--filter", "label=a")} == {two, dangling_labelled}
    assert {r[2] for r in rows("--filter", "label=a=b")} == {dangling_labelled}
    assert {r[2] for r in rows("--filter", "label=a", "--filter", "dangling=true")} == {dangling_labelled}
    assert {r[2] for r in rows("--filter", "before=busybox:two")} == {dangling_labelled}
    assert {r[2] for r in rows("--filter", "since=other:1")} == {dangling}
    assert {r[2] for r in rows("--filter", "since=busybox:two", "--filter", "before=other:1")} \
        == {rows("busybox:latest")[0][2]}
    assert other in {r[2] for r in rows("other")}
    for args, code, text in [
        (("--filter", "bogus=1"), 1, "Invalid filter 'bogus'"),
        (("--filter", "dangling=maybe"), 1, "Invalid filter 'dangling=[maybe]'"),
        (("--filter", "foo"), 125, "bad format of filter (expected name=value)"),
        (("--filter", "since=nosuch"), 1, "No such image: nosuch"),
    ]:
        res = fl("images", *args, check=False)
        assert res.code == code, (args, res)
        one_error_line(res, text)


# ----------------------------------------------------------------------------- templates

@pytest.mark.parametrize(("template", "detail"), [
    ("{{.State.Status", "template: :1: unclosed action"),
    ("{{.Id}}\n{{.Id", "template: :2: unclosed action"),
    ("{{.Id}}\n\n{{.Id\n", "template: :4: unclosed action started at :3"),
    ("{{}}", "template: :1: missing value for command"),
    ("{{.Id}", "template: :1: bad character U+007D '}'"),
    ('{{"x}}', "template: :1: unterminated quoted string"),
    ("{{.Id | nosuchfunc}}", 'template: :1: function "nosuchfunc" not defined'),
    ("{{/* x */ }}", "template: :1: comment ends before closing delimiter"),
])
def test_malformed_templates_are_refused(template, detail):
    with pytest.raises(TemplateError) as err:
        parse(template)
    assert err.value.detail == detail
    assert err.value.message == f"template parsing error: {detail}"


def test_templates_of_nil_maps_and_missing_keys():
    data = {"Config": {"Labels": None, "Cmd": None}, "Id": "x", "State": {"Status": "up"}}
    assert render("{{.Config.Labels.foo}}", data) == "<no value>"
    assert render("{{.Config.Labels.foo.bar}}|{{json .Config.Labels.foo}}", data) == "<no value>|null"
    assert render("{{.Config.Labels}}|{{json .Config.Labels}}", data) == "map[]|null"
    assert render("{{.Config.Labels.a}}", {"Config": {"Labels": {"b": "c"}}}) == "<no value>"
    assert render("{{.State.Status}}}", data) == "up}"  # a lone } outside an action is text
    assert render("{{/* comment */}}{{ .Id -}}  \n y", data) == "xy"
    assert render("{{.Id | upper}} {{json .State}}", data) == 'X {"Status":"up"}'
    with pytest.raises(InvalidArgument, match='map has no entry for key "Nope"'):
        render("{{.Nope}}", data)
    with pytest.raises(InvalidArgument, match="nil pointer evaluating"):
        render("{{.Config.Cmd.foo}}", data)


@pytest.mark.root
def test_template_errors_through_the_cli(fl, busybox):
    res = fl("inspect", "-f", "{{.State.Status", "busybox", check=False)
    assert res.code == 64 and res.out == ""
    one_error_line(res, "template parsing error: template: :1: unclosed action")
    res = fl("image", "inspect", "-f", "{{.Id", "nosuch", check=False)  # parsed before any lookup
    assert res.code == 64
    res = fl("images", "--format", "{{.ID", check=False)
    assert res.code == 1 and res.out == ""
    one_error_line(res, "template parsing error: template: :1: unclosed action")
    res = fl("ps", "--format", "{{.ID", check=False)
    assert res.code == 1
    one_error_line(res, "failed to parse template: template: :1: unclosed action")
    res = fl("image", "inspect", "-f", "{{.Config.Labels.foo}}", "busybox")
    assert res.code == 0 and res.out == "<no value>\n"


# ----------------------------------------------------------------------------- refused up front

@pytest.mark.parametrize(("args", "text"), [
    (("-v", ":/x"), "invalid volume specification: ':/x'"),
    (("-v", ":/x:ro"), "invalid volume specification: ':/x:ro'"),
    (("-v", "/x:"), "invalid volume specification: '/x:'"),
    (("--cpus", "-1"), "Range of CPUs is from 0.01 to"),
    (("--cpus", "0.001"), "Range of CPUs is from 0.01 to"),
    (("--cpus", "1000"), "Range of CPUs is from 0.01 to"),
    (("-m", "-1"), "invalid size: '-1'"),
    (("-m", "1k"), "Minimum memory limit allowed is 6MB"),
    (("-m", "10m", "--memory-swap", "-2"), "invalid size: '-2'"),
    (("--cpu-shares", "-1"), "invalid CPU shares: -1"),
    (("--cpu-shares", "1"), "the minimum allowed cpu-shares is 2"),
    (("--cpu-shares", "1000000"), "the maximum allowed cpu-shares is 262144"),
    (("--cpuset-cpus", "abc"), "Invalid value abc for cpuset cpus"),
    (("--ulimit", "nofile=-5"), "invalid ulimit argument: nofile=-5"),
    (("--ulimit", "nofile=10:5"), "soft limit must be less than or equal to hard limit: 10 > 5"),
    (("-p", "99999:80"), "Invalid hostPort: 99999"),
    (("-p", "80:99999"), "Invalid containerPort: 99999"),
    (("-p", "abc"), "Invalid containerPort: abc"),
    (("-p", "80/tcp:80"), "Invalid hostPort: 80/tcp"),
    (("-p", "1.2.3.4:80:80/xyz"), "Invalid proto: xyz"),
    (("-p", "1.2.3.999:80:80"), "Invalid ip address: 1.2.3.999"),
    (("-p", "80:"), "No port specified: 80:<empty>"),
])
@pytest.mark.root
def test_bad_run_options_are_refused_before_anything_is_made(fl, busybox, args, text):
    res = fl("run", *args, "busybox", "true", check=False)
    assert res.code == 125, res
    one_error_line(res, text)
    assert fl("ps", "-aq").out == ""
    assert fl("volume", "ls", "-q").out == ""


@pytest.mark.root
def test_zero_means_no_limit_as_in_docker(fl, busybox):
    for args in (("--cpus", "0"), ("-m", "0"), ("--pids-limit", "-1"), ("--cpu-shares", "0")):
        res = fl("run", "--rm", *args, "busybox", "true")
        assert res.code == 0, (args, res)


@pytest.mark.root
def test_logs_since_and_until_are_checked_up_front(fl, busybox):
    res = fl("logs", "--since", "garbage", "nosuch", check=False)
    assert res.code == 1
    one_error_line(res, 'invalid value for "since": failed to parse value as time or duration: "garbage"')
    res = fl("logs", "--until", "5x", "nosuch", check=False)
    one_error_line(res, 'invalid value for "until"')


def test_timestamps_as_dockers_cli_reads_them():
    now = 1_700_000_000.0
    assert parse_timestamp("10m", "since", now) == now - 600
    assert parse_timestamp("1h30m", "since", now) == now - 5400
    assert parse_timestamp("-5m", "since", now) == now + 300
    assert parse_timestamp("2013-01-02T13:23:37Z", "since", now) == 1357133017
    assert parse_timestamp("2013-01-02T13:23:37+01:00", "since", now) == 1357129417
    assert parse_timestamp("2013-01-02T13:23:37.5Z", "since", now) == 1357133017.5
    assert parse_timestamp("2013-01-02Z", "since", now) == 1357084800
    assert parse_timestamp("1700000000.5", "since", now) == 1700000000.5
    assert parse_timestamp("0", "since", now) == 0
    for bad in ("garbage", "5x", "2013-13-45", "1.2.3"):
        with pytest.raises(InvalidArgument):
            parse_timestamp(bad, "since", now)


# ----------------------------------------------------------------------------- rmi -f

def _layer_count(fl) -> int:  # type: ignore[no-untyped-def]
    conn = sqlite3.connect(fl.root / "forklift.db")
    try:
        return int(conn.execute("SELECT COUNT(*) FROM layers").fetchone()[0])
    finally:
        conn.close()


@pytest.mark.root
def test_rmi_f_deletes_the_image_record_and_the_container_keeps_its_layers(fl, busybox,
                                                                          tmp_path):
    assert fl("run", "--name", "maker", "busybox", "sh", "-c", "echo unique > /made").code == 0
    image_id = fl("commit", "maker", "victim:1").out.strip()
    assert fl("rm", "maker").code == 0
    assert fl("tag", "victim:1", "victim:2").code == 0
    assert fl("create", "--name", "user", "victim:1", "cat", "/made").code == 0
    layers = _layer_count(fl)
    # one of two tags: only untagged (ps now shows the ID: victim:1 means nothing)
    res = fl("rmi", "-f", "victim:1")
    assert res.code == 0 and res.out.strip() == "Untagged: victim:1"
    assert fl("ps", "-a", "--format", "{{.Image}}").out.strip() == image_id[7:19]
    # the last tag: untagged and the image record deleted, as Docker does
    res = fl("rmi", "-f", "victim:2")
    assert res.code == 0, res
    assert res.lines == ["Untagged: victim:2", f"Deleted: {image_id}"]
    assert fl("image", "inspect", image_id, check=False).code == 1
    assert image_id[7:19] not in fl("images", "-a", "-q").out
    assert fl("ps", "-a", "--format", "{{.Image}}").out.strip() == image_id[7:19]
    assert fl("ps", "-a", "--no-trunc", "--format", "{{.Image}}").out.strip() == image_id
    assert fl("inspect", "-f", "{{.Image}} {{.Config.Image}}", "user").out.strip() == \
        f"{image_id} victim:1"
    assert _layer_count(fl) == layers  # its layers stay for the container
    res = fl("start", "-a", "user")
    assert res.code == 0 and res.out == "unique\n"
    assert fl("diff", "user").code == 0
    assert fl("export", "-o", str(tmp_path / "flat.tar"), "user").code == 0
    # commit needs the parent image's config, which is gone: refused as Docker refuses it
    res = fl("commit", "user", "again:1", check=False)
    assert res.code == 1
    one_error_line(res, f"failed to get digest {image_id}")
    assert fl("run", "--rm", image_id, "true", check=False).code == 125  # no such image any more
    check = fl("system", "check", "--full")
    assert check.code == 0, check.out + check.err
    # the last container on those layers goes: the layers go with it
    assert fl("rm", "user").code == 0
    assert _layer_count(fl) == layers - 1
    assert fl("system", "check").code == 0


@pytest.mark.root
def test_rmi_f_never_deletes_an_image_a_running_container_uses(fl, busybox):
    assert fl("tag", "busybox", "running:1").code == 0
    assert fl("run", "-d", "--name", "runner", "running:1", "sleep", "60").code == 0
    try:
        image_id = fl("inspect", "-f", "{{.Image}}", "runner").out.strip()
        assert fl("tag", "busybox", "keep:1").code == 0  # not to lose busybox itself
        res = fl("rmi", "-f", image_id, check=False)
        assert res.code == 1
        one_error_line(res, "(cannot be forced) - image is being used by running container")
        res = fl("rmi", "-f", "running:1")  # by reference: untagged only
        assert res.code == 0 and res.out.strip() == "Untagged: running:1"
        assert fl("image", "inspect", "-f", "{{.Id}}", image_id).out.strip() == image_id
    finally:
        fl("rm", "-f", "runner")


@pytest.mark.root
def test_rmi_without_force_refuses_and_changes_nothing(fl, busybox):
    assert fl("create", "--name", "holder", "busybox", "true").code == 0
    res = fl("rmi", busybox, check=False)
    assert res.code == 1
    one_error_line(res, "(must be forced) - image is being used by stopped container")
    res = fl("rmi", "busybox", check=False)
    one_error_line(res, 'unable to remove repository reference "busybox" (must force)')
    assert fl("images", "-q").out.strip() == busybox[7:19]


@pytest.mark.root
def test_an_old_store_is_migrated(fl, busybox):
    conn = sqlite3.connect(fl.root / "forklift.db")
    conn.execute("DROP TABLE container_layers")
    conn.execute("UPDATE meta SET value='1' WHERE key='schema'")
    conn.commit()
    conn.close()
    assert fl("create", "--name", "afterwards", "busybox", "true").code == 0
    assert fl("rmi", "-f", busybox).code == 0
    assert fl("start", "-a", "afterwards").code == 0
    conn = sqlite3.connect(fl.root / "forklift.db")
    try:
        assert conn.execute("SELECT value FROM meta WHERE key='schema'").fetchone()[0] == str(SCHEMA_VERSION)
    finally:
        conn.close()


@pytest.mark.root
def test_system_check_understands_containers_that_outlived_their_image(fl, busybox):
    assert fl("create", "--name", "orphaned", "busybox", "true").code == 0
    assert fl("rmi", "-f", busybox).code == 0
    assert fl("system", "check", "--full").code == 0
    conn = sqlite3.connect(fl.root / "forklift.db")
    conn.execute("INSERT INTO container_layers VALUES('0123456789ab' || hex(randomblob(26)), 0, 'x')")
    conn.commit()
    conn.close()
    res = fl("system", "check", check=False)
    assert res.code == 1 and "layer list of a container that does not exist" in res.out
    assert fl("system", "check", "--repair").code == 0
    assert fl("system", "check").code == 0
    assert fl("start", "-a", "orphaned").code == 0
