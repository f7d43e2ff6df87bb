"""The program fuzzer (`tests/fuzz`): a bounded campaign, the runner's own
oracle (deaths and internal errors are findings), and the saved regressions.
Overruns of the time limit are reported by the long mode only: no test here
asserts a duration.

The campaign runs generated programs and mutants of the conformance suite
and examples in worker subprocesses. `CI=1` runs a bounded profile (well
under two minutes on two cores); `python -m tests.fuzz --count N --seed S`
runs a long one.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fuzz import generate
from tests.fuzz.runner import run_campaign

pytestmark = pytest.mark.needs_core

REPO_ROOT = Path(__file__).resolve().parent.parent
REGRESSIONS = REPO_ROOT / "tests" / "fuzz_regressions"

CAMPAIGN_COUNT = 5000 if os.environ.get("CI") else 10000


def test_generators_are_deterministic_and_varied():
    a = [generate.program(7, i) for i in range(40)]
    assert a == [generate.program(7, i) for i in range(40)]
    assert len({src for src, _ in a}) == 40
    # Both streams are present: generated programs and mutants of real ones.
    assert any(name == "fuzz.harn" for _, name in a)
    if generate.seeds():
        assert any(name.endswith(".harn") and name != "fuzz.harn" for _, name in a)


def test_bounded_campaign_has_no_findings():
    campaign = run_campaign(CAMPAIGN_COUNT, seed=20261204, jobs=2, batch=CAMPAIGN_COUNT // 2, time_limit=1.0, watchdog=120)
    assert campaign.programs == CAMPAIGN_COUNT
    # Overruns are a time measurement: reported by the long mode, never asserted here.
    failures = [f for f in campaign.failures if not f.cls.startswith("overrun")]
    details = "\n\n".join(f"{f.cls} at {f.seed}/{f.index}:\n{generate.program(f.seed, f.index)[0]}\n{f.detail}" for f in failures)
    assert not failures, details
    # The programs do reach the VM and end in every way a program can.
    assert campaign.outcomes["ok"] > CAMPAIGN_COUNT // 10
    assert sum(n for cls, n in campaign.outcomes.items() if cls.startswith("harn:")) > CAMPAIGN_COUNT // 10


def test_runner_attributes_a_death_and_an_internal_error(monkeypatch):
    """The oracle fails on a process death (naming the program) and on a
    HarnInternalError, and resumes after the dead program."""
    monkeypatch.setenv("HARNVM_FUZZ_TEST_ABORT_AT", "5")
    monkeypatch.setenv("HARNVM_FUZZ_TEST_PANIC_AT", "8")
    campaign = run_campaign(12, seed=3, jobs=1, batch=12, time_limit=1.0)
    found = {(f.cls, f.index) for f in campaign.findings}
    assert found == {("death", 5), ("internal", 8)}
    assert campaign.programs == 12


def regression_cases() -> list[Path]:
    return sorted(REGRESSIONS.glob("*.harn"))


@pytest.mark.parametrize("path", regression_cases(), ids=lambda p: p.stem)
def test_fuzz_regression(path):
    """Every program a fuzz campaign found keeps ending as a Harn value or
    a Harn error, in a subprocess so a crash fails only this test."""
    script = (
        "import sys, harnvm\n"
        "src = open(sys.argv[1], encoding='utf-8').read()\n"
        "try:\n"
        "    harnvm.Vm(output=lambda t: None, time_limit=5.0, clock='virtual').run(src, filename=sys.argv[1])\n"
        "except harnvm.HarnInternalError:\n"
        "    raise\n"
        "except harnvm.HarnError as e:\n"
        "    print('error', type(e).__name__)\n"
        "print('done')\n"
    )
    proc = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, f"{path.name}: exit {proc.returncode}\n{proc.stderr[-3000:]}"
    assert proc.stdout.strip().endswith("done")
