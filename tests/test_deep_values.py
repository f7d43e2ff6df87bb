"""Deep values and values that share sub-values (issue 14).

* Deep chains of every kind drop, compare and test equal without native
  recursion (each case runs in a subprocess, so a stack overflow is a
  failed test, not a dead test run).
* A value built by `v = [v, v]` sixty times has 61 distinct nodes and 2^60
  paths: hashing, `==` and `set` answer; `to_string`, JSON and conversion
  to Python stop with a limit or conversion error instead of walking every
  path.
* Parsing, compiling, running and converting work on a thread with a
  256 KiB stack.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading

import pytest

import harnvm

pytestmark = pytest.mark.needs_core

MILLION = 1_000_000


def run_isolated(body: str) -> str:
    """Runs Python `body` in a fresh interpreter; returns its stdout. Fails
    the test (with the exit status) if the interpreter dies."""
    script = "import harnvm\n" + textwrap.dedent(body)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=280, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, f"interpreter died or failed ({proc.returncode}): {proc.stderr[-3000:]}"
    return proc.stdout


def harn(source: str, **kwargs: object) -> object:
    return harnvm.run(source, output=lambda _t: None, **kwargs)


# ---------------------------------------------------------------------------
# Dropping deep chains of every kind

DEEP_CHAINS = {
    "ok": "Ok(c)",
    "err": "Err(c)",
    "pair_first": "pair(c, 1)",
    "pair_second": "pair(1, c)",
    "struct_field": "Node {next: c, n: 1}",
    "list_of_pair": "[pair(c, nil)]",
    "enum_variant": "Tree.Leaf(c)",
    "dict": "{next: c}",
    "atomic": "atomic(c)",
}

PRELUDE = """
struct Node {
  next
  n
}
enum Tree {
  Leaf(v)
}
"""


@pytest.mark.parametrize("kind", sorted(DEEP_CHAINS))
def test_dropping_a_million_deep_chain(kind):
    source = PRELUDE + f"""
pipeline default() {{
  var c: any = 0
  for _i in 0 to {MILLION} {{
    c = {DEEP_CHAINS[kind]}
  }}
  c = nil
  return "dropped"
}}
"""
    out = run_isolated(f"print(harnvm.run({source!r}))")
    assert out.strip() == "dropped"


def test_dropping_a_million_deep_closure_chain():
    source = """
pipeline default() {
  var f: any = { -> 0 }
  for _i in 0 to 1000000 {
    let g = f
    f = { -> g }
  }
  f = nil
  return "dropped"
}
"""
    assert run_isolated(f"print(harnvm.run({source!r}))").strip() == "dropped"


# ---------------------------------------------------------------------------
# Comparing and testing deep values for equality


def test_comparing_million_deep_pairs():
    source = """
fn build(leaf) {
  var c: any = leaf
  for _i in 0 to 1000000 {
    c = pair(c, 1)
  }
  return c
}
pipeline default() {
  let a = build(1)
  let b = build(2)
  return [a < b, b < a, a <= build(1), a == build(1), a == b]
}
"""
    assert run_isolated(f"print(harnvm.run({source!r}))").strip() == "[True, False, True, True, False]"


@pytest.mark.parametrize("depth", [255, 256, 257, 300, 5000, MILLION])
def test_equality_of_deep_ok_chains_is_exact(depth):
    """Equal deep values are equal at any depth (no silent false past 256)."""
    source = f"""
fn build(leaf) {{
  var c: any = leaf
  for _i in 0 to {depth} {{
    c = Ok(c)
  }}
  return c
}}
pipeline default() {{
  return [build(1) == build(1), build(1) == build(2), build(1) != build(1), set([build(1), build(1)]).len()]
}}
"""
    assert run_isolated(f"print(harnvm.run({source!r}))").strip() == "[True, False, False, 1]"


def test_deep_json_round_trip_and_refusal():
    """JSON parse/stringify of deep values end cleanly (serde's depth limit
    when parsing, Harn's when stringifying)."""
    ok = harn('pipeline default() { return json_stringify(json_parse("[" * 100 + "]" * 100)).len() }')
    assert ok == 200
    with pytest.raises(harnvm.HarnError):
        harn('pipeline default() { return json_parse("[" * 100000 + "]" * 100000) }')
    with pytest.raises(harnvm.HarnError, match="nested deeper"):
        harn("pipeline default() { var c: any = 0\n for _i in 0 to 100000 { c = [c] }\n return json_stringify(c) }")


# ---------------------------------------------------------------------------
# Shared structure: 2^60 paths, 61 nodes

DAG = """
fn dag(leaf) {
  var v: any = leaf
  for _i in 0 to 60 {
    v = [v, v]
  }
  return v
}
"""


def test_dag_hash_equality_and_set_answer():
    result = harn(
        DAG
        + """
pipeline default() {
  let v = dag(1)
  let w = dag(1)
  let x = dag(2)
  return [hash_value(v) == hash_value(w), v == w, v == x, v != x, len(set([v, w, x])), [v].contains(w)]
}
""",
        time_limit=20.0,
    )
    assert result == [True, True, False, True, 2, True]


@pytest.mark.parametrize("double", ["pair(v, v)", "{a: v, b: v}", "Ok(pair(v, v))"])
def test_dag_of_other_kinds_hash_and_compare(double):
    source = f"""
fn dag(leaf) {{
  var v: any = leaf
  for _i in 0 to 60 {{
    v = {double}
  }}
  return v
}}
pipeline default() {{
  return [hash_value(dag(1)) == hash_value(dag(1)), dag(1) == dag(1), dag(1) == dag(2), len(set([dag(1), dag(1)]))]
}}
"""
    assert harn(source, time_limit=20.0) == [True, True, False, 1]


def test_dag_pairs_order():
    source = """
fn dag(leaf) {
  var v: any = leaf
  for _i in 0 to 60 {
    v = pair(v, v)
  }
  return v
}
pipeline default() {
  return [dag(1) < dag(2), dag(2) < dag(1), dag(1) <= dag(1)]
}
"""
    assert harn(source, time_limit=20.0) == [True, False, True]


@pytest.mark.parametrize("walk", ["to_string(dag(1))", "json_stringify(dag(1))", '"${dag(1)}".len()'])
def test_dag_text_stops_at_a_limit(walk):
    """Text grows with paths: building it stops with a memory-limit error
    (the memory budget, or the text cap) instead of walking 2^60 paths."""
    source = DAG + f"pipeline default() {{ return {walk} }}"
    with pytest.raises(harnvm.HarnMemoryError, match="memory limit|longer than"):
        harn(source, time_limit=60.0)


def test_dag_println_stops_at_the_output_budget():
    chunks: list[str] = []
    with pytest.raises(harnvm.HarnOutputLimitError):
        harnvm.run(DAG + "pipeline default() { println(dag(1)) }", output=chunks.append, time_limit=60.0)
    assert chunks == []


def test_dag_println_is_cut_short_without_an_output_budget():
    chunks: list[str] = []
    harnvm.run(DAG + "pipeline default() { println(dag(1)) }", output=chunks.append, time_limit=60.0, max_output=None)
    text = "".join(chunks)
    assert text.startswith("[[[[") and text.rstrip("\n").endswith("...")
    assert len(text) <= (1 << 28) + 1024


def test_dag_conversion_to_python_is_refused_promptly():
    """The GIL-holding conversion refuses a value whose copy has more than
    2^24 objects before building anything; another thread keeps running."""
    ticks = []
    stop = threading.Event()

    def ticker() -> None:
        while not stop.is_set():
            ticks.append(1)
            stop.wait(0.001)

    t = threading.Thread(target=ticker)
    t.start()
    try:
        with pytest.raises(harnvm.HarnConversionError, match="more than 16777216 Python objects"):
            harn(DAG + "pipeline default() { return dag(1) }", time_limit=20.0)
    finally:
        stop.set()
        t.join()
    # A shared value whose copy is small converts normally.
    small = harn("pipeline default() { var v: any = 1\n for _i in 0 to 10 exclusive { v = [v, v] }\n return v }")
    assert len(small) == 2 and small[0] == small[1]
    flat = small
    for _ in range(10):
        flat = flat[0]
    assert flat == 1


def test_python_dag_converts_into_harn_once_per_node():
    """A Python structure that shares sub-objects converts in time
    proportional to its distinct objects, and the Harn side shares too."""
    x: object = [1]
    for _ in range(60):
        x = [x, x]
    vm = harnvm.Vm(output=lambda _t: None, time_limit=20.0)
    f = vm.run("pipeline default() { return { v -> [hash_value(v) == hash_value(v), v == v, len(set([v, v]))] } }")
    assert vm.call(f, x) == [True, True, 1]
    d: object = {"leaf": 1}
    for _ in range(60):
        d = {"a": d, "b": (d, d)}
    assert vm.call(f, d) == [True, True, 1]


def test_cyclic_python_value_is_refused():
    x: list[object] = []
    x.append(x)
    vm = harnvm.Vm()
    f = vm.run("pipeline default() { return { v -> v } }")
    with pytest.raises(harnvm.HarnConversionError, match="cyclic"):
        vm.call(f, x)


# ---------------------------------------------------------------------------
# Small thread stacks


def on_small_stack(fn):
    """Runs `fn` on a thread with a 256 KiB stack; returns its result or raises its exception."""
    box: dict[str, object] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as e:  # noqa: BLE001 - re-raised on the caller's thread
            box["error"] = e

    old = threading.stack_size(256 * 1024)
    try:
        t = threading.Thread(target=target)
        t.start()
    finally:
        threading.stack_size(old)
    t.join()
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]


SMALL_STACK_CASES = {
    # name: (python code run on the small-stack thread, expected stdout)
    "list_literal_120": (
        "print(harnvm.run('pipeline default() { return ' + '[' * 120 + '1' + ']' * 120 + ' }') == eval('[' * 120 + '1' + ']' * 120))",
        "True",
    ),
    "conversion_to_python_500": (
        "v = harnvm.run('pipeline default() { var c: any = 1\\n for _i in 0 to 500 exclusive { c = [c] }\\n return c }')\n"
        "n = 0\n"
        "while isinstance(v, list):\n    v = v[0]; n += 1\n"
        "print(n, v)",
        "500 1",
    ),
    "conversion_to_python_450_ok_pairs": (
        "v = harnvm.run('pipeline default() { var c: any = 1\\n for _i in 0 to 450 exclusive { c = Ok(pair(c, 2)) }\\n return c }')\n"
        "n = 0\n"
        "while not isinstance(v, int):\n    v = v.fields[0][0]; n += 1\n"
        "print(n, v)",
        "450 1",
    ),
    "conversion_from_python_900": (
        "x = 1\nfor _ in range(900): x = [x]\n"
        "vm = harnvm.Vm()\n"
        "f = vm.run('pipeline default() { return { v -> to_string(v).len() } }')\n"
        "print(vm.call(f, x) > 0)",
        "True",
    ),
    "nested_source_clean_error": (
        "try:\n    harnvm.run('pipeline default() { return ' + '(' * 5000 + '1' + ')' * 5000 + ' }')\n"
        "    print('ran')\nexcept harnvm.HarnSyntaxError:\n    print('syntax error')",
        "syntax error",
    ),
    "nested_source_at_the_limit": (
        "print(harnvm.run('pipeline default() { return ' + '(' * 100 + '1' + ')' * 100 + ' }'))",
        "1",
    ),
    "deep_blocks": (
        "src = 'pipeline default() {\\n var x = 0\\n' + 'if true {\\n' * 100 + 'x = 7\\n' + '}\\n' * 100 + 'return x\\n}'\n"
        "print(harnvm.run(src))",
        "7",
    ),
    "deep_value_walks": (
        "print(harnvm.run('pipeline default() { var c: any = 1\\n for _i in 0 to 100000 { c = Ok(c) }\\n "
        "return [c == c, to_string(c).len() > 0, hash_value(c) == hash_value(c)] }'))",
        "[True, True, True]",
    ),
}


@pytest.mark.parametrize("name", sorted(SMALL_STACK_CASES))
def test_small_thread_stack(name):
    code, expected = SMALL_STACK_CASES[name]
    body = f"""
import threading
def work():
    try:
{textwrap.indent(code, '        ')}
    except BaseException as e:
        print("raised", type(e).__name__, e)
threading.stack_size(256 * 1024)
t = threading.Thread(target=work)
t.start()
t.join()
"""
    assert run_isolated(body).strip() == expected


def test_small_stack_helper_in_process():
    """The same conversion in this process, on a small-stack thread."""
    value = on_small_stack(lambda: harn("pipeline default() { var c: any = 1\n for _i in 0 to 300 { c = [c, c] }\n return len(c) }"))
    assert value == 2


def test_nested_set_chains_shared_by_a_dag_compare_once():
    """`==` and `set()` over a DAG whose leaves are 20k-deep chains of
    one-element sets: each shared pair is compared once (before, every set
    level started a fresh walk with no memory, so the 2^40 paths were all
    walked; a fuzz program took 23 s for 2^8 of them)."""
    source = """
enum Tree {
  Two(a, b)
}
fn build(leaf) {
  var chain: any = leaf
  for _i in 0 to 20000 {
    chain = set([chain])
  }
  var v: any = chain
  for _i in 0 to 40 {
    v = Tree.Two(v, v)
  }
  return v
}
pipeline default() {
  let a = build(0)
  let b = build(0)
  let c = build(1)
  return [a == b, a == c, len(set([a, c, b]))]
}
"""
    assert harn(source, time_limit=60.0) == [True, False, 2]
