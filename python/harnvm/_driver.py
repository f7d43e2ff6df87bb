"""The asyncio driver of ``Vm.run_async``.

The Rust core runs Harn tasks until every one of them waits, then reports
(``Vm._step``) the awaitables that registered Python functions returned, the
ones to cancel, and when the next Harn timer is due. ``run_async`` awaits
those on the running asyncio loop, so other coroutines keep going while Harn
waits, and hands the results back (``Vm._complete`` / ``Vm._fail``).

(``Vm.run`` and the other blocking entry points are driven in Rust, see
``rust/harnvm-py/src/driver.rs``.)

Cancelling a Harn task (``cancel``, a ``deadline``, the end of the run)
cancels the asyncio task of its pending call, so the coroutine sees
``CancelledError``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

__all__ = ["run_async"]


def _deliver(vm: Any, tasks: dict[int, asyncio.Future[Any]], finished: Iterable[asyncio.Future[Any]]) -> None:
    """Hands finished host calls back to the VM."""
    done = set(finished)
    for call, task in list(tasks.items()):
        if task not in done:
            continue
        del tasks[call]
        if task.cancelled():
            vm._fail(call, asyncio.CancelledError("host call was cancelled"))
            continue
        exc = task.exception()
        if exc is not None:
            vm._fail(call, exc)
        else:
            vm._complete(call, task.result())


def _cancel(tasks: dict[int, asyncio.Future[Any]], calls: Iterable[int], cancelling: set[asyncio.Future[Any]]) -> None:
    for call in calls:
        task = tasks.pop(call, None)
        if task is not None:
            task.cancel()
            cancelling.add(task)


async def run_async(vm: Any, program: Any, filename: str = "<string>", *, inputs: Any = None) -> Any:
    """Runs ``program`` on ``vm`` under the current asyncio loop."""
    vm._start(program, filename, inputs)
    tasks: dict[int, asyncio.Future[Any]] = {}
    cancelling: set[asyncio.Future[Any]] = set()
    try:
        while True:
            done, value, new, cancelled, timer = vm._step()
            for call, awaitable in new:
                tasks[call] = asyncio.ensure_future(awaitable)
            _cancel(tasks, cancelled, cancelling)
            if done:
                return value
            if tasks:
                finished, _ = await asyncio.wait(
                    list(tasks.values()), timeout=timer, return_when=asyncio.FIRST_COMPLETED
                )
                _deliver(vm, tasks, finished)
            else:
                # Only timers are pending (the core reports a deadlock otherwise).
                await asyncio.sleep(timer or 0)
    except BaseException:
        _cancel(tasks, vm._abort(), cancelling)
        raise
    finally:
        _cancel(tasks, list(tasks), cancelling)
        if cancelling:
            # Let the cancelled coroutines run their cleanup.
            await asyncio.gather(*cancelling, return_exceptions=True)
