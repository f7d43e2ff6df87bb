"""Instructions per steady-state run of the issue-13 statement snippets in
perf/vm_paths/ (field, index and dict writes, push growth, a struct literal
and struct method calls), under callgrind, as perf/callgrind.py measures the
workloads: a process that runs the snippet twice minus one that runs it once.

    python -m perf.vm_paths_callgrind [--harnvm-from DIR] [NAME.harn ...]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

SNIPPETS = Path(__file__).resolve().parent / "vm_paths"

_DRIVER = """
import sys
if {harnvm_from!r}:
    sys.path.insert(0, {harnvm_from!r})
import harnvm
program = harnvm.compile(open({path!r}).read(), {path!r})
vm = harnvm.Vm(output=lambda _text: None)
vm.run(program)
if {execute!r}:
    vm.run(program)
"""


def instructions(path: Path, execute: bool, harnvm_from: str) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        driver = Path(tmp) / "driver.py"
        driver.write_text(_DRIVER.format(harnvm_from=harnvm_from, path=str(path), execute=execute))
        out = Path(tmp) / "callgrind.out"
        proc = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, str(driver)],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": "0"},
        )
        match = re.search(r"Collected : (\d+)", proc.stderr)
        if not match:
            raise RuntimeError(f"no callgrind total for {path.name}:\n{proc.stderr[-2000:]}")
        return int(match.group(1))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m perf.vm_paths_callgrind", description=__doc__)
    ap.add_argument("--harnvm-from", default="", help="a python/ dir holding another harnvm build to measure")
    ap.add_argument("snippets", nargs="*", help="file names in perf/vm_paths (default: all)")
    args = ap.parse_args(argv)
    paths = [SNIPPETS / n for n in args.snippets] or sorted(SNIPPETS.glob("*.harn"))
    print("| snippet | harnvm (M instr) |\n|---|---|")
    for path in paths:
        cost = instructions(path, True, args.harnvm_from) - instructions(path, False, args.harnvm_from)
        print(f"| {path.stem} | {cost / 1e6:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
