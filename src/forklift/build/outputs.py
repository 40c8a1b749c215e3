"""``build --output``: the built image exported as BuildKit's exporters do.

``type=docker`` is ``save``'s docker-archive, ``type=oci`` its OCI archive, ``type=tar``
the image's root filesystem as one tar (what ``export`` writes for a container),
``type=local`` that filesystem written into a directory. A file or directory appears
only when it is complete (written beside it, then renamed)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from forklift.errors import InvalidArgument
from forklift.store.db import Store, remove_path

TYPES = ("docker", "oci", "tar", "local")


@dataclass(frozen=True)
class Output:
    type: str
    dest: str          # "-": standard output (tar types)


def parse(text: str) -> Output:
    """``type=…,dest=…``; a plain path is ``type=local``, ``-`` a tar on stdout."""
    if "=" not in text:
        if not text:
            raise InvalidArgument("--output needs a destination")
        return Output("tar" if text == "-" else "local", text)
    fields: dict[str, str] = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        if not sep or key not in ("type", "dest") or key in fields:
            raise InvalidArgument(f"invalid --output {text!r}: type=docker|oci|tar|local,dest=PATH")
        fields[key] = value
    kind = fields.get("type", "local")
    if kind not in TYPES:
        raise InvalidArgument(f"unsupported --output type {kind!r} (use {', '.join(TYPES)})")
    dest = fields.get("dest", "")
    if not dest:
        raise InvalidArgument(f"--output type={kind} needs dest=PATH")
    if kind == "local" and dest == "-":
        raise InvalidArgument("--output type=local cannot write to stdout (use type=tar)")
    return Output(kind, dest)


def check_dest(out: Output) -> None:
    """Refused before the build runs: a destination that cannot be written."""
    if out.dest == "-":
        return
    parent = os.path.dirname(os.path.abspath(out.dest))
    if not os.path.isdir(parent):
        raise InvalidArgument(f"--output {out.dest}: {parent} is not a directory")
    if out.type == "local" and os.path.lexists(out.dest) and (
            os.path.islink(out.dest) or not os.path.isdir(out.dest) or os.listdir(out.dest)):
        raise InvalidArgument(f"--output {out.dest}: exists and is not an empty directory")


def export(store: Store, image_id: str, out: Output, names: list[str]) -> None:
    """Write ``image_id`` (saved under ``names``, its tags, if any) to ``out``."""
    from forklift.engine import transfer

    check_dest(out)
    if out.type in ("docker", "oci"):
        fmt = transfer.DOCKER_ARCHIVE if out.type == "docker" else transfer.OCI_ARCHIVE
        transfer.save(store, names or [image_id], out.dest, fmt)
    elif out.type == "tar":
        _tar(store, image_id, out.dest)
    else:
        _local(store, image_id, out.dest)


def _tar(store: Store, image_id: str, dest: str) -> None:
    import sys

    from forklift import archive
    from forklift.build.builder import image_view
    from forklift.formats.output import atomic_output

    if dest == "-" and sys.stdout.isatty():
        raise InvalidArgument("cowardly refusing to write a tar to a terminal. Use dest=FILE")
    with image_view(store, image_id) as root, atomic_output(dest) as f:
        archive.write_tree(root, f)


def _local(store: Store, image_id: str, dest: str) -> None:
    """The files as ``cp -a`` would copy them: through a tar of the image's root into a new
    directory, so that no symlink in the image is ever followed on this side."""
    from forklift import archive
    from forklift.build.builder import image_view

    dest = os.path.abspath(dest)
    tmp = os.path.join(os.path.dirname(dest), f".{os.path.basename(dest)}.forklift-{os.getpid()}.tmp")
    os.mkdir(tmp, 0o755)
    try:
        with image_view(store, image_id) as root:
            archive.copy_layer(root, tmp)
        if os.path.isdir(dest) and not os.path.islink(dest):
            os.rmdir(dest)   # checked empty before; a file put there since makes this fail
        os.rename(tmp, dest)
    except OSError as exc:
        raise InvalidArgument(f"--output {dest}: {exc.strerror}") from None
    finally:
        if os.path.lexists(tmp):
            remove_path(tmp)
