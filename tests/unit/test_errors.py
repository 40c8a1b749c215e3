"""Exit codes live on the error classes (forklift.errors), never on caught instances."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from forklift import errors

SRC = Path(__file__).resolve().parents[2] / "src" / "forklift"

# Docker's codes, as the CLI tests check them through the real commands.
EXPECTED = {
    errors.ForkliftError: 1, errors.NotFound: 1, errors.Conflict: 1, errors.InvalidArgument: 1,
    errors.BadArchive: 1, errors.DigestMismatch: 1, errors.RuntimeFailure: 1,
    errors.StoreCorrupt: 1, errors.NoSpace: 1, errors.RegistryError: 1, errors.LimitExceeded: 1,
    errors.InvalidFlag: 125, errors.EngineError: 125, errors.MissingProgram: 125,
    errors.InspectTemplateError: 64,
}


@pytest.mark.parametrize("cls", list(EXPECTED), ids=lambda c: c.__name__)
def test_each_class_has_its_exit_code(cls: type[errors.ForkliftError]) -> None:
    assert cls("x").exit_code == EXPECTED[cls]


def test_every_class_exits_with_a_documented_code() -> None:
    documented = {errors.EXIT_FAILURE, errors.EXIT_USAGE, errors.EXIT_ENGINE,
                  errors.EXIT_CANNOT_EXECUTE, errors.EXIT_NOT_FOUND}
    for value in vars(errors).values():
        if isinstance(value, type) and issubclass(value, errors.ForkliftError):
            assert value.exit_code in documented, value
            assert re.search(rf"^{value.exit_code}\s", errors.__doc__ or "", re.M), value


def test_no_code_sets_an_exit_code_on_an_instance() -> None:
    offenders = []
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            targets = node.targets if isinstance(node, ast.Assign) else (
                [node.target] if isinstance(node, ast.AugAssign | ast.AnnAssign) else [])
            for t in targets:
                if isinstance(t, ast.Attribute) and t.attr == "exit_code" and not (
                        isinstance(t.value, ast.Name) and t.value.id == "self"):
                    offenders.append(f"{path.relative_to(SRC)}:{node.lineno}")
    assert not offenders
