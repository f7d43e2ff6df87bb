"""Memory held by programs is given back: top-level fns and the module env
they live in form a reference cycle, which the VM breaks when it drops or
when a later run finds the env unreachable."""

from __future__ import annotations

import os

import pytest

import harnvm

pytestmark = pytest.mark.needs_core

# A module global holding ~20,000 ints (hundreds of KB) that a top-level fn reads.
PROGRAM = "let big = range(0, 20000).to_list()\nfn f(x) { return len(big) + x }\npipeline main() { return f(1) }\n"
RUNS = 200


def resident_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


needs_proc = pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="reads RSS from /proc (Linux)")


@needs_proc
def test_runs_on_fresh_vms_do_not_accumulate_their_globals():
    harnvm.run(PROGRAM)
    before = resident_bytes()
    for _ in range(RUNS):
        assert harnvm.run(PROGRAM) == 20001
    # Leaking one env per run would hold RUNS * ~320 KB = ~64 MB.
    assert resident_bytes() - before < 16 * 2**20


@needs_proc
def test_runs_on_one_vm_free_the_envs_nothing_can_reach():
    vm = harnvm.Vm()
    vm.run(PROGRAM)
    before = resident_bytes()
    for _ in range(RUNS):
        assert vm.run(PROGRAM) == 20001
    assert resident_bytes() - before < 16 * 2**20


def test_a_fn_returned_from_an_earlier_run_still_works():
    vm = harnvm.Vm()
    f = vm.run("let base = [1, 2, 3]\nfn f(x) { return len(base) + x }\npipeline main() { return f }\n")
    vm.run(PROGRAM)
    assert vm.call(f, 10) == 13
