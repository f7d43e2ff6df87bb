"""Inline caches (rust/harnvm-core/src/ic.rs) through ``harnvm.internals``.

Property tests: the flat offset → slot table equals its BTreeMap control;
adaptive-binary and direct-call sites end in the state a small Python model
of the state machine predicts; generated programs whose operand types change
mid-run print the same with caches on and off.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import harnvm
from harnvm import internals
from harnvm.internals import (
    AdaptiveBinaryCacheEntry,
    Chunk,
    DirectCallCacheEntry,
    MethodCacheEntry,
    Op,
    PropertyCacheEntry,
)
from conftest import run_cli
from fuzz_oracle import check_outcome

needs_core = pytest.mark.needs_core

CACHEABLE = {
    "ADD", "SUB", "MUL", "DIV", "MOD", "EQ", "NE", "LT", "GT", "LE", "GE",
    "GET_PROP", "GET_PROP_OPT", "GET_LOCAL_PROP", "CALL", "CALL_BUILTIN", "CALL_METHOD", "CALL_METHOD_OPT", "CALL_METHOD_SPREAD",
    # superinstructions: an adaptive op with a constant operand and/or fused with its conditional jump
    *(f"{op}_CONST" for op in ("ADD", "SUB", "MUL", "DIV", "MOD", "EQ", "NE", "LT", "GT", "LE", "GE")),
    *(f"{op}{k}_JUMP_IF_FALSE" for op in ("EQ", "NE", "LT", "GT", "LE", "GE") for k in ("", "_CONST", "_LOCAL_CONST")),
    # ... with a plain local operand read in place
    "ADD_LOCAL", "SUB_LOCAL", "MUL_LOCAL", "ADD_CONST_TO_LOCAL", "SUB_CONST_FROM_LOCAL",
}  # fmt: skip


def _emitters() -> list[tuple[Op, str]]:
    """(op, emitter) pairs a bare chunk accepts, found by trying each."""
    pairs = []
    for op in Op:
        for how in ("emit", "emit_u8", "emit_u16"):
            try:
                getattr(Chunk(), how)(*((op, 1) if how == "emit" else (op, 1, 1)))
            except ValueError:
                continue
            pairs.append((op, how))
    return pairs


EMITTERS = _emitters()


def test_op_enum_mirrors_the_rust_table() -> None:
    assert Op.ADD.name == "ADD" and Op["GET_PROP"] == Op.GET_PROP
    assert [m.value for m in Op] == list(range(len(Op)))
    assert {op.name for op, _ in EMITTERS} >= {"ADD", "GET_PROP", "CALL", "POP"}


def test_emit_rejects_the_wrong_operand_shape() -> None:
    chunk = Chunk()
    with pytest.raises(ValueError, match="GET_PROP"):
        chunk.emit(Op.GET_PROP, 1)
    with pytest.raises(ValueError, match="no opcode"):
        chunk.emit(250, 1)
    assert chunk.code_len == 0


@given(st.lists(st.sampled_from(EMITTERS) | st.tuples(st.just(None), st.just("method")), max_size=60))
def test_every_cacheable_op_carries_its_slot_as_operand(ops: list[tuple[Op | None, str]]) -> None:
    chunk = Chunk()
    sites = []
    for op, how in ops:
        if how == "method":
            at = chunk.emit_method_call(3, 1, 1)
            sites.append(at)
            continue
        assert op is not None
        at = chunk.emit(op, 1) if how == "emit" else getattr(chunk, how)(op, 1, 1)
        if op.name in CACHEABLE:
            sites.append(at)
    # The slots live in the instructions' operands; walking the code finds every site.
    assert chunk.inline_cache_sites() == [(at, i) for i, at in enumerate(sites)]
    assert all(chunk.inline_cache_slot(offset) is None for offset in range(chunk.code_len, chunk.code_len + 4))
    # Slots are numbered in emit order, one per cacheable op and nowhere else.
    assert [chunk.inline_cache_slot(at) for at in sites] == list(range(len(sites)))
    assert chunk.inline_cache_slot_count() == len(sites)
    assert sum(chunk.inline_cache_slot(o) is not None for o in range(chunk.code_len)) == len(sites)


def test_cache_ids_are_unique_and_sets_are_per_vm() -> None:
    a, b = Chunk(), Chunk()
    assert a.cache_id != b.cache_id
    a.emit(Op.ADD, 1)
    vm, other = harnvm.Vm(), harnvm.Vm()
    s = internals.cache_set_index_for_chunk(vm, a)
    assert internals.cache_set_index_for_chunk(vm, a) == s
    assert internals.cache_set_index_for_chunk(vm, b) != s
    entry = AdaptiveBinaryCacheEntry("ADD", "specialized", "int", hits=5)
    internals.set_inline_cache_entry(vm, s, 0, entry)
    assert internals.peek_adaptive_binary_cache(vm, s, 0) == entry
    assert internals.peek_property_cache(vm, s, 0) is None
    t = internals.cache_set_index_for_chunk(other, a)
    assert internals.peek_adaptive_binary_cache(other, t, 0) is None  # another Vm: its own, empty set
    with pytest.raises(IndexError):
        internals.peek_adaptive_binary_cache(vm, s, 1)
    # A chunk that gains slots keeps its set (and entries) and grows it.
    a.emit_u16(Op.GET_PROP, 0, 2)
    assert internals.cache_set_index_for_chunk(vm, a) == s
    assert internals.peek_adaptive_binary_cache(vm, s, 0) == entry
    prop = PropertyCacheEntry(0, "list_count")
    internals.set_inline_cache_entry(vm, s, 1, prop)
    assert internals.peek_property_cache(vm, s, 1) == prop
    method = MethodCacheEntry(3, 1, "list_contains", hits=2)
    internals.set_inline_cache_entry(vm, s, 1, method)
    assert (internals.peek_method_cache(vm, s, 1), internals.peek_property_cache(vm, s, 1)) == (method, None)
    internals.set_inline_cache_entry(vm, s, 1, None)
    assert internals.peek_method_cache(vm, s, 1) is None


def test_entry_constructors_validate() -> None:
    with pytest.raises(ValueError):
        AdaptiveBinaryCacheEntry("POW", "warmup", "int")
    with pytest.raises(ValueError):
        AdaptiveBinaryCacheEntry("ADD", "warmup", "int", hits=1, misses=1)
    with pytest.raises(ValueError):
        PropertyCacheEntry(0, "struct_field")
    with pytest.raises(ValueError):
        MethodCacheEntry(0, 0, "list_contains")
    with pytest.raises(TypeError):
        DirectCallCacheEntry("warmup", 1, "not a function")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        internals.set_inline_cache_entry(harnvm.Vm(), 0, 0, "x")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------
# State machines against Python models

THRESHOLD = 3
State = tuple[str, str, int, int] | None  # (state, shape, hits, misses)


def model_step(state: State, shape: str | None) -> State:
    """harn-vm's adaptive-binary / direct-call transition table."""
    if shape is None:
        return state  # no shape (mixed operands): leave the state alone
    if state is None:
        return ("warmup", shape, 1, 0)
    kind, old, hits, misses = state
    if kind == "warmup":
        if old == shape:
            hits += 1
            return ("specialized", shape, hits, 0) if hits >= THRESHOLD else ("warmup", shape, hits, 0)
        return ("warmup", shape, 1, 0)
    if old == shape:
        return ("specialized", shape, hits + 1, misses)
    if misses == 0:
        return ("specialized", shape, 1, 1)  # the one swap
    return ("warmup", shape, 1, 0)


BINARY_OPS = {"+": "ADD", "-": "SUB", "*": "MUL", "/": "DIV", "%": "MOD", "==": "EQ", "!=": "NE", "<": "LT", ">": "GT", "<=": "LE", ">=": "GE"}  # fmt: skip
EQUALITY = {"==", "!="}
# operand kind → (a, b, shape, ops it is valid for (None: all))
OPERANDS: dict[str, tuple[str, str, str | None, set[str] | None]] = {
    "int": ("7", "3", "int", None),
    "float": ("7.5", "2.5", "float", None),
    "mixed": ("7", "2.5", None, None),
    "mixed_rev": ("7.5", "2", None, None),
    "int_overflow": ("9223372036854775807", "2", "int", {"+", "*", "-", "==", "<", "/", "%"}),
    "bool": ("true", "false", "bool", EQUALITY),
    "string": ('"ab"', '"b"', "string", EQUALITY | {"+", "<", ">", "<=", ">="}),
    "string_int": ('"ab"', "2", None, EQUALITY | {"*"}),
    "nil": ("nil", "nil", None, EQUALITY),
    "list": ("[1]", "[2]", None, EQUALITY | {"+"}),
}


def shape_of(op: str, kind: str) -> str | None:
    shape = OPERANDS[kind][2]
    if shape in ("bool", "string") and op not in EQUALITY:
        return None
    return shape


@st.composite
def binary_runs(draw: Any) -> tuple[str, list[str]]:
    op = draw(st.sampled_from(sorted(BINARY_OPS)))
    kinds = [k for k, (_, _, _, ops) in OPERANDS.items() if ops is None or op in ops]
    return op, draw(st.lists(st.sampled_from(kinds), min_size=1, max_size=14))


def site(vm: harnvm.Vm, function: str, op: str) -> dict[str, Any]:
    rows = [r for r in internals.inline_cache_report(vm) if r["function"] == function and r["op"] == op]
    assert len(rows) == 1, rows
    return rows[0]


# Ops whose right operand, when a plain local, is read in place by a fused form.
LOCAL_OPERAND_FORMS = {"+": "ADD_LOCAL", "-": "SUB_LOCAL", "*": "MUL_LOCAL"}


@needs_core
@given(binary_runs(), st.booleans())
def test_adaptive_binary_states_follow_the_model(run: tuple[str, list[str]], rhs_is_local: bool) -> None:
    # `a OP b` compiles to the fused local-operand form where one exists;
    # `a OP id(b)` to the plain stack form. Both run the same state machine.
    op, kinds = run
    calls = "\n".join(f"f({OPERANDS[k][0]}, {OPERANDS[k][1]})" for k in kinds)
    vm = harnvm.Vm(output=lambda _: None)
    rhs = "b" if rhs_is_local else "id(b)"
    vm.run(f"fn id(x) {{ return x }}\nfn f(a, b) {{ return a {op} {rhs} }}\n{calls}\n")
    expected: State = None
    for k in kinds:
        expected = model_step(expected, shape_of(op, k))
    site_op = LOCAL_OPERAND_FORMS.get(op, BINARY_OPS[op]) if rhs_is_local else BINARY_OPS[op]
    row = site(vm, "f", site_op)
    entry = internals.peek_adaptive_binary_cache(vm, row["set"], row["slot"])
    got = None if entry is None else (entry.state, entry.shape, entry.hits, entry.misses)
    assert got == expected
    if entry is not None:
        assert entry.op == BINARY_OPS[op]
        assert (row["hits"], row["misses"]) == (entry.hits, entry.misses)


def test_adaptive_binary_documented_sequence() -> None:
    # harn-vm's deoptimizes_mixed_binary_shapes: 1, 2, 3, 4.0, 5.0.
    vm = harnvm.Vm()
    vm.run("fn f(a, b) { return a + b }\nf(1, 1)\nf(2, 2)\nf(3, 3)\nf(4, 4.0)\nf(5.0, 5.0)\n")
    row = site(vm, "f", "ADD_LOCAL")
    assert internals.peek_adaptive_binary_cache(vm, row["set"], row["slot"]) == AdaptiveBinaryCacheEntry(
        "ADD", "specialized", "float", hits=1, misses=1
    )


CALLEES = ["inc", "dec", "twice", "abs", "fresh"]


@needs_core
@given(st.lists(st.sampled_from(CALLEES), min_size=1, max_size=16))
def test_direct_call_states_follow_the_model_with_rebinding(names: list[str]) -> None:
    # One call site, `op(acc)`, whose binding changes as the loop walks the
    # list; each `fresh` element is a distinct closure (a new identity).
    elems = ", ".join("{ x -> x }" if n == "fresh" else n for n in names)
    src = (
        "fn inc(x) { return x + 1 }\nfn dec(x) { return x - 1 }\nfn twice(x) { return x * 2 }\n"
        f"let fs = [{elems}]\nvar acc = 1\nvar op = inc\nfor g in fs {{\n  op = g\n"
        "  acc = op(acc)\n}\nprintln(acc)\n"
    )
    vm = harnvm.Vm(output=lambda _: None)
    vm.run(src)
    expected: State = None
    for i, n in enumerate(names):
        identity = f"fresh{i}" if n == "fresh" else n
        expected = model_step(expected, identity)
    rows = [r for r in internals.inline_cache_report(vm) if r["op"] == "CALL" and r["line"] == 9]
    assert len(rows) == 1, internals.inline_cache_report(vm)
    entry = internals.peek_direct_call_cache(vm, rows[0]["set"], rows[0]["slot"])
    assert entry is not None and expected is not None
    assert (entry.state, entry.hits, entry.misses, entry.argc) == (expected[0], expected[2], expected[3], 1)
    if names[-1] != "fresh":
        assert entry.target.name == names[-1]
    # The cached target is the last callee: setting it back keeps the entry.
    internals.set_inline_cache_entry(vm, rows[0]["set"], rows[0]["slot"], entry)
    assert internals.peek_direct_call_cache(vm, rows[0]["set"], rows[0]["slot"]) == entry


def test_direct_call_entry_round_trips_a_function() -> None:
    vm = harnvm.Vm()
    api = vm.run("fn inc(x) { return x + 1 }\npipeline default() { return {inc: inc} }")
    chunk = Chunk()
    chunk.emit_u8(Op.CALL, 1, 1)
    s = internals.cache_set_index_for_chunk(vm, chunk)
    entry = DirectCallCacheEntry("specialized", 1, api["inc"], hits=4, misses=1)
    internals.set_inline_cache_entry(vm, s, 0, entry)
    got = internals.peek_direct_call_cache(vm, s, 0)
    assert got == entry and got is not None and got.target.name == "inc"
    with pytest.raises(harnvm.HarnConversionError):
        internals.set_inline_cache_entry(harnvm.Vm(), internals.cache_set_index_for_chunk(harnvm.Vm(), chunk), 0, entry)


# ---------------------------------------------------------------------------
# Results never depend on caches

VALUES = [
    "0", "1", "-7", "9223372036854775807", "2.5", "-0.0", "0.1", '"ab"', '"héllo"', '""', "true", "false", "nil",
    "[1, 2]", "[]", "{x: 1, y: 2}", "{}", '{_namespace: "ns", count: { -> 99 }}', "P({x: 3, y: 4})",
    "Q({y: 5, x: 6})", "1 to 4", "0 to 3 exclusive", 'set(1, "a")', "Shape.Circle(2)", "Shape.Empty",
]  # fmt: skip
TEMPLATES = [
    "a + b", "a - b", "a * b", "a / b", "a % b", "a == b", "a != b", "a < b", "a <= b", "a > b", "a >= b",
    "a.x", "a.count", "a.empty", "a.first", "a.last", "a.variant", "a.fields", "a?.count", "a?.y",
    "a.count()", "a.len()", "a.empty()", "a.first()", "a.last()", "a.contains(b)", "a.includes(b)", "a.has(\"x\")",
    "a?.count()", "a.count(...[])", "let g = pick(i)\n    g(a, b)", "len(a)", "var t = a\n    t += b\n    t",
]  # fmt: skip

PRELUDE = """struct P { x, y }
struct Q { y, x }
enum Shape { Circle(r), Empty }
fn add(a, b) { return a + b }
fn first(a, b) { return a }
fn pick(i) {
  if i % 3 == 0 { return add }
  if i % 3 == 1 { return first }
  return { a, b -> [a, b] }
}
"""


@st.composite
def programs(draw: Any) -> str:
    values = draw(st.lists(st.sampled_from(VALUES), min_size=1, max_size=10))
    templates = draw(st.lists(st.sampled_from(TEMPLATES), min_size=1, max_size=8, unique=True))
    pairs = ", ".join(f"[{a}, {b}]" for a, b in zip(values, values[1:] + values[:1]))
    body = "\n".join(f"  println(try {{ {t} }})" for t in templates)
    return (
        f"{PRELUDE}let pairs = [{pairs}]\nvar i = 0\nfor pr in pairs {{\n  let a = pr[0]\n  let b = pr[1]\n"
        f"{body}\n  i = i + 1\n}}\n"
    )


def run_capture(source: str, inline_caches: bool) -> str:
    """Output and result (or Harn error) of one run; fails on HarnInternalError,
    so a panic in both modes does not count as "the same"."""
    out: list[str] = []
    vm = harnvm.Vm(output=out.append, inline_caches=inline_caches, time_limit=20.0)
    result, error = check_outcome(lambda: vm.run(source), context=f"inline_caches={inline_caches}")
    if error is not None:
        result = f"error: {error}"
    return "".join(out) + f"=> {result!r}"


@needs_core
@given(programs())
def test_generated_programs_print_the_same_with_caches_on_and_off(source: str) -> None:
    assert run_capture(source, True) == run_capture(source, False)


@needs_core
def test_every_template_compiles_and_runs() -> None:
    # Guards the generator itself: each template on each value runs (errors are caught by `try`).
    pairs = ", ".join(f"[{v}, {v}]" for v in VALUES)
    body = "\n".join(f"  println(try {{ {t} }})" for t in TEMPLATES)
    src = f"{PRELUDE}let pairs = [{pairs}]\nvar i = 0\nfor pr in pairs {{\n  let a = pr[0]\n  let b = pr[1]\n{body}\n  i = i + 1\n}}\n"
    on = run_capture(src, True)
    assert on == run_capture(src, False)
    assert "error:" not in on.rsplit("=>", 1)[1]
    assert on.count("\n") == len(VALUES) * len(TEMPLATES)


# ---------------------------------------------------------------------------
# Reports and the CLI


@needs_core
def test_inline_cache_report_lists_every_site() -> None:
    vm = harnvm.Vm(output=lambda _: None)
    program = harnvm.compile(
        "fn area(p) { return p.w * p.h }\nvar t = 0\nfor i in 0 to 5 exclusive { t = t + area({w: i, h: 2}) }\nprintln(t)\n",
        "area.harn",
    )
    vm.run(program)
    rows = internals.inline_cache_report(vm)
    keys = {"function", "line", "offset", "op", "set", "slot", "family", "state", "hits", "misses"}
    assert rows and all(set(r) == keys for r in rows)
    props = [r for r in rows if r["function"] == "area" and r["op"] == "GET_LOCAL_PROP"]
    assert [(r["state"], r["hits"]) for r in props] == [("property(dict_field)", 4)] * 2
    mul = site(vm, "area", "MUL")
    assert (mul["state"], mul["hits"], mul["misses"]) == ("specialized(int)", 5, 0)
    listing = internals.inline_cache_disassembly(vm, program)
    assert "; ic0: property(dict_field) hits=4 misses=0" in listing
    assert internals.inline_cache_report(harnvm.Vm(inline_caches=False)) == []


@needs_core
def test_dis_ic_prints_site_states(tmp_path: Any) -> None:
    path = tmp_path / "loop.harn"
    path.write_text('var t = 0\nfor i in 0 to 4 exclusive { t = t + i }\nprintln(t)\n', encoding="utf-8")
    proc = run_cli("dis", "--ic", str(path))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("6\n")
    assert "ADD" in proc.stdout and "; ic" in proc.stdout and "specialized(int) hits=4 misses=0" in proc.stdout
    plain = run_cli("dis", str(path))
    assert "; ic" not in plain.stdout and not plain.stdout.startswith("6")


def test_bench_fixtures_run() -> None:
    # The timing fixtures behind perf/bench_inline_caches.py (no timing asserted).
    for name in harnvm._native.bench_fixtures():
        assert harnvm._native.bench(name, 3, inline_caches=False) >= 0
    with pytest.raises(ValueError, match="unknown fixture"):
        harnvm._native.bench("nope", 1)
