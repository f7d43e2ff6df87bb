"""The macro programs (perf/macro) compute the same checksum in harnvm (with
and without inline caches), CPython and Lua 5.4, and on the harn 0.9.11
reference CLI, at each program's small size."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from perf import macro  # noqa: E402

pytestmark = pytest.mark.needs_core

HAS_LUPA = importlib.util.find_spec("lupa") is not None
# Looked up beside the checkout, as tests/test_transcript_oracle.py does.
ORACLE = Path(__file__).resolve().parent.parent.parent / "shared" / "oracle" / "harn"


@pytest.mark.parametrize("name", macro.names())
def test_checksums_agree(name: str) -> None:
    n = macro.small_size(name)
    expected = macro.build("cpython", name, n)()
    assert isinstance(expected, int)
    assert macro.build("harnvm", name, n)() == expected
    assert macro.build("harnvm", name, n, inline_caches=False)() == expected
    if not HAS_LUPA:
        pytest.skip("lupa is not installed: the Lua port was not checked")
    assert macro.build("lua", name, n)() == expected


@pytest.mark.parametrize("name", macro.names())
def test_a_second_run_on_the_same_vm_agrees(name: str) -> None:
    # The benchmark times repeated runs of one compiled program on one Vm.
    run = macro.build("harnvm", name, macro.small_size(name))
    assert run() == run()


@pytest.mark.skipif(not ORACLE.exists(), reason=f"the harn 0.9.11 oracle is not at {ORACLE}")
@pytest.mark.parametrize("name", macro.names())
def test_the_reference_cli_prints_the_same_checksum(name: str, tmp_path: Path) -> None:
    n = macro.small_size(name)
    source = tmp_path / f"{name}.harn"
    source.write_text(macro.oracle_source(name, n))
    proc = subprocess.run([str(ORACLE), "run", str(source)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == str(macro.build("cpython", name, n)())


def test_every_program_has_all_three_ports() -> None:
    for name in macro.names():
        for ext in ("harn", "py", "lua"):
            assert (macro.MACRO_DIR / f"{name}.{ext}").is_file(), f"{name}.{ext}"
    assert len(macro.names()) >= 11
