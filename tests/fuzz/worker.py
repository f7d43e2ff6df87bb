"""The fuzz worker: runs programs `start .. start+count` of a stream in this
process and reports to its parent on stdout, one line per event:

    S <i>                 program i is about to run (so a death names it)
    F <i> <json>          a finding: {"class": ..., "detail": ...}
    D <json>              done: counts of outcomes by class

A finding is a ``HarnInternalError`` (a caught Rust panic), an exception
that is not a ``HarnError``, or a run that took more than twice its
``time_limit`` of wall time while this process was on the CPU that long
(`overrun`); past it in wall time only (the machine's load) it is reported
as `overrun-wall-only`, which the runner does not count as a failure. A process death (segfault, abort) is detected by the parent.
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
    start, cpu_start = time.perf_counter(), time.process_time()
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
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    if outcome == "ok" or outcome.startswith("harn:"):
        if elapsed > 2 * time_limit:
            # Wall time past twice the limit. When this process also spent
            # that long on the CPU, the limit was not enforced: a finding.
            # Otherwise the process was starved by the machine's load (wall
            # time includes waiting to be scheduled): counted, reported, not fatal.
            cls = "overrun" if cpu > 2 * time_limit else "overrun-wall-only"
            return cls, f"ran {elapsed:.2f}s ({cpu:.2f}s CPU) with time_limit={time_limit}s (ended as {outcome})"
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
