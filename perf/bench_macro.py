"""pyperf suite: every macro program (perf/macro) in harnvm, CPython and Lua
5.4 (lupa) at its full size. Benchmark names are `<program>.<runtime>`.

    python perf/bench_macro.py -o results.json [--program NAME] [--runtimes harnvm,lua] [pyperf options]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from perf import macro, pyperf_programs  # noqa: E402


def main() -> None:
    pyperf_programs.run(macro, "program")


if __name__ == "__main__":
    main()
