"""pyperf suite: every workload in harnvm, CPython, Lua 5.4 (lupa) and
Starlark (starlark-pyo3), in one pyperf run. Benchmark names are
`<workload>.<runtime>`.

    python perf/bench_workloads.py -o results.json [--workload NAME] [--runtimes harnvm,lua] [pyperf options]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from perf import workloads, pyperf_programs  # noqa: E402


def main() -> None:
    pyperf_programs.run(workloads, "workload")


if __name__ == "__main__":
    main()
