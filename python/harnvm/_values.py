"""Python stand-ins for Harn values that have no native Python type.

Both classes are immutable, compare by value and convert back to the Harn
value they came from when passed into Harn.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["HarnEnum", "HarnStruct"]


class HarnEnum:
    """A Harn enum value, e.g. ``Result.Ok(42)`` is ``HarnEnum("Result", "Ok", (42,))``.

    Supports structural pattern matching::

        match value:
            case HarnEnum("Result", "Ok", (payload,)): ...
    """

    __slots__ = ("enum_name", "variant", "fields")
    __match_args__ = ("enum_name", "variant", "fields")

    enum_name: str
    variant: str
    fields: tuple[Any, ...]

    def __init__(self, enum_name: str, variant: str, fields: Iterable[Any] = ()) -> None:
        object.__setattr__(self, "enum_name", str(enum_name))
        object.__setattr__(self, "variant", str(variant))
        object.__setattr__(self, "fields", tuple(fields))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, HarnEnum):
            return NotImplemented
        return (self.enum_name, self.variant, self.fields) == (other.enum_name, other.variant, other.fields)

    def __hash__(self) -> int:
        return hash((HarnEnum, self.enum_name, self.variant, self.fields))

    def __repr__(self) -> str:
        return f"HarnEnum({self.enum_name!r}, {self.variant!r}, {self.fields!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (HarnEnum, (self.enum_name, self.variant, self.fields))


class HarnStruct:
    """A Harn struct instance: its ``name`` and a read-only ``fields`` mapping
    (in declaration order). ``s["x"]`` reads a field.

    Equal when the names and the field mappings are equal. Not hashable (like a dict).
    """

    __slots__ = ("name", "fields")
    __match_args__ = ("name", "fields")

    name: str
    fields: Mapping[str, Any]

    def __init__(self, name: str, fields: Mapping[str, Any] | None = None) -> None:
        object.__setattr__(self, "name", str(name))
        object.__setattr__(self, "fields", MappingProxyType(dict(fields or {})))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __getitem__(self, field: str) -> Any:
        return self.fields[field]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, HarnStruct):
            return NotImplemented
        return self.name == other.name and dict(self.fields) == dict(other.fields)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"HarnStruct({self.name!r}, {dict(self.fields)!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (HarnStruct, (self.name, dict(self.fields)))


HarnEnum.__module__ = "harnvm"
HarnStruct.__module__ = "harnvm"
