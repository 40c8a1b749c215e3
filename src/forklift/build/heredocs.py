"""Heredocs of RUN, COPY and ADD, as BuildKit's Dockerfile frontend runs them.

RUN: a single heredoc that is the whole command runs as the shell's script (``sh -c
BODY``), or, when its first line is a shebang, as an executable file mounted read-only at
``/dev/pipes/NAME``; any other command with heredocs goes to the shell whole (its line,
then each body and terminator) and the shell reads them. Expansion is left to the shell.
COPY/ADD: each ``<<NAME`` source is a file NAME (mode 0644) holding the body; an unquoted
delimiter expands the build's variables in the body, quotes kept as written."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping

from forklift.build import words
from forklift.build.dockerfile import Heredoc, Instruction

PIPES = "/dev/pipes"
_MARKER = re.compile(r"""^<<-?(?:'([^']*)'|"([^"]*)"|([^\s'"<>]+))$""")


def marker_name(word: str) -> str | None:
    """The name of a word that is a whole heredoc marker (``<<EOF``, ``<<-'EOF'``)."""
    m = _MARKER.match(word)
    if m is None:
        return None
    return next(g for g in m.groups() if g is not None)


def run_script(ins: Instruction, shell: list[str]) -> tuple[list[str], Heredoc | None]:
    """RUN's argv with its heredocs, and the heredoc to mount as an executable file (a
    shebang script) or None."""
    command = ins.args[0] if ins.args else ""
    if len(ins.heredocs) == 1 and marker_name(command.strip()) == ins.heredocs[0].name:
        doc = ins.heredocs[0]
        if doc.content.startswith("#!"):
            return [f"{PIPES}/{doc.name}"], doc
        return shell + [doc.content], None
    full = command + "".join(f"\n{d.content}{d.name}" for d in ins.heredocs)
    return shell + [full], None


def expand_body(doc: Heredoc, env: Mapping[str, str]) -> str:
    """A COPY heredoc's content: variables expanded when the delimiter was unquoted. As in
    BuildKit, quotes are text here (escaped before the word expander sees them) and the
    escape character is the backslash whatever the Dockerfile's ``escape`` directive."""
    if not doc.expand or "$" not in doc.content:
        return doc.content
    quoted = re.sub(r"(?<!\\)(['\"])", r"\\\1", doc.content)
    return words.expand(quoted, env, "\\")


def write_files(directory: str, docs: list[tuple[str, str]]) -> tuple[list[str], str]:
    """Each (name, content) as a file in ``directory``, mode 0644; returns the paths and a
    digest of names and contents (for the step's key)."""
    paths, digest = [], hashlib.sha256()
    for i, (name, content) in enumerate(docs):
        sub = os.path.join(directory, str(i))
        os.mkdir(sub, 0o755)
        path = os.path.join(sub, os.path.basename(name) or "heredoc")
        with open(path, "w") as f:
            f.write(content)
        os.chmod(path, 0o644)
        paths.append(path)
        digest.update(f"{name}\0{len(content)}\0{content}".encode())
    return paths, digest.hexdigest()
