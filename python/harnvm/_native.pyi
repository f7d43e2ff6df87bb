"""Type stubs for the compiled extension ``harnvm._native`` (rust/harnvm-py)."""

import os
from collections.abc import Callable, Iterable
from typing import Any, Final, final

from harnvm._modules import ModuleProvider

__all__ = [
    "HarnFunction",
    "HarnObject",
    "InterruptHandle",
    "MAX_CONVERSION_DEPTH",
    "Program",
    "Vm",
    "__version__",
    "_panic",
    "_roundtrip",
    "compile",
    "disassemble",
    "display",
]
__version__: Final[str]
MAX_CONVERSION_DEPTH: Final[int]

@final
class Program:
    """A compiled Harn source file, usable on the thread that compiled it."""

    @property
    def filename(self) -> str: ...
    @property
    def source(self) -> str: ...
    def disassemble(self) -> str: ...

@final
class Vm:
    """A Harn virtual machine, usable on the thread that created it
    (``interrupt`` and ``interrupt_handle`` work from any thread)."""

    def __new__(
        cls,
        *,
        output: Callable[[str], object] | None = None,
        inline_caches: bool = True,
        max_frames: int = 512,
        time_limit: float | None = None,
        module_paths: Iterable[str | os.PathLike[str]] | str | os.PathLike[str] | None = None,
        module_providers: Iterable[ModuleProvider] | ModuleProvider | None = None,
    ) -> Vm: ...
    def run(self, program: Program | str, *, filename: str = "<string>") -> Any: ...
    def run_file(self, path: str | os.PathLike[str]) -> Any: ...
    def call(self, function: HarnFunction, /, *args: object) -> Any: ...
    def compile(self, source: str, filename: str = "<string>") -> Program: ...
    def call_export(self, import_path: str, export_name: str, /, *args: object) -> Any: ...
    def call_export_typed(self, import_path: str, export_name: str, payload: object, result_type: Any) -> Any: ...
    def warm_module(self, import_path: str) -> None: ...
    def module_is_cached(self, import_path: str) -> bool: ...
    def interrupt(self) -> None: ...
    def interrupt_handle(self) -> InterruptHandle: ...
    @property
    def output(self) -> Callable[[str], object] | None: ...
    @property
    def inline_caches(self) -> bool: ...
    @property
    def max_frames(self) -> int: ...
    @property
    def time_limit(self) -> float | None: ...

@final
class InterruptHandle:
    """Stops a Vm's run in progress; usable from any thread."""

    def interrupt(self) -> None: ...

@final
class HarnFunction:
    """A Harn closure or builtin returned to Python (opaque; passes back into Harn)."""

    @property
    def name(self) -> str: ...
    @property
    def params(self) -> list[str]: ...
    @property
    def kind(self) -> str: ...

@final
class HarnObject:
    """Any other Harn runtime object (iterator, atomic, ...) returned to Python."""

    @property
    def type_name(self) -> str: ...

def compile(source: str, filename: str = "<string>") -> Program: ...
def disassemble(program: Program | str, *, filename: str = "<string>") -> str: ...
def display(value: object) -> str: ...
def _roundtrip(value: object) -> Any: ...
def _panic(message: str) -> None: ...
