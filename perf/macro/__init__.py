"""The macro suite: whole programs, each in idiomatic Harn (NAME.harn), CPython
(NAME.py) and Lua 5.4 through lupa (NAME.lua), doing the same work at the same
size and returning the same integer checksum. See perf/macro/README.md.

Every program takes one size parameter `n` (what it counts differs per
program: see PROGRAMS). A Harn file defines `fn run(n)`; the entry that calls
it is appended here, so the same file runs at any size in harnvm and, with the
0.9 entry shape, on the reference CLI (`oracle_source`).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Callable

MACRO_DIR = Path(__file__).resolve().parent
RUNTIMES = ("harnvm", "cpython", "lua")

# name -> (full size: CPython takes 20-100 ms, small size: for the checksum test)
PROGRAMS: dict[str, tuple[int, int]] = {
    "binary_trees": (11, 6),  # tree depth
    "dict_heavy": (20000, 500),  # stock events
    "dijkstra": (100, 8),  # grid side
    "fannkuch": (8, 6),  # permutation length
    "json_roundtrip": (300, 20),  # customer records per round
    "nbody": (8000, 200),  # simulation steps
    "record_sort": (10000, 200),  # employee records
    "richards": (20000, 200),  # idle-task iterations
    "spectral_norm": (80, 12),  # vector length
    "text_processing": (4000, 50),  # document lines
    "tokenizer_eval": (800, 40),  # expressions
}


def names() -> list[str]:
    return sorted(PROGRAMS)


def full_size(name: str) -> int:
    return PROGRAMS[name][0]


def small_size(name: str) -> int:
    return PROGRAMS[name][1]


def harn_source(name: str, n: int) -> str:
    """The program with a harnvm entry that returns `run(n)`."""
    body = (MACRO_DIR / f"{name}.harn").read_text()
    return f"{body}\npipeline default() {{\n  return run({n})\n}}\n"


def oracle_source(name: str, n: int) -> str:
    """The same program with harn 0.9's entry shape, printing the checksum."""
    body = (MACRO_DIR / f"{name}.harn").read_text()
    return f"{body}\nfn main(harness: Harness) {{\n  harness.stdio.println(to_string(run({n})))\n}}\n"


def build(runtime: str, name: str, n: int | None = None, **vm_options: Any) -> Callable[[], object]:
    """A callable that runs program `name` once at size `n` (default: the full
    size) in `runtime` and returns its checksum. Compiling and loading happen
    here, outside the timed region."""
    size = full_size(name) if n is None else n
    if runtime == "harnvm":
        import harnvm

        program = harnvm.compile(harn_source(name, size), str(MACRO_DIR / f"{name}.harn"))
        # A benchmark measures, it does not guard: no time limit (under
        # callgrind a program runs tens of times slower than natively).
        vm_options.setdefault("time_limit", None)
        vm = harnvm.Vm(output=lambda _text: None, **vm_options)
        return lambda: vm.run(program)
    if runtime == "cpython":
        run = importlib.import_module(f"perf.macro.{name}").run
        return lambda: run(size)
    if runtime == "lua":
        from lupa import lua54

        run_lua = lua54.LuaRuntime().execute((MACRO_DIR / f"{name}.lua").read_text())
        return lambda: run_lua(size)
    raise ValueError(f"unknown runtime {runtime!r}")
