"""Limit errors reach Python as the class of their typed kind, not of their message text."""

from __future__ import annotations

import pytest

import harnvm
from harnvm import HarnLimitError, HarnMemoryError, HarnRuntimeError, HarnTimeoutError
from harnvm._native import _limit_error


def test_memory_error_class_sits_under_limit_and_memory_error():
    assert issubclass(HarnMemoryError, HarnLimitError)
    assert issubclass(HarnMemoryError, MemoryError)
    assert not issubclass(HarnMemoryError, TimeoutError)
    assert HarnMemoryError.__module__ == "harnvm"


@pytest.mark.parametrize(
    ("kind", "message", "cls", "other"),
    [
        ("time", "time limit of 5 ms exceeded", HarnTimeoutError, HarnMemoryError),
        # The class follows the kind: a memory limit whose detail mentions time
        # is still a memory limit, and a time limit need not say "time".
        ("memory", "runtime buffer would allocate 99 units (limit 10)", HarnMemoryError, HarnTimeoutError),
        ("time", "budget of 5 ms spent", HarnTimeoutError, HarnMemoryError),
    ],
)
def test_limit_class_is_chosen_by_kind(kind, message, cls, other):
    err = _limit_error(kind, message)
    assert type(err) is cls
    assert not isinstance(err, other)
    assert isinstance(err, HarnRuntimeError)
    assert err.kind == "limit"
    assert err.message == f"Resource limit exceeded: {message}"


def test_unknown_limit_kind_is_refused():
    with pytest.raises(ValueError):
        _limit_error("disk", "x")  # type: ignore[arg-type]


@pytest.mark.needs_core
def test_an_oversized_string_raises_harn_memory_error():
    source = 'pipeline default() {\n  return "ab" * 4000000000\n}\n'
    with pytest.raises(HarnMemoryError) as info:
        harnvm.run(source)
    assert "string repeat would allocate 8000000000 units" in info.value.message
    assert not isinstance(info.value, TimeoutError)


@pytest.mark.needs_core
def test_memory_limit_cannot_be_caught_by_harn():
    out: list[str] = []
    source = (
        'pipeline default() {\n  try {\n    let s = "ab".repeat(4000000000)\n'
        '  } catch (e) {\n    println("caught")\n  }\n}\n'
    )
    with pytest.raises(HarnMemoryError):
        harnvm.run(source, output=out.append)
    assert out == []


@pytest.mark.needs_core
def test_a_time_limit_raises_harn_timeout_error():
    with pytest.raises(HarnTimeoutError) as info:
        harnvm.run("pipeline default() {\n  while true {\n  }\n}\n", time_limit=0.2)
    assert info.value.message.startswith("Resource limit exceeded: time limit of")
