"""Value conversion between Python and Harn, both directions.

Python → Harn → Python round trips go through ``harnvm._native._roundtrip``
and need no compiler; Harn → Python from real programs is marked needs_core.
"""

from __future__ import annotations

import math
import pickle
import threading
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

import harnvm
from harnvm import HarnConversionError, HarnEnum, HarnStruct
from harnvm._native import MAX_CONVERSION_DEPTH, _roundtrip

needs_core = pytest.mark.needs_core

I64_MIN, I64_MAX = -(2**63), 2**63 - 1


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        False,
        0,
        -1,
        I64_MIN,
        I64_MAX,
        0.0,
        1.5,
        -2.25,
        1e300,
        float("inf"),
        float("-inf"),
        "",
        "héllo 🎉\n\t\"quoted\"",
        b"",
        b"\x00\xffbytes",
        [],
        [1, [2, [3, []]]],
        {},
        {"a": 1, "b": [True, None], "nested": {"x": "y"}},
        {1, 2, 3},
        set(),
        range(0, 0),
        range(-5, 10),
        timedelta(0),
        timedelta(milliseconds=1500),
        timedelta(days=-3, milliseconds=7),
        HarnEnum("Result", "Ok", (42,)),
        HarnEnum("Color", "Red"),
        HarnStruct("Point", {"x": 1, "y": [2.5]}),
    ],
    ids=repr,
)
def test_roundtrip_is_identity(value):
    back = _roundtrip(value)
    assert back == value
    assert type(back) is type(value)


def test_nan_and_negative_zero_survive():
    assert math.isnan(_roundtrip(float("nan")))
    assert math.copysign(1.0, _roundtrip(-0.0)) == -1.0


def test_bool_stays_bool_and_int_stays_int():
    assert _roundtrip(True) is True
    assert type(_roundtrip(1)) is int
    assert type(_roundtrip(1.0)) is float


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ((1, "a"), [1, "a"]),
        ((), []),
        ([(1, 2), (3,)], [[1, 2], [3]]),
        (bytearray(b"xy"), b"xy"),
        (frozenset({1, 2}), {1, 2}),
        # A set element that is a list in Python terms cannot live in a Python
        # set, so such a Harn set comes back as a list (in insertion order).
        ({(1, 2)}, [[1, 2]]),
    ],
    ids=repr,
)
def test_conversions_that_change_type(value, expected):
    assert _roundtrip(value) == expected


def test_subclasses_of_builtin_types_convert():
    class MyInt(int):
        pass

    class MyStr(str):
        pass

    class MyDict(dict):
        pass

    assert _roundtrip(MyInt(5)) == 5
    assert _roundtrip(MyStr("s")) == "s"
    assert _roundtrip(MyDict(a=1)) == {"a": 1}


def test_dict_keys_come_back_sorted():
    # Harn dicts are ordered by key.
    assert list(_roundtrip({"b": 1, "a": 2, "C": 3})) == ["C", "a", "b"]


@pytest.mark.parametrize("value", [I64_MAX + 1, I64_MIN * 2, 2**64, 10**22, -(2**100)])
def test_ints_beyond_64_bits_that_a_float_holds_exactly_become_floats(value):
    # As Harn's own json_parse("123456789012345678901234567890") gives a float.
    out = _roundtrip(value)
    assert isinstance(out, float) and int(out) == value


@pytest.mark.parametrize("value", [I64_MAX * 4 + 1, 10**100 + 1, -(3**50)])
def test_ints_beyond_64_bits_are_never_rounded_silently(value):
    with pytest.raises(HarnConversionError, match="does not fit a Harn int.*not exactly a float"):
        _roundtrip(value)


def test_conversion_error_is_a_type_error_and_names_the_path():
    with pytest.raises(TypeError) as info:
        _roundtrip({"a": [0, {"b": 2**70 + 1}]})
    assert isinstance(info.value, harnvm.HarnError)
    assert 'value["a"][1]["b"]' in str(info.value)


def test_int_dict_keys_become_their_decimal_text():
    # Harn's keys are strings; Harn itself turns `{[1]: "one"}` into {"1": "one"}.
    assert _roundtrip({1: "one", -20: "x", "a": 2}) == {"1": "one", "-20": "x", "a": 2}


def test_int_key_that_collides_with_a_str_key_is_refused():
    with pytest.raises(HarnConversionError, match='both the int key 1 and the str key "1"'):
        _roundtrip({1: "int", "1": "str"})


@pytest.mark.parametrize("key", [1.5, None, (1, 2), True])
def test_other_dict_keys_are_rejected(key):
    with pytest.raises(HarnConversionError, match="but Harn dict keys are strings"):
        _roundtrip({key: "one"})


@pytest.mark.parametrize("value", [object(), 1 + 2j, print, Ellipsis, type])
def test_unsupported_python_types_are_rejected(value):
    with pytest.raises(HarnConversionError, match="has no Harn equivalent"):
        _roundtrip(value)


def test_range_with_step_is_rejected():
    with pytest.raises(HarnConversionError, match="step 1"):
        _roundtrip(range(0, 10, 2))


def test_sub_millisecond_timedelta_is_rejected():
    with pytest.raises(HarnConversionError, match="sub-millisecond"):
        _roundtrip(timedelta(microseconds=1))


def test_extreme_timedeltas_roundtrip():
    # Harn durations are i64 milliseconds, which covers timedelta's whole range.
    biggest = timedelta.max - timedelta(microseconds=999_999)
    assert _roundtrip(biggest) == biggest
    assert _roundtrip(timedelta.min) == timedelta.min


def nested_list(depth: int) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


def nesting_depth(value: list) -> int:
    depth = 0
    while value:
        (value,) = value
        depth += 1
    return depth


def test_nesting_up_to_the_limit_converts():
    # (Compared by walking: Python's own == would hit its recursion limit.)
    assert nesting_depth(_roundtrip(nested_list(MAX_CONVERSION_DEPTH - 1))) == MAX_CONVERSION_DEPTH - 1


@pytest.mark.parametrize("depth", [MAX_CONVERSION_DEPTH + 5, 100_000])
def test_deep_nesting_is_rejected_not_crashing(depth):
    with pytest.raises(HarnConversionError, match="nested more than"):
        _roundtrip(nested_list(depth))


def test_cyclic_values_are_rejected():
    cyc: list = []
    cyc.append(cyc)
    with pytest.raises(HarnConversionError, match="cyclic"):
        _roundtrip(cyc)
    d: dict = {}
    d["self"] = d
    with pytest.raises(HarnConversionError):
        _roundtrip(d)


# ---------------------------------------------------------------------------
# harnvm.display: Harn's text for a Python value


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "nil"),
        (True, "true"),
        (42, "42"),
        (3.0, "3.0"),
        (0.1 + 0.2, "0.30000000000000004"),
        (1e21, "1000000000000000000000"),
        (float("nan"), "NaN"),
        ("raw text", "raw text"),
        ([1, "a", None], "[1, a, nil]"),
        ({"b": 2, "a": []}, "{a: [], b: 2}"),
        ({1}, "set(1)"),
        (range(0, 3), "0 to 3 exclusive"),
        (timedelta(seconds=5), "5s"),
        (timedelta(milliseconds=1500), "1500ms"),
        (b"hi", 'b"6869"'),
        (HarnEnum("Result", "Ok", (42,)), "Result.Ok(42)"),
        (HarnEnum("Color", "Red"), "Color.Red"),
        (HarnStruct("Point", {"y": 2, "x": 1}), "Point {x: 1, y: 2}"),
    ],
    ids=repr,
)
def test_display(value, text):
    assert harnvm.display(value) == text


# ---------------------------------------------------------------------------
# HarnEnum / HarnStruct


def test_harn_enum_behaves_like_a_value():
    ok = HarnEnum("Result", "Ok", [1, 2])
    assert ok.fields == (1, 2)
    assert ok == HarnEnum("Result", "Ok", (1, 2))
    assert ok != HarnEnum("Result", "Err", (1, 2))
    assert hash(ok) == hash(HarnEnum("Result", "Ok", (1, 2)))
    assert repr(ok) == "HarnEnum('Result', 'Ok', (1, 2))"
    assert pickle.loads(pickle.dumps(ok)) == ok
    with pytest.raises(AttributeError):
        ok.variant = "Err"  # type: ignore[misc]
    match ok:
        case HarnEnum("Result", "Ok", (a, b)):
            assert (a, b) == (1, 2)
        case _:
            pytest.fail("pattern did not match")


def test_harn_struct_behaves_like_a_value():
    p = HarnStruct("Point", {"x": 1, "y": 2})
    assert p["x"] == 1
    assert p == HarnStruct("Point", {"y": 2, "x": 1})
    assert p != HarnStruct("Other", {"x": 1, "y": 2})
    assert repr(p) == "HarnStruct('Point', {'x': 1, 'y': 2})"
    assert pickle.loads(pickle.dumps(p)) == p
    with pytest.raises(TypeError):
        p.fields["x"] = 5  # type: ignore[index]
    with pytest.raises(TypeError):
        hash(p)
    with pytest.raises(AttributeError):
        p.name = "Q"  # type: ignore[misc]


def test_harn_struct_keeps_field_order():
    assert list(_roundtrip(HarnStruct("S", {"b": 1, "a": 2})).fields) == ["b", "a"]


# ---------------------------------------------------------------------------
# Property: JSON-like data round-trips exactly

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=I64_MIN, max_value=I64_MAX)
    | st.floats(allow_nan=False)
    | st.text()
    | st.binary()
)
json_like = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=30,
)


@given(json_like)
def test_roundtrip_property(value):
    assert _roundtrip(value) == value


@given(st.sets(st.integers(min_value=I64_MIN, max_value=I64_MAX) | st.text(), max_size=20))
def test_set_roundtrip_property(value):
    assert _roundtrip(value) == value


@given(st.integers(min_value=I64_MAX + 1) | st.integers(max_value=I64_MIN - 1))
def test_big_ints_become_exact_floats_or_are_rejected(value):
    if int(float(value)) == value:
        assert _roundtrip(value) == float(value)
    else:
        with pytest.raises(HarnConversionError):
            _roundtrip(value)


# ---------------------------------------------------------------------------
# Harn → Python from real programs


def harn_value(expr: str, decls: str = ""):
    return harnvm.run(f"{decls}\npipeline default() {{\n  return {expr}\n}}\n")


@needs_core
@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("nil", None),
        ("true", True),
        ("42", 42),
        ("-7", -7),
        ("2.5", 2.5),
        ('"text"', "text"),
        ('[1, 2.5, "s", nil, true]', [1, 2.5, "s", None, True]),
        ("{b: 1, a: [2]}", {"a": [2], "b": 1}),
        ("set(1, 2, 2)", {1, 2}),
        ("1 to 3", range(1, 4)),
        ("0 to 3 exclusive", range(0, 3)),
        ('pair(1, "a")', (1, "a")),
        ("1500ms", timedelta(milliseconds=1500)),
        ("2m", timedelta(minutes=2)),
        ("Ok(42)", HarnEnum("Result", "Ok", (42,))),
        ('Err("bad")', HarnEnum("Result", "Err", ("bad",))),
    ],
    ids=lambda x: x if isinstance(x, str) else None,
)
def test_harn_values_to_python(expr, expected):
    value = harn_value(expr)
    assert value == expected
    assert type(value) is type(expected)


@needs_core
def test_dict_result_is_sorted_by_key():
    assert list(harn_value("{zeta: 1, alpha: 2, Beta: 3}")) == ["Beta", "alpha", "zeta"]


@needs_core
def test_user_enum_and_struct_to_python():
    decls = "enum Shape {\n  Circle(r)\n  Empty\n}\n\nstruct Point {\n  x: int\n  y: int\n}\n"
    assert harn_value("[Shape.Circle(2.0), Shape.Empty]", decls) == [
        HarnEnum("Shape", "Circle", (2.0,)),
        HarnEnum("Shape", "Empty", ()),
    ]
    point = harn_value("Point({x: 1, y: 2})", decls)
    assert point == HarnStruct("Point", {"x": 1, "y": 2})
    assert list(point.fields) == ["x", "y"]


@needs_core
def test_functions_become_handles():
    f = harn_value("{ a, b -> a + b }")
    assert isinstance(f, harnvm.HarnFunction)
    assert f.kind == "closure"
    assert f.params == ["a", "b"]
    assert str(f) == "<fn(a, b)>"
    named = harn_value("add", "fn add(x, y) {\n  return x + y\n}\n")
    assert named.params == ["x", "y"]
    assert "add" in repr(named)
    builtin = harn_value("len")
    assert builtin.kind == "builtin"
    assert builtin.name == "len"
    assert str(builtin) == "<builtin len>"


@needs_core
def test_other_objects_become_handles():
    obj = harn_value("atomic(3)")
    assert isinstance(obj, harnvm.HarnObject)
    assert obj.type_name == "atomic"
    assert str(obj) == "<atomic:3>"


@needs_core
def test_handles_pass_back_only_on_their_thread():
    f = harn_value("{ x -> x }")
    assert _roundtrip(f) is not f  # a fresh handle for the same Harn value
    assert harnvm.display(f) == "<fn(x)>"
    errors: list[BaseException] = []

    def other_thread() -> None:
        try:
            _roundtrip(f)
        except BaseException as e:  # noqa: BLE001
            errors.append(e)
        repr(f)  # repr works anywhere

    t = threading.Thread(target=other_thread)
    t.start()
    t.join()
    assert len(errors) == 1
    assert isinstance(errors[0], HarnConversionError)
    assert "thread" in str(errors[0])


@needs_core
def test_bytes_from_harn():
    assert harn_value('bytes_from_string("hi")') == b"hi"


def test_large_conversions_leave_the_garbage_collector_as_they_found_it():
    """A conversion of many objects pauses Python's cyclic collector (it
    would otherwise rescan everything built so far, again and again) and
    restores its state afterwards, on success and on error."""
    import gc

    # `0 to 20000` is inclusive: 20001 items.
    src = "pipeline m() { var xs = []\n for i in 0 to 20000 { xs = xs.push({i: i}) }\n return xs }"
    assert gc.isenabled()
    assert len(harnvm.run(src)) == 20001
    assert gc.isenabled()
    gc.disable()
    try:
        assert len(harnvm.run(src)) == 20001
        assert not gc.isenabled()
    finally:
        gc.enable()
