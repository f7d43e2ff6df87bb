"""Error paths: exception classes, syntax and runtime errors, limits, panics."""

from __future__ import annotations

import pickle
import re
import subprocess
import sys
import textwrap

import pytest

import harnvm
from harnvm import (
    HarnConversionError,
    HarnError,
    HarnFrame,
    HarnInternalError,
    HarnLimitError,
    HarnRuntimeError,
    HarnStackOverflowError,
    HarnSyntaxError,
    HarnTimeoutError,
)
from harnvm.internals import panic_for_test

needs_core = pytest.mark.needs_core


def test_hierarchy():
    assert issubclass(HarnError, Exception)
    for cls in (HarnSyntaxError, HarnRuntimeError, HarnConversionError, HarnInternalError):
        assert issubclass(cls, HarnError)
    assert issubclass(HarnLimitError, HarnRuntimeError)
    assert issubclass(HarnTimeoutError, HarnLimitError) and issubclass(HarnTimeoutError, TimeoutError)
    assert issubclass(HarnStackOverflowError, HarnLimitError) and issubclass(HarnStackOverflowError, RecursionError)
    assert issubclass(HarnConversionError, TypeError)
    assert issubclass(harnvm.HarnInterruptedError, HarnLimitError)
    assert HarnSyntaxError.__module__ == "harnvm"


# ---------------------------------------------------------------------------
# Formatting (constructed directly, no core needed)


def test_syntax_error_str_has_location_source_and_caret():
    e = HarnSyntaxError(
        "Unterminated string at 2:11", filename="x.harn", line=2, column=11, source_line='  let x = "abc', phase="lex"
    )
    # The position is shown once, in the head.
    assert str(e) == 'x.harn:2:11: Unterminated string\n      let x = "abc\n              ^'
    assert e.message == "Unterminated string at 2:11"
    assert (e.filename, e.line, e.column, e.phase) == ("x.harn", 2, 11, "lex")


def test_syntax_error_caret_keeps_tabs():
    e = HarnSyntaxError("bad", filename="t.harn", line=1, column=3, source_line="\t\t`")
    assert str(e).splitlines()[-1] == "    \t\t^"


def test_syntax_error_caret_counts_wide_characters_as_two_columns():
    e = HarnSyntaxError("bad", filename="t.harn", line=1, column=13, source_line='let s = "日本"@')
    source, caret = str(e).splitlines()[1:]
    assert source == '    let s = "日本"@'
    # 8 narrow characters, a quote, two wide ones (4 columns) and a quote: the caret sits in column 15.
    assert caret == "    " + " " * 14 + "^"


def test_syntax_error_long_line_is_trimmed_around_the_column():
    line = "x" * 100_000 + "@" + "y" * 100_000
    e = HarnSyntaxError("bad", filename="t.harn", line=1, column=100_001, source_line=line)
    head, source, caret = str(e).splitlines()
    assert head == "t.harn:1:100001: bad"
    assert len(source) < 140
    assert source.startswith("    ...x") and source.endswith("y...")
    assert source[len(caret) - 1] == "@"
    assert e.source_line == line  # the attribute keeps the whole line


def test_syntax_error_without_position():
    assert str(HarnSyntaxError("oops", filename="f.harn")) == "f.harn: oops"
    assert str(HarnSyntaxError("oops", filename="f.harn", line=3, column=1)) == "f.harn:3:1: oops"


def test_runtime_error_str_has_traceback_outermost_first():
    e = HarnRuntimeError(
        "Thrown: boom",
        kind="thrown",
        value="boom",
        harn_stack=[("inner", "m.harn", 2), ("outer", "m.harn", 6), ("default", "m.harn", 10)],
        filename="m.harn",
        line=2,
    )
    assert e.harn_stack[0] == HarnFrame("inner", "m.harn", 2)
    assert e.harn_stack[0].function == "inner"
    assert str(e) == (
        "Thrown: boom\n"
        "Harn traceback (most recent call last):\n"
        "  m.harn:10 in default\n"
        "  m.harn:6 in outer\n"
        "  m.harn:2 in inner"
    )


def test_runtime_error_without_stack_shows_location():
    e = HarnRuntimeError("Runtime error: Division by zero (line 3)", filename="d.harn", line=3)
    assert str(e) == "Runtime error: Division by zero (line 3)\n  at d.harn:3"
    assert str(HarnRuntimeError("Thrown: x")) == "Thrown: x"


@pytest.mark.parametrize(
    "exc",
    [
        HarnSyntaxError("m", filename="a.harn", line=1, column=2, source_line="src", phase="parse"),
        HarnRuntimeError("Thrown: v", kind="thrown", value={"k": [1]}, harn_stack=[("f", "a.harn", 1)]),
        HarnTimeoutError("Resource limit exceeded: time limit", kind="limit"),
        HarnConversionError("cannot convert"),
        HarnInternalError("internal error: x"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_exceptions_pickle(exc):
    back = pickle.loads(pickle.dumps(exc))
    assert type(back) is type(exc)
    assert back.__dict__ == exc.__dict__
    assert str(back) == str(exc)


# ---------------------------------------------------------------------------
# Panics never escape as PanicException


def test_panic_becomes_internal_error():
    with pytest.raises(HarnInternalError) as info:
        harnvm.internals.panic_for_test("kaboom")
    assert info.value.message == "internal error: kaboom"
    assert isinstance(info.value, Exception)


def test_panic_for_test_hook_raises_internal_error_and_the_interpreter_survives():
    with pytest.raises(HarnInternalError) as info:
        panic_for_test("injected")
    assert type(info.value) is HarnInternalError
    assert info.value.message == "internal error: injected"
    # The process and the extension carry on as before.
    assert harnvm.run("pipeline default() {\n  return 1 + 1\n}\n") == 2
    with pytest.raises(HarnInternalError, match="again"):
        panic_for_test("again")


def test_panic_for_test_inside_a_vm_resets_it_and_it_stays_usable():
    vm = harnvm.Vm()
    api = vm.run("fn inc(x) {\n  return x + 1\n}\n\npipeline default() {\n  return {inc: inc}\n}\n")
    assert vm.call(api["inc"], 1) == 2
    with pytest.raises(HarnInternalError, match="internal error: injected in the vm"):
        panic_for_test("injected in the vm", vm=vm)
    # After a panic the Vm's state is unknown, so it was replaced: values of
    # the old state are refused, and new runs work.
    with pytest.raises(HarnConversionError, match="different Vm"):
        vm.call(api["inc"], 1)
    assert vm.run("pipeline default() {\n  return 3\n}\n") == 3


# ---------------------------------------------------------------------------
# Syntax errors from the compiler


@needs_core
def test_unterminated_string_position():
    source = 'pipeline test(task) {\n  let x = "unterminated\n}\n'
    with pytest.raises(HarnSyntaxError) as info:
        harnvm.compile(source, "u.harn")
    e = info.value
    assert "Unterminated string at 2:11" in e.message
    assert (e.filename, e.line, e.column) == ("u.harn", 2, 11)
    assert e.source_line == '  let x = "unterminated'
    assert e.phase == "lex"
    lines = str(e).splitlines()
    assert lines[0] == "u.harn:2:11: Unterminated string"
    assert lines[1] == '      let x = "unterminated'
    assert lines[2] == "    " + " " * 10 + "^"


@needs_core
def test_unexpected_character_position():
    with pytest.raises(HarnSyntaxError) as info:
        harnvm.compile("pipeline test(task) {\n  let x = `\n}\n", "c.harn")
    assert "Unexpected character '`' at 2:11" in info.value.message
    assert (info.value.line, info.value.column) == (2, 11)


@needs_core
def test_parse_error_at_end_of_file():
    with pytest.raises(HarnSyntaxError) as info:
        harnvm.compile("pipeline p(x) {\n", "eof.harn")
    assert "Unexpected end of file, expected }" in info.value.message
    assert info.value.phase == "parse"


@needs_core
def test_compile_phase_error():
    # The static check reports it first (as harn does); unchecked, the compiler does.
    with pytest.raises(harnvm.HarnTypeError, match="try\\* requires an enclosing function"):
        harnvm.compile('let x = try* read_file("nope")\n', "top.harn")
    with pytest.raises(HarnSyntaxError) as info:
        harnvm.compile('let x = try* read_file("nope")\n', "top.harn", typecheck=False)
    assert "try* requires an enclosing function" in info.value.message


# ---------------------------------------------------------------------------
# Runtime errors

STACK_PROGRAM = """\
fn inner(x) {
  throw "boom: " + x
}

fn outer(x) {
  let y = inner(x)
  return y
}

pipeline default() {
  println("before")
  outer("a")
}
"""


@needs_core
def test_runtime_error_has_message_value_and_stack():
    out: list[str] = []
    with pytest.raises(HarnRuntimeError) as info:
        harnvm.run(STACK_PROGRAM, filename="main.harn", output=out.append)
    e = info.value
    assert out == ["before\n"]
    assert e.message == "Thrown: boom: a"
    assert e.kind == "thrown"
    assert e.value == "boom: a"
    assert not isinstance(e, HarnLimitError)
    functions = [f.function for f in e.harn_stack]
    assert functions[0] == "inner"
    assert "outer" in functions
    assert e.harn_stack[0] == ("inner", "main.harn", 2)
    assert all(f.file == "main.harn" for f in e.harn_stack)
    # Every frame has a column as well (from the cold position table).
    assert all(f.column > 0 for f in e.harn_stack)
    assert (e.filename, e.line, e.column) == ("main.harn", 2, e.harn_stack[0].column)
    text = str(e)
    assert text.startswith("Thrown: boom: a\n")
    assert f"main.harn:2:{e.harn_stack[0].column} in inner" in text
    assert re.search(r"main\.harn:6:\d+ in outer", text)


@needs_core
def test_thrown_values_convert_to_python():
    with pytest.raises(HarnRuntimeError) as info:
        harnvm.run('pipeline default() {\n  throw {code: 7, tags: ["a"]}\n}\n')
    assert info.value.value == {"code": 7, "tags": ["a"]}


@needs_core
def test_runtime_fault_message_has_line():
    source = "pipeline default() {\n  let z = 0\n  let y = 10 / z\n}\n"
    with pytest.raises(HarnRuntimeError) as info:
        harnvm.run(source, filename="div.harn")
    assert info.value.message == "Runtime error: Division by zero (line 3)"
    assert info.value.kind == "division_by_zero"
    assert info.value.value is None
    assert info.value.line == 3
    assert "div.harn:3" in str(info.value)


@needs_core
def test_undefined_variable_hint():
    with pytest.raises(HarnRuntimeError) as info:
        harnvm.run('pipeline default() {\n  let response = 1\n  log(reponse)\n}\n')
    assert "Undefined variable: reponse (did you mean `response`?)" in info.value.message


@needs_core
def test_errors_caught_in_harn_do_not_raise():
    out: list[str] = []
    source = 'pipeline default() {\n  try {\n    throw "x"\n  } catch (e) {\n    println("caught " + e)\n  }\n}\n'
    harnvm.run(source, output=out.append)
    assert "".join(out) == "caught x\n"


# ---------------------------------------------------------------------------
# Limits

RECURSE_FOREVER = """\
fn down(n) {
  let r = down(n + 1)
  return r
}

pipeline default() {
  down(0)
}
"""


@needs_core
def test_stack_overflow_at_default_max_frames():
    with pytest.raises(HarnStackOverflowError) as info:
        harnvm.run(RECURSE_FOREVER)
    assert "Stack overflow: too many nested calls" in info.value.message
    assert isinstance(info.value, RecursionError)
    assert info.value.kind == "stack_overflow"


@needs_core
def test_max_frames_is_configurable():
    depth_source = "fn depth(n) {\n  if n == 0 {\n    return 0\n  }\n  let r = depth(n - 1)\n  return r + 1\n}\n\npipeline default() {\n  return depth(DEPTH)\n}\n"
    assert harnvm.run(depth_source.replace("DEPTH", "100"), max_frames=200) == 100
    with pytest.raises(HarnStackOverflowError):
        harnvm.run(depth_source.replace("DEPTH", "100"), max_frames=50)


@needs_core
def test_tail_calls_do_not_grow_the_stack():
    source = "fn count_down(n, acc) {\n  if n == 0 {\n    return acc\n  }\n  return count_down(n - 1, acc + 1)\n}\n\npipeline default() {\n  return count_down(100000, 0)\n}\n"
    assert harnvm.run(source) == 100000


@needs_core
def test_very_deep_recursion_works_or_fails_cleanly():
    # In a subprocess: if the VM recursed on the native stack, this would
    # crash the interpreter, and the test must report that rather than die.
    script = textwrap.dedent(
        """
        import harnvm
        src = '''
        fn depth(n) {
          if n == 0 {
            return 0
          }
          let r = depth(n - 1)
          return r + 1
        }

        pipeline default() {
          return depth(100000)
        }
        '''
        try:
            print("value", harnvm.run(src, max_frames=1_000_000))
        except harnvm.HarnInternalError:
            raise  # a caught Rust panic is a bug, not a clean failure
        except harnvm.HarnError as e:
            print("error", type(e).__name__, e.message)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=240, stdin=subprocess.DEVNULL
    )
    assert proc.returncode == 0, f"interpreter died ({proc.returncode}): {proc.stderr[-2000:]}"
    assert proc.stdout.startswith(("value 100000", "error ")), proc.stdout


@needs_core
def test_time_limit_stops_an_endless_loop():
    # The loop never ends by itself: only the limit can stop it (a limit that
    # never fired would hang, which pytest-timeout turns into a failure).
    vm = harnvm.Vm(time_limit=0.5)
    with pytest.raises(HarnTimeoutError) as info:
        vm.run("pipeline default() {\n  var i = 0\n  while true {\n    i = i + 1\n  }\n}\n")
    assert info.value.message == "Resource limit exceeded: time limit of 500 ms exceeded"
    assert isinstance(info.value, TimeoutError)
    assert isinstance(info.value, HarnLimitError)
    # The Vm is still usable afterwards.
    assert vm.run("pipeline default() {\n  return 1\n}\n") == 1


@needs_core
def test_time_limit_cannot_be_caught_by_harn():
    out: list[str] = []
    source = (
        "pipeline default() {\n  while true {\n    try {\n      while true {\n      }\n"
        '    } catch (e) {\n      println("caught")\n    }\n  }\n}\n'
    )
    with pytest.raises(HarnTimeoutError):
        harnvm.run(source, time_limit=0.5, output=out.append)
    assert out == []


@needs_core
def test_time_limit_covers_recursion_heavy_code():
    source = "fn fib(n) {\n  if n < 2 {\n    return n\n  }\n  return fib(n - 1) + fib(n - 2)\n}\n\npipeline default() {\n  return fib(60)\n}\n"
    with pytest.raises(HarnTimeoutError):
        harnvm.run(source, time_limit=0.5)
