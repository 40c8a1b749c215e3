"""Container options and their carry-forward into committed images."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.root


def _config(fl, name):
    return json.loads(fl("inspect", name).out)[0]["Config"]


def test_every_config_field_is_carried_into_the_commit(fl, busybox, tmp_path):
    env_file = tmp_path / "env"
    env_file.write_text("# comment\nFROM_FILE=yes\n\n")
    res = fl("run", "--name", "c", "-e", "A=1", "--env-file", str(env_file), "-w", "/srv",
             "-u", "nobody", "--expose", "8080", "--expose", "53/udp", "-v", "/cache",
             "-l", "team=packagers", "--stop-signal", "SIGINT", "--entrypoint", "sh",
             "busybox", "-c", "pwd; id -u")
    assert res.code == 0, res.err
    assert res.lines == ["/srv", "65534"]
    assert fl("commit", "c", "carried:1").code == 0
    cfg = _config(fl, "carried:1")
    assert "A=1" in cfg["Env"] and "FROM_FILE=yes" in cfg["Env"]
    assert any(e.startswith("PATH=") for e in cfg["Env"])
    assert cfg["WorkingDir"] == "/srv"
    assert cfg["User"] == "nobody"
    assert cfg["ExposedPorts"] == {"8080/tcp": {}, "53/udp": {}}
    assert cfg["Volumes"] == {"/cache": {}}
    assert cfg["Labels"] == {"team": "packagers"}
    assert cfg["StopSignal"] == "SIGINT"
    assert cfg["Entrypoint"] == ["sh"]
    assert cfg["Cmd"] == ["-c", "pwd; id -u"]
    # and a container of the new image starts with all of it
    again = fl("run", "--rm", "carried:1")
    assert again.lines == ["/srv", "65534"]


def test_change_instructions(fl, busybox):
    assert fl("run", "--name", "c", "busybox", "true").code == 0
    changes = ["CMD [\"echo\", \"hi\"]", "ENTRYPOINT [\"/bin/sh\", \"-c\"]", "ENV X=1 Y=\"two words\"",
               "EXPOSE 80 443/tcp", "LABEL a=b", "ONBUILD RUN echo child", "USER daemon",
               "VOLUME [\"/v1\", \"/v2\"]", "WORKDIR /w", "WORKDIR sub",
               "HEALTHCHECK --interval=5s CMD true"]
    args = [a for ch in changes for a in ("-c", ch)]
    res = fl("commit", *args, "c", "changed:1")
    assert res.code == 0, res.err
    cfg = _config(fl, "changed:1")
    assert cfg["Cmd"] == ["echo", "hi"]
    assert cfg["Entrypoint"] == ["/bin/sh", "-c"]
    assert "X=1" in cfg["Env"] and "Y=two words" in cfg["Env"]
    assert set(cfg["ExposedPorts"]) == {"80/tcp", "443/tcp"}
    assert cfg["Labels"] == {"a": "b"}
    assert cfg["OnBuild"] == ["RUN echo child"]
    assert cfg["User"] == "daemon"
    assert set(cfg["Volumes"]) == {"/v1", "/v2"}
    assert cfg["WorkingDir"] == "/w/sub"
    assert cfg["Healthcheck"] == {"Test": ["CMD-SHELL", "true"], "Interval": 5_000_000_000}


def test_bad_change_is_one_line_error_and_no_image(fl, busybox):
    assert fl("run", "--name", "c", "busybox", "true").code == 0
    before = fl("images", "-q", "-a").out
    res = fl("commit", "-c", "FROM scratch", "c", "nope:1", check=False)
    assert res.code != 0
    assert res.err.strip() == "Error: from is not a valid change command"   # Docker's case
    assert fl("images", "-q", "-a").out == before


def test_entrypoint_empty_string_resets(fl, busybox):
    assert fl("run", "--name", "e", "--entrypoint", "sh", "busybox", "-c", "true").code == 0
    assert fl("commit", "e", "with-ep").code == 0
    res = fl("run", "--rm", "--entrypoint", "", "with-ep", "echo", "reset")
    assert res.out == "reset\n"


def test_run_options(fl, busybox, tmp_path):
    host_dir = tmp_path / "host"
    host_dir.mkdir()
    (host_dir / "in.txt").write_text("from host\n")
    res = fl("run", "--rm", "--hostname", "box", "-v", f"{host_dir}:/mnt", "busybox",
             "sh", "-c", "hostname; cat /mnt/in.txt; echo out > /mnt/out.txt")
    assert res.code == 0, res.err
    assert res.lines == ["box", "from host"]
    assert (host_dir / "out.txt").read_text() == "out\n"
    ro = fl("run", "--rm", "-v", f"{host_dir}:/mnt:ro", "busybox", "touch", "/mnt/x", check=False)
    assert ro.code != 0 and not (host_dir / "x").exists()
    readonly = fl("run", "--rm", "--read-only", "busybox", "touch", "/x", check=False)
    assert readonly.code != 0 and "Read-only file system" in readonly.err
    none = fl("run", "--rm", "--network", "none", "busybox", "cat", "/proc/net/dev")
    assert [ln.split(":")[0].strip() for ln in none.lines[2:]] == ["lo"]
    host = fl("run", "--rm", "--network", "host", "busybox", "cat", "/proc/net/dev")
    assert len(host.lines[2:]) >= len(none.lines[2:])


def test_exit_code_and_streams(fl, busybox):
    res = fl("run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 7", check=False)
    assert (res.code, res.out, res.err) == (7, "out\n", "err\n")
    assert fl("run", "--rm", "busybox", "no-such-command", check=False).code == 127


def test_anonymous_volume_is_not_in_diff_and_removed_with_v(fl, busybox):
    import os

    assert fl("run", "--name", "v", "-v", "/data", "busybox", "sh", "-c", "echo x > /data/f").code == 0
    assert fl("diff", "v").lines == ["A /data"] or fl("diff", "v").lines == []
    volumes = os.listdir(fl.root / "volumes")
    assert len(volumes) == 1
    assert fl("rm", "-v", "v").code == 0
    assert os.listdir(fl.root / "volumes") == []


def test_names_ids_and_ps(fl, busybox):
    created = fl("create", "--name", "first", "busybox", "true")
    assert created.code == 0
    cid = created.out.strip()
    assert len(cid) == 64
    dup = fl("create", "--name", "first", "busybox", "true", check=False)
    assert dup.code == 125
    assert dup.err.startswith('Error: Conflict. The container name "/first" is already in use')
    assert fl("ps", "-q").out == ""
    assert fl("ps", "-aq").out.strip() == cid[:12]
    assert "Created" in fl("ps", "-a").out
    assert fl("start", "-a", cid[:6]).code == 0
    assert "Exited (0)" in fl("ps", "-a").out
    anon = fl("create", "busybox", "true").out.strip()
    name = fl("inspect", "-f", "{{.Name}}", anon).out.strip()
    assert name.startswith("/") and "_" in name
    assert fl("rm", "first", anon).code == 0
    missing = fl("rm", "first", check=False)
    assert missing.code != 0 and missing.err.strip() == "Error: No such container: first"


def test_missing_runc_and_not_root_are_one_line_errors(fl, busybox):
    import subprocess
    import sys

    no_runc = fl("run", "--rm", "--network", "none", "busybox", "true",
                 env={"PATH": "/nonexistent"}, check=False)
    assert no_runc.code == 125
    assert no_runc.err == "Error: runc not found: install the Debian package runc\n"
    assert fl("ps", "-aq").out == "", "a failed start with --rm leaves nothing"

    # import as root (the interpreter lives under /root here), then drop to nobody
    script = ("import os, sys; from forklift.cli.main import main; import forklift.engine.images; os.setuid(65534);"
              f"sys.argv = ['forklift', '--root', {str(fl.root)!r}, 'images']; main()")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode != 0
    assert proc.stderr.startswith("Error: forklift must run as root") and proc.stderr.count("\n") == 1
