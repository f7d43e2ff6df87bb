"""The fuzz worker: runs programs `start .. start+count` of a stream in this
process and reports to its parent on stdout, one line per event:

    S <i>                 program i is about to run (so a death names it)
    F <i> <json>          a finding: {"class": ..., "detail": ...}
    D <json>              done: counts of outcomes by class

A finding is a ``HarnInternalError`` (a caught Rust panic), an exception
that is not a ``HarnError``, or a run that took more than twice its
``time_limit``. A process death (segfault, abort) is detected by the parent.
"""

from __future__ import annotations

import collections
import json
import os
import sys
import time
import traceback
import warnings

import harnvm

from tests.fuzz.generate import program


def run_one(source: str, filename: str, time_limit: float) -> object:
    if source == "__panic__":
        from harnvm.internals import panic_for_test

        return panic_for_test("fuzz runner self-test")
    vm = harnvm.Vm(output=lambda _text: None, time_limit=time_limit, clock="virtual")
    return vm.run(source, filename=filename)


def classify(source: str, filename: str, time_limit: float) -> tuple[str, str | None]:
    """(class, detail): class is `ok`, `harn:<ErrorType>`, or a finding class
    (`internal`, `python:<Type>`, `overrun`); detail explains a finding."""
    start = time.perf_counter()
    outcome, detail = "ok", None
    try:
        run_one(source, filename, time_limit)
    except harnvm.HarnInternalError as e:
        outcome, detail = "internal", str(e)[:2000]
    except harnvm.HarnError as e:
        outcome = f"harn:{type(e).__name__}"
    except BaseException as e:  # noqa: BLE001 - every other exception is a finding
        if isinstance(e, KeyboardInterrupt):
            raise
        outcome, detail = f"python:{type(e).__name__}", "".join(traceback.format_exception(e))[-2000:]
    elapsed = time.perf_counter() - start
    if outcome == "ok" or outcome.startswith("harn:"):
        if elapsed > 2 * time_limit:
            return "overrun", f"ran {elapsed:.2f}s with time_limit={time_limit}s (ended as {outcome})"
    return outcome, detail


def main(argv: list[str] | None = None) -> int:
    seed, start, count, time_limit = (argv or sys.argv)[1:5]
    seed, start, count, time_limit = int(seed), int(start), int(count), float(time_limit)
    # Checker warnings are about the random programs, not findings.
    warnings.simplefilter("ignore")
    counts: collections.Counter[str] = collections.Counter()
    out = sys.stdout.fileno()
    # Test hooks: make program N die or hit a caught panic, to test the runner's oracle.
    abort_at = os.environ.get("HARNVM_FUZZ_TEST_ABORT_AT")
    panic_at = os.environ.get("HARNVM_FUZZ_TEST_PANIC_AT")
    for i in range(start, start + count):
        os.write(out, f"S {i}\n".encode())
        source, filename = program(seed, i)
        if str(i) == abort_at:
            os.abort()
        if str(i) == panic_at:
            source = "__panic__"
        cls, detail = classify(source, filename, time_limit)
        counts[cls] += 1
        if detail is not None:
            os.write(out, f"F {i} {json.dumps({'class': cls, 'detail': detail})}\n".encode())
    os.write(out, f"D {json.dumps(dict(counts))}\n".encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
