"""The macro programs (perf/macro) compute the same checksum in harnvm (with
and without inline caches), CPython and Lua 5.4, at each program's small size."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from perf import macro  # noqa: E402

pytestmark = pytest.mark.needs_core

HAS_LUPA = importlib.util.find_spec("lupa") is not None


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


def test_every_program_has_all_three_ports() -> None:
    for name in macro.names():
        for ext in ("harn", "py", "lua"):
            assert (macro.MACRO_DIR / f"{name}.{ext}").is_file(), f"{name}.{ext}"
    assert len(macro.names()) >= 11
