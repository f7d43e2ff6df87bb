"""Run generated programs through the oracle (harn 0.9.11) and harnvm and
compare them: stdout, and the class of the error (the text before the
first `:` of its message, e.g. `Runtime error`, `Arity mismatch`).

    python -m tests.differential --count 5000 [--seed 0] [--show 3]

The oracle is `../shared/oracle/harn` relative to the repository root.
A program the oracle's static checker rejects is counted, not compared.
"""

from __future__ import annotations

import argparse
import collections
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tests.differential.generator import program

REPO_ROOT = Path(__file__).resolve().parents[2]
ORACLE = REPO_ROOT.parent / "shared" / "oracle" / "harn"


@dataclass
class Outcome:
    stdout: str
    error_class: str | None  # None: the program succeeded
    message: str
    rejected: bool = False  # the static checker refused it


_LINE_SUFFIX = re.compile(r" \(line \d+\)$")


def _error_class(message: str) -> str:
    head = _LINE_SUFFIX.sub("", message.strip())
    return head.split(":", 1)[0] if ":" in head else head


def run_oracle(source: str, timeout: float = 20.0) -> Outcome:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "prog.harn"
        path.write_text(source)
        proc = subprocess.run([str(ORACLE), "run", str(path)], capture_output=True, text=True, timeout=timeout, cwd=tmp)
    err = proc.stderr
    first_error = next((ln for ln in err.splitlines() if ln.startswith("error")), "")
    if first_error.startswith("error["):  # a static diagnostic (error[HARN-...])
        return Outcome(proc.stdout, "check", first_error, rejected=True)
    if proc.returncode == 0:
        return Outcome(proc.stdout, None, "")
    message = first_error.removeprefix("error: ")
    return Outcome(proc.stdout, _error_class(message), message)


def run_harnvm(source: str, time_limit: float = 10.0) -> Outcome:
    import warnings

    import harnvm

    chunks: list[str] = []
    vm = harnvm.Vm(output=chunks.append, time_limit=time_limit)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            vm.run(source, filename="prog.harn")
        except harnvm.HarnSyntaxError as e:
            return Outcome("".join(chunks), "check", str(e), rejected=True)
        except harnvm.HarnError as e:
            message = str(e).splitlines()[0] if str(e) else ""
            return Outcome("".join(chunks), _error_class(message), message)
    return Outcome("".join(chunks), None, "")


def classify(oracle: Outcome, ours: Outcome) -> str | None:
    """The difference class, or None when the runs agree."""
    if oracle.rejected:
        return None
    if ours.rejected:
        return "harnvm-rejects"
    if oracle.error_class != ours.error_class:
        return f"error-class: oracle={oracle.error_class} harnvm={ours.error_class}"
    if oracle.stdout != ours.stdout:
        return _stdout_class(oracle.stdout, ours.stdout)
    return None


def _stdout_class(theirs: str, ours: str) -> str:
    """`stdout-finally` when the outputs first differ where harnvm runs a `finally`
    block after a caught error and 0.9.11 does not (the suite's rule, kept;
    docs/harn-versions.md); `stdout` for any other difference."""
    for a, b in zip(theirs.split("\n"), ours.split("\n"), strict=False):
        if a != b:
            return "stdout-finally" if b == "finally" else "stdout"
    return "stdout"


@dataclass
class Report:
    ran: int = 0
    rejected: int = 0
    same: int = 0
    by_class: collections.Counter[str] | None = None
    examples: dict[str, tuple[int, str, Outcome, Outcome]] | None = None

    def lines(self) -> list[str]:
        out = [f"programs: {self.ran}, oracle-rejected: {self.rejected}, compared: {self.ran - self.rejected}, same: {self.same}"]
        for cls, n in (self.by_class or {}).most_common():
            out.append(f"  {n:5d}  {cls}")
        return out


def run_many(count: int, seed: int = 0) -> Report:
    report = Report(by_class=collections.Counter(), examples={})
    for i in range(seed, seed + count):
        source = program(i)
        oracle = run_oracle(source)
        report.ran += 1
        if oracle.rejected:
            report.rejected += 1
            continue
        ours = run_harnvm(source)
        cls = classify(oracle, ours)
        if cls is None:
            report.same += 1
        else:
            assert report.by_class is not None and report.examples is not None
            report.by_class[cls] += 1
            report.examples.setdefault(cls, (i, source, oracle, ours))
    return report


def _first_difference(a: str, b: str) -> str:
    for n, (x, y) in enumerate(zip(a.splitlines(), b.splitlines(), strict=False)):
        if x != y:
            return f"line {n + 1}: oracle {x!r} / harnvm {y!r}"
    return f"lengths differ ({len(a)} / {len(b)} chars)"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.differential", description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--show", type=int, default=3, help="print an example program for this many classes")
    args = ap.parse_args(argv)
    if not ORACLE.exists():
        print(f"oracle not found at {ORACLE}", file=sys.stderr)
        return 2
    report = run_many(args.count, args.seed)
    print("\n".join(report.lines()))
    for cls, (seed, source, oracle, ours) in list((report.examples or {}).items())[: args.show]:
        print(f"\n--- {cls} (seed {seed}) ---\n{source}")
        print(f"oracle: {oracle.error_class} {oracle.message}\nharnvm: {ours.error_class} {ours.message}")
        if cls == "stdout":
            print(_first_difference(oracle.stdout, ours.stdout))
    return 0 if not report.by_class else 1
