"""The Dockerfile parser: BuildKit's own parser cases, then forklift's tables."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from support.peers import peer_path

from forklift.build.dockerfile import (
    MAX_LINE,
    MAX_SIZE,
    DockerfileSyntaxError,
    Heredoc,
    Instruction,
    dump,
    parse,
)
from forklift.errors import InvalidArgument

PEER = "buildkit-dockerfile/frontend/dockerfile/parser/testfiles"
PEER_DIR = peer_path(PEER)
PEER_CASES = sorted(p.name for p in PEER_DIR.iterdir()) if PEER_DIR else []
needs_peer = pytest.mark.skipif(PEER_DIR is None, reason=f"{PEER} not found above the tests")


def dumps(text: str | bytes, strict: bool = True) -> list[str]:
    return [dump(i) for i in parse(text, strict=strict).instructions]


def error(text: str | bytes, **kw: object) -> str:
    with pytest.raises(DockerfileSyntaxError) as info:
        parse(text, **kw)  # type: ignore[arg-type]
    return str(info.value)


# ------------------------------------------------------------------ BuildKit's cases


@needs_peer
def test_all_buildkit_parser_cases_are_present() -> None:
    assert len(PEER_CASES) == 33


@needs_peer
@pytest.mark.parametrize("case", PEER_CASES or ["absent"])
def test_buildkit_parser_case(case: str) -> None:
    assert PEER_DIR is not None
    folder = PEER_DIR / case
    got = dumps((folder / "Dockerfile").read_bytes(), strict=False)
    assert got == (folder / "result").read_text().splitlines()


# --------------------------------------------------------------------- the instructions


FROM = "FROM scratch\n"


@pytest.mark.parametrize("text, want", [
    ("RUN echo hi", '(run "echo hi")'),
    ('RUN ["echo", "hi"]', '(run "echo" "hi")'),
    ("RUN   echo   two  spaces  ", '(run "echo   two  spaces")'),
    ("run lower case", '(run "lower case")'),
    ('CMD ["a", 1]x', '(cmd "[\\"a\\", 1]x")'),
    ("CMD [NaN]", '(cmd "[NaN]")'),
    ('ENTRYPOINT ["/bin/sh", "-c"]', '(entrypoint "/bin/sh" "-c")'),
    ('SHELL ["/bin/bash", "-c"]', '(shell "/bin/bash" "-c")'),
    ("COPY a b /dst/", '(copy "a" "b" "/dst/")'),
    ('COPY ["a b", "/dst"]', '(copy "a b" "/dst")'),
    ("COPY --from=build --chown=1:2 --chmod=644 a /b",
     '(copy ["--from=build" "--chown=1:2" "--chmod=644"] "a" "/b")'),
    ('COPY --chown="a b" x y', '(copy ["--chown=a b"] "x" "y")'),
    ("COPY --link x y", '(copy ["--link"] "x" "y")'),
    ("ADD --checksum=sha256:abc https://x/y /z", '(add ["--checksum=sha256:abc"] "https://x/y" "/z")'),
    ("RUN --mount=type=cache,target=/c --mount=type=secret,id=s --network=none make",
     '(run ["--mount=type=cache,target=/c" "--mount=type=secret,id=s" "--network=none"] "make")'),
    ("ENV a b c", '(env "a" "b c" "")'),
    ("ENV a=b c=d", '(env "a" "b" "=" "c" "d" "=")'),
    ('ENV a="b c" d=e\\ f', '(env "a" "\\"b c\\"" "=" "d" "e\\\\ f" "=")'),
    ("ENV a=", '(env "a" "" "=")'),
    ('LABEL "com.x"="y z" k=v', '(label "\\"com.x\\"" "\\"y z\\"" "=" "k" "v" "=")'),
    ("LABEL a b", '(label "a" "b" "")'),
    ("ARG a", '(arg "a")'),
    ("ARG a=1 b", '(arg "a=1" "b")'),
    ("MAINTAINER me <me@x>", '(maintainer "me <me@x>")'),
    ("EXPOSE 80/tcp 53/udp", '(expose "80/tcp" "53/udp")'),
    ("VOLUME /a /b", '(volume "/a" "/b")'),
    ('VOLUME ["/a", "/b"]', '(volume "/a" "/b")'),
    ("USER 1000:1000", '(user "1000:1000")'),
    ("WORKDIR /a b", '(workdir "/a b")'),
    ("STOPSIGNAL SIGKILL", '(stopsignal "SIGKILL")'),
    ("HEALTHCHECK NONE", '(healthcheck "NONE")'),
    ("HEALTHCHECK --interval=5s CMD curl -f x", '(healthcheck ["--interval=5s"] "CMD" "curl -f x")'),
    ("ONBUILD ADD . /src", '(onbuild (add "." "/src"))'),
    ('ONBUILD RUN ["a"]', '(onbuild (run "a"))'),
    ("ONBUILD ENV a b", '(onbuild (env "a" "b" ""))'),
])
def test_instruction_shapes(text: str, want: str) -> None:
    assert dumps(FROM + text + "\n")[1:] == [want]


def test_from_forms() -> None:
    got = parse("FROM --platform=linux/arm64 alpine:3 AS build\nFROM build\n").instructions
    assert got[0].args == ("alpine:3", "AS", "build")
    assert got[0].flags == ("--platform=linux/arm64",)
    assert got[0].flag_values("platform") == ["linux/arm64"]
    assert got[1].args == ("build",)


def test_instruction_fields() -> None:
    text = "FROM a\nRUN echo \\\n  # a comment\n  one \\\n\n  two\nCMD [\"x\"]\n"
    df = parse(text)
    run, cmd = df.instructions[1], df.instructions[2]
    assert (run.keyword, run.line, run.json_form) == ("RUN", 2, False)
    assert run.args == ("echo   one   two",)
    assert run.original == "RUN echo   one   two"
    assert (cmd.line, cmd.json_form, cmd.args) == (7, True, ("x",))
    assert df.escape == "\\" and df.directives == {}
    assert any("NoEmptyContinuation" in w and w.startswith("Dockerfile:2:") for w in df.warnings)


def test_env_keeps_quotes_and_escapes_for_the_words_module() -> None:
    env = parse('FROM a\nENV a="x y" b=\'$z\' c=d\\ e\n').instructions[1]
    assert env.args == ("a", '"x y"', "b", "'$z'", "c", "d\\ e")
    assert not env.legacy_form
    legacy = parse("FROM a\nENV a  b  c\n").instructions[1]
    assert legacy.args == ("a", "b  c") and legacy.legacy_form


def test_flag_values_in_order_and_booleans() -> None:
    ins = parse("FROM a\nRUN --mount=type=cache,target=/a --mount=type=tmpfs,target=/b x\n"
                "COPY --link --from=x a b\n").instructions
    assert ins[1].flag_values("mount") == ["type=cache,target=/a", "type=tmpfs,target=/b"]
    assert ins[2].flag_values("link") == ["true"]
    assert ins[2].flag_values("chown") == []


def test_flags_end_at_double_dash_or_a_plain_word() -> None:
    ins = parse("FROM a\nCOPY --link -- --weird /dst\nRUN ls --all\n", strict=False).instructions
    assert ins[1].flags == ("--link",) and ins[1].args == ("--weird", "/dst")
    assert ins[2].flags == () and ins[2].args == ("ls --all",)


def test_onbuild_trigger_is_parsed() -> None:
    onbuild = parse("FROM a\nONBUILD COPY --from=b x /y\n").instructions[1]
    assert onbuild.args == ("COPY --from=b x /y",)
    assert isinstance(onbuild.trigger, Instruction)
    assert onbuild.trigger.keyword == "COPY"
    assert onbuild.trigger.flags == ("--from=b",)
    assert onbuild.trigger.args == ("x", "/y")


def test_unknown_instruction_is_kept_when_not_strict() -> None:
    assert dumps("FOO bar\n", strict=False) == ["(foo)"]


# ----------------------------------------------------------------------- lines and bytes


def test_crlf_and_bom() -> None:
    text = "\ufeffFROM a\r\nRUN one \\\r\n two\r\n"
    assert dumps(text) == ['(from "a")', '(run "one  two")']
    assert dumps(text.encode()) == ['(from "a")', '(run "one  two")']


def test_continuation_at_eof_and_trailing_whitespace_after_escape() -> None:
    assert dumps("FROM a\nRUN a \\  \t\nb\nRUN c \\") == ['(from "a")', '(run "a b")', '(run "c")']


def test_escaped_escape_does_not_continue() -> None:
    assert dumps("FROM a\nENV A b\\\\\nENV C d\n")[1:] == ['(env "A" "b\\\\\\\\" "")',
                                                          '(env "C" "d" "")']


def test_comments_need_hash_at_line_start() -> None:
    assert dumps("FROM a\n  # indented comment\nRUN echo # not a comment\n")[1:] == [
        '(run "echo # not a comment")']


def test_line_numbers_count_every_physical_line() -> None:
    text = "# c\n\nFROM a\nRUN <<EOF\nx\nEOF\n\nRUN a \\\n b\nUSER u\n"
    assert [i.line for i in parse(text).instructions] == [3, 4, 8, 10]


# ---------------------------------------------------------------------------- directives


@pytest.mark.parametrize("text, directives, escape", [
    ("# syntax=docker/dockerfile:1\nFROM a\n", {"syntax": "docker/dockerfile:1"}, "\\"),
    ("#ESCAPE = `\nFROM a\n", {"escape": "`"}, "`"),
    ("# escape=\\\nFROM a\n", {"escape": "\\"}, "\\"),
    ("# check=skip=JSONArgsRecommended;error=true\nFROM a\n",
     {"check": "skip=JSONArgsRecommended;error=true"}, "\\"),
    ("# syntax=x\n# escape=`\n# check=error=true\nFROM a\n",
     {"syntax": "x", "escape": "`", "check": "error=true"}, "`"),
    ("# comment\n# escape=`\nFROM a\n", {}, "\\"),          # after a comment: a comment
    ("\n# escape=`\nFROM a\n", {}, "\\"),                   # after a blank line
    ("FROM a\n# escape=`\n", {}, "\\"),                     # after an instruction
    ("# unknown=x\n# escape=`\nFROM a\n", {}, "\\"),        # an unknown one ends them
    ("#!/usr/bin/env buildctl\n# escape=`\nFROM a\n", {}, "\\"),  # a shebang ends them
])
def test_directives(text: str, directives: dict[str, str], escape: str) -> None:
    df = parse(text)
    assert (df.directives, df.escape) == (directives, escape)


def test_backtick_escape_continues_lines_and_leaves_backslash_alone() -> None:
    text = "# escape=`\nFROM a\nRUN dir c:\\ `\n  && echo hi\nENV P c:\\a\\\n"
    assert dumps(text)[1:] == ['(run "dir c:\\\\   && echo hi")', '(env "P" "c:\\\\a\\\\" "")']


def test_foreign_syntax_is_ignored_with_a_warning() -> None:
    stock = parse("# syntax=docker/dockerfile:1.7\nFROM a\n")
    assert stock.warnings == ()
    other = parse("# syntax=example.com/frontend:2\nFROM a\n")
    assert other.warnings == ("Dockerfile:1: syntax directive ignored: forklift parses "
                              "Dockerfiles itself, not with example.com/frontend:2",)


# ------------------------------------------------------------------------------ heredocs


def heredocs(text: str) -> tuple[Heredoc, ...]:
    return parse("FROM a\n" + text).instructions[1].heredocs


@pytest.mark.parametrize("text, want", [
    ("RUN <<EOF\necho $HOME\nEOF\n", [("EOF", "echo $HOME\n", True)]),
    ("RUN <<'EOF'\necho $HOME\nEOF\n", [("EOF", "echo $HOME\n", False)]),
    ('RUN <<"EOF" bash\necho $HOME\nEOF\n', [("EOF", "echo $HOME\n", False)]),
    ("RUN <<-EOF\n\techo a\n\t\techo b\n\tEOF\n", [("EOF", "echo a\necho b\n", True)]),
    ("RUN <<EOF\n\tkept\n\tEOF\nEOF\n", [("EOF", "\tkept\n\tEOF\n", True)]),
    ("RUN <<EOF\nEOF\n", [("EOF", "", True)]),
    ("RUN <<A <<B\na\nA\nb\nB\n", [("A", "a\n", True), ("B", "b\n", True)]),
    ("RUN python3 <<EOF > /out\nprint(1)\nEOF\n", [("EOF", "print(1)\n", True)]),
    ("RUN 3<<EOF cat /dev/fd/3\nx\nEOF\n", [("EOF", "x\n", True)]),
    ("COPY <<EOF /dst\nfile\nEOF\n", [("EOF", "file\n", True)]),
    ("COPY <<A <<B /dst/\n1\nA\n2\nB\n", [("A", "1\n", True), ("B", "2\n", True)]),
    ("ADD <<EOF /dst\nx\nEOF\n", [("EOF", "x\n", True)]),
    ("RUN <<EOF\r\nline\r\nEOF\r\n", [("EOF", "line\r\n", True)]),
    ('RUN ["cat", "<<EOF"]\n', []),                 # JSON form: no heredoc
    ('RUN echo "<<EOF"\n', []),                     # quoted: not a heredoc marker
    ("RUN a<<EOF\n", []),
])
def test_heredocs(text: str, want: list[tuple[str, str, bool]]) -> None:
    assert [(h.name, h.content, h.expand) for h in heredocs(text)] == want


def test_heredoc_body_is_not_parsed_as_instructions() -> None:
    df = parse("FROM a\nRUN <<EOF\nFOO not an instruction\n# escape=`\nEOF\nUSER u\n")
    assert [i.keyword for i in df.instructions] == ["FROM", "RUN", "USER"]


def test_heredoc_only_for_run_copy_add() -> None:
    df = parse("FROM a\nENV a <<EOF\nUSER u\n")
    assert [i.keyword for i in df.instructions] == ["FROM", "ENV", "USER"]


def test_heredoc_in_onbuild_trigger() -> None:
    onbuild = parse("FROM a\nONBUILD RUN <<EOF\necho hi\nEOF\n").instructions[1]
    assert onbuild.trigger is not None
    assert onbuild.trigger.heredocs == (Heredoc("EOF", "echo hi\n", True),)
    assert onbuild.args == ("RUN <<EOF\necho hi\nEOF",)


# -------------------------------------------------------------------------------- errors


@pytest.mark.parametrize("text, message", [
    ("", "Dockerfile: the Dockerfile (Dockerfile) cannot be empty"),
    (" \n\t\n", "Dockerfile: the Dockerfile (Dockerfile) cannot be empty"),
    ("# only\n# comments\n", "Dockerfile:2: file with no instructions"),
    ("BOGUS bar\n", "Dockerfile:1: unknown instruction: BOGUS"),
    ("FROM a\nRUNN x\n", "Dockerfile:2: unknown instruction: RUNN (did you mean run?)"),
    ("FROM a\ncopyy x y\n", "Dockerfile:2: unknown instruction: copyy (did you mean copy?)"),
    ("RUN x\nFROM a\n", "Dockerfile:1: no build stage in current context"),
    ("ARG a\n", "Dockerfile: dockerfile contains no stages to build"),
    ("FROM\n", "Dockerfile:1: FROM requires either one or three arguments"),
    ("FROM a b\n", "Dockerfile:1: FROM requires either one or three arguments"),
    ("FROM a AS 9x\n", 'Dockerfile:1: invalid name for build stage: "9x", name can\'t '
                      "start with a number or contain symbols"),
    ("FROM --bogus a\n", "Dockerfile:1: unknown flag: bogus"),
    ("FROM a\nSHELL /bin/sh -c\n", "Dockerfile:2: SHELL requires the arguments to be in JSON form"),
    ("FROM a\nSHELL []\n", "Dockerfile:2: SHELL requires at least one argument"),
    ("FROM a\nRUN [1]\n", "Dockerfile:2: when using JSON array syntax, arrays must be "
                         "comprised of strings only"),
    ("FROM a\nENV\n", "Dockerfile:2: ENV requires at least one argument"),
    ("FROM a\nENV a\n", "Dockerfile:2: ENV must have two arguments"),
    ("FROM a\nENV =x\n", "Dockerfile:2: ENV names can not be blank"),
    ("FROM a\nENV a=b c\n", 'Dockerfile:2: Syntax error - can\'t find = in "c". Must be of '
                           "the form: name=value"),
    ("FROM a\nLABEL a\n", "Dockerfile:2: LABEL must have two arguments"),
    ("FROM a\nLABEL\n", "Dockerfile:2: LABEL requires at least one argument"),
    ("FROM a\nLABEL =b\n", "Dockerfile:2: LABEL names can not be blank"),
    ("FROM a\nARG\n", "Dockerfile:2: ARG requires at least one argument"),
    ("FROM a\nARG =b\n", "Dockerfile:2: ARG names can not be blank"),
    ("FROM a\nCOPY x\n", "Dockerfile:2: COPY requires at least two arguments, but only one "
                        "was provided. Destination could not be determined."),
    ("FROM a\nADD\n", "Dockerfile:2: ADD requires at least two arguments, but only one "
                     "was provided. Destination could not be determined."),
    ("FROM a\nCOPY --chown x y\n", "Dockerfile:2: missing a value on flag: chown"),
    ("FROM a\nCOPY --link=yes x y\n", "Dockerfile:2: expecting boolean value for flag link, "
                                     "not: yes"),
    ("FROM a\nCOPY --from=a --from=b x y\n", "Dockerfile:2: duplicate flag specified: from"),
    ("FROM a\nCMD --doit x\n", "Dockerfile:2: unknown flag: doit"),
    ("FROM a\nEXPOSE\n", "Dockerfile:2: EXPOSE requires at least one argument"),
    ("FROM a\nVOLUME\n", "Dockerfile:2: VOLUME requires at least one argument"),
    ('FROM a\nVOLUME [""]\n', "Dockerfile:2: VOLUME specified can not be an empty string"),
    ("FROM a\nUSER\n", "Dockerfile:2: USER requires exactly one argument"),
    ("FROM a\nWORKDIR\n", "Dockerfile:2: WORKDIR requires exactly one argument"),
    ("FROM a\nSTOPSIGNAL\n", "Dockerfile:2: STOPSIGNAL requires exactly one argument"),
    ("FROM a\nMAINTAINER\n", "Dockerfile:2: MAINTAINER requires exactly one argument"),
    ("FROM a\nHEALTHCHECK\n", "Dockerfile:2: HEALTHCHECK requires at least one argument"),
    ("FROM a\nHEALTHCHECK CMD\n", "Dockerfile:2: Missing command after HEALTHCHECK CMD"),
    ("FROM a\nHEALTHCHECK NONE x\n", "Dockerfile:2: HEALTHCHECK NONE takes no arguments"),
    ("FROM a\nHEALTHCHECK TCP 80\n", 'Dockerfile:2: Unknown type "TCP" in HEALTHCHECK '
                                    "(try CMD)"),
    ("FROM a\nONBUILD\n", "Dockerfile:2: ONBUILD requires at least one argument"),
    ("FROM a\nONBUILD ONBUILD RUN x\n", "Dockerfile:2: Chaining ONBUILD via `ONBUILD ONBUILD` "
                                       "isn't allowed"),
    ("FROM a\nONBUILD FROM b\n", "Dockerfile:2: FROM isn't allowed as an ONBUILD trigger"),
    ("FROM a\nONBUILD maintainer b\n", "Dockerfile:2: MAINTAINER isn't allowed as an ONBUILD "
                                      "trigger"),
    ("FROM a\nONBUILD BOGUS b\n", "Dockerfile:2: unknown instruction: BOGUS"),
    ("# escape=`\n# ESCAPE=\\\nFROM a\n", "Dockerfile:2: only one escape parser directive "
                                         "can be used"),
    ("# syntax=a\n# syntax=b\nFROM a\n", "Dockerfile:2: only one syntax parser directive "
                                        "can be used"),
    ("# escape=x\nFROM a\n", "Dockerfile:1: invalid escape token 'x' does not match ` or \\"),
    ("FROM a\nRUN <<EOF\necho\n", "Dockerfile:2: unterminated heredoc EOF"),
    ("FROM a\nCOPY <<A <<B /d\na\nA\nb\n", "Dockerfile:2: unterminated heredoc B"),
    ("FROM a\nRUN <<-EOF\n  EOF\n", "Dockerfile:2: unterminated heredoc EOF"),
])
def test_errors(text: str, message: str) -> None:
    assert error(text) == message


def test_error_is_an_invalid_argument_with_its_line() -> None:
    with pytest.raises(InvalidArgument) as info:
        parse("FROM a\n\nBOGUS x\n", name="ctx/Dockerfile.dev")
    assert isinstance(info.value, DockerfileSyntaxError)
    assert info.value.line == 3 and info.value.exit_code == 1
    assert str(info.value) == "ctx/Dockerfile.dev:3: unknown instruction: BOGUS"


def test_not_strict_skips_the_instruction_checks() -> None:
    assert dumps("CMD --doit [\"a\"]\n", strict=False) == ['(cmd ["--doit"] "a")']
    assert error("FROM a\nONBUILD ONBUILD RUN x\n", strict=False).endswith("isn't allowed")


# --------------------------------------------------------------------------- hostile input


def timed(text: str | bytes, strict: bool = True) -> tuple[float, str]:
    """(seconds, outcome) of one parse; any other exception fails the test."""
    start = time.monotonic()
    try:
        outcome = f"ok {len(parse(text, strict=strict).instructions)}"
    except DockerfileSyntaxError as e:
        outcome = str(e)
    return time.monotonic() - start, outcome


# Generous bounds: the machine is shared; a quadratic parse takes minutes on these.
BOUND = 10.0
MB = 1 << 20


# Built when the test runs (a parameter would hold 100 MB for the whole session).
HOSTILE: list[tuple[Callable[[], bytes | str], str]] = [
    (lambda: b"FROM a\n" + b"RUN x\n" * (100 * MB // 6),
     f"Dockerfile: Dockerfile too large ({7 + 100 * MB // 6 * 6} bytes, at most {MAX_SIZE} "
     "are read)"),
    (lambda: b"FROM a\nRUN " + b"x" * (10 * MB) + b"\n",
     f"Dockerfile: Dockerfile too large ({10 * MB + 12} bytes, at most {MAX_SIZE} are read)"),
    (lambda: b"FROM a\nRUN " + b"x" * MAX_LINE + b"\n",
     f"Dockerfile:2: dockerfile line greater than max allowed size of {MAX_LINE}"),
    (lambda: b"FROM a\n# " + b"x" * MAX_LINE + b"\n",
     f"Dockerfile:2: dockerfile line greater than max allowed size of {MAX_LINE}"),
    (lambda: b"FROM a\nRUN x\x00y\n", "Dockerfile:2: NUL byte in the Dockerfile"),
    (lambda: "FROM a\n".encode("utf-16"),
     "Dockerfile:1: NUL byte in the Dockerfile (is it UTF-16?)"),
    (lambda: b"FROM a\n\nRUN \xff\xfe\n", "Dockerfile:3: not valid UTF-8 text"),
    (lambda: "FROM a\nRUN \udcff\n", "Dockerfile:2: not valid UTF-8 text"),
    (lambda: b"FROM a\n" + b"ONBUILD \\\n" * 100_000 + b"RUN x\n",
     "Dockerfile:2: Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"),
    (lambda: b"FROM a\nCMD " + b"[" * 60_000 + b"\n", "ok 2"),
    (lambda: b"FROM a\nCMD " + b"[[[[[[[[\\\n" * 100_000 + b"]]]]]]]]\\\n" * 100_000 + b"\n",
     "ok 2"),
]


@pytest.mark.parametrize("make, outcome", HOSTILE, ids=[o[:40] for _, o in HOSTILE])
def test_hostile_input_gets_a_clear_error_or_a_result(
        make: Callable[[], bytes | str], outcome: str) -> None:
    seconds, got = timed(make())
    assert got == outcome
    assert seconds < BOUND


def test_longest_allowed_line_parses() -> None:
    assert timed(b"FROM a\nRUN " + b"x" * (MAX_LINE - 4) + b"\n")[1] == "ok 2"


def test_size_limit_is_exact() -> None:
    """Blank lines: the cheapest way to fill the largest accepted file."""
    head = b"FROM a\n"
    assert timed(head + b"\n" * (MAX_SIZE - len(head)))[1] == "ok 1"
    assert timed(head + b"\n" * (MAX_SIZE + 1 - len(head)))[1] == (
        f"Dockerfile: Dockerfile too large ({MAX_SIZE + 1} bytes, at most {MAX_SIZE} are read)")


@pytest.mark.parametrize("shape", [
    "blank lines", "comment lines", "instructions", "continuations",
    "comments in a continuation",
    "env words", "flags", "heredoc body", "heredoc markers", "quotes", "escapes",
])
def test_each_costly_shape_parses_in_linear_time(shape: str) -> None:
    """1 MiB of each shape (a quarter of the limit): bounded, where a quadratic step in the
    parse would take minutes."""
    n = MB
    body = {
        "blank lines": b"\n" * n,
        "comment lines": b"  # c\n" * (n // 6),
        "instructions": b"RUN x\n" * (n // 6),
        "continuations": b"RUN a \\\n" + b" b\\\n" * (n // 4) + b"\n",
        "comments in a continuation": b"RUN a \\\n" + b"#\n \n" * (n // 4) + b"b\n",
        "env words": b"ENV " + b"a=b \\\n" * (n // 6) + b"c=d\n",
        "flags": b"COPY " + b"--exclude=x \\\n" * (n // 14) + b"a b\n",
        "heredoc body": b"RUN <<EOF\n" + b"x\n" * (n // 2) + b"EOF\n",
        "heredoc markers": b"RUN " + b"<<A \\\n" * (n // 6) + b"\n",
        "quotes": b"LABEL a=\"" + b"'\\\n" * (n // 3) + b"\"\n",
        "escapes": b"ENV a=" + b"x\\ \\\n" * (n // 5) + b"\n",
    }[shape]
    seconds, outcome = timed(b"FROM a\n" + body)
    assert outcome.startswith("ok") or "unterminated heredoc" in outcome, outcome
    assert seconds < BOUND


def test_lint_warnings_name_their_line() -> None:
    df = parse("FROM a\nMAINTAINER me\nENV a b\nLABEL c=d\nONBUILD LABEL e f\n")
    assert df.warnings == (
        "Dockerfile:2: MaintainerDeprecated: Maintainer instruction is deprecated in favor "
        "of using label",
        'Dockerfile:3: LegacyKeyValueFormat: "ENV key=value" should be used instead of '
        'legacy "ENV key value" format',
        'Dockerfile:5: LegacyKeyValueFormat: "LABEL key=value" should be used instead of '
        'legacy "LABEL key value" format',
    )


def test_error_quoting_a_huge_word_stays_short() -> None:
    message = error(b"FROM a\n" + b"X" * 60_000 + b" y\n")
    assert message.startswith("Dockerfile:2: unknown instruction: XXX")
    assert message.endswith("...") and len(message) < 500
