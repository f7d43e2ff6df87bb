"""Runner for Harn conformance cases (the contract of ``harn test conformance``).

A case is a ``NAME.harn`` file with a sibling ``NAME.expected`` (an output
test, checked first) or ``NAME.error`` (an error test). Other ``.harn`` files
are support modules and are skipped, as is any case with a sibling
``NAME.conformance-skip``.

* ``.expected``: the program must succeed and its output, with trailing
  whitespace trimmed from the end of the whole text, must equal the file's
  (trimmed the same way) line by line. A ``[timer] NAME: <digits>ms`` line is
  normalized to ``[timer] NAME: <ms>`` on both sides.
* ``.error``: the program must fail. The file is trimmed at the end; the case
  passes if ANY of its lines matches the error message: a line starting with
  ``re:`` is a regular expression searched anywhere in the message (Python
  ``re`` syntax, which agrees with Rust's regex for the patterns the suite
  uses), any other line is a plain substring.

Everything is a plain function so the CLI (``python -m harnvm conformance``)
and pytest (``tests/test_conformance.py``) share it.
"""

from __future__ import annotations

import fnmatch
import re
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_TIMEOUT",
    "Case",
    "CaseResult",
    "discover",
    "error_matches",
    "filter_cases",
    "load_known_failures",
    "normalize_output",
    "render_known_failures",
    "run_case",
    "run_cases",
    "write_known_failures",
]

DEFAULT_TIMEOUT = 30.0
#: Output kept per case; a runaway printer beyond this fails the case.
MAX_OUTPUT_CHARS = 16 * 1024 * 1024

_TIMER_LINE = re.compile(r"^(\[timer\] .*: )\d+ms$")


@dataclass(frozen=True)
class Case:
    """One conformance case."""

    path: Path
    """The ``.harn`` file."""
    rel: str
    """Its path relative to the suite root, with ``/`` separators (the case id)."""
    kind: str
    """``"expected"`` or ``"error"``."""
    expectation: Path
    """The ``.expected`` or ``.error`` file."""


@dataclass
class CaseResult:
    case: Case
    passed: bool
    reason: str = ""
    """Why the case failed (one line), empty when it passed."""
    output: str = ""
    error: str | None = None
    """The error message if the program failed."""
    seconds: float = 0.0


@dataclass
class _Collector:
    parts: list[str] = field(default_factory=list)
    size: int = 0
    overflowed: bool = False

    def __call__(self, text: str) -> None:
        if self.overflowed:
            return
        self.size += len(text)
        if self.size > MAX_OUTPUT_CHARS:
            self.overflowed = True
            return
        self.parts.append(text)

    def text(self) -> str:
        return "".join(self.parts)


# ---------------------------------------------------------------------------
# Discovery


def discover(root: str | Path) -> list[Case]:
    """All cases under ``root`` (a directory, searched recursively, or one
    ``.harn`` file), sorted by path."""
    root = Path(root)
    if root.is_file():
        base = root.parent
        files = [root]
    else:
        base = root
        files = sorted(p for p in root.rglob("*.harn") if p.is_file())
    cases = []
    for path in files:
        if path.suffix != ".harn" or path.name == ".harn":
            continue
        if path.with_suffix(".conformance-skip").exists():
            continue
        expected = path.with_suffix(".expected")
        error = path.with_suffix(".error")
        rel = path.relative_to(base).as_posix()
        if expected.is_file():
            cases.append(Case(path, rel, "expected", expected))
        elif error.is_file():
            cases.append(Case(path, rel, "error", error))
    cases.sort(key=lambda c: c.rel)
    return cases


def filter_cases(cases: Iterable[Case], pattern: str | None) -> list[Case]:
    """Cases whose relative path contains ``pattern`` (or matches it, when it
    has glob characters ``*?[``)."""
    if not pattern:
        return list(cases)
    if any(ch in pattern for ch in "*?["):
        return [c for c in cases if fnmatch.fnmatchcase(c.rel, pattern)]
    return [c for c in cases if pattern in c.rel]


# ---------------------------------------------------------------------------
# Matching


def _lines(text: str) -> list[str]:
    # Rust's str::lines: split on \n, drop one trailing \r per line, and no
    # final empty line.
    if not text:
        return []
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def normalize_output(text: str) -> list[str]:
    """The comparable form of a program's output or an ``.expected`` file."""
    return [_TIMER_LINE.sub(r"\1<ms>", line) for line in _lines(text.rstrip())]


def error_matches(spec: str, message: str) -> bool:
    """Whether an error ``message`` satisfies an ``.error`` file's text."""
    lines = _lines(spec.rstrip()) or [""]
    for line in lines:
        if line.startswith("re:"):
            try:
                if re.search(line[3:], message):
                    return True
            except re.error:
                continue
        elif line in message:
            return True
    return False


def _clip(text: str, limit: int = 160) -> str:
    text = repr(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _first_line(text: str) -> str:
    return text.strip().split("\n", 1)[0]


def _output_mismatch(expected: list[str], actual: list[str]) -> str:
    for i, (e, a) in enumerate(zip(expected, actual), start=1):
        if e != a:
            return f"output differs at line {i}: expected {_clip(e)}, got {_clip(a)}"
    if len(actual) < len(expected):
        return f"output ends early after {len(actual)} lines; next expected line {_clip(expected[len(actual)])}"
    return f"output has extra lines after line {len(expected)}: got {_clip(actual[len(expected)])}"


# ---------------------------------------------------------------------------
# Running


def run_case(
    case: Case,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    on_vm: Callable[[Any], None] | None = None,
) -> CaseResult:
    """Runs one case in-process on a fresh ``Vm`` limited to ``timeout`` seconds.

    ``on_vm``, if given, receives the ``Vm`` before the run starts (the CLI
    uses it to be able to interrupt the case on Ctrl-C).
    """
    import harnvm  # deferred so the matching helpers work without the extension

    collector = _Collector()
    started = time.perf_counter()
    error: str | None = None
    crashed: str | None = None
    timed_out = False
    try:
        vm = harnvm.Vm(output=collector, time_limit=timeout)
        if on_vm is not None:
            on_vm(vm)
        # Checker warnings are not part of a case's contract (stdout, error).
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", harnvm.HarnCheckWarning)
            vm.run_file(case.path)
    except harnvm.HarnTimeoutError as e:
        error, timed_out = e.message, True
    except harnvm.HarnInternalError as e:
        error, crashed = e.message, e.message
    except harnvm.HarnError as e:
        error = e.message
    except Exception as e:  # noqa: BLE001 - anything else is a harnvm bug; report it per case
        crashed = f"{type(e).__name__}: {e}"
        error = crashed
    seconds = time.perf_counter() - started
    output = collector.text()

    def result(passed: bool, reason: str = "") -> CaseResult:
        return CaseResult(case, passed, reason, output, error, seconds)

    if crashed is not None:
        return result(False, f"crashed: {_clip(_first_line(crashed))}")
    if timed_out:
        return result(False, f"timed out after {timeout:g}s")
    if collector.overflowed:
        return result(False, f"output exceeded {MAX_OUTPUT_CHARS} characters")
    spec = case.expectation.read_text(encoding="utf-8")
    if case.kind == "expected":
        if error is not None:
            return result(False, f"unexpected error: {_clip(_first_line(error))}")
        expected_lines, actual_lines = normalize_output(spec), normalize_output(output)
        if expected_lines != actual_lines:
            return result(False, _output_mismatch(expected_lines, actual_lines))
        return result(True)
    wanted = " | ".join(_lines(spec.rstrip())) or "<any error>"
    if error is None:
        return result(False, f"expected an error matching {_clip(wanted)}, but the program succeeded")
    if not error_matches(spec, error):
        return result(False, f"error {_clip(_first_line(error))} does not match {_clip(wanted)}")
    return result(True)


def run_cases(
    cases: Iterable[Case],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    on_result: Callable[[CaseResult], None] | None = None,
    on_vm: Callable[[Any], None] | None = None,
) -> list[CaseResult]:
    results = []
    for case in cases:
        r = run_case(case, timeout=timeout, on_vm=on_vm)
        if on_result is not None:
            on_result(r)
        results.append(r)
    return results


# ---------------------------------------------------------------------------
# Known failures

KNOWN_FAILURES_HEADER = """\
# Conformance cases (relative to ../shared/conformance) that harnvm does not pass yet.
# One per line: `relative/path.harn  # reason`. tests/test_conformance.py marks
# these xfail(strict=True), so a case that starts passing must be removed here.
# Regenerate (existing reasons are kept):
#   python -m harnvm conformance ../shared/conformance --write-known-failures tests/conformance_known_failures.txt
"""


def load_known_failures(path: str | Path) -> dict[str, str]:
    """``{relative path: reason}`` from a known-failures file (missing file: empty)."""
    path = Path(path)
    if not path.is_file():
        return {}
    known: dict[str, str] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        rel, _, reason = line.partition("#")
        rel = rel.strip()
        if rel:
            known[rel] = reason.strip() or "known failure"
    return known


def render_known_failures(
    results: Iterable[CaseResult],
    existing: Mapping[str, str],
    *,
    ran_all: bool = True,
) -> str:
    """The known-failures file for ``results``: every failing case, with its
    existing reason if it had one. When only some cases ran (``ran_all`` is
    false, e.g. with --filter), entries for cases that did not run are kept."""
    results = list(results)
    ran = {r.case.rel for r in results}
    entries: dict[str, str] = {}
    if not ran_all:
        entries.update({rel: reason for rel, reason in existing.items() if rel not in ran})
    for r in results:
        if not r.passed:
            reason = existing.get(r.case.rel) or r.reason or "fails"
            entries[r.case.rel] = " ".join(reason.split())[:200]
    width = max((len(rel) for rel in entries), default=0)
    body = "".join(f"{rel.ljust(width)}  # {entries[rel]}\n" for rel in sorted(entries))
    return KNOWN_FAILURES_HEADER + "\n" + body


def write_known_failures(
    path: str | Path,
    results: Iterable[CaseResult],
    *,
    ran_all: bool = True,
) -> int:
    """Rewrites the known-failures file at ``path``; returns the number of entries."""
    path = Path(path)
    text = render_known_failures(results, load_known_failures(path), ran_all=ran_all)
    path.write_text(text, encoding="utf-8")
    return sum(1 for line in text.splitlines() if line.strip() and not line.startswith("#"))
