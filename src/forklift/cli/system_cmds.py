"""System commands (store-wide): info, check, df, prune; and image/container prune."""

from __future__ import annotations

from typing import Any

import click

from forklift.cli.common import confirm, print_deleted, print_reclaimed
from forklift.cli.format import ago, ellipsis, human_size, stamp, status_text, table
from forklift.cli.listing import Listing
from forklift.engine import system
from forklift.engine.filters import Filters
from forklift.engine.system import DiskUsage

DF = Listing({"TotalCount": "TOTAL", "Reclaimable": "RECLAIMABLE"},
             ["Type", "TotalCount", "Active", "Size", "Reclaimable"],
             go_type="*formatter.diskUsageImagesContext")


def _size(n: float) -> str:
    """Sizes as ``system df`` and prune print them (4 significant digits)."""
    return human_size(n, 4)


@click.command("check")
@click.option("--repair", is_flag=True, help="Remove what cannot be trusted and say what was removed")
@click.option("--full", is_flag=True,
              help="Also re-hash every layer blob and compare it with its extracted directory")
@click.option("--grace", type=float, default=None, metavar="SECONDS",
              help="Leave container/volume directories younger than this alone (default 60)")
@click.option("-q", "--quiet", is_flag=True, help="Print problems only, no summary")
@click.pass_obj
def check_cmd(state: Any, repair: bool, full: bool, grace: float | None, quiet: bool) -> None:
    """Verify the store: blobs, layers, images, tags, containers, volumes, scratch."""
    result = system.check(state.store, repair=repair, full=full, grace=grace)
    for line in result.problems:
        click.echo(line)
    for line in result.repaired:
        click.echo(f"repaired: {line}")
    if repair and result.repaired:
        for line in result.remaining:
            click.echo(f"remaining: {line}")
    if not quiet:
        c = result.counts
        summary = (f"checked {c.get('blobs', 0)} blobs, {c.get('layers', 0)} layers,"
                   f" {c.get('images', 0)} images, {c.get('tags', 0)} tags,"
                   f" {c.get('containers', 0)} containers, {c.get('volumes', 0)} volumes")
        if result.remaining:
            summary += f": {len(result.remaining)} problem(s)"
        else:
            summary += ": store is consistent"
        click.echo(summary)
    if result.remaining:
        raise SystemExit(1)


@click.command("df")
@click.option("-v", "--verbose", is_flag=True, help="Show detailed information on space usage")
@click.option("--format", "fmt", default=None, help="Format output using a Go template")
@click.pass_obj
def df_cmd(state: Any, verbose: bool, fmt: str | None) -> None:
    """Show forklift disk usage."""
    usage = system.disk_usage(state.store)
    if verbose and fmt and fmt != "table":
        # Docker runs the template once over the whole usage, IDs untruncated, no newline
        click.echo(_df_template(fmt, _df_document(state.store, usage)), nl=False)
        return
    if verbose:
        _df_verbose(usage)
        return

    def reclaim(size: int, part: int, percent: bool) -> str:
        if percent and size > 0:
            return f"{_size(part)} ({part * 100 // size}%)"
        return _size(part)

    rows = [{"Type": k, "TotalCount": str(t), "Active": str(a), "Size": _size(s),
             "Reclaimable": reclaim(s, r, k != "Build Cache")} for k, t, a, s, r in usage.summary()]
    DF.print(rows, fmt=fmt)


def _df_verbose(usage: DiskUsage) -> None:
    click.echo("Images space usage:\n")
    body = []
    for img in usage.images:
        short = img.id.split(":", 1)[-1][:12]
        for name in (img.names or ["<none>:<none>"])[:1]:   # Docker shows the first name
            repo, _, tag = name.rpartition(":") if "@" not in name else (name, "", "<none>")
            if "/" in tag:  # a registry port, not a tag
                repo, tag = name, "<none>"
            body.append([repo, tag, short, ago(img.created), _size(img.size),
                         _size(img.shared_size), _size(img.size - img.shared_size),
                         str(img.containers)])
    click.echo(table(["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE", "SHARED SIZE",
                      "UNIQUE SIZE", "CONTAINERS"], body))
    click.echo("\nContainers space usage:\n")
    body = [[c.id[:12], c.image, '"' + ellipsis(c.command, 20) + '"', str(c.local_volumes),
             _size(c.size), ago(c.created), status_text(c.status), c.names]
            for c in usage.containers]
    click.echo(table(["CONTAINER ID", "IMAGE", "COMMAND", "LOCAL VOLUMES", "SIZE", "CREATED",
                      "STATUS", "NAMES"], body))
    click.echo("\nLocal Volumes space usage:\n")
    body = [[v.name, str(v.links), _size(v.size)] for v in usage.volumes]
    click.echo(table(["VOLUME NAME", "LINKS", "SIZE"], body))
    click.echo(f"\nBuild cache usage: {_size(usage.build_cache_size)}\n")
    click.echo(table(["CACHE ID", "CACHE TYPE", "SIZE", "CREATED", "LAST USED", "USAGE", "SHARED"], []))


def _df_template(fmt: str, doc: dict[str, Any]) -> str:
    """Docker's verbose ``df`` template: a ``table`` prefix dropped, no header."""
    from forklift.cli.format import TemplateError, render
    from forklift.gotemplate import Struct

    body = fmt.removeprefix("table").strip() if fmt.startswith("table") else fmt
    try:
        return render(body, Struct(doc, go_type="*formatter.diskUsageContext"))
    except TemplateError as exc:
        exc.message = f"template parsing error: {exc.detail}"
        raise


def _df_document(store: Any, usage: DiskUsage) -> dict[str, Any]:
    """``system df -v``'s data as its templates see them: Docker's image, container and
    volume rows (each image under its first name, as Docker shows it)."""
    from forklift.cli.container_cmds import ps_template_row
    from forklift.cli.volume_cmds import VOLUMES
    from forklift.cli.volume_cmds import _row as volume_row
    from forklift.engine import containers, volumes

    images = [_df_image(img) for img in usage.images]
    sizes = {c.id: c.size for c in usage.containers}
    rows = containers.list_containers(store, show_all=True)
    ctrs = [ps_template_row(store, r, True, size=human_size(sizes.get(r.id, 0))) for r in rows]
    links = {v.name: v for v in usage.volumes}
    vols = [VOLUMES.struct({**volume_row(store, v), "Links": str(links[v.name].links),
                            "Size": _size(links[v.name].size)})
            for v in volumes.list_volumes(store) if v.name in links]
    return {"Images": images, "Containers": ctrs, "Volumes": vols, "BuildCache": []}


def _df_image(img: Any) -> dict[str, str]:
    name = img.names[0] if img.names else "<none>:<none>"
    repo, _, tag = name.rpartition(":")
    if "/" in tag or "@" in name:
        repo, tag = name, "<none>"
    return {"Containers": str(img.containers), "CreatedAt": stamp(img.created),
            "CreatedSince": ago(img.created), "Digest": "", "ID": img.id, "Repository": repo,
            "SharedSize": _size(img.shared_size), "Size": human_size(img.size),
            "Tag": tag, "UniqueSize": _size(img.size - img.shared_size),
            "VirtualSize": _size(img.size)}


_SYSTEM_WARNING = "WARNING! This will remove:"


@click.command("prune")
@click.option("-a", "--all", "all_images", is_flag=True, help="Remove all unused images not just dangling ones")
@click.option("--volumes", is_flag=True, help="Prune anonymous volumes")
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation")
@click.option("--filter", "filters", multiple=True, help="Provide filter values (until=…, label=…)")
@click.pass_obj
def system_prune_cmd(state: Any, all_images: bool, volumes: bool, force: bool,
                     filters: tuple[str, ...]) -> None:
    """Remove unused data."""
    wanted = Filters.parse(filters)
    system.check_prune_filters("system", wanted, volumes)
    items = ["all stopped containers", "all networks not used by at least one container"]
    if volumes:
        items.append("all anonymous volumes not used by at least one container")
    if all_images:
        items += ["all images without at least one container associated to them",
                  "all build cache"]
    else:
        items += ["all dangling images", "unused build cache"]
    warning = _SYSTEM_WARNING + "\n" + "\n".join(f"  - {i}" for i in items) + "\n"
    if not confirm(warning, force):
        return
    result = system.prune_system(state.store, all_images=all_images, volumes=volumes,
                                 filters=wanted)
    print_deleted("Deleted Containers:", result.containers.deleted)
    print_deleted("Deleted Networks:", result.networks.deleted)
    print_deleted("Deleted Volumes:", result.volumes.deleted if result.volumes else [])
    print_deleted("Deleted Images:", result.images.deleted)
    print_reclaimed(result.reclaimed)


@click.command("prune")
@click.option("-a", "--all", "all_images", is_flag=True, help="Remove all unused images, not just dangling ones")
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation")
@click.option("--filter", "filters", multiple=True, help="Provide filter values (until=…, label=…)")
@click.pass_obj
def image_prune_cmd(state: Any, all_images: bool, force: bool, filters: tuple[str, ...]) -> None:
    """Remove unused images."""
    wanted = Filters.parse(filters)
    system.check_prune_filters("images", wanted)
    warning = ("WARNING! This will remove all images without at least one container associated to them."
               if all_images else "WARNING! This will remove all dangling images.")
    if not confirm(warning, force):
        return
    result = system.prune_images(state.store, all_images=all_images, filters=wanted)
    print_deleted("Deleted Images:", result.deleted)
    print_reclaimed(result.reclaimed)


@click.command("prune")
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation")
@click.option("--filter", "filters", multiple=True, help="Provide filter values (until=…, label=…)")
@click.pass_obj
def container_prune_cmd(state: Any, force: bool, filters: tuple[str, ...]) -> None:
    """Remove all stopped containers."""
    wanted = Filters.parse(filters)
    system.check_prune_filters("containers", wanted)
    if not confirm("WARNING! This will remove all stopped containers.", force):
        return
    result = system.prune_containers(state.store, wanted)
    print_deleted("Deleted Containers:", result.deleted)
    print_reclaimed(result.reclaimed)


@click.command("service")
@click.option("--socket", "address", default=None, metavar="unix:///PATH",
              help="Where to listen (default: unix:///run/forklift/docker.sock unless --tcp "
                   "is given; give both for both)")
@click.option("--tcp", default=None, metavar="HOST:PORT",
              help="Also (or only) listen on TCP, with TLS client verification")
@click.option("--tlsverify", is_flag=True, help="Require client certificates (needed with --tcp)")
@click.option("--tlscacert", default=None, metavar="FILE", help="CA that client certificates come from")
@click.option("--tlscert", default=None, metavar="FILE", help="The service's TLS certificate")
@click.option("--tlskey", default=None, metavar="FILE", help="The service's TLS key")
@click.option("-t", "--time", "idle", type=float, default=5.0, show_default=True,
              metavar="SECONDS", help="Exit after this long without a connection (0: never)")
@click.option("--group", default=None, help="Group that may use the socket (mode 0660)")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"]), help="Service log level")
@click.pass_obj
def service_cmd(state: Any, address: str | None, tcp: str | None, tlsverify: bool,
                tlscacert: str | None, tlscert: str | None, tlskey: str | None, idle: float,
                group: str | None, log_level: str) -> None:
    """Serve the Docker Engine API on a unix socket and/or TCP with TLS, in the foreground."""
    import logging
    import os
    import sys

    from forklift.api.server import parse_address
    from forklift.api.service import Service

    tcp_options = _tcp_options(tcp, tlsverify, tlscacert, tlscert, tlskey)
    if address is None and tcp is None:
        address = "unix:///run/forklift/docker.sock"
    logging.basicConfig(level=log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(message)s")
    service = Service(state.root, parse_address(address) if address else None, idle=idle,
                      group=group, tcp=tcp_options)
    for where in (address, tcp and f"tcp://{tcp.removeprefix('tcp://')} (TLS)"):
        if where:
            logging.getLogger("forklift.api").info("listening on %s", where)
    service.serve()
    sys.stdout.flush()
    sys.stderr.flush()
    # Worker threads still blocked in a wait or a log follow must not hold the exit; the
    # store needs no teardown (every change is its own transaction).
    os._exit(0)


def _tcp_options(tcp: str | None, tlsverify: bool, cacert: str | None, cert: str | None,
                 key: str | None) -> Any:
    """--tcp only with --tlsverify and all three files (no API open to anyone who can
    reach the port), and those only with --tcp."""
    if tcp is None:
        if tlsverify or cacert or cert or key:
            raise click.UsageError("--tlsverify, --tlscacert, --tlscert and --tlskey go with --tcp")
        return None
    if not (tlsverify and cacert and cert and key):
        raise click.UsageError("--tcp needs --tlsverify, --tlscacert, --tlscert and --tlskey: "
                               "the API is root on this machine, so TCP is served only to "
                               "clients with a certificate from that CA")
    from forklift.api.tls import TcpOptions, parse_tcp

    parse_tcp(tcp)
    return TcpOptions(tcp, cacert, cert, key)
