"""Inline-cache cost per op, cached vs uncached (a benchmark, not a test).

    python perf/bench_inline_caches.py [--loops N] [--repeat R] [--workloads]
    python perf/bench_inline_caches.py --callgrind [--loops N]   # instructions per op (needs valgrind)
    python perf/bench_inline_caches.py --callgrind-sized         # the same for the sized internals fixtures

Drives the Rust fixtures behind ``harnvm._native.bench`` (rust/harnvm-py/src/bench.rs).
Each program fixture is a Harn ``while`` loop whose body repeats one op
10 times; its ``*_baseline`` twin is the same loop without that op. The
op's cost is (fixture − baseline) / (loops × 10), on the real dispatch path,
once with ``inline_caches=True`` and once with ``False`` (the uncached path).
Timing happens inside Rust around ``Vm.run`` (compilation excluded); each
figure is the best of ``--repeat`` runs. ``--workloads`` also times the
perf/workloads programs end to end with caches on and off. ``--callgrind``
counts instructions instead of time (valgrind, only the ``bench`` call collected), which
a loaded machine does not disturb.
"""

from __future__ import annotations

import argparse
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

import harnvm
from harnvm import _native

UNROLL = 10  # bench.rs UNROLL: ops per loop iteration in the program fixtures
PAIRS = ["property_read", "dict_field_read", "list_count_read", "method_count", "int_add", "float_mul", "int_less", "closure_call"]  # fmt: skip
LOOKUPS = ["slot_lookup_operand", "slot_lookup_flat", "slot_lookup_btreemap"]
LOOKUP_SITES = 512
WORKLOADS = ["arithmetic_loop", "comparison_loop", "dict_property_read", "struct_field_read", "method_call_dispatch", "function_call_loop"]  # fmt: skip


def best(name: str, loops: int, repeat: int, inline_caches: bool) -> int:
    return min(_native.bench(name, loops, inline_caches=inline_caches) for _ in range(repeat))


def per_op(name: str, loops: int, repeat: int, inline_caches: bool) -> float:
    op = best(name, loops, repeat, inline_caches)
    base = best(f"{name}_baseline", loops, repeat, inline_caches)
    return (op - base) / (loops * UNROLL)


def instructions(name: str, loops: int, inline_caches: bool, size: int | None = None) -> int:
    """Instructions executed inside ``bench`` (callgrind) for one fixture run."""
    code = f"from harnvm import _native; _native.bench({name!r}, {loops}, inline_caches={inline_caches}, size={size})"
    proc = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", "--toggle-collect=*__pyfunction_bench", sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
    )
    match = re.search(r"Collected : (\d+)", proc.stderr)
    assert match, proc.stderr
    return int(match.group(1))


def callgrind_table(loops: int) -> None:
    print(f"{'op (instructions per op)':<26} {'uncached':>9} {'cached':>9} {'change':>8}")
    for name in PAIRS:
        row = []
        for caches in (False, True):
            op = instructions(name, loops, caches)
            base = instructions(f"{name}_baseline", loops, caches)
            row.append((op - base) / (loops * UNROLL))
        off, on = row
        print(f"{name:<26} {off:>9.1f} {on:>9.1f} {(on - off) / off * 100:>+7.0f}%")


def per_iteration(name: str, size: int, loops: tuple[int, int]) -> float:
    """Instructions per loop iteration of a sized fixture: the difference of two
    runs, so setup (building the chunk, compiling the program) drops out."""
    small, large = (instructions(name, n, True, size) for n in loops)
    return (large - small) / (loops[1] - loops[0])


def callgrind_sized() -> None:
    print(f"{'fixture (instructions per op)':<34} {'N=8':>7} {'N=512':>7}")
    for kind in ("flat", "btreemap"):
        row = [per_iteration(f"slot_lookup_{kind}", n, (100, 300)) / n for n in (8, 512)]
        print(f"{'slot_lookup_' + kind:<34} {row[0]:>7.1f} {row[1]:>7.1f}")
    for family in ("adaptive_binary", "method", "property", "direct_call"):
        for suffix in ("", "_control"):
            name = f"peek_{family}{suffix}"
            row = [per_iteration(name, n, (100, 300)) / n for n in (8, 512)]
            print(f"{name:<34} {row[0]:>7.1f} {row[1]:>7.1f}")
    print(f"\n{'closure call (instructions per call)':<38} {'C=0':>7} {'C=5':>7} {'C=25':>7} {'C=100':>7}")
    calls = []
    for k in (0, 5, 25, 100):
        call = per_iteration("closure_env", k, (1000, 3000))
        base = per_iteration("closure_env_baseline", k, (1000, 3000))
        calls.append((call - base) / UNROLL)
    print(f"{'closure_env - baseline':<38} " + " ".join(f"{c:>7.1f}" for c in calls))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--loops", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--workloads", action="store_true")
    ap.add_argument("--callgrind", action="store_true", help="count instructions under valgrind instead of timing")
    ap.add_argument("--callgrind-sized", action="store_true", help="instructions per op of the sized internals fixtures")
    args = ap.parse_args()
    if args.callgrind_sized:
        callgrind_sized()
        return 0
    if args.callgrind:
        callgrind_table(args.loops)
        return 0
    print(f"harnvm {harnvm.__version__}, Python {platform.python_version()}, {platform.machine()}")
    print(f"loops={args.loops} x {UNROLL} ops, best of {args.repeat}\n")
    print(f"{'op (ns per op)':<18} {'uncached':>9} {'cached':>9} {'change':>8}")
    for name in PAIRS:
        off = per_op(name, args.loops, args.repeat, False)
        on = per_op(name, args.loops, args.repeat, True)
        change = f"{(on - off) / off * 100:+.0f}%" if off > 0.05 else "n/a"
        print(f"{name:<18} {off:>9.2f} {on:>9.2f} {change:>8}")
    print(f"\n{'slot lookup':<22} {'ns/lookup':>9}")
    sweeps = max(1, args.loops // 100)
    for name in LOOKUPS:
        t = best(name, sweeps, args.repeat, True)
        print(f"{name:<22} {t / (sweeps * LOOKUP_SITES):>9.3f}")
    if args.workloads:
        workloads = Path(__file__).resolve().parent / "workloads"
        print(f"\n{'workload (ms)':<24} {'uncached':>9} {'cached':>9} {'change':>8}")
        for name in WORKLOADS:
            program = harnvm.compile((workloads / f"{name}.harn").read_text(), f"{name}.harn")
            times = {}
            for caches in (False, True):
                vm = harnvm.Vm(output=lambda _t: None, inline_caches=caches)
                runs = []
                for _ in range(args.repeat):
                    started = time.perf_counter()
                    vm.run(program)
                    runs.append(time.perf_counter() - started)
                times[caches] = min(runs) * 1000
            change = (times[True] - times[False]) / times[False] * 100
            print(f"{name:<24} {times[False]:>9.2f} {times[True]:>9.2f} {change:>+7.0f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
