"""Exception classes raised by harnvm.

The native module (``rust/harnvm-py/src/errors.rs``) decides which class a
core error maps to and passes its details as keyword arguments; the classes
here only store and format them.

Hierarchy::

    HarnError(Exception)
    ├── HarnSyntaxError              lex, parse and compile errors
    ├── HarnRuntimeError             an error escaped the Harn program
    │   └── HarnLimitError           a resource limit stopped the program
    │       ├── HarnTimeoutError     (also a TimeoutError) Vm time_limit exceeded
    │       ├── HarnMemoryError      (also a MemoryError) an allocation beyond the memory limit
    │       ├── HarnStackOverflowError  (also a RecursionError) max_frames exceeded
    │       ├── HarnInstructionLimitError  max_instructions used up
    │       ├── HarnOutputLimitError max_output bytes written
    │       └── HarnInterruptedError InterruptHandle.interrupt() stopped the run
    ├── HarnConversionError          (also a TypeError) a value has no equivalent on the other side
    │                                (also a bad call_export_typed payload or result shape)
    ├── HarnArgumentError            (also a TypeError) a host call's argument count does not fit
    ├── HarnImportError              (also an ImportError) an import or export could not be resolved
    │   └── HarnModuleNotFoundError  (also a ModuleNotFoundError) no module has that import path
    └── HarnInternalError            a bug in harnvm (e.g. a Rust panic), never a Harn error
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # (typing is not imported at run time: `import harnvm` stays cheap)
    from typing import Any

    from typing_extensions import disjoint_base
else:

    def disjoint_base(cls: type) -> type:
        return cls

__all__ = [
    "HarnArgumentError",
    "HarnConversionError",
    "HarnError",
    "HarnFrame",
    "HarnInternalError",
    "HarnInterruptedError",
    "HarnImportError",
    "HarnInstructionLimitError",
    "HarnLimitError",
    "HarnMemoryError",
    "HarnModuleNotFoundError",
    "HarnOutputLimitError",
    "HarnRuntimeError",
    "HarnStackOverflowError",
    "HarnSyntaxError",
    "HarnTimeoutError",
    "HarnTypeError",
]


@disjoint_base  # (it has a __dict__, for `column`; type checkers want that said)
class HarnFrame(tuple[str, str, int]):
    """One Harn call frame of a runtime error: ``(function, file, line)``, a
    tuple with those names (as a NamedTuple, without importing typing), plus
    ``column`` (1-based, 0 when unknown), an attribute outside the tuple so
    frames still compare equal to ``(function, file, line)``."""

    column: int

    def __new__(cls, function: str, file: str, line: int, column: int = 0) -> HarnFrame:
        frame = tuple.__new__(cls, (function, file, line))
        frame.column = column
        return frame

    @property
    def function(self) -> str:
        return self[0]

    @property
    def file(self) -> str:
        return self[1]

    @property
    def line(self) -> int:
        return self[2]

    def __getnewargs__(self) -> tuple[str, str, int]:
        return (self[0], self[1], self[2])

    def __repr__(self) -> str:
        return f"HarnFrame(function={self[0]!r}, file={self[1]!r}, line={self[2]!r}, column={self.column!r})"

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}" if self.column > 0 else f"{self.file}:{self.line}"
        return f"{where} in {self.function}"


class HarnError(Exception):
    """Base class of every error harnvm raises.

    ``message`` is Harn's own text for the error (what the reference
    implementation prints), without file names or tracebacks.
    """

    message: str

    def __init__(self, message: str = "", **details: Any) -> None:
        super().__init__(message)
        self.message = message
        for name, value in details.items():
            setattr(self, name, value)

    def __str__(self) -> str:
        return self.message


class HarnSyntaxError(HarnError):
    """The source could not be lexed, parsed or compiled.

    Attributes: ``filename``, ``line`` and ``column`` (1-based; 0 when
    unknown), ``source_line`` (the offending line's text, or None) and
    ``phase`` (``"lex"``, ``"parse"`` or ``"compile"``).
    ``str(e)`` reads ``file:line:col: message``, then the source line and a
    caret under the column.
    """

    filename: str
    line: int
    column: int
    source_line: str | None
    phase: str

    def __init__(
        self,
        message: str = "",
        *,
        filename: str = "<string>",
        line: int = 0,
        column: int = 0,
        source_line: str | None = None,
        phase: str = "parse",
    ) -> None:
        super().__init__(
            message, filename=filename, line=line, column=column, source_line=source_line, phase=phase
        )

    def __str__(self) -> str:
        if self.line <= 0:
            return f"{self.filename}: {self.message}"
        # Harn's message ends with the position the head already shows.
        message = self.message.removesuffix(f" at {self.line}:{self.column}")
        head = f"{self.filename}:{self.line}:{self.column}: {message}"
        if self.source_line is None:
            return head
        from harnvm._native import _source_excerpt

        text, pad = _source_excerpt(self.source_line, max(self.column, 1))
        lines = [head, "    " + text]
        if self.column > 0:
            lines.append("    " + pad + "^")
        return "\n".join(lines)


class HarnTypeError(HarnError):
    """The static checker rejected the program before it ran.

    ``message`` holds every error's message, one per line; ``filename``,
    ``line`` and ``column`` locate the first; ``diagnostics`` is the list of
    error ``harnvm.Diagnostic`` s. ``str(e)`` is the rendering ``harnvm
    check`` prints.
    """

    filename: str
    line: int
    column: int
    diagnostics: list[Any]

    def __init__(
        self,
        message: str = "",
        *,
        filename: str = "<string>",
        line: int = 0,
        column: int = 0,
        diagnostics: list[Any] | None = None,
    ) -> None:
        super().__init__(message, filename=filename, line=line, column=column, diagnostics=list(diagnostics or []))

    def __str__(self) -> str:
        rendered = "".join(d.rendered for d in self.diagnostics if getattr(d, "rendered", ""))
        return rendered.rstrip("\n") or self.message

class HarnRuntimeError(HarnError):
    """An error escaped the Harn program (an uncaught ``throw`` or a runtime fault).

    Attributes:

    * ``message``: Harn's text for the uncaught error, e.g. ``Thrown: boom`` or
      ``Runtime error: Division by zero (line 3)``;
    * ``kind``: ``"thrown"``, ``"type"``, ``"runtime"``, ``"division_by_zero"``,
      ``"undefined_variable"``, ``"undefined_builtin"``, ``"immutable_assignment"``,
      ``"stack_overflow"``, ``"limit"`` or ``"interrupted"``;
    * ``value``: for ``throw``, the thrown Harn value converted to Python, else None;
    * ``harn_stack``: list of ``HarnFrame(function, file, line)`` (each with a
      ``column`` too), **innermost call first** (``harn_stack[0]`` is where the
      error happened);
    * ``filename`` / ``line`` / ``column``: where the error happened (``""`` / 0
      when unknown).

    ``str(e)`` is the message followed by a Harn traceback, outermost call
    first (like Python's).
    """

    kind: str
    value: Any
    harn_stack: list[HarnFrame]
    filename: str
    line: int
    column: int

    def __init__(
        self,
        message: str = "",
        *,
        kind: str = "runtime",
        value: Any = None,
        harn_stack: Any = (),
        filename: str = "",
        line: int = 0,
        column: int = 0,
    ) -> None:
        frames = [HarnFrame(*f) for f in harn_stack]
        super().__init__(
            message, kind=kind, value=value, harn_stack=frames, filename=filename, line=line, column=column
        )

    def __str__(self) -> str:
        if self.harn_stack:
            lines = [self.message, "Harn traceback (most recent call last):"]
            lines += [f"  {frame}" for frame in reversed(self.harn_stack)]
            return "\n".join(lines)
        if self.filename and self.line > 0:
            where = f"{self.line}:{self.column}" if self.column > 0 else f"{self.line}"
            return f"{self.message}\n  at {self.filename}:{where}"
        return self.message


class HarnLimitError(HarnRuntimeError):
    """A resource limit (time, call depth, memory, instructions, output, host
    interrupt) stopped the program.

    ``limit`` names the budget: the ``Vm`` keyword that sets it
    (``"time_limit"``, ``"max_memory"``, ``"max_instructions"``,
    ``"max_output"``, ``"max_frames"``), or ``"interrupt"``.

    Harn code cannot catch these (except stack overflow, which Harn's own
    ``try`` can catch, as in the reference implementation). The Vm stays
    usable: the next run starts with fresh budgets.
    """

    limit: str = ""


class HarnTimeoutError(HarnLimitError, TimeoutError):
    """The run exceeded the Vm's ``time_limit`` (compilation, host callbacks
    and waits included)."""

    limit = "time_limit"


class HarnMemoryError(HarnLimitError, MemoryError):
    """The run grew the heap beyond the Vm's ``max_memory``, or a builtin
    would have built a single string, list or decoded output beyond the
    allocation cap."""

    limit = "max_memory"


class HarnStackOverflowError(HarnLimitError, RecursionError):
    """The program nested more calls than the Vm's ``max_frames``."""

    limit = "max_frames"


class HarnInstructionLimitError(HarnLimitError):
    """The run used up the Vm's ``max_instructions`` (its step budget: one
    step per call and per loop iteration). Deterministic: a program stops
    at the same step every time."""

    limit = "max_instructions"


class HarnOutputLimitError(HarnLimitError):
    """The run wrote more than the Vm's ``max_output`` bytes (``print``,
    ``log``, ``eprint``; output of spawned tasks included)."""

    limit = "max_output"


class HarnInterruptedError(HarnLimitError):
    """The host stopped the run with ``Vm.interrupt()`` /
    ``InterruptHandle.interrupt()``."""

    limit = "interrupt"


class HarnConversionError(HarnError, TypeError):
    """A value could not be converted between Python and Harn.

    The message names the path to the offending value, e.g. ``value[0]["k"]``.
    """


class HarnArgumentError(HarnError, TypeError):
    """A host call (``Vm.call_export``) passed more arguments than the export
    accepts, or fewer than its parameters without a default."""


class HarnImportError(HarnError, ImportError):
    """An import failed: a name the module does not export (``import { x }``
    or ``Vm.call_export``), an import collision or cycle, or a module that
    could not be read.

    Attributes: ``module`` (the import path as written), ``export`` (the
    missing or colliding name, or None), ``filename`` / ``line`` (the
    importing file and line, when it came from an ``import`` statement).
    """

    module: str
    export: str | None
    filename: str
    line: int

    def __init__(
        self,
        message: str = "",
        *,
        module: str = "",
        export: str | None = None,
        filename: str = "",
        line: int = 0,
    ) -> None:
        super().__init__(message, module=module, export=export, filename=filename, line=line)

    def __str__(self) -> str:
        if self.filename and self.line > 0:
            return f"{self.filename}:{self.line}: {self.message}"
        return self.message


class HarnModuleNotFoundError(HarnImportError, ModuleNotFoundError):
    """No module has this import path (not a std module, not found relative
    to the importing file or on ``module_paths``, no provider has it)."""


class HarnInternalError(HarnError):
    """A bug in harnvm (for example a Rust panic). Please report it."""


# Show (and pickle) these as `harnvm.X`, where users import them from.
for _cls in (
    HarnFrame,
    HarnError,
    HarnSyntaxError,
    HarnRuntimeError,
    HarnLimitError,
    HarnTimeoutError,
    HarnMemoryError,
    HarnStackOverflowError,
    HarnInstructionLimitError,
    HarnOutputLimitError,
    HarnInterruptedError,
    HarnConversionError,
    HarnArgumentError,
    HarnImportError,
    HarnModuleNotFoundError,
    HarnInternalError,
):
    _cls.__module__ = "harnvm"
del _cls
