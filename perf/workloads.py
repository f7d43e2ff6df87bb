"""The workload table: one entry per program in perf/workloads, and how to
build a zero-argument callable that runs it once in each runtime.

Every builder compiles/loads the program once, outside the timed region, so
the suites time execution only (as the peers' published figures do).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

PERF_DIR = Path(__file__).resolve().parent
HARN_DIR = PERF_DIR / "workloads"
LUA_DIR = PERF_DIR / "peers" / "lua"
STARLARK_DIR = PERF_DIR / "peers" / "starlark"

RUNTIMES = ("harnvm", "cpython", "lua", "starlark")


def names() -> list[str]:
    return sorted(p.stem for p in HARN_DIR.glob("*.harn"))


def build(runtime: str, name: str) -> Callable[[], object]:
    """A callable that runs workload `name` once in `runtime`."""
    return _BUILDERS[runtime](name)


def _harnvm(name: str) -> Callable[[], object]:
    import harnvm

    path = HARN_DIR / f"{name}.harn"
    program = harnvm.compile(path.read_text(), str(path))
    vm = harnvm.Vm(output=lambda _text: None, time_limit=None)
    return lambda: vm.run(program)


def _cpython(name: str) -> Callable[[], object]:
    from perf.peers import python_workloads

    fn: Callable[[], object] = getattr(python_workloads, name)
    return fn


def _lua(name: str) -> Callable[[], object]:
    from lupa import lua54

    runtime = lua54.LuaRuntime()
    fn: Callable[[], object] = runtime.execute((LUA_DIR / f"{name}.lua").read_text())
    return fn


def _starlark(name: str) -> Callable[[], object]:
    import starlark as sl

    path = STARLARK_DIR / f"{name}.star"
    dialect = sl.Dialect.extended()
    module = sl.Module()
    globals_ = sl.Globals.extended_by([sl.LibraryExtension.StructType, sl.LibraryExtension.Print])
    sl.eval(module, sl.parse(str(path), path.read_text(), dialect), globals_)
    frozen = module.freeze()
    # Starlark's default call-depth cap is below the 60-deep countdown.
    options = sl.EvalOptions(max_callstack_size=1000)
    return lambda: frozen.call_with(options, "run")


_BUILDERS: dict[str, Callable[[str], Callable[[], object]]] = {
    "harnvm": _harnvm,
    "cpython": _cpython,
    "lua": _lua,
    "starlark": _starlark,
}
