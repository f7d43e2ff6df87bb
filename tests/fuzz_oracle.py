"""The oracle of the fuzz and differential tests: which outcomes are acceptable.

A malformed or hostile program may end in any ``HarnError`` (a syntax error,
a runtime error, a limit). It must never end in ``HarnInternalError``: that is
the panic guard's exception, a Rust panic (or broken invariant) caught at the
boundary, i.e. a bug in harnvm, so the oracle fails on it. Any exception that
is not a ``HarnError`` at all is a bug too and propagates as it is.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import harnvm

__all__ = ["check_outcome", "run_fuzz_case", "run_program"]


def check_outcome(run: Callable[[], Any], context: str = "") -> tuple[Any, harnvm.HarnError | None]:
    """Calls ``run()`` and classifies how it ended.

    Returns ``(value, None)`` when it returned and ``(None, error)`` when it
    raised a ``HarnError`` the program may legitimately cause. Raises
    ``AssertionError`` (chained to the original, ``context`` appended) on
    ``HarnInternalError``; anything else ``run`` raises propagates unchanged.
    """
    try:
        value = run()
    except harnvm.HarnInternalError as e:
        message = f"harnvm hit an internal error (a bug, not a Harn error): {e}"
        raise AssertionError(f"{message}\n{context}" if context else message) from e
    except harnvm.HarnError as e:
        return None, e
    return value, None


def run_program(source: str) -> Any:
    """The default fuzz runner: compiles ``source`` and runs it under tight limits."""
    program = harnvm.compile(source, "fuzz.harn")
    return harnvm.Vm(output=lambda _text: None, time_limit=0.25, max_frames=128).run(program)


def run_fuzz_case(source: str, runner: Callable[[str], Any] = run_program) -> harnvm.HarnError | None:
    """Runs one fuzz case through ``runner``; returns the Harn error it ended
    in, if any. Fails (``AssertionError``) on ``HarnInternalError``."""
    return check_outcome(lambda: runner(source), context=f"source: {source!r}")[1]
