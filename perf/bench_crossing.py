"""pyperf suite: the cost of crossing from Python into Harn, measured from Python.

    python perf/bench_crossing.py -o crossing.json [pyperf options]

Every benchmark is one crossing per inner iteration of a plain Python loop (the
loop's own cost, about 15 ns, is included, as in ``timeit``):

* ``noop.*``: a Harn export that does nothing (``pub fn noop() { return nil }``), by name
  with ``Vm.call_export`` and through a pre-resolved handle (``Vm.export``);
* ``semver_parse.*``: ``std/semver`` ``parse("v1.2.3")`` warm (module instantiated on the
  Vm) by name and through a handle, and cold (a new Vm each time);
* ``semver_parse_typed.*``: the typed crossing, JSON marshalling and a dataclass result;
* ``*.handle_gil_held``: handles made with ``release_gil=False`` (the GIL stays held);
* ``noop.vm_call`` / ``noop.function_handle``: the same no-op as a ``HarnFunction`` returned
  by a run, called with ``vm.call(f)`` and as ``f()``;
* ``python_noop``: a Python function call in the same loop, for scale.

``python -m perf`` runs this suite and prints the target checks (``perf.report``).
"""

from __future__ import annotations

import dataclasses
import functools
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pyperf  # noqa: E402

import harnvm  # noqa: E402

NOOP_MODULE = {"bench/noop": "pub fn noop() {\n  return nil\n}\n"}


@dataclasses.dataclass
class Version:
    major: int
    minor: int
    patch: int


def timed(call: Callable[[], object]) -> Callable[[int], float]:
    """A pyperf time function: ``loops`` calls of ``call`` in a Python loop."""

    def run(loops: int) -> float:
        it = range(loops)
        started = pyperf.perf_counter()
        for _ in it:
            call()
        return pyperf.perf_counter() - started

    return run


def quiet_vm() -> harnvm.Vm:
    return harnvm.Vm(output=lambda _text: None, module_providers=[NOOP_MODULE])


def benchmarks() -> list[tuple[str, Callable[[int], float]]]:
    vm = quiet_vm()
    vm.warm_module("bench/noop")
    vm.warm_module("std/semver")
    noop = vm.export("bench/noop", "noop")
    parse = vm.export("std/semver", "parse")
    noop_held = vm.export("bench/noop", "noop", release_gil=False)
    parse_held = vm.export("std/semver", "parse", release_gil=False)
    noop_fn = vm.run("fn noop() {\n  return nil\n}\npipeline default() { return {noop: noop} }")["noop"]
    return [
        ("python_noop", timed(lambda: None)),
        ("noop.by_name", timed(lambda: vm.call_export("bench/noop", "noop"))),
        ("semver_parse.warm_by_name", timed(lambda: vm.call_export("std/semver", "parse", "v1.2.3"))),
        (
            "semver_parse_typed.warm_by_name",
            timed(lambda: vm.call_export_typed("std/semver", "parse", "v1.2.3", Version)),
        ),
        ("semver_parse.cold", timed(lambda: quiet_vm().call_export("std/semver", "parse", "v1.2.3"))),
        ("noop.handle", timed(noop)),
        # (partial, not a lambda: no extra Python frame, as for the handle calls.)
        ("noop.vm_call", timed(functools.partial(vm.call, noop_fn))),
        ("noop.function_handle", timed(noop_fn)),
        ("semver_parse.warm_handle", timed(lambda: parse("v1.2.3"))),
        ("semver_parse_typed.warm_handle", timed(lambda: parse.typed("v1.2.3", Version))),
        ("noop.handle_gil_held", timed(noop_held)),
        ("semver_parse.warm_handle_gil_held", timed(lambda: parse_held("v1.2.3"))),
        ("semver_parse_typed.warm_handle_gil_held", timed(lambda: parse_held.typed("v1.2.3", Version))),
    ]


def main() -> None:
    runner = pyperf.Runner()
    runner.parse_args()
    for name, func in benchmarks():
        runner.bench_time_func(name, func)


if __name__ == "__main__":
    main()
