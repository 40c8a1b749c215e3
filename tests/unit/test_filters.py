"""``--filter``: the one parser and the matchers every listing and prune uses (Docker 20.10's rules)."""

from __future__ import annotations

import pytest

from forklift.engine.filters import Filters
from forklift.errors import InvalidFilter, InvalidFlag

NOW = 1_700_000_000.0


def test_parse_lowercases_and_trims_the_key_keeps_repeats_once_and_ignores_empty_flags():
    f = Filters.parse([" Label = a=b ", "label=c", "label=c", "", "name="])
    assert f.keys() == ["label", "name"]
    assert f.get("label") == ["a=b", "c"]
    assert f.get("name") == [""]
    assert f.get("nosuch") == []
    assert not Filters.parse([""])


def test_a_flag_without_equals_is_a_flag_error():
    with pytest.raises(InvalidFlag) as err:
        Filters.parse(["foo"])
    assert err.value.exit_code == 125
    assert err.value.message == ('invalid argument "foo" for "-f, --filter" flag:'
                                 " bad format of filter (expected name=value)")


def test_validate_names_the_first_unknown_key():
    Filters.parse(["name=x", "label=y"]).validate(("name", "label"))
    with pytest.raises(InvalidFilter) as err:
        Filters.parse(["name=x", "bogus=1", "=x"]).validate(("name",))
    assert err.value.message == "Invalid filter 'bogus'"
    assert err.value.exit_code == 1
    with pytest.raises(InvalidFilter, match="^Invalid filter ''$"):
        Filters.parse(["=x"]).validate(("name",))


def test_match_is_exact_or_a_regular_expression_found_in_the_source():
    f = Filters.parse(["name=va", "name=^x.z$", "name=bad["])
    assert f.match("name", "nova") and f.match("name", "xyz") and f.match("name", "bad[")
    assert not f.match("name", "other") and not f.match("name", "xyzz")
    assert Filters().match("name", "anything")


def test_exact_needs_equality():
    f = Filters.parse(["driver=local"])
    assert f.exact("driver", "local") and not f.exact("driver", "loc")
    assert Filters().exact("driver", "x")


def test_labels_must_all_hold():
    labels = {"a": "b", "c": ""}
    assert Filters.parse(["label=a", "label=a=b", "label=c"]).labels(labels)
    assert not Filters.parse(["label=a=c"]).labels(labels)
    assert not Filters.parse(["label=a", "label=z"]).labels(labels)
    assert Filters.parse(["label=c="]).labels(labels)


def test_prune_labels_exclude_only_objects_with_every_negated_label():
    f = Filters.parse(["label!=a", "label!=c"])
    assert f.prune_labels({}) and f.prune_labels({"a": "b"})
    assert not f.prune_labels({"a": "b", "c": "d"})
    assert Filters.parse(["label!=a=c"]).prune_labels({"a": "b"})
    both = Filters.parse(["label=a=b", "label!=c"])
    assert both.prune_labels({"a": "b"}) and not both.prune_labels({"a": "b", "c": "1"})
    assert not both.prune_labels({"a": "x"})


@pytest.mark.parametrize(("values", "kw", "expected"), [
    (["true"], {}, True), (["1"], {}, True), (["0"], {}, False), (["false"], {}, False),
    (["true", "false"], {}, True), (["true", "false"], {"prefer": False}, False),
    (["maybe", "1"], {}, True),
    (["1"], {"true": ("true",), "false": ("false",)}, "Invalid filter 'dangling=[1]'"),
    (["TRUE"], {}, "Invalid filter 'dangling=[TRUE]'"),
    (["maybe", "no"], {}, "Invalid filter 'dangling=[maybe no]'"),
])
def test_boolean_words(values, kw, expected):
    f = Filters({"dangling": values})
    if isinstance(expected, str):
        with pytest.raises(InvalidFilter) as err:
            f.boolean("dangling", **kw)
        assert err.value.message == expected
    else:
        assert f.boolean("dangling", **kw) is expected
    assert Filters().boolean("dangling") is None


def test_until_reads_durations_dates_and_unix_seconds():
    assert Filters.parse(["until=1h"]).until(NOW) == NOW - 3600
    assert Filters.parse(["until=2013-01-02T13:23:37Z"]).until(NOW) == 1357133017
    assert Filters.parse(["until=1577836800.5"]).until(NOW) == 1577836800.5
    assert Filters().until(NOW) is None
    with pytest.raises(InvalidFilter, match='^failed to parse value as time or duration: "bad"$'):
        Filters.parse(["until=bad"]).until(NOW)
    with pytest.raises(InvalidFilter, match="^more than one until filter specified$"):
        Filters.parse(["until=1h", "until=2h"]).until(NOW)
