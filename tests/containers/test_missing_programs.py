"""A program forklift runs is missing: one line naming it and its Debian package, exit 125,
and the store as after any other failed start (``system check`` finds nothing).

Each test hides programs from the real CLI: PATH points at a directory of symlinks to
everything on the usual PATH except the hidden names, and ``FORKLIFT_CNI_PATH`` points
at a directory holding only the CNI plugins the test leaves visible.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any

import pytest
from support import REPO

from forklift import programs
from forklift.errors import MissingProgram

SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _bin_dir(tmp: Path, hide: set[str]) -> str:
    """A PATH directory with everything on SYSTEM_PATH but ``hide``."""
    out = tmp / "bin"
    out.mkdir()
    for d in SYSTEM_PATH.split(":"):
        if not os.path.isdir(d):
            continue
        for entry in os.listdir(d):
            target = out / entry
            if entry not in hide and not os.path.lexists(target):
                target.symlink_to(os.path.join(d, entry))
    return str(out)


def _cni_dir(tmp: Path, keep: set[str]) -> str:
    out = tmp / "cni"
    out.mkdir()
    for plugin in keep:
        (out / plugin).symlink_to(programs.find(plugin))
    return str(out)


def _env(tmp_path: Path, hide: set[str] | None = None,
         cni: set[str] | None = None) -> dict[str, str]:
    """The environment of a forklift that lacks ``hide`` on PATH and, if ``cni`` is given,
    sees only those CNI plugins."""
    tmp = Path(tempfile.mkdtemp(dir=tmp_path))
    env = {**os.environ, "PATH": _bin_dir(tmp, hide or set())}
    if cni is not None:
        env[programs.CNI_PATH_ENV] = _cni_dir(tmp, cni)
    return env


def _one_line(proc: Any, message: str) -> None:
    assert proc.code == 125, proc.err
    assert proc.err == f"Error: {message}\n"
    assert "internal error" not in proc.err and "Traceback" not in proc.err


def _consistent(fl: Any) -> None:
    check = fl("system", "check", check=False)
    assert check.code == 0, check.out + check.err
    assert "store is consistent" in check.out
    with open("/proc/self/mountinfo") as f:
        netns = [ln.split()[4] for ln in f if ln.split()[4].startswith(f"{fl.root}/netns/")]
    assert netns == [], "a network namespace was left behind"


@pytest.mark.root
def test_missing_iptables(fl: Any, name: str, tmp_path: Path) -> None:
    env = _env(tmp_path, hide={"iptables"})
    msg = "iptables not found: install the Debian package iptables"
    _one_line(fl("run", "--rm", "busybox", "true", env=env, check=False), msg)
    assert fl.out("ps", "-aq") == "", "a failed --rm run leaves no container"
    _one_line(fl("run", "--name", name, "busybox", "echo", "ran", env=env, check=False), msg)
    try:
        assert fl.status(name) in ("created", "exited")
        _consistent(fl)
        # nothing half-done: with iptables back the same container starts
        assert fl("start", "-a", name).out == "ran\n"
        _one_line(fl("run", "-d", "busybox", "sleep", "5", env=env, check=False), msg)
        _consistent(fl)
    finally:
        fl("rm", "-f", *fl.out("ps", "-aq", "--no-trunc").split(), check=False)
    # the host network needs no iptables
    assert fl.out("run", "--rm", "--network", "host", "busybox", "echo", "ok", env=env) == "ok"


@pytest.mark.root
def test_missing_cni_plugins(fl: Any, name: str, tmp_path: Path) -> None:
    empty = _env(tmp_path, cni=set())
    proc = fl("run", "--rm", "busybox", "true", env=empty, check=False)
    _one_line(proc, f"CNI plugin bridge not found in {empty[programs.CNI_PATH_ENV]}:"
                    " install the Debian package containernetworking-plugins")
    unset = {**empty, programs.CNI_PATH_ENV: ""}
    _one_line(fl("run", "--rm", "busybox", "true", env=unset, check=False),
              f"CNI plugin bridge not found in ${programs.CNI_PATH_ENV} (empty):"
              " install the Debian package containernetworking-plugins")

    no_portmap = _env(tmp_path, cni={"bridge", "host-local"})
    # the override is used for the plugins that are there: a plain run works ...
    assert fl.out("run", "--rm", "busybox", "echo", "ok", env=no_portmap) == "ok"
    # ... a published port needs portmap
    proc = fl("run", "--name", name, "-p", "80", "busybox", "true", env=no_portmap, check=False)
    _one_line(proc, f"CNI plugin portmap not found in {no_portmap[programs.CNI_PATH_ENV]}:"
                    " install the Debian package containernetworking-plugins")
    try:
        _consistent(fl)
        assert fl("start", "-a", name).code == 0
    finally:
        fl("rm", "-f", name, check=False)
    assert fl.out("ps", "-aq") == ""
    _consistent(fl)


@pytest.mark.root
def test_missing_runc(fl: Any, name: str, tmp_path: Path) -> None:
    env = _env(tmp_path, hide={"runc"})
    msg = "runc not found: install the Debian package runc"
    _one_line(fl("run", "-d", "--name", name, "busybox", "sleep", "30", env=env, check=False), msg)
    try:
        assert fl.status(name) == "created"
        _one_line(fl("start", name, env=env, check=False), msg)
        _consistent(fl)
        fl("start", name)
        _one_line(fl("exec", name, "true", env=env, check=False), msg)
        _one_line(fl("stop", "-t", "1", name, env=env, check=False), msg)
        assert fl.status(name) == "running"
    finally:
        fl("rm", "-f", name, check=False)
    _consistent(fl)


@pytest.mark.root
def test_missing_ps_for_top(fl: Any, name: str, tmp_path: Path) -> None:
    fl("run", "-d", "--name", name, "busybox", "sleep", "30")
    try:
        _one_line(fl("top", name, env=_env(tmp_path, hide={"ps"}), check=False),
                  "ps not found: install the Debian package procps")
        assert "sleep 30" in fl.out("top", name)
    finally:
        fl("rm", "-f", name, check=False)


@pytest.mark.root
def test_missing_cp_for_volume_seeding(fl: Any, name: str, tmp_path: Path) -> None:
    env = _env(tmp_path, hide={"cp"})
    proc = fl("run", "--name", name, "-v", f"{name}-vol:/etc", "busybox", "true", env=env,
              check=False)
    _one_line(proc, "cp not found: install the Debian package coreutils")
    try:
        _consistent(fl)
        # the volume is seeded on the next start, as if the first had never happened
        assert fl("start", "-a", name).code == 0
        assert "root:x:0:0" in fl.out("run", "--rm", "-v", f"{name}-vol:/v", "busybox",
                                      "cat", "/v/passwd")
    finally:
        fl("rm", "-f", "-v", name, check=False)
        fl("volume", "rm", f"{name}-vol", check=False)


@pytest.mark.root
def test_missing_ip_for_network_rm(fl: Any, tmp_path: Path) -> None:
    fl("network", "create", "noip-t")
    try:
        _one_line(fl("network", "rm", "noip-t", env=_env(tmp_path, hide={"ip"}), check=False),
                  "ip not found: install the Debian package iproute2")
        assert "noip-t" in fl.out("network", "ls")
    finally:
        fl("network", "rm", "noip-t")


def test_missing_credential_helper(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from forklift.registry import config

    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(MissingProgram, match="^docker-credential-pass not found: install the"
                                             " Debian package golang-docker-credential-helpers$"):
        config._run_helper("pass", "get", "registry.example")
    with pytest.raises(MissingProgram, match="^credential helper docker-credential-nosuch not"
                                             " found in PATH"):
        config._run_helper("nosuch", "get", "registry.example")


def test_every_program_goes_through_the_table() -> None:
    """No call site runs a program by a literal name; every looked-up name is in the table,
    and install.sh installs every package of the table."""
    src = REPO / "src" / "forklift"
    literal_exec = re.compile(r"(subprocess\.(run|Popen|call|check_output)|posix_spawn)"
                              r"\(\s*\[\s*[\"']")
    looked_up: set[str] = set()
    for path in src.rglob("*.py"):
        text = path.read_text()
        assert not literal_exec.search(text), f"{path}: runs a program by name, not programs.find"
        looked_up |= set(re.findall(r"programs\.find\(\"([^\"]+)\"\)", text))
    assert looked_up >= {"iptables", "ip", "ps", "cp"}
    assert looked_up <= set(programs.PACKAGES) | set(programs.CNI_PLUGINS)
    install = (REPO / "scripts" / "install.sh").read_text()
    listed = re.search(r"^runtime_packages=\(([^)]*)\)$", install, re.M)
    assert listed, "install.sh has no runtime_packages list"
    wanted = {*programs.PACKAGES.values(), *programs.CNI_PLUGINS.values()}
    assert set(listed.group(1).split()) == wanted
