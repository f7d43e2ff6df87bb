"""Push growth: how the time of a Harn loop that grows a list one element at a
time scales with the count, for `xs = xs.push(v)` and `xs += [v]` at 5k, 10k
and 20k elements. Linear growth doubles the time per doubling of the count;
today each push copies the list, so the time roughly quadruples.

    python perf/bench_push.py -o push.json [--quick] [--repeat N]

Plain best-of-N wall-clock timing (not pyperf: one 20k run can take seconds).
Writes {variant: {count: seconds}} as JSON and prints the table.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

COUNTS = (5000, 10000, 20000)
VARIANTS = {
    "push": "xs = xs.push(i)",
    "plus_eq": "xs += [i]",
}


def source(statement: str, count: int) -> str:
    return (
        "pipeline default() {\n  var xs = []\n"
        f"  for i in 0 to {count} exclusive {{\n    {statement}\n  }}\n  return len(xs)\n}}\n"
    )


def measure(repeat: int) -> dict[str, dict[int, float]]:
    import harnvm

    times: dict[str, dict[int, float]] = {}
    for variant, statement in VARIANTS.items():
        for count in COUNTS:
            program = harnvm.compile(source(statement, count), f"push_{variant}.harn")
            vm = harnvm.Vm(output=lambda _text: None, time_limit=None)
            best = float("inf")
            for _ in range(repeat):
                start = time.perf_counter()
                length = vm.run(program)
                best = min(best, time.perf_counter() - start)
            assert length == count
            times.setdefault(variant, {})[count] = best
    return times


def format_table(times: dict[str, dict[int, float]]) -> str:
    lines = ["| loop | " + " | ".join(f"{c // 1000}k ms" for c in COUNTS) + " | 10k/5k | 20k/10k |", "|---|" + "---|" * (len(COUNTS) + 2)]
    for variant, by_count in times.items():
        cells = " | ".join(f"{by_count[c] * 1000:.1f}" for c in COUNTS)
        ratios = " | ".join(f"{by_count[b] / by_count[a]:.2f}x" for a, b in zip(COUNTS, COUNTS[1:]))
        lines.append(f"| `{VARIANTS[variant]}` | {cells} | {ratios} |")
    lines.append("\n(linear growth: 2x per doubling; quadratic: 4x)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    ap = argparse.ArgumentParser(prog="perf/bench_push.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-o", "--output", type=Path, required=True)
    ap.add_argument("--quick", action="store_true", help="one run per count")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--quiet", action="store_true", help="accepted for python -m perf; no effect")
    args = ap.parse_args(argv)
    times = measure(1 if args.quick else args.repeat)
    args.output.write_text(json.dumps({v: {str(c): t for c, t in by.items()} for v, by in times.items()}, indent=2))
    return 0


def load(path: Path) -> dict[str, dict[int, float]]:
    return {v: {int(c): t for c, t in by.items()} for v, by in json.loads(path.read_text()).items()}


if __name__ == "__main__":
    raise SystemExit(main())
