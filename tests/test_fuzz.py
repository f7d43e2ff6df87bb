"""Malformed programs never crash the process: only HarnError subclasses come out.

Random text and random mutations of small valid programs go through
``compile`` and (when they compile) ``Vm.run`` under tight limits. The oracle
(``fuzz_oracle.run_fuzz_case``) accepts any ``HarnError`` except
``HarnInternalError``, the panic guard's exception: a caught Rust panic is a
bug, so it fails the case. A crash (segfault, abort, native stack overflow)
kills the test run, which fails it. Pathological nesting runs in a
subprocess so such a crash is reported as a normal test failure.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from hypothesis import Phase, example, given, settings
from hypothesis import strategies as st

import harnvm
from harnvm.internals import panic_for_test

from conftest import EXAMPLES
from fuzz_oracle import check_outcome, run_fuzz_case

SEEDS = [
    'pipeline default() {\n  println("hi")\n}\n',
    "fn fib(n) {\n  if n < 2 {\n    return n\n  }\n  return fib(n - 1) + fib(n - 2)\n}\n\npipeline default() {\n  println(fib(10))\n}\n",
    "pipeline default() {\n  var xs = []\n  for i in 0 to 5 {\n    xs = xs + [i * i]\n  }\n  log(xs)\n}\n",
    'pipeline default() {\n  let d = {a: 1, b: "two"}\n  match d {\n    {a: 1, b: x} -> { println(x) }\n    _ -> { println("none") }\n  }\n}\n',
    'pipeline default() {\n  try {\n    throw "boom"\n  } catch (e) {\n    println("caught ${e}")\n  } finally {\n    println("done")\n  }\n}\n',
    "struct P {\n  x: int\n}\n\nenum E {\n  A(v)\n  B\n}\n\npipeline default() {\n  let p = P({x: 1})\n  let e = E.A(p.x)\n  println(e)\n}\n",
    'let f = { a, b = 2 -> a + b }\nprintln(f(1))\nlet s = """\n  text ${f(2)}\n  """\nprintln(s)\n',
    "pipeline default() {\n  var i = 0\n  while i < 3 {\n    i += 1\n    if i == 2 {\n      continue\n    }\n  }\n  return i\n}\n",
]
SEEDS += [p.read_text(encoding="utf-8") for p in sorted(EXAMPLES.glob("*.harn"))]

TOKENS = [
    "pipeline", "default", "fn", "let", "var", "if", "else", "for", "in", "while", "match", "return",
    "try", "catch", "finally", "throw", "struct", "enum", "impl", "import", "spawn", "parallel",
    "defer", "yield", "break", "continue", "to", "exclusive", "nil", "true", "false", "gen",
    "(", ")", "{", "}", "[", "]", ",", ":", ";", ".", "?.", "?", "->", "=", "==", "+", "-", "*",
    "/", "%", "**", "|>", "??", "&&", "||", "!", "<", ">", "...", "\n", " ", "x", "f", "0", "1.5",
    "9223372036854775807", "99999999999999999999", "5s", "10ms", '"s"', '"${x}"', '"""', "r\"raw\"",
    "//", "/*", "*/", "#", "`", "\\", "@attr", "println(1)", "x()", "x[0]", "x.y",
]


@st.composite
def mutated_program(draw: st.DrawFn) -> str:
    source = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        n = len(source)
        i = draw(st.integers(min_value=0, max_value=n))
        j = draw(st.integers(min_value=i, max_value=min(n, i + 12)))
        op = draw(st.sampled_from(["delete", "insert", "duplicate", "replace", "swap"]))
        if op == "delete":
            source = source[:i] + source[j:]
        elif op == "insert":
            source = source[:i] + draw(st.sampled_from(TOKENS)) + source[i:]
        elif op == "duplicate":
            source = source[:j] + source[i:j] + source[j:]
        elif op == "replace":
            source = source[:i] + draw(st.text(max_size=3)) + source[j:]
        elif n > 1:
            k = draw(st.integers(min_value=0, max_value=n - 1))
            chars = list(source)
            chars[i % n], chars[k] = chars[k], chars[i % n]
            source = "".join(chars)
    return source


@given(st.text(max_size=300))
@example("")
@example("\x00")
@example("\ufeffpipeline default() {}")
@example("#!/usr/bin/env harn\n")
@example('"${')
@example('"${}"')
@example("/* /* */")
@example("1 / 0")
def test_random_text(source):
    run_fuzz_case(source)


@given(st.lists(st.sampled_from(TOKENS), max_size=60).map(" ".join))
def test_token_soup(source):
    run_fuzz_case(source)


@given(mutated_program())
def test_mutated_programs(source):
    run_fuzz_case(source)


@pytest.mark.parametrize("seed", range(len(SEEDS)))
def test_seeds_never_crash(seed):
    run_fuzz_case(SEEDS[seed])


NESTING_CASES = {
    "open_parens": '"(" * 1_000_000',
    "open_brackets": '"let x = " + "[" * 200_000',
    "balanced_brackets": '"let x = " + "[" * 100_000 + "]" * 100_000',
    "balanced_parens_in_pipeline": '"pipeline default() {\\n  return " + "(" * 100_000 + "1" + ")" * 100_000 + "\\n}\\n"',
    "nested_blocks": '"pipeline default() {\\n" + "if true {\\n" * 50_000 + "}\\n" * 50_000 + "}\\n"',
    "long_binary_chain": '"pipeline default() {\\n  return " + " + ".join(["1"] * 200_000) + "\\n}\\n"',
    "unary_chain": '"pipeline default() {\\n  return " + "-" * 200_000 + "1\\n}\\n"',
}


@pytest.mark.parametrize("name", sorted(NESTING_CASES))
def test_pathological_nesting_does_not_crash(name):
    script = textwrap.dedent(
        f"""
        import harnvm
        source = {NESTING_CASES[name]}
        try:
            harnvm.run(source, output=lambda t: None, time_limit=20)
            print("ok")
        except harnvm.HarnInternalError:
            raise  # a caught Rust panic is a bug: fail through the exit status
        except harnvm.HarnError as e:
            print("error", type(e).__name__)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=240, stdin=subprocess.DEVNULL
    )
    assert proc.returncode == 0, f"interpreter died ({proc.returncode}): {proc.stderr[-2000:]}"
    assert proc.stdout.startswith(("ok", "error Harn")), proc.stdout + proc.stderr[-2000:]


# ---------------------------------------------------------------------------
# The oracle itself: Harn errors are acceptable outcomes, a caught panic is not


def test_oracle_accepts_values_and_harn_errors():
    assert check_outcome(lambda: 5) == (5, None)
    assert run_fuzz_case("pipeline default() {\n  return 1\n}\n") is None
    assert isinstance(run_fuzz_case("pipeline default() {"), harnvm.HarnSyntaxError)
    assert isinstance(run_fuzz_case('pipeline default() {\n  throw "x"\n}\n'), harnvm.HarnRuntimeError)
    assert isinstance(run_fuzz_case("pipeline default() {\n  while true {\n  }\n}\n"), harnvm.HarnTimeoutError)


def test_oracle_lets_non_harn_exceptions_through():
    def broken(_source: str) -> None:
        raise ValueError("not a Harn error")

    with pytest.raises(ValueError, match="not a Harn error"):
        run_fuzz_case("x", runner=broken)


def test_oracle_fails_on_an_injected_panic():
    with pytest.raises(AssertionError, match="internal error: injected panic") as info:
        run_fuzz_case(SEEDS[0], runner=lambda _source: panic_for_test("injected panic"))
    assert isinstance(info.value.__cause__, harnvm.HarnInternalError)
    assert repr(SEEDS[0]) in str(info.value)


def compile_then_panic_in_the_vm(source: str) -> None:
    """A runner with a simulated VM bug: every program that compiles panics in its Vm."""
    harnvm.compile(source, "fuzz.harn")  # syntax errors stay acceptable outcomes
    vm = harnvm.Vm(output=lambda _text: None, time_limit=0.25, max_frames=128)
    panic_for_test("injected panic", vm=vm)


def test_a_fuzz_run_with_an_injected_panic_fails():
    # The same strategy and oracle as test_mutated_programs; only the runner
    # differs. Hypothesis must report the failure, not pass over it.
    @settings(max_examples=50, database=None, derandomize=True, phases=[Phase.generate, Phase.shrink])
    @given(mutated_program())
    def fuzz(source: str) -> None:
        run_fuzz_case(source, runner=compile_then_panic_in_the_vm)

    with pytest.raises(AssertionError, match="internal error: injected panic") as info:
        fuzz()
    assert isinstance(info.value.__cause__, harnvm.HarnInternalError)
