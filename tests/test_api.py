"""The Python API: compile, Vm, run, run_file, output capture, disassemble."""

from __future__ import annotations

import io
import re
import subprocess
import sys
import textwrap
import threading
import time
from contextlib import redirect_stdout
from pathlib import Path

import pytest

import harnvm

from conftest import wait_while_alive

needs_core = pytest.mark.needs_core

HELLO = 'pipeline default() {\n  println("hello")\n}\n'


def test_public_names_exist():
    for name in harnvm.__all__:
        assert hasattr(harnvm, name), name


def test_version_matches_cargo():
    cargo = (Path(__file__).resolve().parent.parent / "Cargo.toml").read_text(encoding="utf-8")
    version = re.search(r'(?m)^version = "([^"]+)"', cargo)
    assert version is not None
    assert harnvm.__version__ == version.group(1)


def test_vm_defaults_and_repr():
    vm = harnvm.Vm()
    assert vm.max_frames == 512
    assert vm.inline_caches is True
    # Finite budgets by default (see README "Running untrusted code").
    assert vm.time_limit == harnvm.DEFAULT_TIME_LIMIT == 30.0
    assert vm.max_memory == harnvm.DEFAULT_MAX_MEMORY == 512 * 1024 * 1024
    assert vm.max_output == harnvm.DEFAULT_MAX_OUTPUT == 64 * 1024 * 1024
    assert vm.max_instructions is None
    assert vm.output is None
    assert repr(vm) == "harnvm.Vm(max_frames=512, inline_caches=True, time_limit=30.0)"
    unlimited = harnvm.Vm(time_limit=None, max_memory=None, max_output=None)
    assert (unlimited.time_limit, unlimited.max_memory, unlimited.max_output) == (None, None, None)


def test_vm_options_are_kept():
    sink = []
    vm = harnvm.Vm(output=sink.append, inline_caches=False, max_frames=64, time_limit=2.5)
    assert vm.output == sink.append
    assert vm.inline_caches is False
    assert vm.max_frames == 64
    assert vm.time_limit == 2.5


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"max_frames": 0}, ValueError),
        ({"max_frames": -5}, ValueError),
        ({"time_limit": 0}, ValueError),
        ({"time_limit": -1.0}, ValueError),
        ({"time_limit": float("nan")}, ValueError),
        ({"time_limit": float("inf")}, ValueError),
        ({"output": 42}, TypeError),
        ({"bogus": 1}, TypeError),
    ],
)
def test_vm_rejects_bad_options(kwargs, error):
    with pytest.raises(error):
        harnvm.Vm(**kwargs)


def test_vm_options_are_keyword_only():
    with pytest.raises(TypeError):
        harnvm.Vm(print)  # type: ignore[misc]


def test_run_rejects_non_source():
    with pytest.raises(TypeError, match="Program or Harn source"):
        harnvm.Vm().run(42)  # type: ignore[arg-type]


def test_run_file_missing(tmp_path):
    with pytest.raises(FileNotFoundError):
        harnvm.Vm().run_file(tmp_path / "nope.harn")


def test_run_file_not_utf8(tmp_path):
    path = tmp_path / "latin1.harn"
    path.write_bytes(b'pipeline default() { println("caf\xe9") }\n')
    with pytest.raises(UnicodeDecodeError):
        harnvm.run_file(path)


def test_compile_errors_carry_the_filename():
    # True both of the placeholder core and of a real parser.
    with pytest.raises(harnvm.HarnSyntaxError) as info:
        harnvm.compile("let x = ", "bad.harn")
    assert info.value.filename == "bad.harn"
    assert str(info.value).startswith("bad.harn:")


@needs_core
def test_compile_returns_a_program():
    program = harnvm.compile(HELLO, "hello.harn")
    assert isinstance(program, harnvm.Program)
    assert program.filename == "hello.harn"
    assert program.source == HELLO
    assert repr(program) == "<harnvm.Program 'hello.harn'>"


@needs_core
def test_run_returns_the_pipeline_value():
    assert harnvm.run("pipeline default() {\n  return 40 + 2\n}\n") == 42


@needs_core
def test_pipeline_without_return_gives_none():
    assert harnvm.run("pipeline default() {\n  let x = 1\n}\n") is None


@needs_core
def test_run_accepts_a_program_and_reuses_the_vm():
    program = harnvm.compile("pipeline default() {\n  return [1, 2, 3]\n}\n")
    vm = harnvm.Vm()
    assert vm.run(program) == [1, 2, 3]
    assert vm.run(program) == [1, 2, 3]
    assert vm.run("pipeline default() {\n  return \"again\"\n}\n") == "again"


@needs_core
def test_output_callable_receives_text():
    chunks: list[str] = []
    harnvm.run('pipeline default() {\n  print("a")\n  println("b")\n  log(3)\n}\n', output=chunks.append)
    assert "".join(chunks) == "ab\n[harn] 3\n"


@needs_core
def test_default_output_goes_to_sys_stdout():
    buffer = io.StringIO()
    with redirect_stdout(buffer):
        harnvm.run(HELLO)
    assert buffer.getvalue() == "hello\n"


@needs_core
def test_default_output_with_capsys(capsys):
    harnvm.Vm().run(HELLO)
    assert capsys.readouterr().out == "hello\n"


@needs_core
def test_output_callback_exception_propagates():
    class Boom(Exception):
        pass

    calls = []

    def sink(text: str) -> None:
        calls.append(text)
        raise Boom(text)

    with pytest.raises(Boom):
        harnvm.run('pipeline default() {\n  println("one")\n  println("two")\n}\n', output=sink)
    assert calls == ["one\n"]  # later output is dropped after the first failure


@needs_core
def test_output_callback_may_not_reenter_the_same_vm():
    vm: harnvm.Vm

    def sink(text: str) -> None:
        vm.run(HELLO)

    vm = harnvm.Vm(output=sink)
    with pytest.raises(RuntimeError):
        vm.run(HELLO)
    # ...and the Vm still works afterwards.
    out: list[str] = []
    harnvm.Vm(output=out.append).run(HELLO)
    assert out == ["hello\n"]


@needs_core
def test_run_file_and_relative_imports(tmp_path):
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "helpers.harn").write_text("fn double(x) {\n  return x * 2\n}\n", encoding="utf-8")
    main = tmp_path / "main.harn"
    main.write_text(
        'import "lib/helpers"\n\npipeline default() {\n  println(double(21))\n  return double(2)\n}\n',
        encoding="utf-8",
    )
    out: list[str] = []
    assert harnvm.run_file(main, output=out.append) == 4
    assert "".join(out) == "42\n"
    assert harnvm.Vm(output=out.append).run_file(str(main)) == 4


@needs_core
def test_shortcuts_accept_vm_options():
    out: list[str] = []
    assert harnvm.run(HELLO, filename="x.harn", output=out.append, max_frames=64, inline_caches=False) is None
    assert out == ["hello\n"]


@needs_core
def test_inline_caches_do_not_change_results():
    source = """
struct P {
  x: int
}

pipeline default() {
  var total = 0
  for i in 0 to 200 {
    let p = P({x: i})
    total = total + p.x
  }
  return total
}
"""
    assert harnvm.run(source, inline_caches=True) == harnvm.run(source, inline_caches=False) == 20100


@needs_core
def test_disassemble():
    text = harnvm.disassemble(HELLO)
    assert isinstance(text, str) and text.strip()
    program = harnvm.compile(HELLO)
    assert harnvm.disassemble(program) == program.disassemble() == text


def test_disassemble_reports_syntax_errors():
    with pytest.raises(harnvm.HarnSyntaxError):
        harnvm.disassemble("pipeline default() {\n  let x = `\n}\n", filename="bad.harn")


def test_native_module_is_typed():
    package = Path(harnvm.__file__).parent
    assert (package / "py.typed").is_file()
    assert (package / "_native.pyi").is_file()


def test_stub_lists_every_native_name():
    stub = (Path(harnvm.__file__).parent / "_native.pyi").read_text(encoding="utf-8")
    native = sys.modules["harnvm._native"]
    public = [n for n in dir(native) if not n.startswith("__") or n == "__version__"]
    for name in public:
        assert re.search(rf"\b(def|class) {re.escape(name)}\b|^{re.escape(name)}:", stub, re.M), name


# ---------------------------------------------------------------------------
# Calling Harn functions, interrupts, the GIL

FUNCS = """
fn add(a, b) {
  return a + b
}

pipeline default() {
  println("loaded")
  return {add: add, greet: { name -> "hello " + name }, shout: { s -> println(s + "!") }}
}
"""


@needs_core
def test_call_harn_functions_from_python():
    out: list[str] = []
    vm = harnvm.Vm(output=out.append)
    funcs = vm.run(FUNCS)
    assert vm.call(funcs["add"], 2, 40) == 42
    assert vm.call(funcs["add"], [1], [2, 3]) == [1, 2, 3]
    assert vm.call(funcs["greet"], "world") == "hello world"
    assert vm.call(funcs["shout"], "hey") is None
    assert "".join(out) == "loaded\nhey!\n"


@needs_core
def test_call_errors():
    vm = harnvm.Vm(output=lambda _: None)
    funcs = vm.run(FUNCS)
    with pytest.raises(harnvm.HarnRuntimeError, match="Cannot add"):
        vm.call(funcs["add"], 1, "x")
    with pytest.raises(harnvm.HarnConversionError):
        vm.call(funcs["add"], 1, object())
    with pytest.raises(TypeError, match="HarnFunction"):
        vm.call(print, 1)
    # A function belongs to the Vm that made it.
    with pytest.raises(harnvm.HarnConversionError, match="different Vm"):
        harnvm.Vm().call(funcs["add"], 1, 2)
    # The Vm is still usable after errors.
    assert vm.call(funcs["add"], 1, 2) == 3


def _run_in_thread(source: str, **vm_options):
    """Runs ``source`` on a Vm created in a new thread, with a host function
    ``running()`` that the program calls once its run is in progress.
    Returns (thread, box) once it was called."""
    box: dict = {}
    running = threading.Event()

    def work() -> None:
        vm = harnvm.Vm(**vm_options)
        vm.register("running", running.set)
        box["handle"] = vm.interrupt_handle()
        try:
            box["value"] = vm.run(source)
        except BaseException as e:  # noqa: BLE001
            box["error"] = e

    thread = threading.Thread(target=work)
    thread.start()
    wait_while_alive(running, thread)
    return thread, box


# Runs until something stops it; says so (running()) first, so an interrupt
# cannot land before the run started (a run resets the interrupt flag).
ENDLESS = "pipeline default() {\n  running()\n  var i = 0\n  while true {\n    i = i + 1\n  }\n}\n"


@needs_core
def test_interrupt_from_another_thread():
    thread, box = _run_in_thread(ENDLESS)
    box["handle"].interrupt()
    thread.join()  # the loop is endless: only the interrupt ends it
    assert isinstance(box.get("error"), harnvm.HarnInterruptedError)


@needs_core
def test_the_gil_is_released_while_harn_runs():
    # The Harn loop only ends if this (main) thread runs Python code while the
    # loop runs: the ticks and the interrupt call. With the GIL held it could
    # not, and the safety limit would end the run with HarnTimeoutError.
    thread, box = _run_in_thread(ENDLESS, time_limit=60.0)
    for _ in range(20):
        # Python code on this thread, while the Harn loop is still going.
        assert thread.is_alive() and "error" not in box
        time.sleep(0.001)
    box["handle"].interrupt()
    thread.join()
    assert isinstance(box.get("error"), harnvm.HarnInterruptedError), box


def test_vm_and_program_are_pinned_to_their_thread():
    vm = harnvm.Vm(time_limit=1.0)
    errors: list[BaseException] = []
    seen: list[object] = []

    def other() -> None:
        for attempt in (lambda: vm.run("x"), lambda: vm.run_file("x.harn")):
            try:
                attempt()
            except BaseException as e:  # noqa: BLE001
                errors.append(e)
        seen.append(vm.max_frames)  # plain settings are readable anywhere
        vm.interrupt()  # and interrupting works from any thread

    t = threading.Thread(target=other)
    t.start()
    t.join()
    assert len(errors) == 2
    assert all(type(e) is RuntimeError and "another thread" in str(e) for e in errors)
    assert seen == [512]


def test_objects_dropped_on_another_thread_are_quiet():
    # A Vm kept alive by an exception's traceback and dropped elsewhere must
    # not produce unraisable-exception warnings (filterwarnings=error).
    box: dict = {}

    def work() -> None:
        vm = harnvm.Vm()
        box["vm"] = vm
        try:
            vm.run(42)  # type: ignore[arg-type]
        except TypeError as e:
            box["error"] = e

    t = threading.Thread(target=work)
    t.start()
    t.join()
    box.clear()
    import gc

    gc.collect()


@needs_core
def test_program_from_another_thread_is_refused():
    program = harnvm.compile(HELLO)
    errors: list[BaseException] = []

    def other() -> None:
        try:
            harnvm.Vm().run(program)
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    t = threading.Thread(target=other)
    t.start()
    t.join()
    assert len(errors) == 1 and type(errors[0]) is RuntimeError
    assert program.filename == "<string>"


@needs_core
def test_output_callback_error_stops_an_endless_program():
    def sink(text: str) -> None:
        raise ValueError("stop")

    # The loop is endless: only the sink's error can end it (if it did not,
    # the run would hang and pytest-timeout would fail the test).
    with pytest.raises(ValueError, match="stop"):
        harnvm.run('pipeline default() {\n  while true {\n    println("x")\n  }\n}\n', output=sink)


def test_stubs_match_the_whole_package():
    # mypy's stubtest compares every module's stubs and annotations (_native.pyi,
    # internals.pyi and the typed .py modules) with the running package; no
    # allowlist.
    pytest.importorskip("mypy.stubtest", reason="mypy is not installed (pip install 'harnvm[test]')")
    proc = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "harnvm"],
        capture_output=True,
        text=True,
        timeout=240,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_package_type_checks():
    package = Path(harnvm.__file__).parent
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(package)],
        capture_output=True,
        text=True,
        timeout=240,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@needs_core
def test_ctrl_c_stops_a_printing_program_on_the_main_thread():
    # Python runs signal handlers on the main thread between bytecodes; the
    # output path checks for them, so KeyboardInterrupt ends the run.
    script = textwrap.dedent(
        """
        import os, signal, threading, harnvm
        printing = threading.Event()

        def ctrl_c():
            printing.wait()  # the run is in progress: its first output arrived
            os.kill(os.getpid(), signal.SIGINT)

        threading.Thread(target=ctrl_c, daemon=True).start()
        try:
            harnvm.run('pipeline default() {\\n  while true {\\n    print("")\\n    print(".")\\n  }\\n}\\n',
                       output=lambda s: printing.set(), time_limit=60)
        except KeyboardInterrupt:
            print("interrupted")
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL
    )
    assert proc.stdout.strip() == "interrupted", proc.stdout + proc.stderr


@needs_core
def test_call_gets_a_fresh_time_limit():
    vm = harnvm.Vm(time_limit=0.2)
    api = vm.run("fn spin(n) {\n  var i = 0\n  while i < n {\n    i = i + 1\n  }\n  return i\n}\n\npipeline default() {\n  return {spin: spin}\n}\n")
    time.sleep(0.3)
    assert vm.call(api["spin"], 100_000) == 100_000
    with pytest.raises(harnvm.HarnTimeoutError):
        vm.call(api["spin"], 10**15)
