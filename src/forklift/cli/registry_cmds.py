"""Registry commands: pull, push, login, logout (and ``image pull/push``)."""

from __future__ import annotations

import sys
from typing import Any

import click

from forklift import reference
from forklift.cli.common import MAX_SIZE_HELP
from forklift.engine import distribution
from forklift.errors import InvalidArgument
from forklift.registry.progress import make_reporter

_TLS_HELP = "Require HTTPS and verify certificates (false: skip verification, allow HTTP)"


def _tls(value: bool | None) -> bool | None:
    return False if value is False else None


@click.command("pull")
@click.argument("name")
@click.option("-a", "--all-tags", is_flag=True, help="Download all tagged images (not supported)")
@click.option("-q", "--quiet", is_flag=True, help="Suppress verbose output")
@click.option("--platform", default=None, help="Set platform if server is multi-platform capable")
@click.option("--tls-verify", type=bool, default=None, help=_TLS_HELP)
@click.option("--max-size", default=None, metavar="SIZE", help=MAX_SIZE_HELP)
@click.pass_obj
def pull_cmd(state: Any, name: str, all_tags: bool, quiet: bool, platform: str | None,
             tls_verify: bool | None, max_size: str | None) -> None:
    """Download an image from a registry."""
    if all_tags:
        raise InvalidArgument("pull --all-tags is not supported")
    reporter = make_reporter(quiet)
    try:
        result = distribution.pull(state.store, name, tls_verify=_tls(tls_verify),
                                   platform=platform, reporter=reporter, max_size=max_size)
    finally:
        reporter.close()
    reporter.final(_shown(result.reference))


def _shown(text: str) -> str:
    return str(reference.parse(text))


@click.command("push")
@click.argument("name")
@click.option("-a", "--all-tags", is_flag=True, help="Push all tags of an image to the repository")
@click.option("-q", "--quiet", is_flag=True, help="Suppress verbose output")
@click.option("--tls-verify", type=bool, default=None, help=_TLS_HELP)
@click.pass_obj
def push_cmd(state: Any, name: str, all_tags: bool, quiet: bool, tls_verify: bool | None) -> None:
    """Upload an image to a registry."""
    reporter = make_reporter(quiet)
    try:
        results = distribution.push(state.store, name, all_tags=all_tags,
                                    tls_verify=_tls(tls_verify), reporter=reporter)
    finally:
        reporter.close()
    if quiet:
        for r in results:
            click.echo(r.reference)


@click.command("login")
@click.argument("server", required=False)
@click.option("-u", "--username", default=None, help="Username")
@click.option("-p", "--password", default=None, help="Password")
@click.option("--password-stdin", is_flag=True, help="Take the password from stdin")
@click.option("--tls-verify", type=bool, default=None, help=_TLS_HELP)
def login_cmd(server: str | None, username: str | None, password: str | None,
              password_stdin: bool, tls_verify: bool | None) -> None:
    """Log in to a registry."""
    if password_stdin:
        if password:
            raise InvalidArgument("--password and --password-stdin are mutually exclusive")
        if not username:
            raise InvalidArgument("Must provide --username with --password-stdin")
        password = sys.stdin.read().rstrip("\r\n")
    elif password:
        click.echo("WARNING! Using --password via the CLI is insecure. Use --password-stdin.",
                   err=True)
    if not username:
        username = click.prompt("Username")
    if not password:
        password = click.prompt("Password", hide_input=True)
    click.echo(distribution.login(server, username or "", password or "", _tls(tls_verify)))


@click.command("logout")
@click.argument("server", required=False)
def logout_cmd(server: str | None) -> None:
    """Log out from a registry."""
    click.echo(distribution.logout(server))
