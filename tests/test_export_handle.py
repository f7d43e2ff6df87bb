"""`Vm.export`: the pre-resolved export handle (`harnvm.Export`) behaves like
`call_export` / `call_export_typed` in results, module state, output and errors."""

from __future__ import annotations

import dataclasses
import threading
from typing import Optional

import pytest

import harnvm

from conftest import wait_while_alive

COUNTER = """
var count = 0

pub fn bump(step = 1) {
  count = count + step
  return count
}

pub fn shout(text) {
  println("say " + text)
  return text + "!"
}

pub fn fail(message) {
  throw message
}

pub fn total(first, ...rest) {
  var sum = first
  for x in rest {
    sum = sum + x
  }
  return sum
}
"""


@dataclasses.dataclass
class Version:
    major: int
    minor: int
    patch: int


def make_vm(out: list[str] | None = None) -> harnvm.Vm:
    sink = out.append if out is not None else (lambda _t: None)
    return harnvm.Vm(output=sink, module_providers=[{"counter": COUNTER}])


def test_handle_calls_the_export_and_shares_module_state_with_call_export() -> None:
    vm = make_vm()
    bump = vm.export("counter", "bump")
    assert isinstance(bump, harnvm.Export)
    assert (bump.import_path, bump.name) == ("counter", "bump")
    assert "counter" in repr(bump) and "bump" in repr(bump)
    assert bump() == 1
    assert bump(5) == 6
    assert vm.call_export("counter", "bump") == 7
    assert bump() == 8
    clamp = vm.export("std/math", "clamp")
    assert clamp(15, 0, 10) == vm.call_export("std/math", "clamp", 15, 0, 10) == 10
    assert vm.export("counter", "total")(1, 2, 3) == 6


def test_handle_typed_matches_call_export_typed() -> None:
    vm = make_vm()
    parse = vm.export("std/semver", "parse")
    assert parse.typed("v1.2.3", Version) == Version(1, 2, 3) == vm.call_export_typed("std/semver", "parse", "v1.2.3", Version)
    assert parse.typed("nope", Optional[Version]) is None
    assert parse("v1.2.3") == {"major": 1, "minor": 2, "patch": 3}
    with pytest.raises(harnvm.HarnConversionError, match=r"std/semver.parse returned invalid shape: result: expected an object"):
        parse.typed("bad", Version)
    with pytest.raises(harnvm.HarnConversionError, match="bad payload"):
        parse.typed(float("nan"), Version)


def test_handle_output_goes_to_the_sink_in_order() -> None:
    out: list[str] = []
    vm = make_vm(out)
    shout = vm.export("counter", "shout")
    assert shout("a") == "a!"
    assert shout("b") == "b!"
    assert "".join(out) == "say a\nsay b\n"


def test_handle_errors_are_the_call_export_errors() -> None:
    vm = make_vm()
    with pytest.raises(harnvm.HarnImportError, match=r"module 'counter' has no export 'nope'") as info:
        vm.export("counter", "nope")
    assert info.value.export == "nope"
    with pytest.raises(harnvm.HarnModuleNotFoundError):
        vm.export("no/such/module", "x")
    bump = vm.export("counter", "bump")
    with pytest.raises(harnvm.HarnArgumentError, match=r"counter.bump\(step\) takes 0 to 1 arguments but 2 were given"):
        bump(1, 2)
    with pytest.raises(harnvm.HarnArgumentError, match="takes at least 1 arguments but 0 were given"):
        vm.export("counter", "total")()
    with pytest.raises(harnvm.HarnArgumentError, match=r"std/semver.next\(current, bump\) takes 2 arguments but 1 were given"):
        vm.export("std/semver", "next").typed("1.0.0", str)
    fail = vm.export("counter", "fail")
    with pytest.raises(harnvm.HarnRuntimeError, match="boom"):
        fail("boom")
    # The Vm is still usable after errors.
    assert bump() == 1


def test_handle_keeps_its_vm_alive_and_refuses_other_threads() -> None:
    handle = make_vm().export("counter", "bump")
    assert handle() == 1  # the Vm lives as long as the handle
    errors: list[BaseException] = []

    def other() -> None:
        try:
            handle()
        except BaseException as e:  # noqa: BLE001 - recorded for the assertion
            errors.append(e)

    t = threading.Thread(target=other)
    t.start()
    t.join()
    assert len(errors) == 1 and isinstance(errors[0], RuntimeError)
    assert "another thread" in str(errors[0])


def test_handle_refuses_reentry_from_output() -> None:
    vm_box: list[harnvm.Vm] = []

    def reenter(_text: str) -> None:
        vm_box[0].export("counter", "bump")()

    vm = harnvm.Vm(output=reenter, module_providers=[{"counter": COUNTER}])
    vm_box.append(vm)
    with pytest.raises(RuntimeError, match="already running"):
        vm.export("counter", "shout")("x")


def test_handle_that_keeps_the_gil_behaves_the_same() -> None:
    out: list[str] = []
    vm = make_vm(out)
    shout = vm.export("counter", "shout", release_gil=False)
    assert not shout.release_gil and vm.export("counter", "shout").release_gil
    assert shout("a") == "a!" and "".join(out) == "say a\n"
    bump = vm.export("counter", "bump", release_gil=False)
    assert bump() == 1 and vm.call_export("counter", "bump") == 2
    with pytest.raises(harnvm.HarnRuntimeError, match="boom"):
        vm.export("counter", "fail", release_gil=False)("boom")
    parse = vm.export("std/semver", "parse", release_gil=False)
    assert parse.typed("v1.2.3", Version) == Version(1, 2, 3)
    with pytest.raises(harnvm.HarnArgumentError):
        bump(1, 2)


def test_handle_releases_the_gil_by_default() -> None:
    # The call spins forever once it said so (running()); only this thread
    # can stop it, by running Python code (the interrupt) while the call runs,
    # which a call holding the GIL would not allow: then the safety limit
    # would end it with HarnTimeoutError instead.
    vm_box: dict[str, object] = {}
    running = threading.Event()

    def work() -> None:
        vm = harnvm.Vm(
            time_limit=60.0, module_providers=[{"spin": "pub fn spin() {\n  running()\n  while true {\n  }\n}\n"}]
        )
        vm.register("running", running.set)
        vm_box["handle"] = vm.interrupt_handle()
        spin = vm.export("spin", "spin")
        vm_box["release_gil"] = spin.release_gil
        try:
            spin()
        except harnvm.HarnError as e:
            vm_box["error"] = e

    thread = threading.Thread(target=work)
    thread.start()
    wait_while_alive(running, thread)
    vm_box["handle"].interrupt()  # type: ignore[attr-defined]
    thread.join()
    assert vm_box["release_gil"] is True
    assert isinstance(vm_box.get("error"), harnvm.HarnInterruptedError), vm_box


def test_crossings_start_from_a_fresh_root_task() -> None:
    # Each crossing's root task is recycled from the previous one only when it
    # is as a new root would be: context values, frames and the like never
    # carry over from one crossing to the next.
    source = """
pub fn remember(value) {
  runtime_context_set("k", value)
  return runtime_context_get("k", "unset")
}

pub fn recall() {
  return runtime_context_get("k", "unset")
}

pub fn explode() {
  throw "boom"
}
"""
    vm = harnvm.Vm(output=lambda _t: None, module_providers=[{"ctx": source}])
    remember, recall, explode = (vm.export("ctx", n) for n in ("remember", "recall", "explode"))
    assert recall() == "unset"
    assert remember("x") == "x"
    assert recall() == "unset"
    with pytest.raises(harnvm.HarnRuntimeError, match="boom"):
        explode()
    assert recall() == "unset"
    assert vm.call_export("ctx", "recall") == "unset"
