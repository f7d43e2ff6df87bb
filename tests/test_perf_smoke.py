"""Smoke mode of the benchmark drivers: every suite runs one value per
benchmark, so the drivers and the peer programs cannot rot. No timing is
asserted here (performance targets live in perf/, never in tests)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path



ROOT = Path(__file__).resolve().parent.parent

# pyperf, lupa and starlark-pyo3 come from the `bench` extra, which the README test command installs.


def test_every_workload_runs_in_every_runtime_and_the_table_is_printed(tmp_path: Path) -> None:
    plot = tmp_path / "ratios.png"
    proc = subprocess.run(
        [sys.executable, "-m", "perf", "--quick", "--out", str(tmp_path), "--plot", str(plot)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    workloads = sorted(p.stem for p in (ROOT / "perf" / "workloads").glob("*.harn"))
    assert len(workloads) == 11
    table = proc.stdout
    for name in workloads:
        row = next(line for line in table.splitlines() if line.startswith(f"| {name} |"))
        cells = [c.strip() for c in row.strip("|").split("|")]
        # harnvm, CPython, Lua and Starlark each produced a time, and the ratios exist.
        assert all(c != "-" for c in cells[1:]), row
    assert "geometric mean" in table
    assert (tmp_path / "workloads.json").stat().st_size > 0
    assert plot.stat().st_size > 0


def test_harn_workloads_run_cleanly() -> None:
    """Each workload ends with an `unreachable` guard on its accumulator: a
    wrong result would print it."""
    import harnvm

    out: list[str] = []
    vm = harnvm.Vm(output=out.append)
    for path in sorted((ROOT / "perf" / "workloads").glob("*.harn")):
        vm.run(path.read_text(), filename=str(path))
    assert out == []
