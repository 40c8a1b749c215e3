"""``info``: Docker's layout of the engine's ``SystemInfo`` (``engine/info``), or a
``--format`` template over it. Its own module: ``system_cmds`` imports the engine a
``df`` or a prune needs, which ``info`` does not."""

from __future__ import annotations

from typing import Any

import click


@click.command("info")
@click.option("-f", "--format", "fmt", default=None, help="Format the output using the given Go template")
@click.pass_obj
def info_cmd(state: Any, fmt: str | None) -> None:
    """Display system-wide information."""
    from forklift.engine.info import info

    doc = info(state.store)
    if fmt:
        click.echo(_info_template(fmt, doc))
        return
    click.echo("\n".join(_info_lines(doc)))
    for warning in doc["Warnings"] or []:
        click.echo(warning, err=True)


def _info_template(fmt: str, doc: dict[str, Any]) -> str:
    """``info --format``: a template that does not parse exits 64, as Docker's does."""
    from forklift.cli.format import TemplateError, render
    from forklift.errors import InspectTemplateError
    from forklift.gotemplate import Struct

    try:
        return render(fmt, Struct(doc, go_type="system.info"))
    except TemplateError as exc:
        raise InspectTemplateError(f"template parsing error: {exc.detail}") from None


def _info_lines(d: dict[str, Any]) -> list[str]:
    """Docker 20.10's ``info`` layout; the Server is this process (no daemon)."""
    from forklift.cli.format import binary_size

    lines = ["Client:", " Context:    default", " Debug Mode: false", "",
             "Server: forklift (no daemon: every forklift process is the engine)",
             f" Containers: {d['Containers']}", f"  Running: {d['ContainersRunning']}",
             f"  Paused: {d['ContainersPaused']}", f"  Stopped: {d['ContainersStopped']}",
             f" Images: {d['Images']}", f" Server Version: {d['ServerVersion']}",
             f" Storage Driver: {d['Driver']}",
             *[f"  {k}: {v}" for k, v in d["DriverStatus"]],
             f" Logging Driver: {d['LoggingDriver']}", f" Cgroup Driver: {d['CgroupDriver']}",
             f" Cgroup Version: {d['CgroupVersion']}", " Plugins:",
             *[f"  {k}: {' '.join(v)}" for k, v in d["Plugins"].items() if v],
             f" Swarm: {d['Swarm']['LocalNodeState']}",
             f" Runtimes: {' '.join(d['Runtimes'])}", f" Default Runtime: {d['DefaultRuntime']}",
             f" Init Binary: {d['InitBinary']}",
             f" runc version: {d['RuncCommit']['ID']}", f" init version: {d['InitCommit']['ID']}",
             " Security Options:", *_security_lines(d["SecurityOptions"]),
             f" Kernel Version: {d['KernelVersion']}",
             f" Operating System: {d['OperatingSystem']}", f" OSType: {d['OSType']}",
             f" Architecture: {d['Architecture']}", f" CPUs: {d['NCPU']}",
             f" Total Memory: {binary_size(d['MemTotal'])}", f" Name: {d['Name']}",
             f" ID: {d['ID']}", f" Docker Root Dir: {d['DockerRootDir']}",
             f" Debug Mode: {str(d['Debug']).lower()}"]
    lines += [f" {label}: {d[key]}" for label, key in
              (("HTTP Proxy", "HttpProxy"), ("HTTPS Proxy", "HttpsProxy"),
               ("No Proxy", "NoProxy")) if d[key]]
    registry = d["RegistryConfig"]
    insecure = [k for k, v in registry["IndexConfigs"].items() if not v["Secure"]]
    lines += [f" Registry: {d['IndexServerAddress']}", " Labels:",
              *[f"  {label}" for label in d["Labels"]],
              f" Experimental: {str(d['ExperimentalBuild']).lower()}", " Insecure Registries:",
              *[f"  {name}" for name in [*insecure, *registry["InsecureRegistryCIDRs"]]],
              f" Live Restore Enabled: {str(d['LiveRestoreEnabled']).lower()}", ""]
    return lines


def _security_lines(options: list[str]) -> list[str]:
    """``name=seccomp,profile=default`` → ``seccomp`` and its ``Profile: default``."""
    lines = []
    for option in options:
        fields = dict(kv.partition("=")[::2] for kv in option.split(","))
        lines.append(f"  {fields.pop('name', option)}")
        lines += [f"   {k.title()}: {v}" for k, v in fields.items()]
    return lines
