"""The compiled decoders of `harnvm._typed` (built once per result type) give
exactly the results and error messages of the reference `_decode`."""

from __future__ import annotations

import dataclasses
from typing import Any, Literal, Optional, TypedDict, Union

import pytest

from harnvm import _typed


@dataclasses.dataclass
class Point:
    x: int
    y: float
    label: str = "p"
    tags: list[str] = dataclasses.field(default_factory=list)
    extra: Any = None
    hidden: int = dataclasses.field(default=0, init=False)


@dataclasses.dataclass
class Line:
    start: Point
    end: Optional[Point]
    kind: Union[int, str]


class Shape(TypedDict):
    name: str


TYPES: list[Any] = [Any, object, int, float, str, bool, Point, Line, Optional[Point], list[int], list[Point],
                    Union[int, str], int | None, Shape, Literal["a", "b"], dict[str, int], tuple[int, ...]]  # fmt: skip
VALUES: list[Any] = [
    None, True, 1, 2.5, "a", [], [1, 2], [1, "x"], {}, {"name": "n"},
    {"x": 1, "y": 2}, {"x": 1, "y": 2.0, "label": "q", "tags": ["a"], "hidden": 5, "unknown": 1},
    {"x": "1", "y": 2}, {"y": 2}, {"x": True, "y": 1},
    {"start": {"x": 1, "y": 2}, "end": None, "kind": "k"},
    {"start": {"x": 1, "y": 2}, "end": {"x": 3, "y": 4.5}, "kind": 7},
    {"start": {"x": 1, "y": 2}, "end": {"x": "bad", "y": 4.5}, "kind": 7},
    {"start": {"x": 1, "y": 2}, "end": None, "kind": 1.5},
    [{"x": 1, "y": 2}, {"x": 1}],
]  # fmt: skip


def outcome(decode: Any, value: Any, tp: Any) -> tuple[str, Any]:
    try:
        return ("ok", decode(value, tp))
    except _typed._Mismatch as e:
        return ("mismatch", str(e))
    except TypeError as e:
        return ("type error", str(e))


@pytest.mark.parametrize("tp", TYPES, ids=repr)
def test_compiled_decoder_matches_the_reference(tp: Any) -> None:
    for value in VALUES:
        want = outcome(lambda v, t: _typed._decode(v, t, "result"), value, tp)
        got = outcome(lambda v, t: _typed._decoder(t)(v, "result"), value, tp)
        assert got == want, (tp, value)
        if want[0] == "ok":
            assert type(got[1]) is type(want[1])


def test_uninspectable_types_fail_only_when_the_value_reaches_them() -> None:
    @dataclasses.dataclass
    class Broken:
        x: "NoSuchType"  # type: ignore[name-defined]  # noqa: F821

    assert _typed.decode_result(None, Optional[Broken], "m.f") is None
    with pytest.raises(Exception, match="cannot decode into"):
        _typed.decode_result({"x": 1}, Optional[Broken], "m.f")
