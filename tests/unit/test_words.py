"""Variable substitution in Dockerfile words (forklift.build.words), against BuildKit's own
tables (envVarTest, wordsTest, read from the shared peer-test data) and our own cases:
``referenced``, the backtick escape, errors, and hostile words that must stay linear."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from forklift.build.words import SubstitutionError, expand, expand_words, referenced
from forklift.errors import InvalidArgument

REPO = Path(__file__).resolve().parents[2]
SHELL_TABLES = "shared/peer-tests/buildkit-dockerfile/frontend/dockerfile/shell"
# The environment envVarTest assumes (peer-tests/README.md).
ENV = {"PWD": "/home", "SHELL": "bash", "KOREAN": "한국어", "NULL": ""}


def peer_table(name: str) -> Path | None:
    """``../shared/...`` from the repo root; a git worktree under a folder of its own
    (``/work/wt/b-words``) finds it one level further up."""
    for parent in REPO.parents:
        path = parent / SHELL_TABLES / name
        if path.is_file():
            return path
    return None


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


def test_error_quotes_a_long_word_shortened() -> None:
    with pytest.raises(SubstitutionError) as caught:
        expand("x" * 10_000 + "${", {})
    assert len(str(caught.value)) < 200


MB = 1 << 20
DEEP = 100_000
HOSTILE = [
    pytest.param("a" * MB, {}, "a" * MB, id="plain"),
    pytest.param("$." * (MB // 2), {}, "$." * (MB // 2), id="dollars"),
    pytest.param("$$" * (MB // 2), {}, "", id="pids"),
    pytest.param("\\a" * (MB // 2), {}, "a" * (MB // 2), id="escapes"),
    pytest.param("'a'" * (MB // 3), {}, "a" * (MB // 3), id="single-quotes"),
    pytest.param('"a"' * (MB // 3), {}, "a" * (MB // 3), id="double-quotes"),
    pytest.param("$A" * (MB // 2), {"A": "x"}, "x" * (MB // 2), id="variables"),
    pytest.param("$" + "N" * MB, {}, "", id="long-name"),
    pytest.param("$" + "é" * MB, {}, "", id="long-unicode-name"),
    pytest.param("${A:-" * DEEP + "x" + "}" * DEEP, {}, "x", id="nested-defaults"),
    pytest.param("${A:-" * DEEP + "x" * (MB // 2) + "}" * DEEP, {}, "x" * (MB // 2),
                 id="nested-around-a-long-word"),
    pytest.param("${A:-x" * DEEP + "}" * DEEP, {}, "x" * DEEP, id="nested-each-adding"),
    pytest.param('"${A:-' * DEEP + "x" + '}"' * DEEP, {}, "x", id="nested-in-quotes"),
    pytest.param("${A:-" * DEEP, {}, SubstitutionError, id="nested-unclosed"),
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
        words = expand_words(word, env)
        assert "".join(words) == expected
    assert time.monotonic() - start < 10
