"""Variable substitution in Dockerfile words (forklift.build.words), against BuildKit's own
tables (envVarTest, wordsTest, read from the shared peer-test data) and our own cases:
``referenced``, the backtick escape, errors, and hostile words that must stay linear."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.peers import peer_path

from forklift.build.words import SubstitutionError, expand, expand_words, referenced
from forklift.errors import InvalidArgument

REPO = Path(__file__).resolve().parents[2]
SHELL_TABLES = "buildkit-dockerfile/frontend/dockerfile/shell"
# The environment envVarTest assumes (peer-tests/README.md).
ENV = {"PWD": "/home", "SHELL": "bash", "KOREAN": "한국어", "NULL": ""}


def peer_table(name: str) -> Path | None:
    return peer_path(f"{SHELL_TABLES}/{name}")


def table_lines(name: str) -> list[tuple[int, str]]:
    path = peer_table(name)
    if path is None:
        return []
    return list(enumerate(path.read_text(encoding="utf-8").splitlines(), 1))


def missing(name: str) -> pytest.MarkDecorator:
    return pytest.mark.skipif(
        peer_table(name) is None,
        reason=f"BuildKit's {name} not found under any parent of {REPO} at {SHELL_TABLES}")


def env_var_cases() -> list[object]:
    cases: list[object] = []
    for n, line in table_lines("envVarTest"):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        platform, source, expected = (part.strip() for part in line.split("|"))
        assert platform in ("A", "U", "W"), f"envVarTest:{n}: {line}"
        if platform != "W":         # W: Windows only
            cases.append(pytest.param(source, expected, id=f"envVarTest:{n}"))
    return cases


def words_cases() -> list[object]:
    """wordsTest: ``input | word1,word2`` (``error`` when refused); ``ENV name=value``
    sets a variable, trailing spaces kept, for the lines after it."""
    cases: list[object] = []
    env: dict[str, str] = {}
    for n, line in table_lines("wordsTest"):
        if not line.strip() or line.startswith("#"):
            continue
        if line.startswith("ENV "):
            name, _, value = line[4:].lstrip(" ").partition("=")
            env[name] = value
            continue
        source, expected = line.split("|")
        cases.append(pytest.param(source.strip(), expected.lstrip(" ").split(","), dict(env),
                                  id=f"wordsTest:{n}"))
    return cases


@missing("envVarTest")
def test_env_var_table_is_read_whole() -> None:
    assert len(env_var_cases()) == 228         # 226 A| and 2 U| lines; W| is Windows only


@missing("wordsTest")
def test_words_table_is_read_whole() -> None:
    assert len(words_cases()) == 24


@missing("envVarTest")
@pytest.mark.parametrize(("source", "expected"), env_var_cases())
def test_buildkit_env_var_table(source: str, expected: str) -> None:
    if expected == "error":
        with pytest.raises(SubstitutionError):
            expand(source, ENV)
    else:
        assert expand(source, ENV) == expected


@missing("wordsTest")
@pytest.mark.parametrize(("source", "expected", "env"), words_cases())
def test_buildkit_words_table(source: str, expected: list[str], env: dict[str, str]) -> None:
    try:
        result = expand_words(source, env)
    except SubstitutionError:
        result = ["error"]
    assert result == expected


@pytest.mark.parametrize(("word", "names"), [
    ("plain 'quoted' \"and $ alone\"", set()),
    ("$A ${B} \"$C\" '$D'", {"A", "B", "C"}),
    ("${A:-$B} ${C:+${D}} ${E-x} ${F+y} ${G?}", {"A", "B", "C", "D", "E", "F", "G"}),
    ("${A:-${B:-${C}}}", {"A", "B", "C"}),
    ("\\$A \"\\$B\" $C_D9x", {"C_D9x"}),
    ("$1 ${@} $$ $0 $001", {"1", "@", "$", "0", "001"}),
    ("$안녕.txt", {"안녕"}),
    ("${A:?must be set}", {"A"}),              # never raises: only the names are wanted
    ("${A#$B}${C%%x}${D//$E/$F}", {"A", "B", "C", "D", "E", "F"}),
])
def test_referenced(word: str, names: set[str]) -> None:
    assert referenced(word) == names


def test_referenced_follows_the_escape_character() -> None:
    assert referenced("`$A $B", escape="`") == {"B"}
    assert referenced("\\$A", escape="`") == {"A"}


@pytest.mark.parametrize("word", ["${A", "'$A", "\"$A", "${A:=x}"])
def test_referenced_refuses_what_expand_refuses(word: str) -> None:
    with pytest.raises(SubstitutionError):
        referenced(word)


@pytest.mark.parametrize(("word", "expected"), [
    ("C:\\Windows\\$PWD", "C:\\Windows\\/home"),  # a backslash is plain text then
    ("he`$PWD", "he$PWD"),
    ("he``$PWD", "he`/home"),
    ("a`'b", "a'b"),
    ("a` b", "a b"),
    ("hello`", "hello"),
    ('"a`"b"', 'a"b'),
    ('"a`$PWD"', "a$PWD"),
    ('"a``b"', "a`b"),
    ('"a`tb"', "a`tb"),
    ('"a\\"', "a\\"),
    ("'a`b'", "a`b"),
    ("${X:-`}}", "}"),
])
def test_backtick_escape(word: str, expected: str) -> None:
    assert expand(word, ENV, escape="`") == expected


def test_backtick_escape_splits_words_as_backslash_does() -> None:
    assert expand_words("a` b c`\"d", ENV, escape="`") == ["a b", 'c"d']


@pytest.mark.parametrize("escape", ["", "ab", "$", "'", '"'])
def test_escape_must_be_one_plain_character(escape: str) -> None:
    with pytest.raises(ValueError):
        expand("x", ENV, escape=escape)


@pytest.mark.parametrize(("word", "env", "expected"), [
    ("${A-x}|${A:-y}", {"A": ""}, "|y"),
    ("${A+x}|${A:+y}", {"A": ""}, "x|"),
    ("${A?}|${A:?x}", {"A": "v"}, "v|v"),
    ("$é/${ß}", {"é": "1", "ß": "2"}, "1/2"),
    ("$a²", {"a": "1", "a²": "2"}, "1²"),          # a numeral is no name character
    ("${A:-'}'}", {}, "}"),
    ("${A:-\"a b\"}", {}, "a b"),
    ("\"${A:-\"x\"}\"", {}, "x"),
    ("$", {}, "$"),
    ("a$", {}, "a$"),
    ("\"$\"", {}, "$"),
    ("$ {A}", {"A": "1"}, "$ {A}"),
])
def test_expand(word: str, env: dict[str, str], expected: str) -> None:
    assert expand(word, env) == expected


@pytest.mark.parametrize(("word", "env", "expected"), [
    ("", {}, []),
    ("  ''  ", {}, []),
    ("a '' b", {}, ["a", "b"]),
    ("$V", {"V": " x\ty\n "}, ["x", "y"]),
    ("\"$V\"", {"V": " x "}, [" x "]),
    ("${A:-$V}", {"V": "x y"}, ["x", "y"]),
    ("${A:-a b}", {}, ["a", "b"]),          # an unquoted default splits as a value does
    ("\"${A:-a b}\"", {}, ["a b"]),
    ("a\x1cb", {}, ["a\x1cb"]),             # not a space to Go, though str.isspace says so
    ("a\u3000b\xa0c", {}, ["a", "b", "c"]),
])
def test_expand_words(word: str, env: dict[str, str], expected: list[str]) -> None:
    assert expand_words(word, env) == expected


@pytest.mark.parametrize(("word", "reason"), [
    ("${A", "missing '}'"),
    ("${A:", "missing '}'"),
    ("${A:-x", "missing '}'"),
    ("${", "missing '}'"),
    ("${}", "bad substitution"),
    ("${A!}", "unsupported modifier (!) in substitution"),
    ("${A:=x}", "unsupported modifier (:=) in substitution"),
    ("'x", "matching single-quote"),
    ("\"x", "matching double-quote"),
    ("${A?}", "A: is not allowed to be unset"),
    ("${E:?}", "E: is not allowed to be empty"),
    ("${A?no A\nhere}", "A: no A\\nhere"),
])
def test_errors_are_one_line(word: str, reason: str) -> None:
    with pytest.raises(SubstitutionError) as caught:
        expand(word, {"E": ""})
    message = str(caught.value)
    assert isinstance(caught.value, InvalidArgument)
    assert message.startswith("failed to process \"") and message.endswith(reason)
    assert len(message.splitlines()) == 1


@pytest.mark.parametrize(("word", "env"), [
    ("x" * 10_000 + "${", {}),
    ("${A?" + "m" * 10_000 + "}", {}),
    ("${A#$P}", {"P": "\\x" * 10_000}),
])
def test_error_shortens_a_long_word(word: str, env: dict[str, str]) -> None:
    with pytest.raises(SubstitutionError) as caught:
        expand(word, env)
    assert len(str(caught.value)) < 300


FILE = {"F": "/home/tux/book/book.tar.bz2", "V": "aXbXc", "E": "", "N": "a\nb\nab"}


@pytest.mark.parametrize(("word", "expected"), [
    ("${F#*/}", "home/tux/book/book.tar.bz2"),
    ("${F##*/}", "book.tar.bz2"),
    ("${F%.*}", "/home/tux/book/book.tar"),
    ("${F%%.*}", "/home/tux/book/book"),
    ("${F#/home}", "/tux/book/book.tar.bz2"),
    ("${F#nothing}", "/home/tux/book/book.tar.bz2"),
    ("${F:#*/}", "home/tux/book/book.tar.bz2"),       # BuildKit ignores the colon here
    ("${F%.???}", "/home/tux/book/book.tar"),
    ("${F/tux/wilber}", "/home/wilber/book/book.tar.bz2"),
    ("${F//book/X}", "/home/tux/X/X.tar.bz2"),
    ("${F/b*k/X}", "/home/tux/X.tar.bz2"),            # a match is the longest one
    ("${F/\\//.}", ".home/tux/book/book.tar.bz2"),   # \/ is a / in the pattern
    ("${V//X/-}", "a-b-c"),
    ("${V/X/}", "abXc"),
    ("${V//*/z}", "z"),                  # the empty match at the end abuts the first
    ("${V//x*/z}", "aXbXc"),
    ("${V//?/<$$0>}", "<0><0><0><0><0>"),    # $$ is a special parameter (empty), then 0
    ("${V//?/<'$0'>}", "<a><X><b><X><c>"),  # Go's replacement template: $0 is the match
    ("${V//?/'$$'}", "$$$$$"),
    ("${V//?/'${0}$1$x${'}", "a${X${b${X${c${"),  # no group 1, none named x; "${" stays
    ("${V#\\*}", "aXbXc"),              # an escaped * is a literal *
    ("${V#\"a\"}", "XbXc"),
    ("${V#'a'X}", "bXc"),
    ("${V#${E:-a}}", "XbXc"),
    ("${V%\\}}", "aXbXc"),
    ("${E#*}|${U%%*}|${U//a/b}", "||"),
    ("${N#*b}", "a\nb\nab"),               # * and ? never match a newline
    ("${N%a*}", "a\nb\n"),
    ("${N//b/Q}", "a\nQ\naQ"),
    ("${N/?\nb/Q}", "Q\nab"),
])
def test_patterns(word: str, expected: str) -> None:
    assert expand(word, FILE) == expected


@pytest.mark.parametrize(("word", "reason"), [
    ("${V#a\\X}", "invalid pattern (a\\X) in substitution: invalid escape '\\X'"),
    ("${V/a\\X/b}", "invalid pattern (a\\X) in substitution: invalid escape '\\X'"),
    ("${V/a}", "syntax error: missing '/' in ${}"),
    ("${V/a/b", "syntax error: missing '}'"),
    ("${V:/a/b}", "unsupported modifier (:/) in substitution"),
])
def test_pattern_errors(word: str, reason: str) -> None:
    with pytest.raises(SubstitutionError) as caught:
        expand(word, FILE)
    assert str(caught.value).endswith(reason)


def go_regex(pattern: str, greedy: bool) -> re.Pattern[str]:
    """BuildKit's translation of a pattern into a regular expression, which Python's re
    matches as Go's regexp does (leftmost first, "." short of a newline)."""
    out, chars = [], iter(pattern)
    for c in chars:
        if c == "*":
            out.append(".*" if greedy else ".*?")
        elif c == "?":
            out.append(".")
        else:
            out.append(re.escape(next(chars) if c == "\\" else c))
    return re.compile("".join(out))


def reversed_pattern(pattern: str) -> str:
    units = re.findall(r"\\.|.", pattern, re.S)
    return "".join(reversed(units))


def go_replace_all(rx: re.Pattern[str], value: str, repl: str) -> str:
    out, last, pos = [], 0, 0
    while pos <= len(value) and (m := rx.search(value, pos)):
        out.append(value[last:m.start()])
        if m.end() > last or m.start() == 0:
            out.append(repl)
        last = m.end()
        pos = pos + 1 if pos + 1 > m.end() else m.end()
    return "".join(out) + value[last:]


def buildkit_pattern_op(op: str, value: str, pattern: str) -> str:
    if op in ("#", "##"):
        m = go_regex(pattern, op == "##").match(value)
        return value[m.end():] if m else value
    if op in ("%", "%%"):
        m = go_regex(reversed_pattern(pattern), op == "%%").match(value[::-1])
        return value[:len(value) - m.end()] if m else value
    if op == "/":
        return go_regex(pattern, True).sub("R", value, count=1)
    return go_replace_all(go_regex(pattern, True), value, "R")


PATTERN_UNITS = st.sampled_from(["a", "b", "ab", "*", "?", "\\*", "\\?", "\\\\", ".", "\n"])
VALUE_CHARS = st.sampled_from(["a", "b", "\n", "*", ".", "\\"])


@settings(max_examples=int(os.environ.get("FORKLIFT_HYPOTHESIS_EXAMPLES", "300")),
          deadline=None)
@given(op=st.sampled_from(["#", "##", "%", "%%", "/", "//"]),
       value=st.lists(VALUE_CHARS, max_size=12).map("".join),
       pattern=st.lists(PATTERN_UNITS, max_size=6).map("".join))
def test_patterns_match_as_buildkit_regexps_do(op: str, value: str, pattern: str) -> None:
    # the pattern comes from a variable, so any character of it reaches the matcher
    word = "${V" + op + "$P" + ("/R}" if "/" in op else "}")
    assert expand(word, {"V": value, "P": pattern}) == buildkit_pattern_op(op, value, pattern)


MB = 1 << 20
DEEP = 100_000
# A 1 MB word of each cheap shape; a quarter of that where each few characters are a step
# of their own, which is still far past where quadratic work would show.
HOSTILE = [
    pytest.param("a" * MB, {}, "a" * MB, id="plain"),
    pytest.param("$." * (MB // 2), {}, "$." * (MB // 2), id="dollars"),
    pytest.param("$$" * (MB // 8), {}, "", id="pids"),
    pytest.param("\\a" * (MB // 2), {}, "a" * (MB // 2), id="escapes"),
    pytest.param("'a'" * (MB // 12), {}, "a" * (MB // 12), id="single-quotes"),
    pytest.param('"a"' * (MB // 12), {}, "a" * (MB // 12), id="double-quotes"),
    pytest.param("$A" * (MB // 8), {"A": "x"}, "x" * (MB // 8), id="variables"),
    pytest.param("$" + "N" * MB, {}, "", id="long-name"),
    pytest.param("$" + "é" * MB, {}, "", id="long-unicode-name"),
    pytest.param("${A:-" * DEEP + "x" + "}" * DEEP, {}, "x", id="nested-defaults"),
    pytest.param("${A:-" * DEEP + "x" * (MB // 2) + "}" * DEEP, {}, "x" * (MB // 2),
                 id="nested-around-a-long-word"),
    pytest.param("${A:-x" * DEEP + "}" * DEEP, {}, "x" * DEEP, id="nested-each-adding"),
    pytest.param('"${A:-' * DEEP + "x" + '}"' * DEEP, {}, "x", id="nested-in-quotes"),
    pytest.param("${A:-" * DEEP, {}, SubstitutionError, id="nested-unclosed"),
    pytest.param("${A#" + "*a" * DEEP + "b}", {"A": "a" * MB}, "a" * MB, id="many-stars"),
    pytest.param("${A##" + "*a" * DEEP + "}", {"A": "a" * MB}, "", id="many-stars-greedy"),
    pytest.param("${A%" + "a*" * DEEP + "}", {"A": "a" * MB}, "a" * (MB - DEEP),
                 id="many-stars-suffix"),
    pytest.param("${A//" + "*a" * DEEP + "b/x}", {"A": ("a" * 99 + "\n") * (MB // 400)},
                 ("a" * 99 + "\n") * (MB // 400), id="many-stars-each-line"),
    pytest.param("${A//" + "*" * MB + "b/x}", {"A": "a\n" * (MB // 8)}, "a\n" * (MB // 8),
                 id="only-stars-each-line"),
    pytest.param("${A//a/bb}", {"A": "a" * (MB // 8)}, "bb" * (MB // 8), id="many-matches"),
    pytest.param("${A//b/c}", {"A": "ab" * MB}, "ac" * MB, id="many-matches-on-a-long-line"),
    pytest.param('"' + "\\" * MB, {}, SubstitutionError, id="unclosed-quote"),
]


@pytest.mark.parametrize(("word", "env", "expected"), HOSTILE)
def test_hostile_words_take_linear_time(word: str, env: dict[str, str],
                                        expected: object) -> None:
    # linear work is well under a second here; quadratic work on these would take minutes
    start = time.monotonic()
    if expected is SubstitutionError:
        with pytest.raises(SubstitutionError):
            expand(word, env)
    else:
        assert expand(word, env) == expected
    assert time.monotonic() - start < 10


@pytest.mark.parametrize(("word", "env", "expected"), [
    pytest.param("a b  " * (MB // 5), {}, ["a", "b"] * (MB // 5), id="spaces"),
    pytest.param("$V" * (MB // 8), {"V": " x "}, ["x"] * (MB // 8), id="values"),
    pytest.param("${A:-" * DEEP + "x y" + "}" * DEEP, {}, ["x", "y"], id="nested"),
])
def test_hostile_words_split_in_linear_time(word: str, env: dict[str, str],
                                            expected: list[str]) -> None:
    start = time.monotonic()
    assert expand_words(word, env) == expected
    assert time.monotonic() - start < 10
