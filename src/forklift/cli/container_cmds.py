"""Container commands: run, create, start, ps, rm, diff, commit, export, inspect."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import Any

import click

from forklift.cli import fast
from forklift.cli.common import for_each, inspect_each
from forklift.cli.format import ago, ellipsis, human_size, short_id, stamp, status_text
from forklift.cli.listing import LABELS, Listing
from forklift.cli.run_body import daemon_error
from forklift.engine import containers
from forklift.engine.containers import ContainerRow
from forklift.errors import InvalidArgument, NotFound

RUN_CONTEXT = {"allow_interspersed_args": False, "help_option_names": ["--help"]}


def _create_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """The flags shared by ``create`` and ``run``."""
    options = [
        click.option("--name", default=None, help="Assign a name to the container"),
        click.option("--entrypoint", default=None, help="Overwrite the default ENTRYPOINT of the image"),
        click.option("-e", "--env", multiple=True, help="Set environment variables"),
        click.option("--env-file", multiple=True, help="Read in a file of environment variables"),
        click.option("-w", "--workdir", default=None, help="Working directory inside the container"),
        click.option("-u", "--user", default=None, help="Username or UID (format: <name|uid>[:<group|gid>])"),
        click.option("-h", "--hostname", default=None, help="Container host name"),
        click.option("--expose", multiple=True, help="Expose a port or a range of ports"),
        click.option("-v", "--volume", "volumes", multiple=True, help="Bind mount a volume"),
        click.option("-l", "--label", "labels", multiple=True, help="Set meta data on a container"),
        click.option("--network", "--net", "network", default="bridge", help="Connect a container to a network (bridge, host, none)"),
        click.option("--read-only", is_flag=True, help="Mount the container's root filesystem as read only"),
        click.option("--stop-signal", default=None, help="Signal to stop the container"),
        click.option("--rm", "auto_remove", is_flag=True, help="Automatically remove the container when it exits"),
        click.option("-t", "--tty", is_flag=True, help="Allocate a pseudo-TTY"),
        click.option("-i", "--interactive", is_flag=True, help="Keep STDIN open even if not attached"),
        click.option("--privileged", is_flag=True, help="Give extended privileges to this container"),
        click.option("--cap-add", multiple=True, help="Add Linux capabilities"),
        click.option("--cap-drop", multiple=True, help="Drop Linux capabilities"),
        click.option("--security-opt", multiple=True, help="Security options (no-new-privileges, seccomp=unconfined|PROFILE.json)"),
        click.option("--runtime", default="runc", help="Runtime to use for this container (runc)"),
        click.option("--pull", default="missing", help='Pull image before running ("always"|"missing"|"never")'),
        click.option("-p", "--publish", multiple=True, help="Publish a container's port(s) to the host"),
        click.option("-P", "--publish-all", is_flag=True, help="Publish all exposed ports to random ports"),
        click.option("--dns", multiple=True, help="Set custom DNS servers"),
        click.option("--add-host", "add_hosts", multiple=True, help="Add a custom host-to-IP mapping (host:ip)"),
        click.option("-m", "--memory", default=None, help="Memory limit"),
        click.option("--memory-swap", default=None, help="Swap limit equal to memory plus swap: '-1' to enable unlimited swap"),
        click.option("--cpus", type=float, default=None, help="Number of CPUs"),
        click.option("-c", "--cpu-shares", type=int, default=None, help="CPU shares (relative weight)"),
        click.option("--cpuset-cpus", default=None, help="CPUs in which to allow execution (0-3, 0,1)"),
        click.option("--pids-limit", type=int, default=None, help="Tune container pids limit"),
        click.option("--ulimit", "ulimits", multiple=True, help="Ulimit options"),
        click.option("--mount", "mounts", multiple=True, help="Attach a filesystem mount to the container"),
        click.option("--tmpfs", multiple=True, help="Mount a tmpfs directory"),
        click.option("--volumes-from", multiple=True, help="Mount volumes from the specified container(s)"),
        click.option("--restart", default=None, help="Restart policy to apply when a container exits (no, on-failure[:max-retries], always, unless-stopped)"),
        click.option("--health-cmd", default=None, help="Command to run to check health"),
        click.option("--health-interval", default=None, help="Time between running the check (ms|s|m|h) (default 0s)"),
        click.option("--health-timeout", default=None, help="Maximum time to allow one check to run (ms|s|m|h) (default 0s)"),
        click.option("--health-retries", type=int, default=None, help="Consecutive failures needed to report unhealthy"),
        click.option("--health-start-period", default=None, help="Start period for the container to initialize before starting health-retries countdown (ms|s|m|h) (default 0s)"),
        click.option("--no-healthcheck", is_flag=True, help="Disable any container-specified HEALTHCHECK"),
        click.option("--init", is_flag=True, help="Run an init inside the container that forwards signals and reaps processes"),
        # issue 13: the rarer flags (forklift.engine.runflags)
        click.option("--cidfile", default=None, help="Write the container ID to the file"),
        click.option("--label-file", multiple=True, help="Read in a line delimited file of labels"),
        click.option("--stop-timeout", type=int, default=None, help="Timeout (in seconds) to stop a container"),
        click.option("--shm-size", default=None, help="Size of /dev/shm"),
        click.option("--sysctl", "sysctls", multiple=True, help="Sysctl options"),
        click.option("--dns-search", multiple=True, help="Set custom DNS search domains"),
        click.option("--dns-option", "dns_options", multiple=True, help="Set DNS options"),
        click.option("--domainname", default=None, help="Container NIS domain name"),
        click.option("--group-add", multiple=True, help="Add additional groups to join"),
        click.option("--oom-kill-disable", is_flag=True, default=None, help="Disable OOM Killer"),
        click.option("--oom-score-adj", type=int, default=None, help="Tune host's OOM preferences (-1000 to 1000)"),
        click.option("--memory-reservation", default=None, help="Memory soft limit"),
        click.option("--memory-swappiness", type=int, default=None, help="Tune container memory swappiness (0 to 100) (default -1)"),
        click.option("--cpu-period", type=int, default=None, help="Limit CPU CFS (Completely Fair Scheduler) period"),
        click.option("--cpu-quota", type=int, default=None, help="Limit CPU CFS (Completely Fair Scheduler) quota"),
        click.option("--cpuset-mems", default=None, help="MEMs in which to allow execution (0-3, 0,1)"),
        click.option("--blkio-weight", type=int, default=None, help="Block IO (relative weight), between 10 and 1000, or 0 to disable (default 0)"),
        click.option("--blkio-weight-device", multiple=True, help="Block IO weight (relative device weight)"),
        click.option("--device-read-bps", multiple=True, help="Limit read rate (bytes per second) from a device"),
        click.option("--device-write-bps", multiple=True, help="Limit write rate (bytes per second) to a device"),
        click.option("--device-read-iops", multiple=True, help="Limit read rate (IO per second) from a device"),
        click.option("--device-write-iops", multiple=True, help="Limit write rate (IO per second) to a device"),
        click.option("--device", "devices", multiple=True, help="Add a host device to the container"),
        click.option("--device-cgroup-rule", "device_cgroup_rules", multiple=True, help="Add a rule to the cgroup allowed devices list"),
        click.option("--pid", default=None, help="PID namespace to use (host, container:NAME)"),
        click.option("--ipc", default=None, help="IPC mode to use (host, container:NAME, private, shareable)"),
        click.option("--uts", default=None, help="UTS namespace to use (host)"),
        click.option("--cgroupns", default=None, help="Cgroup namespace to use (host|private)"),
        click.option("-q", "--quiet", is_flag=True, help="Suppress the pull output"),
        click.option("--log-driver", default=None, help="Logging driver for the container (json-file, local, none)"),
        click.option("--log-opt", "log_opts", multiple=True, help="Log driver options (max-size, max-file)"),
        click.option("-a", "--attach", multiple=True, help="Attach to STDIN, STDOUT or STDERR"),
        click.option("--sig-proxy", type=bool, default=None, help="Proxy received signals to the process (default true)"),
        click.option("--detach-keys", default=None, help="Override the key sequence for detaching a container"),
        click.option("--ip", default=None, help="IPv4 address (e.g., 172.30.100.104)"),
        click.option("--network-alias", "network_aliases", multiple=True, help="Add network-scoped alias for the container"),
        click.option("--link", "links", multiple=True, help="Add link to another container"),
        click.option("--cgroup-parent", default=None, help="Optional parent cgroup for the container (not supported)"),
        click.option("--platform", default=None, help="Set platform if server is multi-platform capable"),
        # what this host has (forklift.engine.extraflags)
        click.option("--cpu-rt-period", type=int, default=None, help="Limit CPU real-time period in microseconds"),
        click.option("--cpu-rt-runtime", type=int, default=None, help="Limit CPU real-time runtime in microseconds"),
        click.option("--gpus", default=None, help="GPU devices to add to the container (none on this host)"),
        click.option("--isolation", default=None, help="Container isolation technology (default)"),
        click.option("--kernel-memory", default=None, help="Kernel memory limit (deprecated, ignored)"),
        click.option("--link-local-ip", "link_local_ips", multiple=True, help="Container IPv4 link-local addresses"),
        click.option("--mac-address", default=None, help="Container MAC address (e.g., 92:d0:c6:0a:29:33)"),
        click.option("--storage-opt", "storage_opts", multiple=True, help="Storage driver options for the container"),
        click.option("--userns", default=None, help="User namespace to use (host)"),
        click.option("--volume-driver", default=None, help="Optional volume driver for the container (local)"),
        click.option("--ip6", default=None, help="IPv6 address (e.g., 2001:db8::33)"),
        click.option("--disable-content-trust", is_flag=True, help="Skip image verification (default true)"),
    ]
    for option in reversed(options):
        f = option(f)
    return f


@click.command("run", context_settings=RUN_CONTEXT)
@_create_options
@click.option("-d", "--detach", is_flag=True, help="Run container in background and print container ID")
@click.argument("image")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.pass_obj
def run_cmd(state: Any, image: str, command: tuple[str, ...], detach: bool, **kw: Any) -> None:
    """Create and run a new container from an image."""
    fast.run(state, image, command, detach=detach, **kw)


@click.command("create", context_settings=RUN_CONTEXT)
@_create_options
@click.argument("image")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.pass_obj
def create_cmd(state: Any, image: str, command: tuple[str, ...], **kw: Any) -> None:
    """Create a new container."""
    fast.create(state, image, command, **kw)


@click.command("start")
@click.argument("names", nargs=-1, required=True, metavar="CONTAINERS...")
@click.option("-a", "--attach", is_flag=True, help="Attach STDOUT/STDERR and forward signals")
@click.option("-i", "--interactive", is_flag=True, help="Attach container's STDIN")
@click.pass_obj
def start_cmd(state: Any, names: tuple[str, ...], attach: bool, interactive: bool) -> None:
    """Start one or more stopped containers (attached: foreground until it exits)."""
    if not attach:
        from forklift.engine import lifecycle  # not on the hot path of run and ps

        for_each(names,
                 lambda n: daemon_error(functools.partial(lifecycle.start, state.store, n)),
                 summary="failed to start containers")
        return
    if len(names) > 1:
        raise InvalidArgument("you cannot start and attach multiple containers at once")
    stdin = sys.stdin if interactive else open("/dev/null", "rb")  # noqa: SIM115
    raise SystemExit(daemon_error(lambda: containers.start(state.store, names[0], stdin=stdin)))


@click.command("ls")
@click.option("-a", "--all", "show_all", is_flag=True, help="Show all containers (default shows just running)")
@click.option("-q", "--quiet", is_flag=True, help="Only display container IDs")
@click.option("--no-trunc", is_flag=True, help="Don't truncate output")
@click.option("-l", "--latest", is_flag=True, help="Show the latest created container")
@click.option("-n", "--last", type=int, default=-1, help="Show n last created containers")
@click.option("--format", "fmt", default=None, help="Format output using a Go template")
@click.option("-f", "--filter", "filters", multiple=True, help="Filter output based on conditions provided (id, name, label=KEY[=VALUE], exited=CODE, status=STATE, ancestor=IMAGE, before/since=CONTAINER, volume, network, publish/expose=PORT[/PROTO], health, is-task)")
@click.option("-s", "--size", is_flag=True, help="Display total file sizes")
@click.pass_obj
def ps_cmd(state: Any, show_all: bool, quiet: bool, no_trunc: bool, latest: bool, last: int,
           fmt: str | None, filters: tuple[str, ...], size: bool) -> None:
    """List containers."""
    from forklift.engine.filters import Filters  # only ps and the prunes parse filters

    if latest:
        last = 1
    rows = containers.list_containers(state.store, show_all or last > 0, Filters.parse(filters))
    if last > 0:
        rows = rows[:last]
    # Docker's CLI asks for sizes when the template uses them ({{json .}} does)
    size = size and not quiet or bool(fmt and ("Size" in fmt or "json" in fmt))
    columns = [*PS.columns, "Size"] if size else None
    shown = [_ps_row(r, no_trunc, state.store if size else None) for r in rows]
    if fmt and not quiet:
        shown = [{**row, **_ps_attachments(state.store, r, no_trunc)} for row, r in zip(shown, rows, strict=True)]
    PS.print(shown, quiet=quiet, fmt=fmt, columns=columns)


PS = Listing({"ID": "CONTAINER ID", "RunningFor": "CREATED", "CreatedAt": "CREATED AT"},
             ["ID", "Image", "Command", "RunningFor", "Status", "Ports", "Names"],
             parse_error="failed to parse template", label_method=True,
             go_type="*formatter.ContainerContext", exec_error="failed to execute template")


def _ps_row(r: ContainerRow, no_trunc: bool, sized: Any = None) -> dict[str, Any]:
    """A ps row; with ``sized`` (the store) its SIZE column, else Docker's unasked 0B."""
    size_text = "0B"
    if sized is not None:
        from forklift.engine.sizes import container_sizes

        size_rw, size_root = container_sizes(sized, r.record)
        size_text = human_size(size_rw)
        if size_root > 0:
            size_text += f" (virtual {human_size(size_root)})"
    image = r.image
    if image.startswith("sha256:") and image == r.record.image_id:
        image = short_id(image, no_trunc)
    command = r.command if no_trunc else ellipsis(r.command, 20)
    labels = r.record.config.get("Labels") or {}
    return {"ID": short_id(r.id, no_trunc), "Image": image,
            "Command": json.dumps(command, ensure_ascii=False), "CreatedAt": stamp(r.created),
            "RunningFor": ago(r.created), "Status": status_text(r.status),
            "State": r.status.state, "Ports": r.ports, "Names": r.names,
            "Labels": ",".join(f"{k}={v}" for k, v in labels.items()), "Size": size_text,
            LABELS: labels}


def ps_template_row(store: Any, r: ContainerRow, no_trunc: bool, size: str) -> Any:
    """A container as ``ps``'s templates see it, with ``size`` as its Size (``system df
    -v`` shows these rows)."""
    return PS.struct({**_ps_row(r, no_trunc), **_ps_attachments(store, r, no_trunc),
                      "Size": size})


def _ps_attachments(store: Any, r: ContainerRow, no_trunc: bool) -> dict[str, str]:
    """``.Mounts`` (each cut to 15 characters unless --no-trunc), ``.LocalVolumes``,
    ``.Networks``, read only when a template is given."""
    from forklift.engine.rows import attachments

    found = attachments(store, r.record)
    names = found.mounts if no_trunc else [ellipsis(m, 15) for m in found.mounts]
    return {"Mounts": ",".join(names), "LocalVolumes": str(found.local_volumes),
            "Networks": ",".join(found.networks)}


@click.command("rm")
@click.argument("names", nargs=-1, required=True, metavar="CONTAINERS...")
@click.option("-f", "--force", is_flag=True, help="Force the removal of a running container (uses SIGKILL)")
@click.option("-v", "--volumes", is_flag=True, help="Remove anonymous volumes associated with the container")
@click.pass_obj
def rm_cmd(state: Any, names: tuple[str, ...], force: bool, volumes: bool) -> None:
    """Remove one or more containers."""
    for_each(names, lambda n: containers.remove(state.store, n, force=force, volumes=volumes),
             forgive_missing=force)


@click.command("diff")
@click.argument("container")
@click.pass_obj
def diff_cmd(state: Any, container: str) -> None:
    """Inspect changes to files or directories on a container's filesystem."""
    fast.diff(state, container)


@click.command("commit")
@click.argument("container")
@click.argument("repository", required=False)
@click.option("-a", "--author", default="", help='Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")')
@click.option("-c", "--change", "changes", multiple=True, help="Apply Dockerfile instruction to the created image")
@click.option("-m", "--message", default="", help="Commit message")
@click.option("-p", "--pause", type=bool, default=True, help="Pause container during commit (default true)")
@click.pass_obj
def commit_cmd(state: Any, container: str, repository: str | None, author: str,
               changes: tuple[str, ...], message: str, pause: bool) -> None:
    """Create a new image from a container's changes."""
    image_id = containers.commit(state.store, container, repository, message=message,
                                 author=author, changes=list(changes), pause=pause)
    click.echo(image_id)


@click.command("export")
@click.argument("container")
@click.option("-o", "--output", default=None, help="Write to a file, instead of STDOUT")
@click.pass_obj
def export_cmd(state: Any, container: str, output: str | None) -> None:
    """Export a container's filesystem as a tar archive."""
    fast.export(state, container, output)


@click.command("inspect")
@click.argument("names", nargs=-1, required=True, metavar="CONTAINERS...")
@click.option("-f", "--format", "fmt", default=None, help="Format output using a Go template")
@click.option("-s", "--size", is_flag=True, help="Display total file sizes")
@click.pass_obj
def container_inspect_cmd(state: Any, names: tuple[str, ...], fmt: str | None, size: bool) -> None:
    """Display detailed information on one or more containers."""
    inspect_each(names, lambda c: _container_doc(state.store, c, size), fmt)


def _container_doc(store: Any, name: str, size: bool) -> dict[str, Any]:
    if not size:
        return containers.inspect(store, name)
    from forklift.engine import sizes  # walks the container's layer: only for -s

    return sizes.inspect(store, name)


@click.command("inspect")
@click.argument("names", nargs=-1, required=True)
@click.option("-f", "--format", "fmt", default=None, help="Format output using a Go template")
@click.option("--type", "kind", type=click.Choice(["container", "image"]), default=None)
@click.option("-s", "--size", is_flag=True, help="Display total file sizes if the type is container")
@click.pass_obj
def inspect_cmd(state: Any, names: tuple[str, ...], fmt: str | None, kind: str | None,
                size: bool) -> None:
    """Return low-level information on containers or images."""
    from forklift.engine import images as image_engine  # not on the hot path of run and ps

    def lookup(name: str) -> dict[str, Any]:
        if kind in (None, "container"):
            try:
                return _container_doc(state.store, name, size)
            except NotFound:
                pass
        if kind in (None, "image"):
            try:
                return image_engine.inspect(state.store, name)
            except NotFound:
                pass
        raise NotFound(f"No such object: {name}")

    inspect_each(names, lookup, fmt)
