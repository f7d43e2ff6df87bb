"""The library surface of issue 18: callable function handles, vm.call,
registration rules, the running-loop error, exports, syntax-error display,
and the command line's -c, stdin, REPL and per-command usage."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import warnings

import pytest

import harnvm
from conftest import run_cli

needs_core = pytest.mark.needs_core

API = """
fn add(a, b) { return a + b }
pipeline default() { return {add: add, greet: { name -> "hi " + name }} }
"""


@needs_core
def test_harn_function_is_callable_on_its_own_vm():
    vm = harnvm.Vm()
    api = vm.run(API)
    assert api["add"](2, 40) == 42
    assert api["greet"]("Ada") == "hi Ada"
    # The same call as vm.call, through the same conversions.
    assert api["add"](1, 2) == vm.call(api["add"], 1, 2)


@needs_core
def test_harn_function_errors_like_vm_call():
    vm = harnvm.Vm()
    api = vm.run(API)
    with pytest.raises(harnvm.HarnRuntimeError):
        api["add"](1, "x", 3)
    with pytest.raises(harnvm.HarnConversionError):
        api["add"](1, object())


@needs_core
def test_harn_function_of_a_dropped_vm_says_so():
    api = harnvm.Vm().run(API)
    import gc

    gc.collect()
    with pytest.raises(RuntimeError, match="the Vm that made it is gone"):
        api["add"](1, 2)


@needs_core
def test_harn_function_from_another_vm_is_refused_by_vm_call():
    api = harnvm.Vm().run(API)
    with pytest.raises(harnvm.HarnConversionError, match="different Vm"):
        harnvm.Vm().call(api["add"], 1, 2)


@needs_core
def test_vm_call_rejects_non_functions():
    with pytest.raises(TypeError, match="expects a HarnFunction, got int"):
        harnvm.Vm().call(1)


@needs_core
def test_registering_under_a_builtin_name_is_an_error():
    vm = harnvm.Vm()
    with pytest.raises(ValueError, match='cannot register "len": it is the name of a Harn builtin'):
        vm.register("len", lambda x: 0)
    # The builtin still works, and another name registers fine.
    vm.register("my_len", lambda x: 99)
    assert vm.run('pipeline default() { return [len("abc"), my_len("abc")] }') == [3, 99]


@needs_core
def test_vm_run_awaiting_inside_a_running_loop_points_at_run_async():
    async def fetch() -> int:
        await asyncio.sleep(0)
        return 7

    async def main() -> None:
        vm = harnvm.Vm()
        vm.register("fetch", fetch)
        # A synchronous program still runs from inside the loop.
        assert vm.run("pipeline default() { return 1 }") == 1
        with pytest.raises(RuntimeError, match=r"await vm\.run_async"):
            vm.run("pipeline default() { return fetch() }")
        # ... and the right way works on the same Vm.
        assert await vm.run_async("pipeline default() { return fetch() }") == 7

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "coroutine was never awaited"
        asyncio.run(main())


def test_module_provider_is_exported():
    assert "ModuleProvider" in harnvm.__all__
    assert harnvm.ModuleProvider is not None


def test_plain_import_and_run_do_not_import_asyncio():
    code = (
        "import sys, harnvm\n"
        "harnvm.run('pipeline default() { println(\"hi\") }')\n"
        "print('asyncio' in sys.modules)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "hi\nFalse\n"


@needs_core
def test_syntax_error_str_shows_the_position_once_and_a_wide_character_caret():
    with pytest.raises(harnvm.HarnSyntaxError) as info:
        harnvm.compile('pipeline default() {\n  let s = "日本語" + @\n}\n', "w.harn")
    head, source, caret = str(info.value).splitlines()
    assert head == "w.harn:2:19: Expected expression, got @"
    assert source == '      let s = "日本語" + @'
    # Three wide characters take six columns: the caret sits under the @.
    assert len(caret) == len(source) + 3


@needs_core
def test_syntax_error_in_a_huge_line_shows_a_trimmed_excerpt():
    source = "pipeline default() {\n  let s = [" + "1, " * 50_000 + "@]\n}\n"
    with pytest.raises(harnvm.HarnSyntaxError) as info:
        harnvm.compile(source, "big.harn")
    text = str(info.value)
    assert len(text) < 400
    lines = text.splitlines()
    assert lines[1].startswith("    ...") and lines[2].endswith("^")
    assert lines[1][len(lines[2]) - 1] == "@"


# ---------------------------------------------------------------------------
# Command line


@needs_core
def test_cli_dash_c_runs_code():
    proc = run_cli("-c", 'pipeline default() { println("from -c") }')
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "from -c\n", "")


@needs_core
def test_cli_dash_c_error_exits_1():
    proc = run_cli("-c", 'pipeline default() { throw "boom" }')
    assert proc.returncode == 1
    assert "boom" in proc.stderr


@needs_core
def test_cli_run_dash_reads_stdin():
    proc = subprocess.run(
        [sys.executable, "-m", "harnvm", "run", "-"],
        input='println("from stdin")\n',
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "from stdin\n", "")


@pytest.mark.parametrize("command", ["run", "check", "dis", "conformance"])
def test_cli_bad_flag_prints_the_subcommands_usage(command):
    proc = run_cli(command, "x.harn", "--bogus")
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"usage: harnvm {command} ")
    assert f"harnvm {command}: error: unrecognized arguments: --bogus" in proc.stderr


def repl(text: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harnvm", *args], input=text, capture_output=True, text=True, timeout=60
    )


@needs_core
def test_repl_keeps_state_between_lines_and_prints_values():
    lines = [
        "let x = 40",
        "x + 2",
        "x = x + 1",
        "x",
        "fn double(n) {",
        "  return n * 2",
        "}",
        "double(x)",
        'println("hi " + to_string(x))',
        "let f = { a -> a + x }",
        "f(1)",
        "nil",
        '[1, "two", {a: nil}]',
    ]
    proc = repl("\n".join(lines) + "\n")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["42", "41", "82", "hi 41", "42", "[1, two, {a: nil}]"]
    assert proc.stderr == ""


@needs_core
def test_repl_reports_an_error_and_goes_on():
    proc = repl("let a = 1\nnope + 1\na + 1\n", "repl")
    assert proc.returncode == 0
    assert proc.stdout.splitlines() == ["2"]
    assert "Undefined variable: nope" in proc.stderr


def test_progress_plain_counter_draws_and_keeps_messages_whole(monkeypatch, capsys):
    import io

    from harnvm._progress import Progress

    monkeypatch.setitem(sys.modules, "tqdm", None)  # the plain fallback, as without the extra
    bar = io.StringIO()
    progress = Progress(4, "conformance", enabled=True, stream=bar)
    progress.update()
    progress.write("FAIL case.harn: boom")
    progress.update(3)
    progress.close()
    assert "conformance [#######.......................] 1/4" in bar.getvalue()
    assert "4/4" in bar.getvalue()
    assert capsys.readouterr().out == "FAIL case.harn: boom\n"


def test_progress_uses_tqdm_when_installed():
    import io

    pytest.importorskip("tqdm", reason="tqdm is not installed (pip install 'harnvm[progress]')")
    from harnvm._progress import Progress

    bar = io.StringIO()
    progress = Progress(2, "perf suites", enabled=True, stream=bar)
    progress.update(2)
    progress.close()
    assert "2/2" in bar.getvalue()


def test_progress_is_off_when_stdout_is_not_a_terminal(tmp_path):
    (tmp_path / "ok.harn").write_text('println("x")\n')
    (tmp_path / "ok.expected").write_text("x\n")
    proc = run_cli("conformance", str(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout == "1 passed, 0 failed\n"
    assert proc.stderr == ""


# ---------------------------------------------------------------------------
# Inputs and entry rules


@needs_core
def test_inputs_bind_the_entry_pipelines_parameters_by_name():
    source = "pipeline default(task, budget) { return {task: task, budget: budget} }"
    assert harnvm.run(source, inputs={"task": {"goal": "x"}, "budget": 3}) == {"task": {"goal": "x"}, "budget": 3}
    # A parameter without an input is nil; an input without a parameter is ignored.
    assert harnvm.run(source, inputs={"other": 1}) == {"task": None, "budget": None}
    assert harnvm.run(source) == {"task": None, "budget": None}


@needs_core
def test_run_inputs_returns_them_in_every_program_shape():
    vm = harnvm.Vm(output=lambda _t: None)
    assert vm.run("run_inputs()", inputs={"a": 1}) == {"a": 1}
    main = "fn main(harness: Harness) { return run_inputs()[\"n\"] + 1 }"
    assert vm.run(main, inputs={"n": 41}) == 42
    # Inputs belong to one run.
    assert vm.run("run_inputs()") == {}


@needs_core
def test_inputs_reach_run_file_and_run_async(tmp_path):
    path = tmp_path / "p.harn"
    path.write_text("pipeline default(name) { return \"hi \" + name }\n")
    assert harnvm.run_file(path, inputs={"name": "Ada"}) == "hi Ada"
    vm = harnvm.Vm()
    assert asyncio.run(vm.run_async(path.read_text(), inputs={"name": "Bo"})) == "hi Bo"


@needs_core
def test_inputs_must_be_a_dict():
    with pytest.raises(TypeError, match="inputs must be a dict"):
        harnvm.Vm().run("pipeline default() {}", inputs=[1])
    with pytest.raises(harnvm.HarnConversionError):
        harnvm.Vm().run("pipeline default() {}", inputs={"x": object()})


@needs_core
def test_entry_is_the_default_pipeline_else_the_first():
    two = 'pipeline first() { return "first" }\npipeline default() { return "default" }\n'
    assert harnvm.run(two) == "default"
    assert harnvm.run('pipeline a() { return "a" }\npipeline b() { return "b" }\n') == "a"


@needs_core
def test_beside_a_pipeline_other_top_level_statements_do_not_run():
    out: list[str] = []
    source = 'println("stray")\nlet x = 2\npipeline default() { println("body"); return x }\n'
    assert harnvm.run(source, output=out.append) == 2
    assert "".join(out) == "body\n"


@needs_core
def test_without_a_pipeline_the_file_runs_as_a_script_or_calls_main():
    out: list[str] = []
    assert harnvm.run('println("one")\nprintln("two")\n40 + 2\n', output=out.append) == 42
    assert "".join(out) == "one\ntwo\n"
    main = 'fn main(harness: Harness) { harness.stdio.println("in main"); return 7 }\n'
    out.clear()
    assert harnvm.run(main, output=out.append) == 7
    assert "".join(out) == "in main\n"
    # A pipeline wins over fn main.
    assert harnvm.run(main + 'pipeline default() { return "pipeline" }\n', output=out.append) == "pipeline"


# ---------------------------------------------------------------------------
# Runtime positions and tail calls


TAIL_CALLS = """\
fn c(x) {
  let y = x.nope.deeper
  return y
}
fn b(x) { return c(x) }
fn a(x) { return b(x) }
fn main(harness: Harness) {
  a(nil)
}
"""


@needs_core
def test_runtime_error_frames_carry_line_and_column():
    with pytest.raises(harnvm.HarnRuntimeError) as info:
        harnvm.run(TAIL_CALLS, filename="tc.harn", typecheck=False)
    e = info.value
    assert (e.line, e.harn_stack[0].line) == (2, 2)
    assert e.column > 0 and all(f.column > 0 for f in e.harn_stack)
    assert f"tc.harn:2:{e.column} in c" in str(e)


@needs_core
def test_tail_calls_leave_the_frames_harn_shows():
    # harn 0.9.11 (the oracle) reports this error "called from main at tc.harn:8"
    # and "called from pipeline at tc.harn:7": `return b(x)` and `return c(x)` are
    # tail calls, whose frames it does not keep. harnvm's traceback has the same frames.
    with pytest.raises(harnvm.HarnRuntimeError) as info:
        harnvm.run(TAIL_CALLS, filename="tc.harn", typecheck=False)
    frames = [(f.function, f.line) for f in reversed(info.value.harn_stack)]
    assert frames == [("<main>", 7), ("main", 8), ("c", 2)]
    # Without tail calls every frame stays, as in the oracle's trace.
    no_tail = TAIL_CALLS.replace("{ return c(x) }", "{ let r = c(x)\n  return r }")
    with pytest.raises(harnvm.HarnRuntimeError) as info:
        harnvm.run(no_tail, filename="tc.harn", typecheck=False)
    assert [f.function for f in reversed(info.value.harn_stack)] == ["<main>", "main", "b", "c"]
