"""Unit tests of the conformance runner's discovery, matching and bookkeeping."""

from __future__ import annotations

from pathlib import Path

import pytest

from harnvm import conformance
from harnvm.conformance import Case, CaseResult, error_matches, normalize_output


def write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


# ---------------------------------------------------------------------------
# Output normalization


def test_trailing_whitespace_of_the_whole_output_is_ignored():
    assert normalize_output("a\nb\n\n  \n") == normalize_output("a\nb") == ["a", "b"]


def test_inner_trailing_spaces_matter():
    assert normalize_output("a \nb") != normalize_output("a\nb")


def test_leading_blank_lines_matter():
    assert normalize_output("\na") != normalize_output("a")


def test_crlf_is_a_line_break():
    assert normalize_output("a\r\nb\r\n") == ["a", "b"]


def test_empty_output():
    assert normalize_output("") == normalize_output("\n\n") == []


@pytest.mark.parametrize(
    ("line", "normalized"),
    [
        ("[timer] my_timer: 0ms", "[timer] my_timer: <ms>"),
        ("[timer] my_timer: 12345ms", "[timer] my_timer: <ms>"),
        ("[timer] a: b: 7ms", "[timer] a: b: <ms>"),
        ("[timer] x: 5s", "[timer] x: 5s"),
        ("[timer] x: ms", "[timer] x: ms"),
        ("note [timer] x: 5ms", "note [timer] x: 5ms"),
        ("[harn] [timer] x: 5ms", "[harn] [timer] x: 5ms"),
    ],
)
def test_timer_lines(line, normalized):
    assert normalize_output(line) == [normalized]


# ---------------------------------------------------------------------------
# Error matching


@pytest.mark.parametrize(
    ("spec", "message", "matches"),
    [
        ("Thrown: fatal", "Thrown: fatal", True),
        ("fatal", "Thrown: fatal", True),
        ("Fatal", "Thrown: fatal", False),
        ("Thrown: fatal\n\n", "Thrown: fatal", True),
        ("first\nsecond", "xx second yy", True),
        ("first\nsecond", "neither", False),
        (r"re:can't add \w+ and \w+", "can't add bool and bool", True),
        (r"re:Cannot (add|subtract|multiply) \w+ (and|from) \w+", "Type error: Cannot add bool and int (line 3)", True),
        (r"re:^Thrown", "x Thrown", False),
        ("re:(unclosed", "(unclosed", False),
        ("re:(unclosed\nunclosed", "(unclosed", True),
        ("re:", "anything", True),
        ("", "anything", True),
        ("  indented", "x  indented", True),
        ("a.b", "axb", False),
    ],
)
def test_error_matches(spec, message, matches):
    assert error_matches(spec, message) is matches


# ---------------------------------------------------------------------------
# Discovery


def test_discover(tmp_path):
    write(
        tmp_path,
        {
            "b/two.harn": "",
            "b/two.expected": "",
            "a/one.harn": "",
            "a/one.error": "x",
            "a/both.harn": "",
            "a/both.expected": "",
            "a/both.error": "",
            "a/lib.harn": "",
            "a/skipped.harn": "",
            "a/skipped.expected": "",
            "a/skipped.conformance-skip": "",
            "c/deep/er/three.harn": "",
            "c/deep/er/three.expected": "",
            "c/.harn": "",
            "c/orphan.expected": "",
            "c/notes.txt": "",
        },
    )
    cases = conformance.discover(tmp_path)
    assert [(c.rel, c.kind) for c in cases] == [
        ("a/both.harn", "expected"),
        ("a/one.harn", "error"),
        ("b/two.harn", "expected"),
        ("c/deep/er/three.harn", "expected"),
    ]
    assert cases[1].expectation == tmp_path / "a" / "one.error"


def test_discover_single_file(tmp_path):
    write(tmp_path, {"x.harn": "", "x.expected": "", "y.harn": "", "y.expected": ""})
    cases = conformance.discover(tmp_path / "x.harn")
    assert [c.rel for c in cases] == ["x.harn"]


def test_filter_cases(tmp_path):
    write(tmp_path, {f"{d}/{n}.harn": "" for d in ("lang", "strings") for n in ("a", "b")})
    write(tmp_path, {f"{d}/{n}.expected": "" for d in ("lang", "strings") for n in ("a", "b")})
    cases = conformance.discover(tmp_path)
    assert [c.rel for c in conformance.filter_cases(cases, "strings/")] == ["strings/a.harn", "strings/b.harn"]
    assert [c.rel for c in conformance.filter_cases(cases, "*/b.harn")] == ["lang/b.harn", "strings/b.harn"]
    assert len(conformance.filter_cases(cases, None)) == 4


# ---------------------------------------------------------------------------
# Running single cases (programs that fail to compile with any core)

BROKEN = "pipeline default( {\n"


def test_run_case_error_test_passes_on_matching_error(tmp_path):
    write(tmp_path, {"e.harn": BROKEN, "e.error": "re:."})
    (case,) = conformance.discover(tmp_path)
    result = conformance.run_case(case)
    assert result.passed, result.reason
    assert result.error


def test_run_case_error_test_fails_on_other_error(tmp_path):
    write(tmp_path, {"e.harn": BROKEN, "e.error": "this text is in no error message\nnor this"})
    (case,) = conformance.discover(tmp_path)
    result = conformance.run_case(case)
    assert not result.passed
    assert "does not match" in result.reason
    assert "this text is in no error message | nor this" in result.reason


def test_run_case_output_test_fails_on_error(tmp_path):
    write(tmp_path, {"o.harn": BROKEN, "o.expected": "hi\n"})
    (case,) = conformance.discover(tmp_path)
    result = conformance.run_case(case)
    assert not result.passed
    assert result.reason.startswith("unexpected error: ")
    assert "\n" not in result.reason


# ---------------------------------------------------------------------------
# Known failures


def fake_result(rel: str, passed: bool, reason: str = "") -> CaseResult:
    return CaseResult(Case(Path(rel), rel, "expected", Path(rel)), passed, reason)


def test_load_known_failures(tmp_path):
    path = tmp_path / "known.txt"
    path.write_text(
        "# comment\n\ntests/a.harn  # parser: strings\n  tests/b.harn\nerrors/c.harn #  spaced  reason \n",
        encoding="utf-8",
    )
    assert conformance.load_known_failures(path) == {
        "tests/a.harn": "parser: strings",
        "tests/b.harn": "known failure",
        "errors/c.harn": "spaced  reason",
    }
    assert conformance.load_known_failures(tmp_path / "missing.txt") == {}


def test_render_known_failures_keeps_reasons_and_drops_fixed_cases():
    results = [
        fake_result("t/fixed.harn", True),
        fake_result("t/still.harn", False, "output differs at line 1"),
        fake_result("t/new.harn", False, "unexpected error: 'x\ny'"),
    ]
    text = conformance.render_known_failures(
        results, {"t/fixed.harn": "old", "t/still.harn": "needs generators", "t/other.harn": "not run"}
    )
    body = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert body == [
        "t/new.harn    # unexpected error: 'x y'",
        "t/still.harn  # needs generators",
    ]


def test_render_known_failures_partial_run_keeps_unrun_entries():
    results = [fake_result("t/fixed.harn", True)]
    text = conformance.render_known_failures(
        results, {"t/fixed.harn": "old", "t/other.harn": "not run"}, ran_all=False
    )
    body = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert body == ["t/other.harn  # not run"]


def test_write_then_load_known_failures(tmp_path):
    path = tmp_path / "known.txt"
    count = conformance.write_known_failures(path, [fake_result("x/a.harn", False, "why")])
    assert count == 1
    assert conformance.load_known_failures(path) == {"x/a.harn": "why"}
