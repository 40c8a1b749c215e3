"""Heredocs (RUN, COPY, ADD), RUN --mount (cache, bind, tmpfs, secret), build --secret and
RUN --network, on real containers with busybox; expectations from the Dockerfile
reference's examples."""

from __future__ import annotations

import json
import os

import pytest
from support import Forklift, one_line_error
from support.store import assert_clean

pytestmark = pytest.mark.root


def sh(fl: Forklift, image: str, script: str) -> str:
    return fl("run", "--rm", "--network", "none", "-u", "0", "--entrypoint", "sh", image,
              "-c", script).out


def layer_paths(fl: Forklift, image: str) -> list[str]:
    """The paths in the image's last layer (from ``image save``)."""
    import io
    import tarfile

    data = fl("save", image).data
    with tarfile.open(fileobj=io.BytesIO(data)) as outer:
        manifest = json.load(outer.extractfile("manifest.json"))  # type: ignore[arg-type]
        member = outer.extractfile(manifest[0]["Layers"][-1])
        assert member is not None
        with tarfile.open(fileobj=io.BytesIO(member.read())) as layer:
            return sorted(m.name.rstrip("/") for m in layer.getmembers())


def build(fl: Forklift, root: object, tag: str, *extra: str) -> str:
    return fl.out("build", "--network", "none", "-q", "-t", tag, *extra, str(root)).strip()


# ----------------------------------------------------------------------------- heredocs

def test_run_heredoc_is_the_shell_script(fl: Forklift, ctx) -> None:
    root = ctx("FROM busybox\nARG WHO=world\nRUN <<EOF\necho hello $WHO > /a\n"
               "echo second line >> /a\nEOF\n"
               "RUN <<'EOT' sh\necho \"$WHO\" > /quoted\nEOT\n")
    build(fl, root, "hd-run")
    assert sh(fl, "hd-run", "cat /a /quoted") == "hello world\nsecond line\nworld\n"


def test_run_heredoc_with_shebang_runs_as_a_file(fl: Forklift, ctx) -> None:
    root = ctx("FROM busybox\nRUN <<EOF\n#!/bin/sh -e\necho \"$0\" > /who\nEOF\n")
    build(fl, root, "hd-shebang")
    assert sh(fl, "hd-shebang", "cat /who; ls /dev/pipes 2>&1 | head -1") .startswith("/dev/pipes/EOF\n")
    assert "dev" not in layer_paths(fl, "hd-shebang")
    # another script under the same name is another step (its argv is the same path)
    build(fl, ctx("FROM busybox\nRUN <<EOF\n#!/bin/sh -e\necho other > /who\nEOF\n"), "hd-shebang2")
    assert sh(fl, "hd-shebang2", "cat /who") == "other\n"


def test_run_heredocs_as_stdin_and_files(fl: Forklift, ctx) -> None:
    root = ctx("FROM busybox\nRUN cat <<A > /a && cat <<'B' > /b\nfirst $HOME\nA\nsecond $HOME\nB\n"
               "RUN <<-EOF\n\t\techo tabs > /t\n\tEOF\n")
    build(fl, root, "hd-stdin")
    assert sh(fl, "hd-stdin", "cat /a /b /t") == "first /root\nsecond $HOME\ntabs\n"


def test_copy_heredocs_expand_unquoted_only(fl: Forklift, ctx) -> None:
    root = ctx("FROM busybox\nARG FOO=bar\n"
               "COPY <<-EOT /script.sh\n\techo \"hello ${FOO}\"\n\tEOT\n"
               "COPY <<'RAW' /raw\n${FOO}\nRAW\n"
               "COPY --chmod=755 --chown=1:2 <<A <<B /dir/\na\nA\nb\nB\n"
               "ADD <<EOF /added\nadded $FOO\nEOF\n")
    build(fl, root, "hd-copy")
    assert sh(fl, "hd-copy", "cat /script.sh /raw /dir/A /dir/B /added") == \
        'echo "hello bar"\n${FOO}\na\nb\nadded bar\n'
    assert sh(fl, "hd-copy", "stat -c '%a %u:%g %n' /script.sh /dir/A /dir/B") == \
        "644 0:0 /script.sh\n755 1:2 /dir/A\n755 1:2 /dir/B\n"


def test_copy_heredoc_cache_follows_the_body(fl: Forklift, ctx) -> None:
    first = build(fl, ctx("FROM busybox\nCOPY <<EOF /f\none\nEOF\n"), "hd-c1")
    again = build(fl, ctx("FROM busybox\nCOPY <<EOF /f\none\nEOF\n"), "hd-c1")
    other = build(fl, ctx("FROM busybox\nCOPY <<EOF /f\ntwo\nEOF\n"), "hd-c2")
    assert first == again != other
    assert sh(fl, "hd-c2", "cat /f") == "two\n"


# ----------------------------------------------------------------------------- RUN --mount

def test_cache_mount_persists_and_never_enters_the_layer(fl: Forklift, ctx) -> None:
    df = "FROM busybox\nARG N\nRUN --mount=type=cache,target=/var/cache/x,id=c1 " \
         "echo $N >> /var/cache/x/log && cat /var/cache/x/log > /seen\n"
    build(fl, ctx(df), "cm", "--build-arg", "N=1")
    build(fl, ctx(df), "cm", "--build-arg", "N=2")
    assert sh(fl, "cm", "cat /seen") == "1\n2\n"
    assert sh(fl, "cm", "test -e /var/cache || echo gone") == "gone\n"   # not in busybox
    assert layer_paths(fl, "cm") == ["seen"]
    fl("builder", "prune", "-af")
    build(fl, ctx(df), "cm", "--build-arg", "N=3")
    assert sh(fl, "cm", "cat /seen") == "3\n"


def test_bind_mount_is_read_only_and_rw_writes_are_discarded(fl: Forklift, ctx) -> None:
    root = ctx("FROM busybox AS src\nRUN echo from-stage > /s\n"
               "FROM busybox\n"
               "RUN --mount=type=bind,source=data,target=/m cat /m/f > /copied && "
               "! touch /m/new 2>/dev/null\n"
               "RUN --mount=type=bind,target=/w,rw echo x > /w/data/f && cat /w/data/f > /wrote\n"
               "RUN --mount=type=bind,from=src,source=/s,target=/mnt/s cat /mnt/s > /fromstage\n",
               **{"data/f": "context\n"})
    build(fl, root, "bm")
    assert sh(fl, "bm", "cat /copied /wrote /fromstage") == "context\nx\nfrom-stage\n"
    assert (root / "data" / "f").read_text() == "context\n"
    assert sh(fl, "bm", "test -e /mnt || test -e /w || echo gone") == "gone\n"   # not in busybox
    assert layer_paths(fl, "bm") == ["fromstage"]


def test_tmpfs_mount(fl: Forklift, ctx) -> None:
    root = ctx("FROM busybox\nRUN --mount=type=tmpfs,target=/tmp/t,size=1m "
               "grep ' /tmp/t tmpfs ' /proc/mounts > /seen && echo x > /tmp/t/f\n")
    build(fl, root, "tm")
    assert "size=1024k" in sh(fl, "tm", "cat /seen")
    assert layer_paths(fl, "tm") == ["seen"]


def test_secret_mount(fl: Forklift, ctx, tmp_path) -> None:
    secret = tmp_path / "token"
    secret.write_text("s3cr3t-value")
    root = ctx("FROM busybox\nRUN --mount=type=secret,id=tok cat /run/secrets/tok > /got && "
               "stat -c %a /run/secrets/tok > /mode\n"
               "RUN --mount=type=secret,id=env,target=/e,mode=0440 cat /e > /fromenv\n")
    res = fl("build", "--network", "none", "-q", "-t", "sec", "--secret", f"id=tok,src={secret}",
             "--secret", "id=env,env=FL_TEST_SECRET", str(root),
             env={"FL_TEST_SECRET": "from-env"})
    assert res.code == 0, res.err
    assert sh(fl, "sec", "cat /got /mode /fromenv") == "s3cr3t-value400\nfrom-env"
    assert "s3cr3t" not in fl.out("history", "--no-trunc", "sec")
    assert layer_paths(fl, "sec") == ["fromenv"]
    assert sh(fl, "sec", "test -e /run/secrets || test -e /e || echo gone") == "gone\n"
    assert "s3cr3t" not in fl.out("image", "inspect", "sec")
    # the content is not in the key: another value reuses the cached steps
    secret.write_text("other")
    res = fl("build", "--network", "none", "--progress", "plain", "-t", "sec", "--secret",
             f"id=tok,src={secret}", "--secret", "id=env,env=FL_TEST_SECRET", str(root),
             env={"FL_TEST_SECRET": "from-env"})
    assert res.out.count("CACHED") >= 2, res.out


def test_missing_required_secret_is_one_line(fl: Forklift, ctx) -> None:
    root = ctx("FROM busybox\nRUN --mount=type=secret,id=nope,required cat /run/secrets/nope\n")
    assert "secret nope is required" in one_line_error(fl("build", str(root), check=False))
    root = ctx("FROM busybox\nRUN --mount=type=secret,id=opt test ! -e /run/secrets/opt\n")
    build(fl, root, "optsecret")
    res = fl("build", "--secret", "id=fl_no_such_variable", str(root), check=False)
    assert "no src or env" in one_line_error(res)


def test_bad_mount_is_one_line(fl: Forklift, ctx) -> None:
    for flag, message in (("--mount=type=nfs,target=/x", "unsupported mount type"),
                          ("--mount=type=cache", "needs a target"),
                          ("--network=bridge2", "expected default, none or host")):
        res = fl("build", str(ctx(f"FROM busybox\nRUN {flag} true\n")), check=False)
        assert message in one_line_error(res)


def test_mount_options_are_in_the_step_key(fl: Forklift, ctx) -> None:
    a = build(fl, ctx("FROM busybox\nRUN --mount=type=cache,target=/c touch /k\n"), "key-a")
    b = build(fl, ctx("FROM busybox\nRUN --mount=type=cache,target=/d touch /k\n"), "key-b")
    c = build(fl, ctx("FROM busybox\nRUN --mount=type=tmpfs,target=/c touch /k\n"), "key-c")
    assert len({a, b, c}) == 3


# ----------------------------------------------------------------------------- --network

def test_run_network_per_step(fl: Forklift, ctx) -> None:
    root = ctx("FROM busybox\nRUN --network=none ls /sys/class/net > /none\n"
               "RUN --network=host ls /sys/class/net > /host\n")
    before = set(os.listdir("/sys/class/net"))
    res = fl("build", "-q", "-t", "netstep", str(root))
    stable = before & set(os.listdir("/sys/class/net")) - {"lo"}   # there all along
    assert res.code == 0, res.err
    assert sh(fl, "netstep", "cat /none") == "lo\n"
    assert stable and stable <= set(sh(fl, "netstep", "cat /host").split())


def test_cache_mount_options_and_seed(fl: Forklift, ctx) -> None:
    root = ctx("FROM busybox AS seed\nRUN mkdir /s && echo seeded > /s/f\n"
               "FROM busybox\n"
               "RUN --mount=type=cache,target=/c,id=opts-c,uid=7,gid=8,mode=0750,sharing=locked "
               "stat -c '%u:%g %a' /c > /owner\n"
               "RUN --mount=type=cache,target=/s,id=seed-c,from=seed,source=/s,sharing=private "
               "cat /s/f > /seeded\n"
               "RUN --mount=type=cache,target=/r,id=opts-c,ro ! touch /r/x 2>/dev/null\n")
    build(fl, root, "cmopts")
    assert sh(fl, "cmopts", "cat /owner /seeded") == "7:8 750\nseeded\n"


def test_bind_from_image_and_context_content_in_the_key(fl: Forklift, ctx) -> None:
    df = "FROM busybox\nRUN --mount=type=bind,from=busybox,source=/bin,target=/b test -x /b/busybox\n" \
         "RUN --mount=type=bind,source=f,target=/f cat /f > /got\n"
    root = ctx(df, f="one\n", **{".dockerignore": "secret.txt\n", "secret.txt": "hidden\n"})
    build(fl, root, "bkey")
    assert sh(fl, "bkey", "cat /got") == "one\n"
    (root / "f").write_text("two\n")
    build(fl, root, "bkey")
    assert sh(fl, "bkey", "cat /got") == "two\n"
    root = ctx("FROM busybox\nRUN --mount=type=bind,target=/c ls /c > /listed\n")
    build(fl, root, "bignore")
    assert "secret.txt" not in sh(fl, "bignore", "cat /listed")
    assert "Dockerfile" in sh(fl, "bignore", "cat /listed")


def test_secret_owner_and_history(fl: Forklift, ctx, tmp_path) -> None:
    secret = tmp_path / "s"
    secret.write_text("value")
    root = ctx("FROM busybox\nRUN --mount=type=secret,id=s,uid=5,gid=6,mode=0440,required=true "
               "stat -c '%u:%g %a' /run/secrets/s > /st\n")
    build(fl, root, "secown", "--secret", f"id=s,src={secret}")
    assert sh(fl, "secown", "cat /st") == "5:6 440\n"
    history = fl.out("history", "--no-trunc", "--format", "{{.CreatedBy}}", "secown")
    assert "value" not in history.replace("/st", "")


def test_heredoc_history_and_failure(fl: Forklift, ctx) -> None:
    root = ctx("FROM busybox\nRUN <<EOF\necho one\nexit 3\nEOF\n")
    res = fl("build", "--network", "none", str(root), check=False)
    assert res.code != 0 and "exit code: 3" in res.out + res.err
    build(fl, ctx("FROM busybox\nRUN <<EOF\ntrue\nEOF\n"), "hdhist")
    assert fl.out("history", "--no-trunc", "--format", "{{.CreatedBy}}", "hdhist").splitlines()[0] \
        == "/bin/sh -c true"


def _files_holding(top: object, needle: bytes) -> list[str]:
    found = []
    for base, _, files in os.walk(str(top)):
        for name in files:
            path = os.path.join(base, name)
            if os.path.isfile(path) and not os.path.islink(path) and os.path.getsize(path) < 1 << 20:
                with open(path, "rb") as f:
                    if needle in f.read():
                        found.append(path)
    return found


def test_a_failed_step_leaves_no_mount_scratch_or_secret(fl: Forklift, ctx, tmp_path) -> None:
    secret = tmp_path / "s"
    secret.write_bytes(b"never-stored-7f3a")
    root = ctx("FROM busybox\nRUN --mount=type=secret,id=s --mount=type=bind,target=/w,rw "
               "--mount=type=cache,target=/c,id=fail-c <<EOF\n"
               "cat /run/secrets/s > /w/copy\nexit 4\nEOF\n", f="x")
    res = fl("build", "--network", "none", "--secret", f"id=s,src={secret}", str(root), check=False)
    assert res.code != 0 and "exit code: 4" in res.out + res.err
    assert fl.out("ps", "-aq") == ""
    assert _files_holding(fl.root, b"never-stored-7f3a") == []
    assert not (root / "copy").exists()
    assert_clean(fl.root)


def test_private_cache_taken_elsewhere_gets_a_fresh_directory(fl: Forklift, ctx) -> None:
    import fcntl
    import hashlib

    df = "FROM busybox\nARG N\nRUN --mount=type=cache,target=/c,id=priv,sharing=private " \
         "ls /c > /seen; echo $N > /c/$N\n"
    build(fl, ctx(df), "priv", "--build-arg", "N=1")
    top = fl.root / "build-mounts"
    name = hashlib.sha256(b"priv").hexdigest()[:32]
    with open(top / f"{name}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        build(fl, ctx(df), "priv", "--build-arg", "N=2")
        assert sh(fl, "priv", "cat /seen") == ""           # not the shared one
    assert sorted(os.listdir(top / name)) == ["1"]          # the build's writes went elsewhere
    build(fl, ctx(df), "priv", "--build-arg", "N=3")
    assert sh(fl, "priv", "cat /seen") == "1\n"


def test_reference_example_two_heredocs_to_two_files(fl: Forklift, ctx) -> None:
    root = ctx("FROM busybox\nWORKDIR /w\n"
               "RUN <<FILE1 cat > file1 && <<FILE2 cat > file2\nI am\nfirst\nFILE1\nI am\nsecond\nFILE2\n"
               "RUN <<EMPTY\nEMPTY\n")
    build(fl, root, "hd-two")
    assert sh(fl, "hd-two", "cat /w/file1 /w/file2") == "I am\nfirst\nI am\nsecond\n"


def test_run_script_forms() -> None:
    from forklift.build import heredocs
    from forklift.build.dockerfile import parse

    def argv(text: str) -> tuple[list[str], object]:
        ins = parse(f"FROM busybox\n{text}".encode(), "Dockerfile").instructions[-1]
        got, doc = heredocs.run_script(ins, ["/bin/sh", "-c"])
        return got, doc and doc.name  # type: ignore[attr-defined]

    assert argv("RUN <<EOF\necho $A\nEOF\n") == (["/bin/sh", "-c", "echo $A\n"], None)
    assert argv("RUN <<-'EOF'\n\techo x\n\tEOF\n") == (["/bin/sh", "-c", "echo x\n"], None)
    assert argv("RUN <<EOF\n#!/bin/ash\necho\nEOF\n") == (["/dev/pipes/EOF"], "EOF")
    assert argv("RUN cat <<'A' > /a\n$x\nA\n") == (["/bin/sh", "-c", "cat <<'A' > /a\n$x\nA"], None)
    assert heredocs.marker_name("<<-\"EOT\"") == "EOT" and heredocs.marker_name("<<EOF>x") is None


def test_mount_and_secret_parsing() -> None:
    from forklift.build import runmounts
    from forklift.errors import InvalidArgument

    m = runmounts.parse_mount("type=cache,target=var/c/,uid=3,mode=0700,sharing=locked", "D:1")
    assert (m.target, m.id, m.uid, m.mode, m.sharing) == ("/var/c", "/var/c", 3, 0o700, "locked")
    assert runmounts.parse_mount("target=/x", "D:1").readonly                     # bind: ro
    assert not runmounts.parse_mount("type=bind,target=/x,rw=true", "D:1").readonly
    # BuildKit's reading: =false turns a key around, the last one given wins
    assert not runmounts.parse_mount("type=bind,target=/x,readonly=false", "D:1").readonly
    assert runmounts.parse_mount("type=bind,target=/x,rw,ro", "D:1").readonly
    assert not runmounts.parse_mount("type=bind,target=/x,ro,rw=True", "D:1").readonly
    assert runmounts.parse_mount("type=cache,target=/x,rw=0", "D:1").readonly
    assert not runmounts.parse_mount("type=cache,target=/x", "D:1").readonly
    assert runmounts.parse_mount("type=secret,id=k", "D:1").target == "/run/secrets/k"
    for bad in ("type=cache,target=/", "type=cache,target=/x,sharing=all",
                "type=cache,target=/x,uid=-1", "type=secret", "type=bind,target=/x,bogus=1",
                "type=bind,target=/x,ro=maybe", "type=secret,id=a,env=A"):
        with pytest.raises(InvalidArgument):
            runmounts.parse_mount(bad, "D:1")
    for bad in ("src=/etc/hostname", "id=a,src=/nonexistent/file", "id=a,what=1"):
        with pytest.raises(InvalidArgument):
            runmounts.parse_secret(bad)
    assert runmounts.parse_secret("id=a,src=/etc/hostname")[1] == "/etc/hostname"
