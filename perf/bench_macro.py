"""pyperf suite: every macro program (perf/macro) in harnvm, CPython and Lua
5.4 (lupa) at its full size. Benchmark names are `<program>.<runtime>`.

    python perf/bench_macro.py -o results.json [--program NAME] [--runtimes harnvm,lua] [pyperf options]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pyperf  # noqa: E402

from perf import macro  # noqa: E402


def add_cmdline_args(cmd: list[str], args: object) -> None:
    """Pass our own options on to pyperf's worker processes."""
    cmd.extend(["--runtimes", getattr(args, "runtimes")])
    if getattr(args, "program"):
        cmd.extend(["--program", getattr(args, "program")])


def main() -> None:
    runner = pyperf.Runner(add_cmdline_args=add_cmdline_args)
    runner.argparser.add_argument("--program", default="", help="run only this program")
    runner.argparser.add_argument("--runtimes", default=",".join(macro.RUNTIMES))
    args = runner.parse_args()
    selected = [args.program] if args.program else macro.names()
    for name in selected:
        for runtime in args.runtimes.split(","):
            runner.bench_func(f"{name}.{runtime}", macro.build(runtime, name))


if __name__ == "__main__":
    main()
