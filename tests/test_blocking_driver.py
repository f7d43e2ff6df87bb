"""The blocking driver (rust/harnvm-py/src/driver.rs): every blocking entry
point waits for timers and awaits async host functions in Rust."""

from __future__ import annotations

import asyncio
import threading

import pytest

import harnvm

pytestmark = pytest.mark.needs_core


def test_vm_call_awaits_an_async_host_function():
    vm = harnvm.Vm()

    async def double(x):
        await asyncio.sleep(0)
        return x * 2

    vm.register("double", double)
    f = vm.run("pipeline default() {\n  return fn(x) { return double(x) + 1 }\n}\n")
    assert vm.call(f, 20) == 41


def test_call_export_awaits_an_async_host_function(tmp_path, monkeypatch):
    (tmp_path / "hostcalls.harn").write_text("pub fn twice(x) {\n  return double(x) + double(x)\n}\n")
    monkeypatch.chdir(tmp_path)
    vm = harnvm.Vm()

    async def double(x):
        await asyncio.sleep(0)
        return x * 2

    vm.register("double", double)
    assert vm.call_export("hostcalls", "twice", 5) == 20
    # The private loop is closed after each crossing; the next one makes its own.
    assert vm.export("hostcalls", "twice")(1) == 4


def test_an_interrupt_wakes_a_long_harn_sleep():
    vm = harnvm.Vm()
    started = threading.Event()
    vm.register("started", lambda: started.set())
    handle = vm.interrupt_handle()
    threading.Thread(target=lambda: (started.wait(), handle.interrupt()), daemon=True).start()
    # A sleep of an hour: only the interrupt can end this run (pytest-timeout guards a hang).
    with pytest.raises(harnvm.HarnInterruptedError):
        vm.run("pipeline default() {\n  started()\n  sleep(3600s)\n}\n")
    assert vm.run("pipeline default() {\n  return 1\n}\n") == 1


def test_keyboard_interrupt_from_a_host_function_ends_a_crossing_as_itself():
    vm = harnvm.Vm()

    def stop():
        raise KeyboardInterrupt

    vm.register("stop", stop)
    f = vm.run("pipeline default() {\n  return fn() {\n    try { stop() } catch (e) { return 1 }\n  }\n}\n")
    with pytest.raises(KeyboardInterrupt):
        vm.call(f)
    assert vm.run("pipeline default() {\n  return 2\n}\n") == 2
