"""Exact instruction counts per workload and runtime, under valgrind's
callgrind (wall-clock time on these shared machines is noisy; instruction
counts are repeatable).

For each (workload, runtime) it runs two processes under callgrind: both
prepare the workload (compile/load) and run it once to warm up (lazy imports,
caches); one of them then runs it a second time. The difference is the cost
of one steady-state run.

    python -m perf.callgrind [--suite workloads|macro] [--workload NAME] [--runtimes harnvm,cpython,lua] [--harnvm-from DIR]

`--suite macro` measures the programs of perf/macro at their full sizes
(`--workload` then names one program).

`--harnvm-from DIR` measures the harnvm package in DIR (a `python/` folder
holding `harnvm/` with its built extension, e.g. of another checkout)
instead of the installed one, with everything else (driver, workload files,
paths, environment) unchanged. Counts depend slightly on the environment, so
a before/after comparison should come from two runs of this same command
that differ only in this option.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from perf import macro, workloads

ROOT = Path(__file__).resolve().parent.parent

_DRIVER = """
import sys
sys.path.insert(0, {root!r})
if {harnvm_from!r}:
    sys.path.insert(0, {harnvm_from!r})
from perf import {suite} as suite
run = suite.build({runtime!r}, {name!r})
run()
if {execute!r}:
    run()
"""


def instructions(runtime: str, name: str, execute: bool, harnvm_from: str = "", suite: str = "workloads") -> int:
    with tempfile.TemporaryDirectory() as tmp:
        driver = Path(tmp) / "driver.py"
        driver.write_text(
            _DRIVER.format(root=str(ROOT), runtime=runtime, name=name, execute=execute, harnvm_from=harnvm_from, suite=suite)
        )
        out = Path(tmp) / "callgrind.out"
        # A fixed hash seed: with a random one, the two processes whose counts
        # are subtracted hash (and so allocate and probe) differently, which
        # moved single workloads by several percent between identical runs.
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        proc = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, str(driver)],
            capture_output=True,
            text=True,
            check=True,
            env=env,
        )
        match = re.search(r"Collected : (\d+)", proc.stderr)
        if not match:
            raise RuntimeError(f"no callgrind total for {name}.{runtime}:\n{proc.stderr[-2000:]}")
        return int(match.group(1))


def run_cost(runtime: str, name: str, harnvm_from: str = "", suite: str = "workloads") -> int:
    return instructions(runtime, name, True, harnvm_from, suite) - instructions(runtime, name, False, harnvm_from, suite)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m perf.callgrind", description=__doc__)
    ap.add_argument("--suite", default="workloads", choices=("workloads", "macro"))
    ap.add_argument("--workload", default="")
    ap.add_argument("--runtimes", default="harnvm,cpython,lua")
    ap.add_argument("--harnvm-from", default="", help="a python/ dir holding another harnvm build to measure")
    args = ap.parse_args(argv)
    runtimes = args.runtimes.split(",")
    names = [args.workload] if args.workload else (macro if args.suite == "macro" else workloads).names()
    print("| workload | " + " | ".join(f"{r} (M instr)" for r in runtimes) + " | harnvm/cpython | harnvm/lua |")
    print("|" + "---|" * (len(runtimes) + 3))
    for name in names:
        costs = {r: run_cost(r, name, args.harnvm_from, args.suite) for r in runtimes}
        cells = " | ".join(f"{costs[r] / 1e6:.1f}" for r in runtimes)

        def ratio(peer: str) -> str:
            if peer in costs and "harnvm" in costs and costs[peer] > 0:
                return f"{costs['harnvm'] / costs[peer]:.2f}x"
            return "-"

        print(f"| {name} | {cells} | {ratio('cpython')} | {ratio('lua')} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
