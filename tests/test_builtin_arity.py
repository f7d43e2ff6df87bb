"""Builtin arity checks against the table generated from harn 0.9.11.

rust/harnvm-core/src/builtins/arity_table.rs comes from
`python -m tests.oracle_golden.probe_arity`. These tests need no oracle:
they check that the table covers every registered builtin (the Rust unit
test in builtins/arity.rs checks the same against the live registry) and
that harnvm raises 0.9.11's message for one count too few and one too many
of every checked builtin, and runs permissive ones with any count.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest

import harnvm
from tests.oracle_golden.probe_arity import SUITE_WINS, TABLE, registered_names

ROW_RE = re.compile(r'^    \("([^"]+)", (?:\((\d+), (\d+|VARIADIC)\)|(PERMISSIVE))\),')


def table_rows() -> dict[str, tuple[int, int | None] | None]:
    """name -> (min, max or None for no limit), or None for permissive."""
    rows: dict[str, tuple[int, int | None] | None] = {}
    for line in TABLE.read_text().splitlines():
        m = ROW_RE.match(line)
        if not m:
            continue
        name, lo, hi, permissive = m.groups()
        rows[name] = None if permissive else (int(lo), None if hi == "VARIADIC" else int(hi))
    return rows


ROWS = table_rows()


def expects(lo: int, hi: int | None) -> str:
    noun = lambda n: "argument" if n == 1 else "arguments"  # noqa: E731
    if hi is None:
        return f"at least {lo} {noun(lo)}"
    if lo == hi:
        return f"{lo} {noun(lo)}"
    return f"{lo}..={hi} arguments"


def run_lines(src: str) -> list[str]:
    chunks: list[str] = []
    vm = harnvm.Vm(output=chunks.append, time_limit=60.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vm.run(src, filename="arity_probe.harn")
    return "".join(chunks).splitlines()


def test_table_covers_every_registered_builtin() -> None:
    names = registered_names()
    assert len(names) > 300
    assert sorted(ROWS) == names, "rerun `python -m tests.oracle_golden.probe_arity`"
    for name in SUITE_WINS:
        assert ROWS[name] is None, f"{name} is a suite-wins builtin but is checked"


def test_table_has_checked_optional_and_variadic_entries() -> None:
    checked = [r for r in ROWS.values() if r is not None]
    assert len(checked) > 250
    assert ROWS["len"] == (1, 1)
    assert ROWS["uuid"] == (0, 0)
    assert ROWS["split"] == (1, 2)
    assert ROWS["format"] == (1, None)
    assert ROWS["to_string"] is None


def test_every_checked_builtin_rejects_too_few_and_too_many() -> None:
    # A count outside the range fails before the builtin runs, so the nil
    # arguments never reach it.
    calls: list[tuple[str, str]] = []
    for name, rng in sorted(ROWS.items()):
        if rng is None:
            continue
        lo, hi = rng
        counts = ([lo - 1] if lo > 0 else []) + ([hi + 1] if hi is not None else [])
        for n in counts:
            want = f"Result.Err(Arity mismatch: '{name}' expects {expects(lo, hi)}, got {n})"
            calls.append((f"try {{ {name}(...[{', '.join(['nil'] * n)}]) }}", want))
    got = run_lines("".join(f"__io_println(to_string({call}))\n" for call, _ in calls))
    assert len(got) == len(calls)
    mismatched = [(call, g, want) for (call, want), g in zip(calls, got) if g != want]
    assert not mismatched, mismatched[:10]


@pytest.mark.parametrize(
    ("call", "want"),
    [
        ("to_string(1, 2, 3)", "1"),
        ("type_of(1, 2)", "int"),
        ("max(1, 5, 3)", "5"),
        ("len([1, 2])", "2"),
        ("substring(\"abc\", 1)", "bc"),
        ("format(\"{}-{}\", 1, 2)", "1-2"),
    ],
)
def test_accepted_counts_still_run(call: str, want: str) -> None:
    assert run_lines(f"__io_println(to_string({call}))\n") == [want]


def test_builtin_values_are_checked_when_called_back() -> None:
    got = run_lines('__io_println(to_string(try { [1, 2].map(uuid) }))\n__io_println(to_string([[1], [2, 3]].map(len)))\n')
    assert got == ["Result.Err(Arity mismatch: 'uuid' expects 0 arguments, got 1)", "[1, 2]"]


def test_checker_warns_as_0_9_11_for_literal_counts() -> None:
    src = "let xs = [1]\nlen([1], 2)\nuuid(1)\nformat()\nlen(...xs)\nlen([1])\nto_string(1, 2)\n"
    diags = harnvm.check(src, filename="w.harn")
    assert [(d.severity, d.code, d.message, d.line) for d in diags] == [
        ("warning", "HARN-STD-003", "Builtin function 'len' expects 1 argument, got 2", 2),
        ("warning", "HARN-STD-003", "Builtin function 'uuid' expects 0 arguments, got 1", 3),
        ("warning", "HARN-STD-003", "Builtin function 'format' expects at least 1 argument, got 0", 4),
    ]
