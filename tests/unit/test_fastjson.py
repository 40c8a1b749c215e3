"""forklift.fastjson gives json's text and values (it calls json's C accelerator itself)."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from forklift import fastjson

DOCUMENTS = [
    {"a": [1, 2.5, None, True, False, "é\u2028\"\\\x00\U0001f600"], "b": {"c": {}, "d": []}},
    {"n": -0.0, "big": 2**80, "small": -(2**70), "f": 1e-300, "inf": float("inf"),
     "-inf": float("-inf")},
    [], {}, "text", 3, None, [{"k": "v"}] * 3, {1: 2, "x": {"y": [[], [[]]]}},
]


@pytest.mark.parametrize("doc", DOCUMENTS)
@pytest.mark.parametrize("separators", [(", ", ": "), (",", ":")])
def test_dumps_is_json_dumps(doc: object, separators: tuple[str, str]) -> None:
    assert fastjson.dumps(doc, separators) == json.dumps(doc, separators=separators)


@pytest.mark.parametrize("doc", DOCUMENTS)
def test_loads_is_json_loads(doc: object) -> None:
    for text in (json.dumps(doc), f" \n\t{json.dumps(doc, indent=2)}\r\n "):
        assert repr(fastjson.loads(text)) == repr(json.loads(text))
    assert math.isnan(fastjson.loads("[NaN]")[0])


@pytest.mark.parametrize("text", ["", "  ", "[1] x", "{", "nul", "[1,]", '{"a" 1}', "01"])
def test_loads_refuses_what_json_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        json.loads(text)
    with pytest.raises(ValueError):
        fastjson.loads(text)


def test_dumps_refuses_what_json_refuses() -> None:
    with pytest.raises(TypeError, match="not JSON serializable"):
        fastjson.dumps({"x": object()})
    circular: list[object] = []
    circular.append(circular)
    with pytest.raises(ValueError):
        fastjson.dumps(circular)


def test_it_imports_neither_json_nor_re() -> None:
    out = subprocess.run([sys.executable, "-c", "import sys, forklift.fastjson as f;"
                          " f.loads(f.dumps({'a': [1.5]})); print(sorted(sys.modules))"],
                         capture_output=True, text=True, check=True).stdout
    assert not {"json", "re", "enum"} & set(eval(out))
