"""A Dockerfile's stages: split at FROM, the ARGs before the first FROM, which stages a
target needs, the flags each instruction may carry, what is refused up front."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, cast

from forklift.build import words
from forklift.build.dockerfile import Dockerfile, Instruction
from forklift.errors import InvalidArgument


@dataclass
class Stage:
    index: int
    name: str | None
    base: str                                   # the FROM word as written
    platform_flag: str | None
    body: list[Instruction]                     # after FROM
    line: int
    image_id: str | None = None                 # the last step's image
    image: dict[str, Any] = field(default_factory=dict)   # its full config
    args: dict[str, str | None] = field(default_factory=dict)
    cmd_set: bool = False
    steps: int = 0

    @property
    def config(self) -> dict[str, Any]:
        return cast(dict[str, Any], self.image.setdefault("config", {}))


def split(df: Dockerfile, meta: dict[str, str | None], name: str) -> list[Stage]:
    stages: list[Stage] = []
    for ins in df.instructions:
        if ins.keyword == "FROM":
            env = {k: v for k, v in meta.items() if v is not None}
            args = list(ins.args)
            stage_name = None
            if len(args) == 3 and args[1].lower() == "as":
                stage_name = args[2].lower()
            elif len(args) != 1:
                raise InvalidArgument(f"{name}:{ins.line}: FROM requires either one or three arguments")
            base = words.expand(args[0], env, df.escape)
            flags = flag_map(ins, ("platform",), name)
            # an unset $BUILDPLATFORM (BuildKit's) expands to nothing: the host's platform
            platform = words.expand(flags["platform"], env, df.escape) if "platform" in flags else None
            platform = platform or None
            stages.append(Stage(len(stages), stage_name, base, platform, [], ins.line))
        elif not stages:
            if ins.keyword != "ARG":
                raise InvalidArgument(f"{name}:{ins.line}: no build stage in current context"
                                      f" ({ins.keyword} before the first FROM)")
        else:
            stages[-1].body.append(ins)
    if not stages:
        raise InvalidArgument(f"{name}: the Dockerfile has no FROM instruction")
    return stages


def meta_args(df: Dockerfile, build_args: dict[str, str | None]) -> dict[str, str | None]:
    meta: dict[str, str | None] = {}
    for ins in df.instructions:
        if ins.keyword == "FROM":
            break
        for word in ins.args:
            key, sep, default = word.partition("=")
            env = {k: v for k, v in meta.items() if v is not None}
            value = words.expand(default, env, df.escape) if sep else None
            meta[key] = build_args[key] if build_args.get(key) is not None else value
    return meta


def flag_map(ins: Instruction, allowed: tuple[str, ...], name: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for flag in ins.flags:
        key, _, value = flag[2:].partition("=")
        if key not in allowed:
            if ins.keyword == "RUN" and key == "mount":
                raise InvalidArgument(f"{name}:{ins.line}: RUN --mount is not supported yet")
            raise InvalidArgument(f"{name}:{ins.line}: {ins.keyword} --{key} is not supported yet")
        out[key] = value
    return out


def stage_ref(stages: list[Stage], text: str, before: int) -> Stage | None:
    """The stage ``text`` names (its name or index) among those before ``before``."""
    for stage in stages[:before]:
        if stage.name == text.lower() or str(stage.index) == text:
            return stage
    return None


def needed(stages: list[Stage], target: Stage, escape: str) -> list[Stage]:
    """The stages ``target`` depends on (FROM a stage, COPY --from), itself included."""
    want = {target.index}
    for stage in reversed(stages[: target.index + 1]):
        if stage.index not in want:
            continue
        refs = [stage.base] + [f[7:] for ins in stage.body for f in ins.flags
                               if ins.keyword in ("COPY", "ADD") and f.startswith("--from=")]
        refs += mount_refs(stage)
        if any("$" in ref for ref in refs):   # known once the step expands it: any stage before
            want.update(s.index for s in stages[: stage.index])
        for ref in refs:
            found = stage_ref(stages, ref, stage.index)
            if found is not None:
                want.add(found.index)
    return [s for s in stages if s.index in want]


def refuse_unsupported(stages: list[Stage], name: str) -> None:
    """Nothing is refused up front any more (ADD of a git repository: build/gitsource.py)."""


def mount_refs(stage: Stage) -> list[str]:
    """The stages or images the ``RUN --mount from=`` of ``stage`` name."""
    return [m.group(1) for ins in stage.body if ins.keyword == "RUN" for f in ins.flags
            if f.startswith("--mount=") for m in [re.search(r"(?:^|,)from=([^,]+)", f[8:])] if m]


def depends_on(stages: list[Stage], stage: Stage) -> set[int]:
    """The indices of the stages ``stage`` names (FROM, COPY --from, RUN --mount from=):
    it starts once they are built (``build.parallel``)."""
    refs = [stage.base] + [f[7:] for ins in stage.body for f in ins.flags
                           if ins.keyword in ("COPY", "ADD") and f.startswith("--from=")]
    return {found.index for ref in refs + mount_refs(stage)
            if (found := stage_ref(stages, ref, stage.index)) is not None}


def independent(stages: list[Stage], needed: list[Stage]) -> bool:
    """Whether two of the ``needed`` stages depend on each other neither directly nor
    through others (so they may be built at the same time)."""
    above: dict[int, set[int]] = {}
    for stage in needed:
        direct = depends_on(stages, stage)
        above[stage.index] = direct.union(*(above.get(d, set()) for d in direct))
    return any(a.index not in above[b.index] for i, a in enumerate(needed) for b in needed[i + 1:])
