"""Validation against Docker's Engine API schema (API 1.41, Swagger 2.0), for any document
forklift prints where Docker's engine would answer with the same JSON.

The schema is `api/swagger.yaml` of Debian's golang-github-docker-docker-dev (20.10.24),
read once. Swagger 2.0 is turned into JSON Schema draft 4: ``#/definitions/...``
references stay references into the converted definitions, ``x-nullable: true`` admits
null (the draft has no such word, and beside a ``$ref`` every sibling would be ignored),
Swagger's own words (``x-…``, ``example``, ``discriminator``, ``readOnly``) are dropped and
``additionalProperties`` is kept as the file says.

``as_docker=True`` admits what Docker 20.10's engine itself answers where the file is
stricter: null for every array and map not marked ``x-nullable: false`` (Go's encoding/json writes a nil slice or map as
``null`` and the file does not mark them: ``"Links": null``) and the fields of
`DOCKER_QUIRKS`. Docker's own documents validate only with it; it is an argument, never
the default, so a test says when it relies on it.

    validate(doc, "Image")
    validate_response(doc, "GET", "/containers/{id}/json", 200)

Both raise `SchemaMismatch` naming the JSON path of a mismatch (``$.HostConfig.Dns``; of
several, jsonschema's best match: the deepest in the first failing branch).
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

SWAGGER = Path(os.environ.get(
    "FORKLIFT_DOCKER_SWAGGER",
    "/usr/share/gocode/src/github.com/docker/docker/api/swagger.yaml"))
PACKAGE = "golang-github-docker-docker-dev"
# (definition, property) -> what Docker 20.10 answers beyond the file: null (a Go
# pointer left nil) or more enum values (Go's zero value, the empty string)
DOCKER_QUIRKS: dict[tuple[str, str], dict[str, Any]] = {
    ("Resources", "MemorySwappiness"): {"x-nullable": True},
    ("HostConfig", "Isolation"): {"enum": [""]},
    ("SystemInfo", "Isolation"): {"enum": [""]},   # a Linux daemon's defaultIsolation
    ("RestartPolicy", "Name"): {"enum": ["no"]},
}
_DROPPED = ("example", "examples", "discriminator", "readOnly", "title", "description")


class SchemaMismatch(AssertionError):
    """A document that the Engine API schema does not allow; ``path`` is where."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path


def available() -> bool:
    return SWAGGER.is_file()


def required() -> ModuleType:
    """This module, for a test that validates answers; the test is skipped without the
    swagger file (scripts/test.sh installs it)."""
    import pytest

    if not available():
        pytest.skip(f"{SWAGGER} missing: install {PACKAGE}")
    return sys.modules[__name__]


@functools.cache
def _spec() -> dict[str, Any]:
    import yaml  # the test extra's pyyaml

    if not available():
        raise FileNotFoundError(f"{SWAGGER}: install the Debian package {PACKAGE}")
    with open(SWAGGER, "rb") as f:
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        spec: dict[str, Any] = yaml.load(f, Loader=loader)  # noqa: S506 (a safe loader)
    return spec


def _convert(node: Any, as_docker: bool) -> Any:
    """One Swagger 2.0 schema (and everything below it) as JSON Schema draft 4."""
    if isinstance(node, list):
        return [_convert(item, as_docker) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key.startswith("x-") or key in _DROPPED:
            continue
        if key == "properties":
            out[key] = {name: _convert(sub, as_docker) for name, sub in value.items()}
        elif key == "type" and value == "file":
            continue  # a download: any bytes
        else:
            out[key] = _convert(value, as_docker)
    nullable = node.get("x-nullable") is True or (
        as_docker and node.get("x-nullable") is not False and _collection(node))
    return _with_null(out) if nullable else out


def _collection(node: dict[str, Any]) -> bool:
    """An array, or an object with no fixed properties (a Go map)."""
    return node.get("type") == "array" or (
        node.get("type") == "object" and "properties" not in node)


def _with_null(schema: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in schema or "allOf" in schema or "type" not in schema:
        return {"anyOf": [schema, {"type": "null"}]}
    out = dict(schema)
    out["type"] = [schema["type"], "null"] if isinstance(schema["type"], str) \
        else [*schema["type"], "null"]
    if "enum" in out:
        out["enum"] = [*out["enum"], None]
    return out


@functools.cache
def _definitions(as_docker: bool) -> dict[str, Any]:
    definitions = _spec()["definitions"]
    if as_docker:
        definitions = _with_quirks(definitions)
    return {name: _convert(schema, as_docker) for name, schema in definitions.items()}


def _with_quirks(definitions: dict[str, Any]) -> dict[str, Any]:
    import copy

    out = copy.deepcopy(definitions)
    for (name, prop), patch in DOCKER_QUIRKS.items():
        parts = [out[name], *out[name].get("allOf", [])]
        found = [p["properties"][prop] for p in parts if prop in p.get("properties", {})]
        if not found:
            raise KeyError(f"DOCKER_QUIRKS: {name}.{prop} is not in {SWAGGER}")
        for key, value in patch.items():
            found[0][key] = [*found[0].get(key, []), *value] if key == "enum" else value
    return out


@functools.cache
def _validator(key: tuple[str, ...], as_docker: bool) -> Any:
    import jsonschema

    if key[0] == "definition":
        if key[1] not in _spec()["definitions"]:
            raise KeyError(f"no definition {key[1]!r} in {SWAGGER}")
        root: dict[str, Any] = {"$ref": f"#/definitions/{key[1]}"}
    else:
        root = _convert(_response_schema(key[1], key[2], key[3]), as_docker)
    root = {**root, "definitions": _definitions(as_docker)}
    jsonschema.Draft4Validator.check_schema(root)
    return jsonschema.Draft4Validator(root)


def _response_schema(method: str, path: str, status: str) -> dict[str, Any]:
    try:
        operation = _spec()["paths"][path][method.lower()]
    except KeyError:
        raise KeyError(f"no operation {method} {path} in {SWAGGER}") from None
    responses = {str(code): value for code, value in operation["responses"].items()}
    if status not in responses or "schema" not in responses[status]:
        raise KeyError(f"{method} {path} has no schema for status {status}")
    schema: dict[str, Any] = responses[status]["schema"]
    return schema


def _check(validator: Any, doc: Any) -> None:
    import jsonschema

    error = jsonschema.exceptions.best_match(validator.iter_errors(doc))
    if error is None:
        return
    path = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    raise SchemaMismatch(path, error.message)


def validate(doc: Any, definition: str, *, as_docker: bool = False) -> None:
    """Check ``doc`` against ``#/definitions/<definition>`` (SchemaMismatch, KeyError for
    a name the file does not define)."""
    _check(_validator(("definition", definition), as_docker), doc)


def validate_response(doc: Any, method: str, path: str, status: int | str = 200, *,
                      as_docker: bool = False) -> None:
    """Check ``doc`` against the schema of ``method path``'s answer with ``status``
    (``path`` as the file writes it: ``/containers/{id}/json``)."""
    _check(_validator(("response", method, path, str(status)), as_docker), doc)
