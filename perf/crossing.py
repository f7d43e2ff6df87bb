"""The harn_entry crossing from Python: what one Python -> Harn call costs.

    python -m perf.crossing [--repeat N]        # ns per crossing (best of 5 timeit runs)
    python -m perf.crossing --callgrind         # instructions per crossing (needs valgrind)
    python -m perf.crossing --callgrind --only handle   # only the crossings whose name contains "handle"

* no-op: ``pub fn noop() { return nil }`` (a module provider), by name
  (``Vm.call_export``) and through a pre-resolved handle (``Vm.export``), also one
  made with ``release_gil=False`` (the GIL stays held during the call);
* warm: the module is instantiated on this Vm; by name a crossing looks up the
  memoized module and the export, checks the arity, converts the arguments and
  calls; a handle skips the lookups;
* cold: a fresh Vm per crossing, so each one resolves the module, revalidates the
  thread's compiled-module cache, instantiates the module and calls;
* typed: ``call_export_typed`` / ``handle.typed`` with a dataclass result (JSON
  marshalling both ways).

The pyperf version of the same crossings is the ``crossing`` suite
(``python -m perf --suites crossing``). Measurement only: no targets are asserted.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import subprocess
import sys
import timeit
from collections.abc import Callable

from pathlib import Path

import harnvm

ROOT = Path(__file__).resolve().parent.parent
NOOP_MODULE = {"bench/noop": "pub fn noop() {\n  return nil\n}\n"}


@dataclasses.dataclass
class Version:
    major: int
    minor: int
    patch: int


def make_vm() -> harnvm.Vm:
    return harnvm.Vm(output=lambda _text: None, module_providers=[NOOP_MODULE])


# The tp_call trampoline of `Export.__call__` (PyO3 inlines the method into it).
HANDLE_CALL = "*trampoline::ternaryfunc*"

# name -> (setup statements, the crossing expression, native symbol whose cost callgrind counts)
CROSSINGS: dict[str, tuple[str, str, str]] = {
    "no-op by name (call_export)": ("", 'vm.call_export("bench/noop", "noop")', "*__pymethod_call_export__*"),
    "no-op handle (vm.export)": ('noop = vm.export("bench/noop", "noop")', "noop()", HANDLE_CALL),
    "no-op handle, GIL held": (
        'noop = vm.export("bench/noop", "noop", release_gil=False)',
        "noop()",
        HANDLE_CALL,
    ),
    "std/math.clamp by name": ("", 'vm.call_export("std/math", "clamp", 5, 0, 10)', "*__pymethod_call_export__*"),
    "std/semver.parse by name": ("", 'vm.call_export("std/semver", "parse", "v1.2.3")', "*__pymethod_call_export__*"),
    "std/semver.parse handle": ('parse = vm.export("std/semver", "parse")', 'parse("v1.2.3")', HANDLE_CALL),
    "std/semver.parse handle, GIL held": (
        'parse = vm.export("std/semver", "parse", release_gil=False)',
        'parse("v1.2.3")',
        HANDLE_CALL,
    ),
    "typed std/semver.parse by name -> dataclass": (
        "",
        'vm.call_export_typed("std/semver", "parse", "v1.2.3", Version)',
        "*__pymethod_call_export_typed__*",
    ),
    "typed std/semver.parse handle -> dataclass": (
        'parse = vm.export("std/semver", "parse")',
        'parse.typed("v1.2.3", Version)',
        "*ExportHandle*__pymethod_typed__*",
    ),
}

PRELUDE = """
from perf.crossing import make_vm, Version
vm = make_vm()
vm.warm_module("bench/noop"); vm.warm_module("std/semver"); vm.warm_module("std/math")
"""


def per_call_ns(fn: Callable[[], object], number: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e9


def instructions(setup: str, expr: str, symbol: str | None, calls: int) -> int | None:
    """Instructions executed inside `symbol` (None: by the whole process)."""
    code = f"{PRELUDE}\n{setup}\n{expr}\nfor _ in range({calls}):\n    {expr}\n"
    toggle = [f"--toggle-collect={symbol}"] if symbol else []
    proc = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *toggle, sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        # The same dict layouts in every run (the counts are exact).
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    match = re.search(r"Collected : (\d+)", proc.stderr)
    if proc.returncode != 0 or not match:
        return None  # e.g. an API this harnvm build does not have
    return int(match.group(1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=20000, help="warm crossings per timing run")
    ap.add_argument("--callgrind", action="store_true", help="count instructions per crossing under valgrind")
    ap.add_argument("--only", default="", help="only the crossings whose name contains this text")
    args = ap.parse_args()
    width = max(len(name) for name in CROSSINGS) + 2
    if args.callgrind:
        # The steady-state cost: the difference between 1000 and 3000 crossings
        # (module loading, warm-up and the first call drop out). "native" counts
        # what runs inside the binding's entry symbol; "whole" everything one
        # iteration of the Python loop executes (the interpreter's call
        # protocol and the loop itself included; a Python no-op call for scale).
        rows: dict[str, tuple[str, str, str | None]] = {name: c for name, c in CROSSINGS.items() if args.only in name}
        rows["Python no-op call (for scale)"] = ("def pyfn():\n    return None", "pyfn()", None)

        def per_crossing(setup: str, expr: str, symbol: str | None) -> str:
            small, large = (instructions(setup, expr, symbol, n) for n in (1000, 3000))
            return "n/a" if small is None or large is None else f"{(large - small) / 2000:.0f}"

        print(f"{'':<{width}} {'native':>9} {'whole':>9}   (instructions per crossing)")
        for name, (setup, expr, symbol) in rows.items():
            native = per_crossing(setup, expr, symbol) if symbol else ""
            print(f"{name:<{width}} {native:>9} {per_crossing(setup, expr, None):>9}")
        return
    namespace: dict[str, object] = {}
    exec(PRELUDE, namespace)  # noqa: S102 - our own fixed setup code
    n = args.repeat
    for name, (setup, expr, _symbol) in CROSSINGS.items():
        try:
            exec(setup, namespace)  # noqa: S102
        except AttributeError:
            print(f"{name:<{width}} {'n/a':>9}")  # an API this harnvm build does not have
            continue
        fn = eval(f"lambda: {expr}", namespace)  # noqa: S307
        print(f"{name:<{width}} {per_call_ns(fn, n):9.0f} ns")
    cold = per_call_ns(lambda: make_vm().call_export("std/semver", "parse", "v1.2.3"), max(n // 50, 20))
    print(f"{'cold std/semver.parse (new Vm each)':<{width}} {cold:9.0f} ns")
    print(f"{'new Vm alone':<{width}} {per_call_ns(make_vm, max(n // 50, 20)):9.0f} ns")
    print(f"{'Python no-op call (for scale)':<{width}} {per_call_ns(lambda: None, n):9.0f} ns")


if __name__ == "__main__":
    main()
