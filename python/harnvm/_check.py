"""The static checker from Python: ``harnvm.check`` and the delivery of the
diagnostics that every compile of source text produces first.

Errors stop the compile with ``HarnTypeError``; warnings never reach the
program's output: they go to ``harnvm.warning_hook`` if set, else to
Python's ``warnings`` module as ``HarnCheckWarning``.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from harnvm._errors import HarnTypeError

__all__ = ["Diagnostic", "HarnCheckWarning", "check", "set_warning_hook"]


class HarnCheckWarning(UserWarning):
    """A checker warning delivered through Python's ``warnings`` module;
    ``diagnostic`` is the ``Diagnostic``."""

    def __init__(self, diagnostic: Diagnostic) -> None:
        super().__init__(f"{diagnostic.file}:{diagnostic.line}:{diagnostic.column}: {diagnostic.message}")
        self.diagnostic = diagnostic


@dataclass(frozen=True)
class Diagnostic:
    """One finding of the static checker."""

    severity: str
    """``"error"`` or ``"warning"``."""
    code: str | None
    """A stable id such as ``HARN-TYP-007``."""
    message: str
    file: str
    line: int
    """1-based; 0 when the finding has no location."""
    column: int
    end: tuple[int, int] | None
    """(line, column) where the span ends, when known."""
    help: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)
    rendered: str = field(default="", repr=False, compare=False)
    """The diagnostic as ``harnvm check`` prints it (header, location, source line, caret)."""

    @property
    def is_error(self) -> bool:
        return self.severity == "error"


_hook: Callable[[Diagnostic], object] | None = None


def set_warning_hook(hook: Callable[[Diagnostic], object] | None) -> None:
    """Sends checker warnings to ``hook`` (None: back to Python's warnings module)."""
    global _hook
    _hook = hook


def _from_raw(raw: Sequence[tuple]) -> list[Diagnostic]:  # type: ignore[type-arg]
    out = []
    for severity, code, message, file, line, column, end, help_, notes, rendered in raw:
        out.append(Diagnostic(severity, code, message, file, line, column, end, help_, tuple(notes), rendered))
    return out


def _deliver(raw: Sequence[tuple]) -> None:  # type: ignore[type-arg]
    """Called by the compile path with the checker's findings."""
    diags = _from_raw(raw)
    for d in diags:
        if not d.is_error:
            if _hook is not None:
                _hook(d)
            else:
                warnings.warn(HarnCheckWarning(d), stacklevel=2)
    errors = [d for d in diags if d.is_error]
    if errors:
        first = errors[0]
        raise HarnTypeError(
            "\n".join(d.message for d in errors),
            filename=first.file,
            line=first.line,
            column=first.column,
            diagnostics=errors,
        )


def check(
    source: str,
    filename: str = "<string>",
    *,
    host_names: Iterable[str] = (),
) -> list[Diagnostic]:
    """Runs the static checker over ``source`` and returns every diagnostic
    (errors and warnings, in source-walk order). ``host_names`` are callables
    the program may call that are defined outside it (``Vm.register``).
    Raises ``HarnSyntaxError`` if the source does not parse."""
    from harnvm._native import _check

    return _from_raw(_check(source, filename, list(host_names)))


def check_path(path: str | os.PathLike[str]) -> list[Diagnostic]:
    """``check`` of a file, named by the lexically normalized path."""
    with open(path, encoding="utf-8") as f:
        source = f.read()
    name = os.path.normpath(os.fspath(path)).replace("\\", "/")
    return check(source, name)
