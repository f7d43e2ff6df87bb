"""Decoding the JSON-compatible result of ``Vm.call_export_typed`` into a type.

Supported ``result_type`` forms:

* ``typing.Any`` / ``object``: the JSON value as is;
* ``None``, ``bool``, ``int``, ``float`` (an int is accepted), ``str``;
* ``list[T]``, ``tuple[T, ...]``, ``dict[str, T]``, ``Optional[T]`` / ``T | None``
  and other unions (first arm that fits), ``Literal[...]``;
* a dataclass, a ``TypedDict``, or a plain class with annotations (built
  with keyword arguments when it has its own ``__init__``, else by setting
  the attributes). Missing required fields and wrong types are errors;
  keys the type does not declare are ignored (as serde does).

Every mismatch raises ``HarnConversionError`` naming the path, e.g.
``std/semver.parse returned invalid shape: result.major: expected int, got str``.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable
from typing import Any

from harnvm._errors import HarnConversionError

__all__ = ["decode_result"]

_MISSING = object()


class _Mismatch(Exception):
    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    return type(value).__name__


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or repr(tp)


def _is_typed_dict(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, dict) and hasattr(tp, "__required_keys__")


# Per-type memos (plain dicts rather than functools.lru_cache, so the memoized
# functions keep their own signatures for type checkers and stubtest). A full
# memo is emptied; an unhashable key raises TypeError, as lru_cache did.
_MEMO_SIZE = 512
_V = typing.TypeVar("_V")
_HINTS: dict[Any, dict[str, Any]] = {}
_FIELDS: dict[Any, tuple[tuple[str, bool, bool], ...]] = {}
_DECODERS: dict[Any, Decoder] = {}


def _remember(memo: dict[Any, _V], key: Any, value: _V) -> _V:
    if len(memo) >= _MEMO_SIZE:
        memo.clear()
    memo[key] = value
    return value


def _hints(tp: type) -> dict[str, Any]:
    """The resolved annotations of a class (memoized: resolving them is slow)."""
    try:
        return _HINTS[tp]
    except KeyError:
        pass
    try:
        hints = typing.get_type_hints(tp)
    except Exception as e:  # unresolvable forward references
        raise TypeError(f"cannot read the annotations of {tp.__qualname__}: {e}") from e
    return _remember(_HINTS, tp, hints)


def _dataclass_fields(tp: type) -> tuple[tuple[str, bool, bool], ...]:
    """(name, has a default, taken by __init__) of each dataclass field."""
    try:
        return _FIELDS[tp]
    except KeyError:
        pass
    return _remember(_FIELDS, tp, tuple(
        (
            f.name,
            f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING,
            f.init,
        )
        for f in dataclasses.fields(tp)
    ))


def _decode(value: Any, tp: Any, path: str) -> Any:
    if tp is Any or tp is object:
        return value
    if tp is None or tp is type(None):
        if value is not None:
            raise _Mismatch(path, f"expected null, got {_describe(value)}")
        return None
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Union or origin is types.UnionType:
        if value is None and type(None) in args:
            return None
        errors = []
        for arm in args:
            if arm is type(None):
                continue
            try:
                return _decode(value, arm, path)
            except _Mismatch as e:
                errors.append(str(e))
        raise _Mismatch(path, f"expected {tp}, got {_describe(value)}")
    if origin is typing.Literal:
        if value in args and all(type(value) is type(a) for a in args if a == value):
            return value
        raise _Mismatch(path, f"expected one of {list(args)!r}, got {value!r}")
    if origin is typing.Annotated:
        return _decode(value, args[0], path)
    if origin in (list, tuple) or tp in (list, tuple):
        if not isinstance(value, list):
            raise _Mismatch(path, f"expected a list, got {_describe(value)}")
        if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
            if len(args) != len(value):
                raise _Mismatch(path, f"expected a list of {len(args)} items, got {len(value)}")
            return tuple(_decode(v, a, f"{path}[{i}]") for i, (v, a) in enumerate(zip(args, value)))
        item = args[0] if args else Any
        items = [_decode(v, item, f"{path}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if (origin or tp) is tuple else items
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise _Mismatch(path, f"expected an object, got {_describe(value)}")
        item = args[1] if len(args) == 2 else Any
        return {k: _decode(v, item, f"{path}[{k!r}]") for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise _Mismatch(path, f"expected bool, got {_describe(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _Mismatch(path, f"expected int, got {_describe(value)}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _Mismatch(path, f"expected float, got {_describe(value)}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise _Mismatch(path, f"expected str, got {_describe(value)}")
        return value
    if _is_typed_dict(tp):
        return _decode_typed_dict(value, tp, path)
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return _decode_dataclass(value, tp, path)
    if isinstance(tp, type):
        return _decode_plain_class(value, tp, path)
    raise TypeError(f"unsupported result_type {tp!r}")


def _require_object(value: Any, tp: type, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Mismatch(path, f"expected an object for {_type_name(tp)}, got {_describe(value)}")
    return value


def _decode_typed_dict(value: Any, tp: type, path: str) -> dict[str, Any]:
    obj = _require_object(value, tp, path)
    hints = _hints(tp)
    required: frozenset[str] = getattr(tp, "__required_keys__", frozenset())
    out: dict[str, Any] = {}
    for name, field_type in hints.items():
        if name in obj:
            out[name] = _decode(obj[name], field_type, f"{path}.{name}")
        elif name in required:
            raise _Mismatch(path, f"missing field '{name}' of {_type_name(tp)}")
    return out


def _decode_dataclass(value: Any, tp: type, path: str) -> Any:
    obj = _require_object(value, tp, path)
    hints = _hints(tp)
    init_args: dict[str, Any] = {}
    later: dict[str, Any] = {}
    for name, has_default, in_init in _dataclass_fields(tp):
        if name not in obj:
            if not has_default and in_init:
                raise _Mismatch(path, f"missing field '{name}' of {_type_name(tp)}")
            continue
        decoded = _decode(obj[name], hints.get(name, Any), f"{path}.{name}")
        if in_init:
            init_args[name] = decoded
        else:
            later[name] = decoded
    return _construct_dataclass(tp, init_args, later)


def _construct_dataclass(tp: type, init_args: dict[str, Any], later: dict[str, Any]) -> Any:
    """`tp(**init_args)`, then the `init=False` fields set as a frozen dataclass allows."""
    result = tp(**init_args)
    for name, v in later.items():
        object.__setattr__(result, name, v)
    return result


def _decode_plain_class(value: Any, tp: Any, path: str) -> Any:
    obj = _require_object(value, tp, path)
    hints = _hints(tp)
    if not hints:
        raise TypeError(
            f"result_type {_type_name(tp)} declares no annotated fields; use a dataclass, a TypedDict, "
            "or annotate the fields"
        )
    fields: dict[str, Any] = {}
    for name, field_type in hints.items():
        if typing.get_origin(field_type) is typing.ClassVar:
            continue
        if name in obj:
            fields[name] = _decode(obj[name], field_type, f"{path}.{name}")
        elif getattr(tp, name, _MISSING) is _MISSING:
            raise _Mismatch(path, f"missing field '{name}' of {_type_name(tp)}")
    if getattr(tp, "__init__", object.__init__) is not object.__init__:
        return tp(**fields)
    result = object.__new__(tp)
    for name, v in fields.items():
        setattr(result, name, v)
    return result


# ---------------------------------------------------------------------------
# Compiled decoders: the common result types (scalars, dataclasses, optionals,
# unions, lists) get a decoder closure built once per type, so a warm typed
# crossing does not re-inspect the type on every call. Each one has exactly the
# semantics and messages of `_decode`, which stays the reference and handles
# every other form (and any type whose inspection fails: those errors are
# raised lazily, when the value reaches them, as `_decode` does).

Decoder = Callable[[Any, str], Any]


def _identity(value: Any, path: str) -> Any:
    return value


def _interpreted(tp: Any) -> Decoder:
    return lambda value, path: _decode(value, tp, path)


def _scalar(tp: type) -> Decoder:
    """int/str/bool/float: the exact JSON type is accepted at once, anything else goes through `_decode`."""

    def decode(value: Any, path: str) -> Any:
        if type(value) is tp:
            return value
        return _decode(value, tp, path)

    return decode


def _compile_union(tp: Any, args: tuple[Any, ...]) -> Decoder:
    allows_none = type(None) in args
    arms = tuple(_compile(arm) for arm in args if arm is not type(None))

    def decode(value: Any, path: str) -> Any:
        if value is None and allows_none:
            return None
        for arm in arms:
            try:
                return arm(value, path)
            except _Mismatch:
                continue
        raise _Mismatch(path, f"expected {tp}, got {_describe(value)}")

    return decode


def _compile_list(tp: Any, item_type: Any) -> Decoder:
    item = _compile(item_type)

    def decode(value: Any, path: str) -> Any:
        if not isinstance(value, list):
            raise _Mismatch(path, f"expected a list, got {_describe(value)}")
        return [item(v, f"{path}[{i}]") for i, v in enumerate(value)]

    return decode


def _compile_dataclass(tp: type) -> Decoder:
    hints = _hints(tp)
    type_name = _type_name(tp)
    fields = []
    for name, has_default, in_init in _dataclass_fields(tp):
        field_type = hints.get(name, Any)
        # Fields whose type accepts a JSON value as is skip the decoder call.
        exact = field_type if field_type in (int, str, bool, float) else None
        fields.append((name, has_default, in_init, exact, _compile(field_type)))

    def decode(value: Any, path: str) -> Any:
        if not isinstance(value, dict):
            raise _Mismatch(path, f"expected an object for {type_name}, got {_describe(value)}")
        init_args: dict[str, Any] = {}
        later: dict[str, Any] = {}
        for name, has_default, in_init, exact, sub in fields:
            item = value.get(name, _MISSING)
            if item is _MISSING:
                if not has_default and in_init:
                    raise _Mismatch(path, f"missing field '{name}' of {type_name}")
                continue
            decoded = item if exact is not None and type(item) is exact else sub(item, f"{path}.{name}")
            if in_init:
                init_args[name] = decoded
            else:
                later[name] = decoded
        return _construct_dataclass(tp, init_args, later)

    return decode


def _compile(tp: Any) -> Decoder:
    """A decoder for `tp` (raises TypeError when the type cannot be inspected)."""
    if tp is Any or tp is object:
        return _identity
    if tp in (int, str, bool, float):
        return _scalar(tp)
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Union or origin is types.UnionType:
        return _compile_union(tp, args)
    if origin is list:
        return _compile_list(tp, args[0] if args else Any)
    if dataclasses.is_dataclass(tp) and isinstance(tp, type) and not _is_typed_dict(tp):
        return _compile_dataclass(tp)
    return _interpreted(tp)


def _compiled(tp: Any) -> Decoder:
    try:
        return _DECODERS[tp]
    except KeyError:
        pass
    return _remember(_DECODERS, tp, _compile(tp))


def _decoder(tp: Any) -> Decoder:
    try:
        return _compiled(tp)
    except TypeError:
        # Unhashable, or a type whose inspection fails: `_decode` handles it
        # (and raises any such error only when the value reaches it).
        return _interpreted(tp)


def decode_result(value: Any, result_type: Any, label: str) -> Any:
    """Decodes ``value`` (JSON-compatible) into ``result_type``; ``label`` names the export."""
    try:
        return _decoder(result_type)(value, "result")
    except _Mismatch as e:
        raise HarnConversionError(f"{label} returned invalid shape: {e}") from None
    except TypeError as e:
        raise HarnConversionError(f"{label}: cannot decode into {result_type!r}: {e}") from e
