"""harnvm against committed oracle outputs (tests/oracle_golden).

Each `cases/NAME.harn` was run on harn 0.9.11 by
`python -m tests.oracle_golden.regen`; its stdout is `cases/NAME.out`
(and a non-zero exit status `cases/NAME.status`). The comparison is exact
and needs no oracle.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

import harnvm

CASES = Path(__file__).resolve().parent / "oracle_golden" / "cases"
NAMES = sorted(p.stem for p in CASES.glob("*.harn"))


def test_every_case_has_its_golden_output() -> None:
    assert NAMES, "no golden cases found"
    missing = [n for n in NAMES if not (CASES / f"{n}.out").exists()]
    assert not missing, f"run `python -m tests.oracle_golden.regen` for: {missing}"


@pytest.mark.parametrize("name", NAMES)
def test_matches_the_oracle(name: str) -> None:
    src = (CASES / f"{name}.harn").read_text()
    expected = (CASES / f"{name}.out").read_bytes().decode("utf-8")
    status_file = CASES / f"{name}.status"
    chunks: list[str] = []
    vm = harnvm.Vm(output=chunks.append, time_limit=20.0)
    failed = False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            vm.run(src, filename=f"{name}.harn")
        except harnvm.HarnError:
            failed = True
    got = "".join(chunks)
    exp_lines, got_lines = expected.split("\n"), got.split("\n")
    for i, (e, g) in enumerate(zip(exp_lines, got_lines)):
        assert g == e, f"{name}.harn output line {i + 1}: harnvm {g!r}, oracle {e!r}"
    assert got == expected
    assert failed == status_file.exists()
