"""forklift's default seccomp profile (OCI ``linux.seccomp``), in the spirit of Docker's.

Docker's profile is an allow-list of ~350 system calls. This one is the simpler,
equivalent-in-effect deny-list: every system call is allowed (``SCMP_ACT_ALLOW``)
except those below, which fail with EPERM (as if the capability check failed, so
programs take their usual fallback path). The capability set already stops most
of them for a non-privileged container; seccomp is the second wall for the ones a
capability does not guard (keyrings, user namespaces, bpf, perf) and for kernel
attack surface nobody in a container needs. ``--privileged`` and
``--security-opt seccomp=unconfined`` run without it, as in Docker.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # not typing's: its import is on the hot paths
if TYPE_CHECKING:
    from typing import Any

EPERM = 1
ENOSYS = 38
CLONE_NEWUSER = 0x10000000

# name -> why a container must not make this call
DENIED: dict[str, str] = {
    # --- filesystems and mounts: a container gets its mounts from the runtime
    "mount": "mounting can hide or expose host paths; needs CAP_SYS_ADMIN anyway",
    "umount": "unmounting a runtime mount (e.g. a masked /proc path) would unmask it",
    "umount2": "same as umount",
    "move_mount": "new mount API (5.2+), same reasons as mount",
    "open_tree": "new mount API: clones mount trees",
    "fsopen": "new mount API",
    "fsconfig": "new mount API",
    "fsmount": "new mount API",
    "fspick": "new mount API: reconfigures existing superblocks",
    "mount_setattr": "changes mount attributes (e.g. drops ro/nosuid)",
    "pivot_root": "changes the root mount; only the runtime does this",
    "open_by_handle_at": "bypasses path permissions and the mount namespace (the 'shocker' escape)",
    "name_to_handle_at": "pairs with open_by_handle_at",
    "quotactl": "host-wide disk quotas",
    "quotactl_fd": "host-wide disk quotas",
    "nfsservctl": "kernel NFS server control (removed in 3.1)",
    "swapon": "host-wide swap configuration",
    "swapoff": "host-wide swap configuration",
    "sysfs": "obsolete filesystem-type query",
    "ustat": "obsolete, leaks host filesystem info",
    "uselib": "obsolete a.out loader",
    # --- kernel modules and kernel replacement
    "init_module": "loads code into the host kernel",
    "finit_module": "loads code into the host kernel",
    "delete_module": "unloads host kernel modules",
    "create_module": "obsolete module loader",
    "get_kernel_syms": "obsolete, leaks kernel symbols",
    "query_module": "obsolete, leaks kernel module info",
    "kexec_load": "replaces the running host kernel",
    "kexec_file_load": "replaces the running host kernel",
    "reboot": "reboots or halts the host (outside a pid namespace's emulation)",
    # --- keyrings: not namespaced, shared with the host
    "add_key": "kernel keyring is not namespaced",
    "request_key": "kernel keyring is not namespaced",
    "keyctl": "kernel keyring is not namespaced (and /proc/keys is masked)",
    # --- time: one clock for the whole host
    "settimeofday": "sets the host clock",
    "stime": "sets the host clock",
    "clock_settime": "sets the host clock",
    "clock_settime64": "sets the host clock (32-bit time64 variant)",
    "clock_adjtime": "adjusts the host clock",
    "clock_adjtime64": "adjusts the host clock (32-bit time64 variant)",
    # --- namespaces: the container has the ones the runtime made
    "setns": "joins other namespaces (host ones, given an fd)",
    # --- tracing, profiling and kernel introspection
    "bpf": "loads programs into the kernel; huge attack surface",
    "perf_event_open": "leaks host-wide performance data, large attack surface",
    "fanotify_init": "filesystem-wide event monitoring",
    "lookup_dcookie": "kernel profiling internals",
    "syslog": "reads/clears the host kernel log (dmesg)",
    "userfaultfd": "a favourite tool for kernel exploit races",
    "acct": "process accounting for the whole host",
    "_sysctl": "obsolete sysctl interface, bypasses /proc/sys being read-only",
    "vm86": "x86 virtual 8086 mode, kernel attack surface",
    "vm86old": "x86 virtual 8086 mode, kernel attack surface",
    "iopl": "raw I/O port access",
    "ioperm": "raw I/O port access",
}

# ptrace was a container escape before 4.8 (seccomp could be bypassed through it).
PTRACE_UNSAFE_BEFORE = (4, 8)


def _kernel_version() -> tuple[int, int]:
    try:
        major, minor = os.uname().release.split(".")[:2]
        return int(major), int("".join(c for c in minor if c.isdigit()) or 0)
    except ValueError:
        return (0, 0)


def _architectures() -> list[str]:
    machine = os.uname().machine.lower()
    if machine in ("x86_64", "amd64"):
        return ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    if machine in ("aarch64", "arm64"):
        return ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
    if machine.startswith("arm"):
        return ["SCMP_ARCH_ARM"]
    if machine == "ppc64le":
        return ["SCMP_ARCH_PPC64LE"]
    if machine == "s390x":
        return ["SCMP_ARCH_S390X", "SCMP_ARCH_S390"]
    if machine == "riscv64":
        return ["SCMP_ARCH_RISCV64"]
    return []


def default_profile() -> dict[str, Any]:
    """The OCI ``linux.seccomp`` object for an unprivileged container."""
    denied = sorted(DENIED)
    if _kernel_version() < PTRACE_UNSAFE_BEFORE:
        denied.append("ptrace")
    syscalls: list[dict[str, Any]] = [
        {"names": denied, "action": "SCMP_ACT_ERRNO", "errnoRet": EPERM},
        # User namespaces: a new one grants a full capability set inside it, which is
        # how most recent container escapes start; Docker denies them too.
        {"names": ["unshare"], "action": "SCMP_ACT_ERRNO", "errnoRet": EPERM,
         "args": [{"index": 0, "value": CLONE_NEWUSER, "valueTwo": CLONE_NEWUSER,
                   "op": "SCMP_CMP_MASKED_EQ"}]},
    ]
    if os.uname().machine.lower().startswith("s390"):
        clone_flags_index = 1  # s390 swaps clone's first two arguments
    else:
        clone_flags_index = 0
    syscalls.append(
        {"names": ["clone"], "action": "SCMP_ACT_ERRNO", "errnoRet": EPERM,
         "args": [{"index": clone_flags_index, "value": CLONE_NEWUSER, "valueTwo": CLONE_NEWUSER,
                   "op": "SCMP_CMP_MASKED_EQ"}]})
    # clone3 passes its flags in a struct seccomp cannot read: answer ENOSYS so that
    # libc falls back to clone(2), which the rule above can inspect (as Docker does).
    syscalls.append({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": ENOSYS})
    profile: dict[str, Any] = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": syscalls}
    arches = _architectures()
    if arches:
        profile["architectures"] = arches
    return profile
