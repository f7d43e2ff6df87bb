"""harnvm: a fast bytecode VM for the Harn language, embeddable in Python.

Quick tour::

    import harnvm

    harnvm.run('pipeline default() { println("hi") }')        # prints "hi"
    program = harnvm.compile(source, "main.harn")             # HarnSyntaxError on bad input
    vm = harnvm.Vm(output=chunks.append, time_limit=5.0)      # capture output, cap wall time
    value = vm.run(program)                                   # the entry pipeline's value, as Python
    vm.call(value["handler"], 1, "two")                       # call a Harn function it returned
    vm.call_export("std/semver", "next", "1.2.3", "minor")    # call a module's export: "1.3.0"

Errors are ``HarnError`` subclasses (see ``harnvm._errors`` for the tree);
value conversions are documented in the README and in
``rust/harnvm-py/src/convert.rs``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable

# Only what a run needs is imported here; the checker's Python half
# (`harnvm._check`: Diagnostic, check, ...) loads on first use (module
# __getattr__ below), so `import harnvm` stays cheap.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from harnvm._check import Diagnostic, HarnCheckWarning, check, set_warning_hook

from harnvm._errors import (
    HarnArgumentError,
    HarnConversionError,
    HarnError,
    HarnFrame,
    HarnInternalError,
    HarnImportError,
    HarnInstructionLimitError,
    HarnInterruptedError,
    HarnLimitError,
    HarnMemoryError,
    HarnModuleNotFoundError,
    HarnOutputLimitError,
    HarnRuntimeError,
    HarnStackOverflowError,
    HarnSyntaxError,
    HarnTimeoutError,
    HarnTypeError,
)
from harnvm._native import (
    Export,
    HarnFunction,
    HarnObject,
    InterruptHandle,
    Program,
    Vm,
    __version__,
    compile,
    disassemble,
    display,
    transcript_project,
)
from harnvm._modules import ModuleProvider, ModuleResolver, stdlib_modules
from harnvm._values import HarnEnum, HarnStruct

_LAZY = {"Diagnostic", "HarnCheckWarning", "check", "set_warning_hook"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from harnvm import _check

        value = getattr(_check, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'harnvm' has no attribute {name!r}")


__all__ = [
    "Diagnostic",
    "HarnCheckWarning",
    "HarnTypeError",
    "check",
    "set_warning_hook",
    "Export",
    "HarnArgumentError",
    "HarnConversionError",
    "HarnEnum",
    "HarnError",
    "HarnFrame",
    "HarnFunction",
    "HarnImportError",
    "HarnInternalError",
    "HarnInstructionLimitError",
    "HarnInterruptedError",
    "HarnLimitError",
    "HarnMemoryError",
    "HarnModuleNotFoundError",
    "HarnOutputLimitError",
    "HarnObject",
    "HarnRuntimeError",
    "HarnStackOverflowError",
    "HarnStruct",
    "HarnSyntaxError",
    "HarnTimeoutError",
    "InterruptHandle",
    "ModuleProvider",
    "ModuleResolver",
    "Program",
    "Vm",
    "__version__",
    "compile",
    "disassemble",
    "DEFAULT_MAX_MEMORY",
    "DEFAULT_MAX_OUTPUT",
    "DEFAULT_TIME_LIMIT",
    "display",
    "run",
    "run_file",
    "stdlib_modules",
    "transcript_project",
]

DEFAULT_TIME_LIMIT = 30.0
"""``Vm()``'s ``time_limit``: seconds of wall time per run (compiling included)."""
DEFAULT_MAX_MEMORY = 512 * 1024 * 1024
"""``Vm()``'s ``max_memory``: bytes a run may grow the heap by."""
DEFAULT_MAX_OUTPUT = 64 * 1024 * 1024
"""``Vm()``'s ``max_output``: bytes of output per run."""


def run(
    source: str | Program,
    *,
    filename: str = "<string>",
    output: Callable[[str], object] | None = None,
    inline_caches: bool = True,
    max_frames: int = 512,
    time_limit: float | None = DEFAULT_TIME_LIMIT,
    module_paths: Iterable[str | os.PathLike[str]] | None = None,
    module_providers: Iterable[ModuleProvider] | ModuleProvider | None = None,
    typecheck: bool = True,
    inputs: dict[str, Any] | None = None,
    max_memory: int | None = DEFAULT_MAX_MEMORY,
    max_instructions: int | None = None,
    max_output: int | None = DEFAULT_MAX_OUTPUT,
    seed: int | None = None,
) -> Any:
    """Compiles and runs ``source`` (or a ``Program``) on a fresh ``Vm``.

    Returns the entry pipeline's value converted to Python. ``inputs`` binds
    the entry pipeline's parameters by name (see ``Vm.run``); the other
    keyword arguments but ``filename`` are ``Vm``'s. Source text is checked
    statically first (``HarnTypeError``) unless ``typecheck=False``.
    """
    vm = Vm(
        output=output,
        inline_caches=inline_caches,
        max_frames=max_frames,
        time_limit=time_limit,
        module_paths=module_paths,
        module_providers=module_providers,
        typecheck=typecheck,
        max_memory=max_memory,
        max_instructions=max_instructions,
        max_output=max_output,
        seed=seed,
    )
    return vm.run(source, filename=filename, inputs=inputs)


def run_file(
    path: str | os.PathLike[str],
    *,
    output: Callable[[str], object] | None = None,
    inline_caches: bool = True,
    max_frames: int = 512,
    time_limit: float | None = DEFAULT_TIME_LIMIT,
    module_paths: Iterable[str | os.PathLike[str]] | None = None,
    module_providers: Iterable[ModuleProvider] | ModuleProvider | None = None,
    typecheck: bool = True,
    inputs: dict[str, Any] | None = None,
    max_memory: int | None = DEFAULT_MAX_MEMORY,
    max_instructions: int | None = None,
    max_output: int | None = DEFAULT_MAX_OUTPUT,
    seed: int | None = None,
) -> Any:
    """Reads, compiles and runs a ``.harn`` file on a fresh ``Vm`` (``inputs`` as for ``run``)."""
    vm = Vm(
        output=output,
        inline_caches=inline_caches,
        max_frames=max_frames,
        time_limit=time_limit,
        module_paths=module_paths,
        module_providers=module_providers,
        typecheck=typecheck,
        max_memory=max_memory,
        max_instructions=max_instructions,
        max_output=max_output,
        seed=seed,
    )
    return vm.run_file(path, inputs=inputs)
