"""Security defaults, through the real CLI (``forklift run --rm busybox …``).

Docker's defaults: its capability set and nothing more, masked /proc and /sys
paths, no privileges unless asked (--privileged), --cap-add/--cap-drop,
--security-opt no-new-privileges, and a default seccomp profile that
``--security-opt seccomp=unconfined`` turns off.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import Forklift
from support.store import temporary_store

# Docker's default set (moby oci/caps/defaults.go) as a CapEff bit mask.
CAP_BITS = {"CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_FOWNER": 3, "CAP_FSETID": 4, "CAP_KILL": 5,
            "CAP_SETGID": 6, "CAP_SETUID": 7, "CAP_SETPCAP": 8, "CAP_NET_BIND_SERVICE": 10,
            "CAP_NET_RAW": 13, "CAP_SYS_CHROOT": 18, "CAP_MKNOD": 27, "CAP_AUDIT_WRITE": 29,
            "CAP_SETFCAP": 31}
DOCKER_DEFAULT_CAPEFF = sum(1 << b for b in CAP_BITS.values())
assert DOCKER_DEFAULT_CAPEFF == 0xA80425FB
CAP_SYS_ADMIN = 21
CAP_NET_ADMIN = 12


def status(fl: Forklift, *flags: str) -> dict[str, str]:
    out = fl("run", "--rm", "--network", "none", *flags, "busybox", "cat", "/proc/self/status").out
    return {k.strip(): v.strip() for k, _, v in (ln.partition(":") for ln in out.splitlines())}


def sh(fl: Forklift, script: str, *flags: str, check: bool = True):  # type: ignore[no-untyped-def]
    return fl("run", "--rm", "--network", "none", *flags, "busybox", "sh", "-c", script,
              check=check)


@pytest.fixture(scope="module")
def sec_store(busybox_tar: Path) -> Iterator[Forklift]:
    with temporary_store() as store:
        store("import", str(busybox_tar), "busybox")
        yield store


@pytest.mark.root
def test_default_capabilities_are_dockers(sec_store: Forklift) -> None:
    st = status(sec_store)
    assert int(st["CapEff"], 16) == DOCKER_DEFAULT_CAPEFF, st["CapEff"]
    assert int(st["CapBnd"], 16) == DOCKER_DEFAULT_CAPEFF, st["CapBnd"]
    assert int(st["CapInh"], 16) == 0 and int(st["CapAmb"], 16) == 0
    assert st["NoNewPrivs"] == "0"


@pytest.mark.root
def test_proc_and_sys_paths_masked(sec_store: Forklift) -> None:
    out = sh(sec_store, "cat /proc/kcore | /bin/busybox wc -c; cat /proc/keys | /bin/busybox wc -c;"
                        " ls -A /sys/firmware | /bin/busybox wc -l;"
                        " echo 1 > /proc/sysrq-trigger 2>/dev/null && echo writable || echo ro").out
    kcore, keys, firmware, sysrq = out.split()
    assert kcore == "0" and keys == "0", out     # bind-mounted /dev/null
    assert firmware == "0", out                  # empty read-only tmpfs
    assert sysrq == "ro", out                    # read-only path


@pytest.mark.root
def test_not_privileged_by_default(sec_store: Forklift) -> None:
    st = status(sec_store)
    assert not int(st["CapEff"], 16) & (1 << CAP_SYS_ADMIN)
    proc = sh(sec_store, "mkdir -p /mnt && /bin/busybox mount -t tmpfs none /mnt", check=False)
    assert proc.code != 0  # no CAP_SYS_ADMIN, no mount


@pytest.mark.root
def test_privileged_on_request(sec_store: Forklift) -> None:
    st = status(sec_store, "--privileged")
    assert int(st["CapEff"], 16) & (1 << CAP_SYS_ADMIN)
    assert st["Seccomp"] == "0"
    sh(sec_store, "mkdir -p /mnt && /bin/busybox mount -t tmpfs none /mnt", "--privileged")


@pytest.mark.root
def test_cap_add_and_drop(sec_store: Forklift) -> None:
    added = int(status(sec_store, "--cap-add", "NET_ADMIN")["CapEff"], 16)
    assert added == DOCKER_DEFAULT_CAPEFF | (1 << CAP_NET_ADMIN)
    dropped = int(status(sec_store, "--cap-drop", "CHOWN", "--cap-drop", "CAP_NET_RAW")["CapEff"], 16)
    assert dropped == DOCKER_DEFAULT_CAPEFF & ~(1 << 0) & ~(1 << 13)
    none = int(status(sec_store, "--cap-drop", "ALL")["CapEff"], 16)
    assert none == 0
    proc = sh(sec_store, "touch /f && /bin/busybox chown 1:1 /f", "--cap-drop", "CHOWN", check=False)
    assert proc.code != 0


@pytest.mark.root
def test_no_new_privileges(sec_store: Forklift) -> None:
    assert status(sec_store, "--security-opt", "no-new-privileges")["NoNewPrivs"] == "1"
    assert status(sec_store, "--security-opt", "no-new-privileges:true")["NoNewPrivs"] == "1"


@pytest.mark.root
def test_default_seccomp_profile_via_cli(sec_store: Forklift) -> None:
    assert status(sec_store)["Seccomp"] == "2"  # filter mode
    denied = sh(sec_store, "/bin/busybox unshare -U true", check=False)
    assert denied.code != 0
    assert status(sec_store, "--security-opt", "seccomp=unconfined")["Seccomp"] == "0"
    sh(sec_store, "/bin/busybox unshare -U true", "--security-opt", "seccomp=unconfined")


# ----------------------------------------------------------------------------- the profile itself

def _run_with_profile(fl: Forklift, profile: dict | None, script: str,
                      monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    """Run through the engine with ``profile`` put into the spec (the hook the CLI will use)."""
    from forklift.engine import containers
    from forklift.runtime import spec as spec_mod
    from forklift.store import open_store

    original = spec_mod.build_spec

    def with_seccomp(**kw):  # type: ignore[no-untyped-def]
        spec = original(**kw)
        if profile is not None:
            spec["linux"]["seccomp"] = profile
        else:
            spec["linux"].pop("seccomp", None)
        return spec

    monkeypatch.setattr(spec_mod, "build_spec", with_seccomp)
    store = open_store(str(fl.root))
    try:
        with tempfile.TemporaryFile() as out:
            code = containers.run(store, "busybox", ["sh", "-c", script],
                                  containers.CreateOptions(network="none", auto_remove=True),
                                  stdin=open(os.devnull), stdout=out, stderr=out)
            out.seek(0)
            return code, out.read().decode()
    finally:
        store.close()
        monkeypatch.setattr(spec_mod, "build_spec", original)


def test_seccomp_profile_shape() -> None:
    from forklift.runtime.seccomp import DENIED, default_profile

    profile = default_profile()
    json.dumps(profile)
    assert profile["defaultAction"] == "SCMP_ACT_ALLOW"
    names = {n for rule in profile["syscalls"] for n in rule["names"]}
    for required in ("mount", "umount2", "kexec_load", "init_module", "finit_module", "delete_module",
                     "bpf", "keyctl", "add_key", "request_key", "unshare", "clone", "perf_event_open",
                     "reboot", "swapon", "swapoff", "settimeofday", "clock_settime", "acct",
                     "pivot_root", "open_by_handle_at"):
        assert required in names, required
    assert all(DENIED[name] for name in DENIED)  # every denial says why


@pytest.mark.root
def test_seccomp_profile_enforced_by_runc(sec_store: Forklift,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from forklift.runtime.seccomp import default_profile

    script = ("cat /proc/self/status | /bin/busybox grep Seccomp: ;"
              " /bin/busybox unshare -U true && echo userns-allowed || echo userns-denied")
    code, out = _run_with_profile(sec_store, None, script, monkeypatch)
    assert code == 0, out
    if "userns-allowed" not in out:
        pytest.skip("user namespaces are unavailable here even without seccomp")
    code, out = _run_with_profile(sec_store, default_profile(), script, monkeypatch)
    assert code == 0, out
    assert "Seccomp:\t2" in out, out
    assert "userns-denied" in out, out
    # ordinary work is unaffected
    code, out = _run_with_profile(sec_store, default_profile(),
                                  "echo hi > /tmp/x && cat /tmp/x && ls / >/dev/null", monkeypatch)
    assert (code, out.strip()) == (0, "hi")

