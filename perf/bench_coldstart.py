"""pyperf suite: cold start, measured in fresh processes.

    python perf/bench_coldstart.py -o coldstart.json [pyperf options]

Each value is the wall time of one new interpreter process (pyperf's
``bench_command``), over 20 worker processes:

* ``python_pass``: ``python -c pass``, the floor;
* ``import``: ``python -c "import harnvm"``;
* ``import_run_hello``: ``import harnvm`` and a hello-world run (the target:
  within 2.5x of ``python_pass``).

``python -m perf`` runs this suite and prints the ratios (``perf.report``).
"""

from __future__ import annotations

import sys

import pyperf

HELLO = 'import harnvm; harnvm.run(\'pipeline default() { println("hello") }\')'

COMMANDS = {
    "python_pass": "pass",
    "import": "import harnvm",
    "import_run_hello": HELLO,
}


def main() -> None:
    runner = pyperf.Runner(processes=20, values=1, warmups=1, loops=1)
    runner.parse_args()
    for name, code in COMMANDS.items():
        # -I is not used: the package may be an editable install found through site-packages.
        runner.bench_command(name, [sys.executable, "-c", code])


if __name__ == "__main__":
    main()
