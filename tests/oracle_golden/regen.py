"""Regenerate the golden outputs of tests/oracle_golden/cases from the oracle.

    python -m tests.oracle_golden.regen [NAME ...]

Each `cases/NAME.harn` runs on the reference CLI (harn 0.9.11, at
`../shared/oracle/harn` relative to the repository root); its stdout is
written to `cases/NAME.out`, its exit status to `cases/NAME.status` when
not 0. tests/test_oracle_golden.py checks harnvm against these files and
does not need the oracle.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
CASES = HERE / "cases"
ORACLE = HERE.parents[2] / "shared" / "oracle" / "harn"


def regen(name: str) -> None:
    src = CASES / f"{name}.harn"
    # Bytes, not text: a `\r` in the output must survive (no newline translation).
    proc = subprocess.run([str(ORACLE), "run", str(src)], capture_output=True, timeout=60, cwd=CASES)
    stderr = proc.stderr.decode("utf-8", "replace")
    if stderr.lstrip().startswith("error["):
        raise SystemExit(f"{name}: the oracle's static checker rejects it:\n{stderr}")
    (CASES / f"{name}.out").write_bytes(proc.stdout)
    status = CASES / f"{name}.status"
    if proc.returncode:
        status.write_text(f"{proc.returncode}\n")
    elif status.exists():
        status.unlink()
    print(f"{name}: {len(proc.stdout.splitlines())} lines, exit {proc.returncode}")


def main(argv: list[str]) -> None:
    if not ORACLE.exists():
        raise SystemExit(f"oracle not found at {ORACLE}")
    names = argv or sorted(p.stem for p in CASES.glob("*.harn"))
    for name in names:
        regen(name)


if __name__ == "__main__":
    main(sys.argv[1:])
