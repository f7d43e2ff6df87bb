"""Shared pytest configuration for harnvm."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = REPO_ROOT / "examples"
# The shared conformance suite lives beside every checkout, at ../shared.
SHARED_CONFORMANCE = REPO_ROOT.parent / "shared" / "conformance"

# Property tests: thorough locally, bounded in CI (CI=true).
settings.register_profile(
    "ci",
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.register_profile("dev", max_examples=300, deadline=None)
# HYPOTHESIS_PROFILE=long: a thorough fuzzing session.
settings.register_profile("long", max_examples=20_000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci" if os.environ.get("CI") else os.environ.get("HYPOTHESIS_PROFILE", "dev"))


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Runs ``python -m harnvm ARGS`` and captures its output."""
    return subprocess.run(
        [sys.executable, "-m", "harnvm", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def wait_while_alive(event: threading.Event, thread: threading.Thread) -> None:
    """Waits for ``event`` (set by ``thread``), failing if the thread ends
    without setting it. No time bound: a hang is pytest-timeout's to report."""
    while not event.wait(0.05):
        if not thread.is_alive():
            assert event.is_set(), f"{thread.name} ended without signalling"


@pytest.fixture
def harn_file(tmp_path: Path):
    """Writes a .harn file into a temp dir: ``harn_file("x = 1", name="main.harn")``."""

    def write(source: str, name: str = "main.harn") -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source, encoding="utf-8")
        return path

    return write
