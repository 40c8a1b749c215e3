"""The Dockerfile builder: stages, steps, the cache, the images each step makes.

``build(store, context, dockerfile_bytes, BuildOptions(...), out)`` returns the image ID.
Every instruction after FROM makes an image (untagged, its parent the previous step's),
as Docker's classic builder does: metadata instructions an empty layer with a history
entry, RUN a real container committed with the layer code of ``commit`` (and removed,
whatever happens), COPY/ADD/WORKDIR their files written into an overlay of the parent's
layers. A step whose key (`cache.step_key`) is in the build cache reuses that image.
"""

from __future__ import annotations

import contextlib
import copy
import os
import posixpath
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast

from forklift import faults, oci, reference
from forklift import limits as limits_mod
from forklift.build import cache, fscopy, heredocs, instructions, remote, runmounts, running, words
from forklift.build import parallel as parallel_mod
from forklift.build import stages as stages_mod
from forklift.build.context import Context, open_context
from forklift.build.copyflags import NONE, CopyFlags, context_sources, image_pattern
from forklift.build.copyflags import parse as parse_copy_flags
from forklift.build.display import make_progress
from forklift.build.dockerfile import Dockerfile, Instruction, parse, parse_trigger
from forklift.build.progress import Progress, Step
from forklift.build.stages import Stage
from forklift.errors import ForkliftError, InvalidArgument, NotFound
from forklift.store import build_cache
from forklift.store import images as image_store
from forklift.store import layers as layer_store
from forklift.store.db import Store, remove_path

# Usable in RUN without an ARG, never written into the image's history (Docker's list).
PROXY_ARGS = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY",
              "ftp_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy")
_NETWORKS = ("bridge", "default", "host", "none")


class BuildError(ForkliftError):
    """A RUN step failed: Docker's wording, exit status 1; ``code`` is the command's exit
    status (the Engine API's ``errorDetail.code``)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class BuildOptions:
    tags: list[str] = field(default_factory=list)
    build_args: dict[str, str | None] = field(default_factory=dict)   # K=V, or K (from env)
    target: str | None = None
    no_cache: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    network: str = "bridge"
    quiet: bool = False
    platform: str | None = None
    add_hosts: list[str] = field(default_factory=list)
    ulimits: list[str] = field(default_factory=list)
    dockerfile_name: str = "Dockerfile"
    source_date_epoch: int | None = None   # reproducible: every timestamp this, mtimes clamped
    squash: bool = False                   # the build's layers merged into one (build.squash)
    pull: bool = False                     # base images pulled even when in the store
    cache_from: list[str] = field(default_factory=list)   # layout directories (cachedirs)
    cache_to: str | None = None
    no_cache_filter: list[str] = field(default_factory=list)   # stages run uncached
    secrets: list[str] = field(default_factory=list)   # --secret id=x,src=FILE|env=VAR
    shm_size: int | None = None   # --shm-size in bytes, every RUN container's /dev/shm
    jobs: int | None = None   # stages built at once; None: $FORKLIFT_BUILD_JOBS or the CPUs
    progress: str = "plain"                # or "tty": the live display on err (display.resolve)
    reporter: Progress | None = None       # a display of the caller's instead (the API's)
    cancel: threading.Event | None = None  # set by the caller: stop before the next step
    registry_creds: dict[str, Any] = field(default_factory=dict)   # host -> Credentials (pulls)


# ----------------------------------------------------------------------------- the build

class Builder:
    def __init__(self, store: Store, context: Context, df: Dockerfile, opts: BuildOptions,
                 out: IO[str] | None, err: IO[str] | None = None) -> None:
        self.store, self.context, self.df, self.opts = store, context, df, opts
        self.progress = opts.reporter if opts.reporter is not None else \
            make_progress(opts.progress, out, err, quiet=opts.quiet)
        self.err = err
        self.name = opts.dockerfile_name
        self.used_args: set[str] = {"SOURCE_DATE_EPOCH"}   # read by the build itself
        self.built: dict[int, str | None] = {}
        self.bases: dict[int, str | None] = {}   # each stage's FROM image (for --squash)
        self.pulled: set[str] = set()
        self._cache_used: list[tuple[str, str]] = []   # (step key, image): for --cache-to
        self.secrets = runmounts.secrets_from(opts.secrets)
        self._stages: list[Stage] = []
        self._local = threading.local()   # a stage thread's store and cache entries (parallel)
        # set when concurrent stages are to stop (or the caller's client left)
        self._cancelled = opts.cancel if opts.cancel is not None else threading.Event()
        self._pulling = threading.Lock()
        self._pull_locks: dict[str, threading.Lock] = {}

    @property
    def store(self) -> Store:
        """The calling thread's store: a stage built in a thread of its own has its own."""
        own: Store | None = getattr(self._local, "store", None)
        return self._store if own is None else own

    @store.setter
    def store(self, store: Store) -> None:
        self._store = store

    @property
    def cache_used(self) -> list[tuple[str, str]]:
        own: list[tuple[str, str]] | None = getattr(self._local, "cache_used", None)
        return self._cache_used if own is None else own

    def run(self) -> str:
        opts = self.opts
        for warning in self.df.warnings:   # e.g. "# syntax=" ignored, MAINTAINER deprecated
            self.progress.note(f"[Warning] {warning}")
        self._import_caches()
        meta = stages_mod.meta_args(self.df, opts.build_args)
        self.used_args |= {k for k in meta if k in opts.build_args}
        stages = stages_mod.split(self.df, meta, self.name)
        self._check_no_cache_filter(stages)
        self._stages = stages
        target = target_stage(stages, opts.target)
        needed = stages_mod.needed(stages, target, self.df.escape)
        stages_mod.refuse_unsupported(needed, self.name)
        self.progress.plan(sum(len(s.body) + 1 for s in needed) + (1 if opts.labels else 0))
        self._build_needed(stages, needed, meta)
        if opts.labels:
            self._step(target, f"LABEL {' '.join(f'{k}={v}' for k, v in opts.labels.items())}",
                       None, ["LABEL", *sorted(f"{k}={v}" for k, v in opts.labels.items())], {},
                       lambda cfg: cfg.setdefault("Labels", {}).update(opts.labels) or
                       "LABEL " + " ".join(f"{k}={v}" for k, v in opts.labels.items()))
            self.built[target.index] = target.image_id
        image_id = self.built[target.index]
        if image_id is None:
            raise InvalidArgument("No image was generated. Is your Dockerfile empty?")
        if opts.cache_to:
            self._export_cache(opts.cache_to)
        if opts.squash:
            image_id = self._squash(target, image_id)
        unused = sorted(k for k in opts.build_args if k not in self.used_args and k not in PROXY_ARGS)
        if unused:
            self.progress.note(f"[Warning] One or more build-args [{' '.join(unused)}] were not consumed")
        return image_id

    def _build_needed(self, stages: list[Stage], needed: list[Stage],
                      meta: dict[str, str | None]) -> None:
        """The stages the target needs, in order; those independent of each other at the
        same time (build.parallel) unless one job is asked for."""
        jobs = self.opts.jobs if self.opts.jobs is not None else parallel_mod.jobs_from_env()
        if jobs < 2 or not stages_mod.independent(stages, needed):
            for stage in needed:
                self.built[stage.index] = self._build_stage(stages, stage, meta)
            return
        deps = {s.index: stages_mod.depends_on(stages, s) for s in needed}
        run = parallel_mod.Scheduler(self.store, needed, deps, jobs, self._local, self._cancelled)
        context, self.built = self.context, run.built
        self.context = cast(Context, parallel_mod.SharedContext(context))
        try:
            self._cache_used += run.run(lambda stage: self._build_stage(stages, stage, meta))
        finally:
            self.context = context

    def _check_cancelled(self) -> None:
        if self._cancelled.is_set():
            raise parallel_mod.Cancelled("the build was cancelled")

    def _uncached(self, stage: Stage) -> bool:
        names = self.opts.no_cache_filter
        return bool(names) and (stage.name in names or str(stage.index) in names)

    def _check_no_cache_filter(self, stages: list[Stage]) -> None:
        known = {s.name for s in stages} | {str(s.index) for s in stages}
        for name in self.opts.no_cache_filter:
            if name not in known:
                raise InvalidArgument(f'--no-cache-filter: stage "{name}" could not be found')

    def _import_caches(self) -> None:
        from forklift.build import cachedirs

        for path in self.opts.cache_from:
            step = self.progress.step(f"[internal] importing cache from {path}")
            count = cachedirs.import_dir(self.store, path)
            step.line(f"{count} cache entries")
            step.done()

    def _export_cache(self, path: str) -> None:
        from forklift.build import cachedirs

        step = self.progress.step(f"[internal] exporting cache to {path}")
        cachedirs.export(self.store, self.cache_used, path)
        step.done()

    def _squash(self, target: Stage, image_id: str) -> str:
        from forklift.build import squash

        step = self.progress.step("squashing the build's layers into one")
        image_id = squash.squash(self.store, image_id, self.bases.get(target.index),
                                 self.opts.source_date_epoch)
        step.done()
        return image_id

    # -- stages
    def _build_stage(self, stages: list[Stage], stage: Stage, meta: dict[str, str | None]) -> str | None:
        total = len(stage.body) + 1
        label = "" if len(stages) == 1 else f"{stage.name or f'stage-{stage.index}'} "
        step = self.progress.step(f"[{label}1/{total}] FROM {stage.base}"
                                  + (f" AS {stage.name}" if stage.name else ""))
        self._from(stages, stage)
        self.bases[stage.index] = stage.image_id
        step.image_id = stage.image_id
        step.done()
        triggers = list(stage.config.get("OnBuild") or [])
        stage.config["OnBuild"] = None   # cleared before they run, as Docker does
        for trigger in triggers:
            ins = parse_trigger(trigger, self.name)
            self._instruction(stages, stage, ins, f"[{label}1/{total}] ONBUILD {trigger}")
        for i, ins in enumerate(stage.body, 2):
            self._instruction(stages, stage, ins, f"[{label}{i}/{total}] {ins.original}")
        return stage.image_id

    def _from(self, stages: list[Stage], stage: Stage) -> None:
        if stage.platform_flag:
            _check_platform(stage.platform_flag)
        source = stages_mod.stage_ref(stages, stage.base, stage.index)
        if stage.base == "scratch":
            stage.image_id, stage.image = None, {"config": {}, "history": [],
                                                 "rootfs": {"type": "layers", "diff_ids": []}}
        else:
            stage.image_id = self.built[source.index] if source else self._image(stage.base)
            if stage.image_id is None:
                raise InvalidArgument(f"stage {stage.base} made no image to build on")
            stage.image = image_store.config(self.store, stage.image_id)
        env = instructions.changes.env_map(stage.config)
        if "PATH" not in env:
            stage.config["Env"] = [*(stage.config.get("Env") or []), f"PATH={oci.DEFAULT_PATH}"]

    def _image(self, ref: str) -> str:
        with self._pulling:   # stages at once: one pull of a base that several use
            lock = self._pull_locks.setdefault(ref, threading.Lock())
        with lock:
            return self._image_unlocked(ref)

    def _image_unlocked(self, ref: str) -> str:
        if self.opts.pull and ref not in self.pulled:
            self._pull(ref)
        try:
            return image_store.resolve(self.store, ref)
        except NotFound:
            pass
        self._pull(ref)   # a base missing from the store is pulled, as Docker does
        return image_store.resolve(self.store, ref)

    def _pull(self, ref: str) -> None:
        """Pull a base image (once per build); one NotFound line if that fails."""
        import io

        from forklift.engine import distribution
        from forklift.registry.progress import Reporter

        step = self.progress.step(f"[internal] pull {ref}")
        try:
            distribution.pull(self.store, ref, reporter=Reporter(quiet=True, out=io.StringIO()),
                              creds=self._creds_for(ref))
        except ForkliftError as exc:
            step.error(str(exc))
            raise NotFound(f"base image {ref} is not in the store and could not be pulled: {exc}") from None
        self.pulled.add(ref)
        step.done()

    def _creds_for(self, ref: str) -> Any:
        """The caller's credentials for ``ref``'s registry (None: the store's own login)."""
        given = self.opts.registry_creds
        if not given:
            return None
        from forklift.registry.config import config_key

        domain = reference.parse(ref).domain
        return given.get(domain) or given.get(config_key(domain))

    # -- instructions
    def _env(self, stage: Stage) -> dict[str, str]:
        env = {k: v for k, v in stage.args.items() if v is not None}
        env.update(instructions.changes.env_map(stage.config))
        return env

    def _instruction(self, stages: list[Stage], stage: Stage, ins: Instruction, label: str) -> None:
        self._check_cancelled()
        kw = ins.keyword
        if kw == "ARG":
            self._arg(stage, ins, label)
        elif kw == "RUN":
            self._run(stage, ins, label)
        elif kw in ("COPY", "ADD"):
            self._copy(stages, stage, ins, label)
        elif kw == "WORKDIR":
            self._workdir(stage, ins, label)
        elif kw == "MAINTAINER":
            who = " ".join(ins.args)
            self._step(stage, label, None, [kw, who], {}, lambda cfg: f"MAINTAINER {who}",
                       author=who)
        elif kw in instructions.HANDLERS:
            self._metadata(stage, ins, label)
        elif kw == "FROM":
            raise InvalidArgument(f"{self.name}:{ins.line}: FROM inside a stage")
        else:
            raise InvalidArgument(f"{self.name}:{ins.line}: unknown instruction: {kw}")

    def _metadata(self, stage: Stage, ins: Instruction, label: str) -> None:
        env = self._env(stage)
        handler = instructions.HANDLERS[ins.keyword]
        probe = copy.deepcopy(stage.config)
        text = handler(probe, ins, env, self.df.escape)   # validates and expands before the key
        used = self._referenced(stage, ins)
        if ins.keyword == "CMD":
            stage.cmd_set = True

        def apply(cfg: dict[str, Any]) -> str:
            handler(cfg, ins, env, self.df.escape)
            if ins.keyword == "ENTRYPOINT" and not stage.cmd_set:
                cfg["Cmd"] = None
            return text
        self._step(stage, label, None, [ins.keyword, text, str(stage.cmd_set)], used, apply)

    def _referenced(self, stage: Stage, ins: Instruction) -> dict[str, str]:
        names: set[str] = set()
        for word in (*ins.args, *ins.flags):
            names |= words.referenced(word, self.df.escape)
        env_names = set(instructions.changes.env_map(stage.config))
        self.used_args |= names & set(stage.args)
        return {n: v for n in sorted(names) if n not in env_names
                and (v := stage.args.get(n)) is not None}

    def _arg(self, stage: Stage, ins: Instruction, label: str) -> None:
        env = self._env(stage)
        shown = []
        for word in ins.args:
            key, sep, default = word.partition("=")
            value = words.expand(default, env, self.df.escape) if sep else None
            if key in self.opts.build_args:
                given = self.opts.build_args[key]
                value = given if given is not None else os.environ.get(key, value)
                self.used_args.add(key)
            elif value is None and key in self._meta:
                value = self._meta[key]
            stage.args[key] = value
            shown.append(f"{key}={default}" if sep else key)
        text = "ARG " + " ".join(shown)
        self._step(stage, label, None, ["ARG", text], {}, lambda cfg: text)

    @property
    def _meta(self) -> dict[str, str | None]:
        return stages_mod.meta_args(self.df, self.opts.build_args)

    # -- RUN
    def _run_args(self, stage: Stage) -> tuple[list[str], list[str]]:
        """(the environment the RUN gets from build args, the ``|N`` history prefix)."""
        env_names = set(instructions.changes.env_map(stage.config))
        declared = {k: v for k, v in stage.args.items() if v is not None and k not in env_names}
        proxies = {k: v for k in PROXY_ARGS if k not in stage.args and k not in env_names
                   and (v := self._given(k)) is not None}
        environment = [f"{k}={v}" for k, v in {**declared, **proxies}.items()]
        self.used_args |= set(proxies)
        prefix = sorted(f"{k}={v}" for k, v in declared.items())
        return environment, ([f"|{len(prefix)}", *prefix] if environment else [])

    def _given(self, key: str) -> str | None:
        if key not in self.opts.build_args:
            return None
        value = self.opts.build_args[key]
        return value if value is not None else os.environ.get(key)

    def _run(self, stage: Stage, ins: Instruction, label: str) -> None:
        flags = stages_mod.flag_map(ins, ("mount", "network"), self.name)
        where = f"{self.name}:{ins.line}"
        env = self._env(stage)
        mounts = [runmounts.parse_mount(words.expand(f[8:], env, self.df.escape), where)
                  for f in ins.flags if f.startswith("--mount=")]
        network = runmounts.parse_network(words.expand(flags["network"], env, self.df.escape),
                                          where) if "network" in flags else None
        script = None
        if ins.heredocs:
            argv, script = heredocs.run_script(ins, list(stage.config.get("Shell") or instructions.DEFAULT_SHELL))
        else:
            argv = instructions.command(stage.config, ins)
        environment, prefix = self._run_args(stage)
        created_by = " ".join(prefix + argv)
        key_args = dict(e.split("=", 1) for e in environment)
        key = ["RUN", created_by]
        if mounts or network or script:
            self._referenced(stage, ins)
            key += [str(network), *(str(self._mount_key(self._stages, stage, m)) for m in mounts)]
        if script is not None:   # its argv is only /dev/pipes/NAME: the body must be in the key
            key += [script.name, script.content]
        settings = running.RunSettings(self.opts.network if network in (None, "default") else network,
                                       self.opts.add_hosts, self.opts.ulimits,
                                       clamp_mtime=self.opts.source_date_epoch,
                                       shm_size=self.opts.shm_size)
        self._step(stage, label, lambda step, parent: self._run_mounted(
            stage, parent, mounts, script, where, lambda s: running.run(
                self.store, parent, argv, environment, s, step,
                lambda code: self._fail(step, argv, code, step.label)), settings), key, key_args,
            lambda cfg: created_by, history_text=created_by)

    def _mount_key(self, stages: list[Stage], stage: Stage, m: runmounts.RunMount) -> list[str]:
        """What a mount's source is, for the step's key: the image of a stage or image
        ``from``, the checksum of a bind's context files."""
        if m.type != "bind" and not (m.type == "cache" and m.from_):
            return m.key()
        if not m.from_:
            paths = self.context.sources([m.source or "."])
            return m.key() + [self.context.checksum(paths, with_mode=True, with_owner=True)]
        ref = stages_mod.stage_ref(stages, m.from_, stage.index)
        return m.key() + [str(self.built.get(ref.index) if ref else self._image(m.from_))]

    def _run_mounted(self, stage: Stage, parent: str | None, mounts: list[runmounts.RunMount],
                     script: Any, where: str,
                     run: Callable[[running.RunSettings], layer_store.PreparedLayer],
                     settings: running.RunSettings) -> layer_store.PreparedLayer:
        """``run`` with the step's ``--mount``s (and its shebang heredoc) in place, the
        mount points runc made removed from its upper directory before the commit."""
        if not mounts and script is None:
            return run(settings)
        with contextlib.ExitStack() as stack:
            prepared = stack.enter_context(runmounts.prepare(
                self.store, mounts, self.secrets, lambda ref: self._mount_root(stage, ref), where))
            settings.mounts = list(prepared.mounts)
            if script is not None:
                settings.mounts.append(self._script_mount(stack, script))
            if prepared.targets:
                root = stack.enter_context(image_view(self.store, parent)) if parent else None
                points = runmounts.MountPoints.survey(root, prepared.targets)
                settings.clean_upper = points.clean
            return run(settings)
        raise AssertionError("unreachable")

    @contextlib.contextmanager
    def _context_view(self) -> Iterator[str]:
        """The context as a bind mount sees it: what .dockerignore leaves (a copy when it
        excludes anything; the context itself otherwise)."""
        if not self.context.ignore.patterns:
            yield str(self.context.root)
            return
        scratch = self.store.make_tmp("bind-context")
        try:
            top = str(self.context.root)
            fscopy.copy(scratch, [fscopy.Source(top, top, self.context.ignore.excluded)], "/",
                        fscopy.Owner(None, None, None))
            os.chmod(scratch, os.stat(top).st_mode & 0o7777)
            yield scratch
        finally:
            remove_path(scratch)

    def _script_mount(self, stack: contextlib.ExitStack, doc: Any) -> str:
        scratch = self.store.make_tmp("heredoc")
        stack.callback(remove_path, scratch)
        path = os.path.join(scratch, "script")
        with open(path, "w") as f:
            f.write(doc.content)
        os.chmod(path, 0o755)
        return f"type=bind,source={path},target={heredocs.PIPES}/{doc.name},readonly"

    @contextlib.contextmanager
    def _mount_root(self, stage: Stage, ref: str) -> Iterator[str]:
        """The files a ``--mount from=`` names: the context (``""``), a stage or an image."""
        if not ref:
            with self._context_view() as root:
                yield root
            return
        found = stages_mod.stage_ref(self._stages, ref, stage.index)
        image_id = self.built.get(found.index) if found else self._image(ref)
        if image_id is None:
            raise InvalidArgument(f"RUN --mount from={ref}: that stage made no image")
        with image_view(self.store, image_id) as root:
            yield root

    def _fail(self, step: Step, argv: list[str], code: int, label: str) -> None:
        shown = " ".join(argv)
        if self._cancelled.is_set():   # killed because another stage failed or the build was interrupted
            step.error("canceled")
            raise parallel_mod.Cancelled("the build was cancelled")
        step.error(f'process "{shown}" did not complete successfully: exit code: {code}')
        if self.progress.out is None and self.err is not None:
            # Quiet: the step and its last lines were not shown as it ran; show them now.
            self.err.write("".join(f"{line}\n" for line in [label, *step.tail]))
            self.err.flush()
        raise BuildError(f"The command '{shown}' returned a non-zero code: {code}", code)

    # -- COPY / ADD / WORKDIR
    def _workdir(self, stage: Stage, ins: Instruction, label: str) -> None:
        path = instructions.workdir_path(stage.config, ins, self._env(stage), self.df.escape)
        used = self._referenced(stage, ins)

        def write(root: str) -> None:
            fscopy.make_dirs(root, path)
        self._step(stage, label, lambda step, parent: self._in_overlay(stage, write),
                   ["WORKDIR", path], used, lambda cfg: cfg.update(WorkingDir=path) or f"WORKDIR {path}",
                   single_space=True)

    def _copy(self, stages: list[Stage], stage: Stage, ins: Instruction, label: str) -> None:
        allowed = ("from", "chown", "chmod", "link", "exclude", "parents") if ins.keyword == "COPY" \
            else ("chown", "chmod", "link", "checksum", "exclude", "keep-git-dir")
        env = self._env(stage)
        flags = {k: words.expand(v, env, self.df.escape) for k, v in stages_mod.flag_map(ins, allowed, self.name).items()}
        cflags = parse_copy_flags(flags, [words.expand(v, env, self.df.escape) for v in ins.flag_values("exclude")])
        used = self._referenced(stage, ins)
        if ins.json_form:
            args = [words.expand(a, env, self.df.escape) for a in ins.args]
        else:
            args = [w for a in ins.args for w in words.expand_words(a, env, self.df.escape)]
        if len(args) < 2:
            raise InvalidArgument(f"{self.name}:{ins.line}: {ins.keyword} requires at least two arguments")
        patterns, written = args[:-1], args[-1]
        dest = _destination(written, stage.config.get("WorkingDir") or "/")
        mode = fscopy.parse_chmod(flags["chmod"]) if flags.get("chmod") else None
        git = self._git_pattern(ins, patterns)
        urls = [] if git else self._url_patterns(ins, patterns, flags.get("checksum"))
        with (self._git_sources(git, flags.get("checksum"), cflags) if git else
              self._url_sources(urls, flags.get("checksum")) if urls else
              self._heredoc_sources(stages, stage, ins, env, flags, patterns,
                                    mode, cflags)) as (sources, digest, from_ctx):
            kind = "multi" if len(sources) > 1 else ("dir" if os.path.isdir(fscopy.follow_top(sources[0])) else "file")
            text = f"{ins.keyword} {kind}:{digest} in {written} "

            def write(root: str) -> None:
                uid, gid = fscopy.resolve_owner(root, flags["chown"]) if flags.get("chown") else (
                    (0, 0) if from_ctx else (None, None))
                owner = fscopy.Owner(uid, gid, mode)
                plain = []
                for src in sources:
                    if ins.keyword == "ADD" and from_ctx and not urls and os.path.isfile(fscopy.follow_top(src)) \
                            and fscopy.is_archive(fscopy.follow_top(src)):
                        limit = limits_mod.load(self.store.root).max_layer_size
                        fscopy.extract(root, fscopy.follow_top(src), dest, limit)
                    else:
                        plain.append(src)
                if plain:
                    fscopy.copy(root, plain, dest, owner)
            self._step(stage, label, lambda step, parent: self._write_layer(stage, write, cflags.link),
                       [ins.keyword, text, str(flags.get("chown")), str(mode), *cflags.key(patterns)], used,
                       lambda cfg: text, single_space=True)

    def _write_layer(self, stage: Stage, write: Callable[[str], None], link: bool) -> layer_store.PreparedLayer:
        """COPY --link writes into an empty directory, BuildKit's layer independent of the
        base: the destination's parents are plain directories (0755, root, unless copied),
        never the base's symlinks, and they replace the base's modes when applied."""
        if not link:
            return self._in_overlay(stage, write)
        scratch = self.store.make_tmp("build-link")
        try:
            tree = os.path.join(scratch, "tree")
            os.mkdir(tree, 0o755)
            write(tree)
            return layer_store.from_upper(self.store, tree, self.opts.source_date_epoch)
        finally:
            remove_path(scratch)

    def _git_pattern(self, ins: Instruction, patterns: list[str]) -> str | None:
        """ADD's git repository source: alone, or refused."""
        from forklift.build import gitsource

        found = [p for p in patterns if gitsource.is_git(p)] if ins.keyword == "ADD" else []
        if found and len(patterns) > 1:
            raise InvalidArgument(f"{self.name}:{ins.line}: ADD of a git repository takes it as the"
                                  " only source")
        return found[0] if found else None

    @contextlib.contextmanager
    def _git_sources(self, url: str, checksum: str | None, cflags: CopyFlags
                     ) -> Iterator[tuple[list[fscopy.Source], str, bool]]:
        """The repository at the commit its ref names, fetched on every build (as BuildKit
        resolves the ref every time); the step's key is that commit."""
        from forklift.build import gitsource

        scratch = self.store.make_tmp("add-git")
        try:
            got = gitsource.fetch(url, scratch, checksum=checksum, keep_git_dir=cflags.keep_git_dir,
                                  commit_mtime=self.opts.source_date_epoch is not None,
                                  limits=limits_mod.load(self.store.root))
            digest = cache.step_key(None, [url, got.commit, str(cflags.keep_git_dir),
                                           str(self.opts.source_date_epoch is not None)], {})
            yield [fscopy.Source(got.tree, got.tree, exclude=cflags.exclude)], digest, True
        finally:
            remove_path(scratch)

    def _url_patterns(self, ins: Instruction, patterns: list[str], checksum: str | None) -> list[str]:
        """ADD's http(s) sources: all of them, or none (mixed with local files is refused)."""
        if ins.keyword == "COPY" and any(remote.is_url(p) for p in patterns):
            raise InvalidArgument(f"{self.name}:{ins.line}: source can't be a URL for COPY")
        urls = [p for p in patterns if remote.is_url(p)] if ins.keyword == "ADD" else []
        if urls and len(urls) != len(patterns):
            raise InvalidArgument(f"{self.name}:{ins.line}: ADD of URLs and local files together"
                                  " is not supported yet")
        if checksum is not None and not urls:
            raise InvalidArgument(f"{self.name}:{ins.line}: ADD --checksum needs an http(s) URL source")
        for url in urls:
            remote.file_name(url)
        return urls

    @contextlib.contextmanager
    def _url_sources(self, urls: list[str], checksum: str | None) -> Iterator[tuple[list[fscopy.Source], str, bool]]:
        """Downloaded every time, as Docker does: the step's key is the URLs and the content
        (and mtime) of what they gave, so a changed file is a cache miss."""
        if checksum is not None:
            remote.check_checksum(checksum)
        scratch = self.store.make_tmp("add-url")
        try:
            limits = limits_mod.load(self.store.root)
            got = [remote.fetch(url, os.path.join(scratch, str(i)), limits, checksum)
                   for i, url in enumerate(urls)]
            digest = cache.step_key(None, [f"{g.url} {g.digest} {g.mtime}" for g in got], {})
            yield [fscopy.Source(g.path, os.path.dirname(g.path)) for g in got], digest, True
        finally:
            remove_path(scratch)

    @contextlib.contextmanager
    def _heredoc_sources(self, stages: list[Stage], stage: Stage, ins: Instruction,
                         env: dict[str, str], flags: dict[str, str], patterns: list[str],
                         mode: fscopy.Chmod | None, cflags: CopyFlags = NONE
                         ) -> Iterator[tuple[list[fscopy.Source], str, bool]]:
        """`_sources`, with each ``<<NAME`` source a file made from its heredoc's body."""
        docs = {d.name: d for d in ins.heredocs}
        made = [(name, heredocs.expand_body(docs[name], env)) for p in patterns
                if (name := heredocs.marker_name(p) or "") in docs]
        rest = [p for p in patterns if (heredocs.marker_name(p) or "") not in docs]
        if not made:
            with self._sources(stages, stage, flags.get("from"), patterns, mode,
                               flags.get("chown"), cflags) as found:
                yield found
            return
        scratch = self.store.make_tmp("heredoc")
        try:
            paths, digest = heredocs.write_files(scratch, made)
            own = [fscopy.Source(p, os.path.dirname(p)) for p in paths]
            if not rest:
                yield own, digest, True
                return
            with self._sources(stages, stage, flags.get("from"), rest, mode,
                               flags.get("chown"), cflags) as (sources, more, from_ctx):
                yield own + sources, digest + more, from_ctx
        finally:
            remove_path(scratch)

    @contextlib.contextmanager
    def _sources(self, stages: list[Stage], stage: Stage, source: str | None,
                 patterns: list[str], mode: fscopy.Chmod | None, chown: str | None,
                 cflags: CopyFlags = NONE) -> Iterator[tuple[list[fscopy.Source], str, bool]]:
        if source is None:
            found = context_sources(self.context, patterns, cflags)
            paths = [Path(p) for p, _rel, _pivot in found]
            # a mode --chmod sets outright leaves the source's out of the key; a symbolic one
            # starts from it
            digest = self.context.checksum(paths, with_mode=mode is None or mode.relative,
                                           with_owner=chown is None, exclude=cflags.exclude)
            top = str(self.context.root)
            yield [fscopy.Source(p, top, self.context.ignore.excluded, cflags.exclude, rel, pivot)
                   for p, rel, pivot in found], digest, True
            return
        ref = stages_mod.stage_ref(stages, source, stage.index)
        image_id = self.built.get(ref.index) if ref else self._image(source)
        if image_id is None:
            raise InvalidArgument(f"COPY --from={source}: that stage made no image")
        with image_view(self.store, image_id) as root:
            yield self._image_sources(root, patterns, cflags), cache.step_key(image_id, patterns, {}), False

    @staticmethod
    def _image_sources(root: str, patterns: list[str], cflags: CopyFlags) -> list[fscopy.Source]:
        out = []
        for pattern in patterns:
            full, pivot = image_pattern(pattern, cflags)
            named = os.path.normpath("/" + full)
            for p in fscopy.glob_in(root, full):
                # the path as the pattern names it (glob_in's result has its links resolved)
                shown = os.path.join(os.path.dirname(named), os.path.basename(p)) if named != "/" else "/"
                rel = os.path.relpath(shown, "/" + pivot)
                out.append(fscopy.Source(p, root, None, cflags.exclude,
                                         rel if cflags.parents and rel != "." else None, pivot))
        return out

    def _in_overlay(self, stage: Stage, write: Callable[[str], None]) -> layer_store.PreparedLayer:
        from forklift.runtime import overlay

        scratch = self.store.make_tmp("build")
        try:
            dirs = {n: os.path.join(scratch, n) for n in ("upper", "work", "merged", "empty")}
            for path in dirs.values():
                os.mkdir(path, 0o755)
            lowers = _lowerdirs(self.store, stage.image_id) or [dirs["empty"]]
            overlay.mount_overlay(lowers, dirs["upper"], dirs["work"], dirs["merged"])
            try:
                write(dirs["merged"])
                faults.checkpoint("build-copy-mounted")
            finally:
                overlay.unmount(dirs["merged"])
            return layer_store.from_upper(self.store, dirs["upper"], self.opts.source_date_epoch)
        finally:
            remove_path(scratch)

    # -- one step
    def _step(self, stage: Stage, label: str,
              make_layer: Callable[[Step, str | None], layer_store.PreparedLayer] | None,
              key_instruction: list[str], key_args: dict[str, str],
              apply: Callable[[dict[str, Any]], Any], *, author: str | None = None,
              history_text: str | None = None, single_space: bool = False) -> None:
        step = self.progress.step(label)
        self._check_cancelled()   # the display may have found its reader gone
        parent = stage.image_id
        key = cache.step_key(parent, key_instruction + _epoch_key(self.opts), key_args)
        hit = None if self.opts.no_cache or self._uncached(stage) else build_cache.lookup(self.store, key)
        if hit is not None:
            self.cache_used.append((key, hit))
            stage.image_id, stage.image = hit, image_store.config(self.store, hit)
            step.image_id = hit
            step.cached()
            return
        new = copy.deepcopy(stage.image)
        cfg = new.setdefault("config", {})
        text = apply(cfg)
        shell = list(cfg.get("Shell") or instructions.DEFAULT_SHELL)  # SHELL's own: the new one
        created_by = history_text if history_text is not None else (
            " ".join(shell) + (" #(nop) " if single_space else " #(nop)  ") + text)
        layer = make_layer(step, parent) if make_layer else None
        try:
            stage.image_id = self._commit(stage, new, layer, created_by, author, key)
            self.cache_used.append((key, stage.image_id))
            stage.image = image_store.config(self.store, stage.image_id)
        finally:
            if layer is not None:
                layer.cleanup()
        step.image_id = stage.image_id
        step.done()

    def _commit(self, stage: Stage, new: dict[str, Any], layer: layer_store.PreparedLayer | None,
                created_by: str, author: str | None, key: str) -> str:
        parent_layers = [layer_store.reuse(self.store, d) for d in oci.image_diff_ids(stage.image)] \
            if stage.image_id else []
        if any(p is None for p in parent_layers):
            raise NotFound(f"a layer of image {stage.image_id} is missing")
        empty = layer is None or layer.diff_id == oci.EMPTY_TAR_DIFF_ID
        prepared = [p for p in parent_layers if p is not None] + ([] if empty or layer is None else [layer])
        limits_mod.load(self.store.root).check_layers(len(prepared), "the built image")
        created = _created(self.opts)
        entry: dict[str, Any] = {"created": created, "created_by": created_by}
        if empty:
            entry["empty_layer"] = True
        author = author if author is not None else new.get("author", "")
        cfg = oci.new_image_config({k: v for k, v in new["config"].items() if v not in (None, [], {}, "")},
                                   [p.diff_id for p in prepared],
                                   list(new.get("history") or []) + [entry], created,
                                   author=author or "")
        with self.store.transaction():
            image_id = image_store.add(self.store, oci.canonical_json(cfg), prepared,
                                       parent=stage.image_id)
            build_cache.record(self.store, key, image_id)
        return image_id


def source_date_epoch(build_args: dict[str, str | None], environ: dict[str, str]) -> int | None:
    """SOURCE_DATE_EPOCH from ``--build-arg`` (wins) or the environment, checked."""
    text = build_args.get("SOURCE_DATE_EPOCH")
    text = text if text is not None else environ.get("SOURCE_DATE_EPOCH")
    if text is None or text == "":
        return None
    if not text.isascii() or not text.isdigit() or len(text) > 12:
        raise InvalidArgument(f"invalid SOURCE_DATE_EPOCH {text!r}: a number of seconds since 1970")
    return int(text)


def _epoch_key(opts: BuildOptions) -> list[str]:
    # the same steps built at another epoch give other images: they must not hit
    return [] if opts.source_date_epoch is None else [f"SOURCE_DATE_EPOCH={opts.source_date_epoch}"]


def _created(opts: BuildOptions) -> str:
    if opts.source_date_epoch is None:
        return oci.now_rfc3339()
    from datetime import UTC, datetime

    return datetime.fromtimestamp(opts.source_date_epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _destination(dest: str, workdir: str) -> str:
    """COPY's destination, absolute against WORKDIR; a trailing slash (or ".") kept: it
    says "a directory"."""
    as_dir = dest.endswith("/") or dest in (".", "..") or dest.endswith(("/.", "/.."))
    path = posixpath.normpath(posixpath.join(workdir, dest))
    path = "/" + path.lstrip("/")
    return path if not as_dir or path == "/" else path + "/"


def _lowerdirs(store: Store, image_id: str | None) -> list[str]:
    if image_id is None:
        return []
    return [layer.path(store) for layer in reversed(image_store.layers(store, image_id))]


@contextlib.contextmanager
def image_view(store: Store, image_id: str) -> Iterator[str]:
    """An image's files, read-only, for COPY --from."""
    from forklift.runtime import overlay

    scratch = store.make_tmp("build-from")
    root = os.path.join(scratch, "root")
    empty = os.path.join(scratch, "empty")
    os.mkdir(root)
    os.mkdir(empty)
    overlay.mount_overlay(_lowerdirs(store, image_id) + [empty], None, None, root, readonly=True)
    try:
        yield root
    finally:
        overlay.unmount(root, lazy=True)
        remove_path(scratch)


def _check_platform(text: str) -> None:
    want = oci.parse_platform(text)
    here = oci.local_platform()
    if (want.os, want.architecture) != (here.os, here.architecture):
        raise InvalidArgument(f"platform {text} is not supported: forklift builds for"
                              f" {here.os}/{here.architecture} only")


def build(store: Store, context: Context, dockerfile_bytes: bytes, opts: BuildOptions,
          out: IO[str] | None = None, err: IO[str] | None = None) -> str:
    """Build the Dockerfile in ``context``; returns the image ID and tags it with
    ``opts.tags``. Raises DockerfileSyntaxError, SubstitutionError, ContextError,
    InvalidArgument, NotFound (a base image not in the store), BuildError (a RUN failed).
    Every image a finished step made stays (untagged; the cache points at them)."""
    tags = check_options(opts)
    df = parse(dockerfile_bytes, opts.dockerfile_name)
    running.remove_leftovers(store)
    builder = Builder(store, context, df, opts, out, err)
    with running.terminate_as_interrupt(), builder.progress:   # a live display ends whole
        image_id = builder.run()
    if tags:
        with store.transaction():
            if image_store.get(store, image_id) is None:
                raise NotFound(f"No such image: {image_id}")
            for tag in tags:
                image_store.set_tag(store, tag, image_id)
    builder.progress.built(image_id)
    builder.progress.note(f"Successfully built {image_id[7:19]}")
    for tag in tags:
        builder.progress.note(f"Successfully tagged {reference.parse(tag).familiar()}")
    return image_id


def check_options(opts: BuildOptions) -> list[str]:
    """Refuse a network or platform the builder cannot use and a bad tag, before anything
    is built; returns the tags normalized."""
    if opts.network not in _NETWORKS:
        raise InvalidArgument(f"network mode {opts.network!r} not supported by forklift build"
                              " (bridge, host, none)")
    if opts.platform:
        _check_platform(opts.platform)
    return [str(reference.parse(t)) for t in opts.tags]


def target_stage(stages: list[Stage], target: str | None) -> Stage:
    """The stage ``--target`` names (the last one without it)."""
    if not target:
        return stages[-1]
    found = stages_mod.stage_ref(stages, target, len(stages))
    if found is None or found.name != target.lower():
        raise InvalidArgument(f'target stage "{target}" could not be found')
    return found


def check_dockerfile(data: bytes, opts: BuildOptions) -> None:
    """What ``build`` would refuse in a Dockerfile before building anything (its syntax,
    its stages, the target), for a caller that answers before the build starts."""
    df = parse(data, opts.dockerfile_name)
    meta = stages_mod.meta_args(df, opts.build_args)
    target_stage(stages_mod.split(df, meta, opts.dockerfile_name), opts.target)


def build_path(store: Store, path: str, stdin: IO[bytes] | None, dockerfile: str | None,
               opts: BuildOptions, out: IO[str] | None = None, err: IO[str] | None = None) -> str:
    """``build PATH|-``: the context opened (``-``: a tar on ``stdin``, extracted into the
    store's scratch space and removed afterwards), then ``build``. Context digests are
    remembered beside the database, so a cached rebuild of a directory reads no file."""
    scratch = store.make_tmp("context")
    try:
        with open_context(path, stdin, Path(scratch), dockerfile,
                          cache_dir=Path(store.root)) as (ctx, data):
            return build(store, ctx, data, opts, out=out, err=err)
    finally:
        remove_path(scratch)
