"""The harn_entry crossing from Python: `Vm.call_export` warm and cold.

    python -m perf.crossing [--repeat N]

* warm: the module is instantiated on this Vm; a crossing is a lookup of the
  memoized module, an arity check, argument conversion and the call itself;
* cold: a fresh Vm per crossing, so each one resolves the module (reads its
  source), revalidates the thread's compiled-module cache, instantiates the
  module and calls;
* typed: `call_export_typed` with a dataclass result (JSON marshalling both ways).

Prints microseconds per crossing (best of 5 runs). Measurement only: no targets here.
"""

from __future__ import annotations

import argparse
import dataclasses
import timeit

import harnvm


@dataclasses.dataclass
class Version:
    major: int
    minor: int
    patch: int


def per_call_us(fn: object, number: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e6  # type: ignore[arg-type]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=20000, help="warm crossings per timing run")
    args = ap.parse_args()
    quiet = {"output": lambda _text: None}
    vm = harnvm.Vm(**quiet)
    vm.warm_module("std/semver")
    vm.warm_module("std/math")
    n = args.repeat
    rows = [
        ("warm call_export std/semver.strip_v", per_call_us(lambda: vm.call_export("std/semver", "strip_v", "v1.2.3"), n)),
        ("warm call_export std/semver.parse", per_call_us(lambda: vm.call_export("std/semver", "parse", "v1.2.3"), n)),
        ("warm call_export std/math.clamp", per_call_us(lambda: vm.call_export("std/math", "clamp", 5, 0, 10), n)),
        (
            "warm call_export_typed std/semver.parse -> dataclass",
            per_call_us(lambda: vm.call_export_typed("std/semver", "parse", "v1.2.3", Version), n),
        ),
        (
            "cold call_export std/semver.parse (new Vm each)",
            per_call_us(lambda: harnvm.Vm(**quiet).call_export("std/semver", "parse", "v1.2.3"), max(n // 50, 20)),
        ),
        ("new Vm alone", per_call_us(lambda: harnvm.Vm(**quiet), max(n // 50, 20))),
    ]
    width = max(len(name) for name, _ in rows)
    for name, us in rows:
        print(f"{name:<{width}}  {us:9.2f} us")


if __name__ == "__main__":
    main()
