"""The programs in examples/ run and print what their .expected files say."""

from __future__ import annotations

import pytest
from conftest import EXAMPLES

import harnvm
from harnvm import HarnStruct, conformance

EXAMPLE_CASES = conformance.discover(EXAMPLES)


def test_every_example_has_expected_output():
    programs = sorted(p.name for p in EXAMPLES.glob("*.harn"))
    assert "hello.harn" in programs
    assert len(programs) >= 2
    assert sorted(c.path.name for c in EXAMPLE_CASES) == programs


@pytest.mark.needs_core
@pytest.mark.parametrize("case", EXAMPLE_CASES, ids=[c.rel for c in EXAMPLE_CASES])
def test_example_output(case):
    result = conformance.run_case(case, timeout=30)
    assert result.passed, result.reason


@pytest.mark.needs_core
def test_shapes_returns_python_values():
    value = harnvm.run_file(EXAMPLES / "shapes.harn", output=lambda _: None)
    assert value == {"fibs": [0, 1, 1, 55, 6765], "point": HarnStruct("Point", {"x": 11, "y": 22}), "total": 24}
