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


def test_internals_and_crossing_suites_write_pyperf_json_and_report_the_targets(tmp_path: Path) -> None:
    import pyperf

    proc = subprocess.run(
        [sys.executable, "-m", "perf", "--quick", "--suites", "internals,crossing", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    internals = {b.get_name() for b in pyperf.BenchmarkSuite.load(str(tmp_path / "internals.json")).get_benchmarks()}
    for n in (8, 32, 128, 512):
        assert {f"slot_lookup.flat.N{n}", f"slot_lookup.btreemap.N{n}"} <= internals
        for family in ("adaptive_binary", "method", "property", "direct_call"):
            assert {f"peek.{family}.production.N{n}", f"peek.{family}.control.N{n}"} <= internals
    for k in (0, 5, 25, 100):
        assert {f"closure_env.call.C{k}", f"closure_env.baseline.C{k}"} <= internals
    crossing = {b.get_name() for b in pyperf.BenchmarkSuite.load(str(tmp_path / "crossing.json")).get_benchmarks()}
    assert {"noop.by_name", "noop.handle", "semver_parse.warm_by_name", "semver_parse.warm_handle"} <= crossing
    assert {"semver_parse_typed.warm_by_name", "semver_parse_typed.warm_handle", "semver_parse.cold"} <= crossing
    assert {"noop.handle_gil_held", "semver_parse.warm_handle_gil_held"} <= crossing
    out = proc.stdout
    assert "flat slot lookup >= 5x faster than BTreeMap at N=512" in out
    assert "closure-env cost at 100 captures" in out
    assert "noop <= 100 ns" in out


def test_bench_fixtures_run_and_refuse_unknown_names() -> None:
    import pytest

    from harnvm import _native

    names = _native.bench_fixtures()
    for family in ("adaptive_binary", "method", "property", "direct_call"):
        assert f"peek_{family}" in names and f"peek_{family}_control" in names
        assert _native.bench(f"peek_{family}", 2, size=8) >= 0
        assert _native.bench(f"peek_{family}_control", 2, size=8) >= 0
    assert _native.bench("slot_lookup_flat", 2, size=32) >= 0
    assert _native.bench("closure_env", 2, size=100) > 0
    assert _native.bench("closure_env_baseline", 2, size=0) > 0
    with pytest.raises(ValueError, match="unknown fixture"):
        _native.bench("peek_nothing", 1)
    with pytest.raises(ValueError, match="size must be"):
        _native.bench("slot_lookup_flat", 1, size=0)


def test_crossing_table_runs() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "perf.crossing", "--repeat", "5"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for row in ("no-op by name", "no-op handle", "std/semver.parse handle", "typed std/semver.parse handle", "cold std/semver.parse"):
        line = next(line for line in proc.stdout.splitlines() if line.startswith(row))
        assert line.rstrip().endswith(" ns"), line


def test_macro_suite_writes_pyperf_json_and_prints_its_ratio_table(tmp_path: Path) -> None:
    import pyperf

    proc = subprocess.run(
        [sys.executable, "-m", "perf", "--quick", "--suites", "macro", "--workload", "json_roundtrip", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    names = {b.get_name() for b in pyperf.BenchmarkSuite.load(str(tmp_path / "macro.json")).get_benchmarks()}
    assert names == {"json_roundtrip.harnvm", "json_roundtrip.cpython", "json_roundtrip.lua"}
    row = next(line for line in proc.stdout.splitlines() if line.startswith("| json_roundtrip |"))
    assert all(c.strip() != "-" for c in row.strip("|").split("|")[1:]), row
    assert "harnvm/CPython" in proc.stdout and "geometric mean" in proc.stdout
