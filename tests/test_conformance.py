"""The shared Harn conformance suite (../shared/conformance), one test per case.

Cases listed in tests/conformance_known_failures.txt are expected to fail
(xfail, strict: a case that starts passing must be removed from the list).
Regenerate the list, keeping existing reasons, with

    python -m harnvm conformance ../shared/conformance \\
        --write-known-failures tests/conformance_known_failures.txt
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import SHARED_CONFORMANCE

from harnvm import conformance

KNOWN_FAILURES_FILE = Path(__file__).resolve().parent / "conformance_known_failures.txt"
KNOWN_FAILURES = conformance.load_known_failures(KNOWN_FAILURES_FILE)
CASES = conformance.discover(SHARED_CONFORMANCE) if SHARED_CONFORMANCE.is_dir() else []


def _params():
    if not CASES:
        reason = f"shared conformance suite not found at {SHARED_CONFORMANCE}"
        return [pytest.param(None, id="shared-suite-missing", marks=pytest.mark.skip(reason=reason))]
    params = []
    for case in CASES:
        marks = []
        if case.rel in KNOWN_FAILURES:
            marks.append(pytest.mark.xfail(strict=True, reason=KNOWN_FAILURES[case.rel]))
        params.append(pytest.param(case, id=case.rel, marks=marks))
    return params


@pytest.mark.parametrize("case", _params())
def test_conformance(case: conformance.Case) -> None:
    result = conformance.run_case(case, timeout=conformance.DEFAULT_TIMEOUT)
    assert result.passed, result.reason


def test_known_failures_name_real_cases():
    if not CASES:
        pytest.skip(f"shared conformance suite not found at {SHARED_CONFORMANCE}")
    stale = sorted(set(KNOWN_FAILURES) - {c.rel for c in CASES})
    assert not stale, f"entries in {KNOWN_FAILURES_FILE.name} that are not cases: {stale}"
