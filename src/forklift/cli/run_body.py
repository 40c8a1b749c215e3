"""The bodies of ``run`` and ``create``, without click: the click commands
(cli/container_cmds.py) and the click-free entry point (cli/fast.py) both call them, so a
fix lands on both paths. `CREATE_DEFAULTS` is every option's value when the line does not
give it, as click's ``run``/``create`` have them; tests/unit/test_cli_fast.py fails when the
two drift (a flag added to click and not here)."""

from __future__ import annotations

import sys

from forklift.errors import EngineError, ForkliftError

TYPE_CHECKING = False  # not typing's: its import (and re's) is on the hot paths
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

# The options of create (and run), by kind: flags default to False, repeatable options to
# (), the three in _SET to their value, everything else to None.
_FLAGS = ("read_only", "auto_remove", "tty", "interactive", "privileged", "publish_all",
          "no_healthcheck", "init", "quiet", "disable_content_trust")
_MULTIPLE = ("env", "env_file", "expose", "volumes", "labels", "cap_add", "cap_drop",
             "security_opt", "publish", "dns", "add_hosts", "ulimits", "mounts", "tmpfs",
             "volumes_from", "label_file", "sysctls", "dns_search", "dns_options", "group_add",
             "blkio_weight_device", "device_read_bps", "device_write_bps", "device_read_iops",
             "device_write_iops", "devices", "device_cgroup_rules", "log_opts", "attach",
             "network_aliases", "links", "link_local_ips", "storage_opts")
_SET = {"network": "bridge", "runtime": "runc", "pull": "missing"}
_NONE = ("name", "entrypoint", "workdir", "user", "hostname", "stop_signal", "memory",
         "memory_swap", "cpus", "cpu_shares", "cpuset_cpus", "pids_limit", "restart",
         "health_cmd", "health_interval", "health_timeout", "health_retries",
         "health_start_period", "cidfile", "stop_timeout", "shm_size", "domainname",
         "oom_kill_disable", "oom_score_adj", "memory_reservation", "memory_swappiness",
         "cpu_period", "cpu_quota", "cpuset_mems", "blkio_weight", "pid", "ipc", "uts",
         "cgroupns", "log_driver", "sig_proxy", "detach_keys", "ip", "cgroup_parent",
         "platform", "cpu_rt_period", "cpu_rt_runtime", "gpus", "isolation", "kernel_memory",
         "mac_address", "userns", "volume_driver", "ip6")
CREATE_DEFAULTS: dict[str, Any] = {**dict.fromkeys(_FLAGS, False),
                                   **dict.fromkeys(_MULTIPLE, ()), **_SET,
                                   **dict.fromkeys(_NONE)}


def run(state: Any, image: str, command: tuple[str, ...], detach: bool, **kw: Any) -> None:
    from forklift.engine import containers

    opts = _opts(kw)
    if detach and kw["attach"]:
        raise EngineError("Conflicting options: -a and -d")  # 125, as Docker
    _pull(state, image, kw)
    if detach:
        rec = daemon_error(lambda: containers.create(state.store, image, list(command), opts))
        _warn(opts)
        daemon_error(lambda: containers.start_detached(state.store, rec.id))
        _echo(rec.id)
        return
    _warn(opts)
    stdin = sys.stdin if opts.interactive else open("/dev/null", "rb")  # noqa: SIM115
    code = daemon_error(lambda: containers.run(state.store, image, list(command), opts,
                                                stdin=stdin))
    raise SystemExit(code)


def create(state: Any, image: str, command: tuple[str, ...], **kw: Any) -> None:
    from forklift.engine import containers

    _pull(state, image, kw)
    opts = _opts(kw)
    rec = daemon_error(lambda: containers.create(state.store, image, list(command), opts,
                                                 volumes=True))
    _warn(opts)
    _echo(rec.id)


def _echo(line: str, err: bool = False) -> None:
    """click.echo's plain text: the line, flushed."""
    stream = sys.stderr if err else sys.stdout
    stream.write(line + "\n")
    stream.flush()


def _opts(kw: dict[str, Any]) -> Any:
    from forklift.engine.containers import CreateOptions

    return CreateOptions(
        name=kw["name"], entrypoint=kw["entrypoint"], env=list(kw["env"]),
        env_files=list(kw["env_file"]), workdir=kw["workdir"], user=kw["user"],
        hostname=kw["hostname"], expose=list(kw["expose"]), volumes=list(kw["volumes"]),
        labels=list(kw["labels"]), network=kw["network"], read_only=kw["read_only"],
        stop_signal=kw["stop_signal"], auto_remove=kw["auto_remove"], tty=kw["tty"],
        interactive=kw["interactive"], publish=list(kw["publish"]),
        publish_all=kw["publish_all"], dns=list(kw["dns"]), add_hosts=list(kw["add_hosts"]),
        memory=kw["memory"], memory_swap=kw["memory_swap"], cpus=kw["cpus"],
        cpu_shares=kw["cpu_shares"], cpuset_cpus=kw["cpuset_cpus"],
        pids_limit=kw["pids_limit"], ulimits=list(kw["ulimits"]), mounts=list(kw["mounts"]),
        tmpfs=list(kw["tmpfs"]), volumes_from=list(kw["volumes_from"]),
        privileged=kw["privileged"], cap_add=list(kw["cap_add"]), cap_drop=list(kw["cap_drop"]),
        security_opt=list(kw["security_opt"]), init=kw["init"], restart=kw["restart"],
        health_cmd=kw["health_cmd"], health_interval=kw["health_interval"],
        health_timeout=kw["health_timeout"], health_retries=kw["health_retries"],
        health_start_period=kw["health_start_period"], no_healthcheck=kw["no_healthcheck"],
        run_flags=_run_flags(kw))


_RUN_FLAGS = ("cidfile", "label_file", "stop_timeout", "shm_size", "sysctls", "dns_search",
              "dns_options", "domainname", "group_add", "oom_kill_disable", "oom_score_adj",
              "memory_reservation", "memory_swappiness", "cpu_period", "cpu_quota",
              "cpuset_mems", "blkio_weight", "blkio_weight_device", "device_read_bps",
              "device_write_bps", "device_read_iops", "device_write_iops", "devices",
              "device_cgroup_rules", "pid", "ipc", "uts", "cgroupns", "log_driver", "log_opts",
              "attach", "sig_proxy", "detach_keys", "ip", "network_aliases", "links", "cgroup_parent",
              "cpu_rt_period", "cpu_rt_runtime", "gpus", "isolation", "kernel_memory",
              "link_local_ips", "mac_address", "storage_opts", "userns", "volume_driver", "ip6")


def _run_flags(kw: dict[str, Any]) -> Any:
    """The rarer flags' values; None when none is given (a plain ``run`` never loads them)."""
    if kw["sig_proxy"] is not False and all(
            kw[k] is None or kw[k] is False or kw[k] == () for k in _RUN_FLAGS):
        return None
    from forklift.engine.runflags import RunFlags

    return RunFlags(
        cidfile=kw["cidfile"], label_files=list(kw["label_file"]), stop_timeout=kw["stop_timeout"],
        shm_size=kw["shm_size"], sysctls=list(kw["sysctls"]), dns_search=list(kw["dns_search"]),
        dns_options=list(kw["dns_options"]), domainname=kw["domainname"],
        group_add=list(kw["group_add"]), oom_kill_disable=kw["oom_kill_disable"],
        oom_score_adj=kw["oom_score_adj"], memory_reservation=kw["memory_reservation"],
        memory_swappiness=kw["memory_swappiness"], cpu_period=kw["cpu_period"],
        cpu_quota=kw["cpu_quota"], cpuset_mems=kw["cpuset_mems"],
        blkio_weight=kw["blkio_weight"], blkio_weight_device=list(kw["blkio_weight_device"]),
        device_read_bps=list(kw["device_read_bps"]), device_write_bps=list(kw["device_write_bps"]),
        device_read_iops=list(kw["device_read_iops"]),
        device_write_iops=list(kw["device_write_iops"]), devices=list(kw["devices"]),
        device_cgroup_rules=list(kw["device_cgroup_rules"]), pid=kw["pid"], ipc=kw["ipc"],
        uts=kw["uts"], cgroupns=kw["cgroupns"], log_driver=kw["log_driver"],
        log_opts=list(kw["log_opts"]), attach=list(kw["attach"]), sig_proxy=kw["sig_proxy"],
        detach_keys=kw["detach_keys"], ip=kw["ip"], network_aliases=list(kw["network_aliases"]),
        links=list(kw["links"]), cgroup_parent=kw["cgroup_parent"],
        cpu_rt_period=kw["cpu_rt_period"], cpu_rt_runtime=kw["cpu_rt_runtime"], gpus=kw["gpus"],
        isolation=kw["isolation"], kernel_memory=kw["kernel_memory"],
        link_local_ips=list(kw["link_local_ips"]), mac_address=kw["mac_address"],
        storage_opts=list(kw["storage_opts"]), userns=kw["userns"],
        volume_driver=kw["volume_driver"], ip6=kw["ip6"])


def _pull(state: Any, image: str, kw: dict[str, Any]) -> None:
    """``--pull``, as Docker's CLI does it before it creates the container."""
    from forklift.engine import pullpolicy

    policy, platform = kw["pull"], kw["platform"]
    if not daemon_error(lambda: pullpolicy.needs_pull(state.store, image, policy, platform)):
        return
    if policy == "missing":
        _echo(f"Unable to find image '{pullpolicy.familiar(image)}' locally", err=True)
    from forklift.registry.progress import Reporter

    reporter = None if kw["quiet"] else Reporter(out=sys.stderr)
    daemon_error(lambda: pullpolicy.pull(state.store, image, platform, reporter))


def _warn(opts: Any) -> None:
    """The warnings Docker's CLI prints for a create (its flags checked first)."""
    if opts.run_flags is not None and opts.run_flags.kernel_memory:
        from forklift.engine import extraflags

        for line in daemon_error(lambda: extraflags.warnings(opts.run_flags)):
            _echo(line, err=True)


def daemon_error(fn: Callable[[], Any]) -> Any:
    """Docker exits 125 when the container could not be created or started."""
    try:
        return fn()
    except ForkliftError as exc:
        raise EngineError(exc.message) from exc
