"""The pyperf runner shared by the suites whose benchmarks are programs run in
several runtimes (`bench_workloads.py`, `bench_macro.py`): one benchmark per
`<program>.<runtime>`, a `--<option>` that picks one program and
`--runtimes`, both passed on to pyperf's worker processes."""

from __future__ import annotations

from types import ModuleType

import pyperf


def run(suite: ModuleType, option: str) -> None:
    """`suite` provides `RUNTIMES`, `names()` and `build(runtime, name)`."""

    def add_cmdline_args(cmd: list[str], args: object) -> None:
        cmd.extend(["--runtimes", getattr(args, "runtimes")])
        if getattr(args, option):
            cmd.extend([f"--{option}", getattr(args, option)])

    runner = pyperf.Runner(add_cmdline_args=add_cmdline_args)
    runner.argparser.add_argument(f"--{option}", default="", help=f"run only this {option}")
    runner.argparser.add_argument("--runtimes", default=",".join(suite.RUNTIMES))
    args = runner.parse_args()
    chosen = getattr(args, option)
    for name in [chosen] if chosen else suite.names():
        for runtime in args.runtimes.split(","):
            runner.bench_func(f"{name}.{runtime}", suite.build(runtime, name))
