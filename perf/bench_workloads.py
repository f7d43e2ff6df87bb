"""pyperf suite: every workload in harnvm, CPython, Lua 5.4 (lupa) and
Starlark (starlark-pyo3), in one pyperf run. Benchmark names are
`<workload>.<runtime>`.

    python perf/bench_workloads.py -o results.json [--workload NAME] [--runtimes harnvm,lua] [pyperf options]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pyperf  # noqa: E402

from perf import workloads  # noqa: E402


def add_cmdline_args(cmd: list[str], args: object) -> None:
    """Pass our own options on to pyperf's worker processes."""
    cmd.extend(["--runtimes", getattr(args, "runtimes")])
    if getattr(args, "workload"):
        cmd.extend(["--workload", getattr(args, "workload")])


def main() -> None:
    runner = pyperf.Runner(add_cmdline_args=add_cmdline_args)
    runner.argparser.add_argument("--workload", default="", help="run only this workload")
    runner.argparser.add_argument("--runtimes", default=",".join(workloads.RUNTIMES))
    args = runner.parse_args()
    selected = [args.workload] if args.workload else workloads.names()
    for name in selected:
        for runtime in args.runtimes.split(","):
            runner.bench_func(f"{name}.{runtime}", workloads.build(runtime, name))


if __name__ == "__main__":
    main()
