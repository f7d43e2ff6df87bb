"""pyperf suite: the VM-internals fixtures of ``harnvm._native.bench``.

    python perf/bench_internals.py -o internals.json [pyperf options]

Every fixture runs its ``loops`` iterations inside Rust (rust/harnvm-py/src/bench.rs),
so pyperf's figure is the cost of the thing itself, not of a Python call:

* ``slot_lookup.<flat|btreemap>.N<n>``: one inline-cache slot lookup by op offset
  in a chunk of ``n`` sites, through a flat offset index against a BTreeMap (both
  controls are built inside the fixture from the chunk's sites; chunks themselves
  keep each slot only as the instruction's operand, ``slot_lookup_operand``);
* ``peek.<family>.<production|control>.N<n>``: one read of a warm cache entry by op
  offset (adaptive_binary, method, property, direct_call): the production peek
  (the slot from the instruction's operand, then a ``Copy`` view) against a control
  that looks the offset up in a ``HashMap`` and clones the whole entry;
* ``closure_env.<call|baseline>.C<k>``: one iteration of a loop that calls a closure
  with ``k`` captures 10 times, and the same loop without the calls; per call the
  cost is ``(call - baseline) / 10``;
* ``op.<name>.<op|baseline>``: the inline-cache program fixtures (one op repeated
  10 times per loop iteration, cached), as in perf/bench_inline_caches.py.

``python -m perf`` runs this suite and prints the target checks (``perf.report``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pyperf  # noqa: E402

from harnvm import _native  # noqa: E402

SIZES = (8, 32, 128, 512)
CAPTURES = (0, 5, 25, 100)
PEEK_FAMILIES = ("adaptive_binary", "method", "property", "direct_call")
UNROLL = 10  # bench.rs UNROLL: calls/ops per loop iteration of the program fixtures
OPS = ("property_read", "dict_field_read", "method_count", "int_add", "float_mul", "int_less", "closure_call")


def fixture(name: str, size: int | None = None) -> Callable[[int], float]:
    """A pyperf time function: ``loops`` iterations of the Rust fixture, in seconds."""
    if size is None:
        return lambda loops: _native.bench(name, loops) / 1e9
    return lambda loops: _native.bench(name, loops, size=size) / 1e9


def benchmarks() -> list[tuple[str, Callable[[int], float], int]]:
    """(pyperf name, time function, inner loops per iteration)."""
    out: list[tuple[str, Callable[[int], float], int]] = []
    for n in SIZES:
        out.append((f"slot_lookup.flat.N{n}", fixture("slot_lookup_flat", n), n))
        out.append((f"slot_lookup.btreemap.N{n}", fixture("slot_lookup_btreemap", n), n))
    for family in PEEK_FAMILIES:
        for n in SIZES:
            out.append((f"peek.{family}.production.N{n}", fixture(f"peek_{family}", n), n))
            out.append((f"peek.{family}.control.N{n}", fixture(f"peek_{family}_control", n), n))
    for k in CAPTURES:
        # Per loop iteration (10 calls); the report subtracts the baseline.
        out.append((f"closure_env.call.C{k}", fixture("closure_env", k), 1))
        out.append((f"closure_env.baseline.C{k}", fixture("closure_env_baseline", k), 1))
    for op in OPS:
        out.append((f"op.{op}.op", fixture(op), 1))
        out.append((f"op.{op}.baseline", fixture(f"{op}_baseline"), 1))
    return out


def main() -> None:
    runner = pyperf.Runner()
    runner.parse_args()
    for name, func, inner in benchmarks():
        runner.bench_time_func(name, func, inner_loops=inner)


if __name__ == "__main__":
    main()
