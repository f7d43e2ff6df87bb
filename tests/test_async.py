"""The async VM: Harn tasks, host functions, run_async, the virtual clock.

No test here asserts wall-clock durations: concurrency is shown by how many
host calls are in flight at once, timer handling by the waits the driver is
handed (``timer_waits``), and a test that could only fail by hanging relies
on the pytest-timeout safety net.
"""

from __future__ import annotations

import asyncio
import threading

import pytest

import harnvm


def capture(vm_kwargs: dict | None = None) -> tuple[harnvm.Vm, list[str]]:
    out: list[str] = []
    vm = harnvm.Vm(output=out.append, **(vm_kwargs or {}))
    return vm, out


# Float slack for a timer converted from milliseconds to seconds.
EPS = 1e-9


def timer_waits(vm: harnvm.Vm) -> list[float]:
    """Every timer wait (seconds) that ``vm``'s blocking driver was handed
    since the last call: what the scheduler asked to sleep for, observed
    without timing anything."""
    return harnvm.internals.take_timer_waits(vm)


# ---------------------------------------------------------------------------
# Many Harn tasks awaiting Python coroutines


def test_100_tasks_awaiting_python_sleep_overlap():
    vm, out = capture()
    state = {"active": 0, "peak": 0, "calls": 0}

    async def fetch(i):
        state["calls"] += 1
        state["active"] += 1
        state["peak"] = max(state["peak"], state["active"])
        await asyncio.sleep(0.05)
        state["active"] -= 1
        return i * 2

    vm.register("fetch", fetch)
    src = "pipeline main() { parallel 100 { i -> fetch(i) } }"
    result = asyncio.run(vm.run_async(src))
    assert result == [i * 2 for i in range(100)]
    assert state["calls"] == 100
    # Every call was in flight at once (one concurrent wait, not 100 sequential ones).
    assert state["peak"] == 100
    assert state["active"] == 0
    assert vm.live_tasks == 0


def test_spawned_tasks_awaiting_python_under_plain_run():
    vm, out = capture()
    state = {"active": 0, "peak": 0}

    async def slow(x):
        state["active"] += 1
        state["peak"] = max(state["peak"], state["active"])
        await asyncio.sleep(0.02)
        state["active"] -= 1
        return x + 1

    vm.register("slow", slow)
    src = """
    pipeline main() {
      let hs = [spawn { slow(1) }, spawn { slow(2) }, spawn { slow(3) }]
      var total = 0
      for h in hs { total = total + await(h) }
      println(total)
    }
    """
    vm.run(src)
    assert out == ["9\n"]
    # The three awaits overlapped on the private event loop.
    assert state["peak"] == 3


def test_the_asyncio_loop_keeps_running_while_harn_awaits():
    vm, _ = capture()
    events: list[str] = []
    harn_waits = asyncio.Event()

    async def ticker():
        await harn_waits.wait()
        for i in range(5):
            events.append(f"tick {i}")
            await asyncio.sleep(0)

    async def wait_a_bit():
        # Harn awaits this call; give the loop a bounded number of turns (no
        # clock involved) and see whether the other coroutine used them.
        harn_waits.set()
        for _ in range(100):
            if len(events) == 5:
                break
            await asyncio.sleep(0)
        events.append("host call returns")
        return "ok"

    vm.register("wait_a_bit", wait_a_bit)

    async def main():
        tick = asyncio.ensure_future(ticker())
        value = await vm.run_async("pipeline m() { wait_a_bit() }")
        await tick
        return value

    assert asyncio.run(main()) == "ok"
    assert events == [f"tick {i}" for i in range(5)] + ["host call returns"]


def test_plain_python_functions_run_synchronously():
    vm, out = capture()
    vm.register("add", lambda a, b: a + b)
    vm.register("shout", lambda s: s.upper())
    vm.run('pipeline m() { println(add(2, 3)); println(shout("hi")) }')
    assert out == ["5\n", "HI\n"]


def test_unregistered_name_is_still_an_undefined_builtin():
    vm, _ = capture()
    # The static check rejects the call first (as harn does); unchecked, the VM does.
    with pytest.raises(harnvm.HarnTypeError, match="call target `no_such_fn` is not defined or imported"):
        vm.run("pipeline m() { no_such_fn(1) }")
    with pytest.raises(harnvm.HarnRuntimeError, match="Undefined builtin: no_such_fn"):
        harnvm.Vm(typecheck=False).run("pipeline m() { no_such_fn(1) }")


# ---------------------------------------------------------------------------
# Exceptions both ways


def test_python_exception_is_a_catchable_harn_error():
    vm, out = capture()

    async def failing():
        await asyncio.sleep(0)
        raise KeyError("missing")

    def plain_failing():
        raise ValueError("bad input")

    vm.register("failing", failing)
    vm.register("plain_failing", plain_failing)
    src = """
    pipeline m() {
      try { failing() } catch (e) { println("async: " + e) }
      try { plain_failing() } catch (e) { println("plain: " + e) }
    }
    """
    asyncio.run(vm.run_async(src))
    assert out == ["async: KeyError: 'missing'\n", "plain: ValueError: bad input\n"]


def test_uncaught_python_exception_keeps_both_stacks():
    vm, _ = capture()

    async def explode():
        await asyncio.sleep(0)
        raise RuntimeError("kaboom")

    vm.register("explode", explode)
    src = "fn inner() { explode() }\npipeline m() {\n  inner()\n}\n"
    with pytest.raises(harnvm.HarnRuntimeError) as info:
        asyncio.run(vm.run_async(src, filename="prog.harn"))
    err = info.value
    assert "RuntimeError: kaboom" in str(err)
    functions = [f.function for f in err.harn_stack]
    assert "inner" in functions
    assert isinstance(err.__cause__, RuntimeError)
    assert err.__cause__.__traceback__ is not None


def test_harn_error_in_a_task_reaches_the_awaiter_and_python():
    vm, out = capture()
    src = """
    pipeline m() {
      let h = spawn { throw "child failed" }
      try { await(h) } catch (e) { println("caught " + e) }
      let h2 = spawn { throw "uncaught" }
      await(h2)
    }
    """
    with pytest.raises(harnvm.HarnRuntimeError, match="uncaught"):
        vm.run(src)
    assert out == ["caught child failed\n"]


# ---------------------------------------------------------------------------
# Cancellation and deadlines over Python awaits


def test_deadline_interrupts_a_python_await_and_the_coroutine_sees_it():
    vm, out = capture()
    seen: list[str] = []

    async def slow():
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise
        return "late"

    vm.register("slow", slow)
    src = """
    pipeline m() {
      try {
        deadline 50ms { slow() }
      } catch (e) {
        println("caught: " + e)
      }
    }
    """
    # Had the deadline not interrupted the await, slow() would have returned
    # "late" (no output); had it not cancelled the coroutine, seen would be empty.
    asyncio.run(vm.run_async(src))
    assert out == ["caught: Deadline exceeded\n"]
    assert seen == ["cancelled"]


def test_cancel_interrupts_a_pending_python_await():
    vm, out = capture()
    seen: list[str] = []

    async def forever():
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    vm.register("forever", forever)
    src = """
    pipeline m() {
      let h = spawn { forever() }
      sleep(10ms)
      cancel(h)
      println(await(h))
    }
    """
    vm.run(src)
    assert out == ["nil\n"]
    # The pending await was cancelled, not waited out.
    assert seen == ["cancelled"]


def test_finished_vm_cancels_unawaited_tasks_and_their_python_awaits():
    vm, out = capture()
    seen: list[str] = []

    async def forever():
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    vm.register("forever", forever)
    src = """
    pipeline m() {
      spawn { forever() }
      spawn { forever() }
      spawn { sleep(10s) }
      spawn { log("never awaited") }
      sleep(10ms)  // let the tasks start (a spawned task runs once the spawner waits)
      "done"
    }
    """
    assert asyncio.run(vm.run_async(src)) == "done"
    assert vm.live_tasks == 0
    assert seen == ["cancelled", "cancelled"]
    # Output of a task that was never awaited is lost, as in Harn.
    assert out == []


def test_cancelling_run_async_from_python_cancels_harn_and_python_tasks():
    vm, _ = capture()
    started: list[str] = []
    seen: list[str] = []

    async def forever():
        started.append("started")
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    vm.register("forever", forever)

    async def main():
        run = asyncio.ensure_future(vm.run_async("pipeline m() { parallel 3 { i -> forever() } }"))
        # Cancel once the three awaits are in flight (not after a guessed delay).
        while len(started) < 3:
            assert not run.done()
            await asyncio.sleep(0)
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run

    asyncio.run(main())
    assert seen == ["cancelled"] * 3
    assert vm.live_tasks == 0
    # The Vm is usable again afterwards.
    assert vm.run("pipeline m() { 1 + 1 }") == 2


def test_cancel_graceful_and_is_cancelled():
    vm, out = capture({"clock": "virtual"})
    src = """
    pipeline m() {
      let h = spawn {
        while !is_cancelled() { sleep(10ms) }
        "stopped cleanly"
      }
      sleep(25ms)
      let r = cancel_graceful(h, 1000)
      println(unwrap(r))
      let stubborn = spawn { sleep(10s) }
      println(unwrap_err(cancel_graceful(stubborn, 50)))
    }
    """
    vm.run(src)
    assert out == ["stopped cleanly\n", "cancel_graceful: timeout, task forcefully aborted\n"]


# ---------------------------------------------------------------------------
# The virtual clock


def test_virtual_clock_completes_sleeps_at_once_in_time_order():
    vm, out = capture({"clock": "virtual"})
    assert vm.clock == "virtual"
    src = """
    pipeline m() {
      let hs = [
        spawn { sleep(3s); println("c") },
        spawn { sleep(1s); println("a") },
        spawn { sleep(2s); println("b") },
      ]
      let ch = channel("order", 10)
      let ws = [spawn { sleep(30s); send(ch, 3) }, spawn { sleep(10s); send(ch, 1) }, spawn { sleep(20s); send(ch, 2) }]
      for h in ws { await(h) }
      close_channel(ch)
      var got = []
      for x in ch { got = got + [x] }
      println(got)
      for h in hs { await(h) }
    }
    """
    vm.run(src)
    # Task output is merged at await, in await order.
    assert out == ["[1, 2, 3]\n", "c\n", "a\n", "b\n"]
    assert vm.now == pytest.approx(30.0)
    # No real waiting: the driver was never handed a timer.
    assert timer_waits(vm) == []


def test_real_clock_hands_timers_to_the_driver():
    # The control for timer_waits: the same kind of sleep on the real clock
    # is a timer wait of the driver, at most as long as the sleep.
    vm, out = capture()
    vm.run("pipeline m() { sleep(20ms); println(\"woke\") }")
    assert out == ["woke\n"]
    waits = timer_waits(vm)
    assert waits and all(0 <= w <= 0.02 + EPS for w in waits)


def test_virtual_clock_deadline_and_select_timeout_are_deterministic():
    vm, out = capture({"clock": "virtual"})
    src = """
    pipeline m() {
      try { deadline 2s { sleep(1h) } } catch (e) { println(e) }
      let ch = channel("never")
      select {
        v from ch { println("value") }
        timeout 5s { println("timeout") }
      }
      println(channel_select([ch], 100))
    }
    """
    vm.run(src)
    assert out == ["Deadline exceeded\n", "timeout\n", "nil\n"]
    assert vm.now == pytest.approx(7.1)
    assert timer_waits(vm) == []


def test_bad_clock_name_is_rejected():
    with pytest.raises(ValueError, match="clock"):
        harnvm.Vm(clock="wall")


# ---------------------------------------------------------------------------
# Harn forms (beyond the shared conformance cases)


def test_output_is_buffered_per_task_and_merged_at_join():
    vm, out = capture({"clock": "virtual"})
    src = """
    pipeline m() {
      let a = spawn { println("a1"); sleep(2ms); println("a2"); 1 }
      let b = spawn { println("b1"); sleep(1ms); println("b2"); 2 }
      println("parent")
      let rb = await(b)
      let ra = await(a)
      println(ra + rb)
      let xs = parallel 3 { i -> println("child ${i}"); i }
      println(xs)
    }
    """
    vm.run(src)
    text = "".join(out)
    assert text == "parent\nb1\nb2\na1\na2\n3\nchild 0\nchild 1\nchild 2\n[0, 1, 2]\n"


def test_parallel_fails_fast_with_the_lowest_index_error():
    vm, out = capture({"clock": "virtual"})
    src = """
    pipeline m() {
      try {
        parallel each [1, 2, 3] { x ->
          if x >= 2 { throw "bad ${x}" }
          x
        }
      } catch (e) { println(e) }
    }
    """
    vm.run(src)
    assert out == ["bad 2\n"]


def test_channels_block_and_hand_over_between_tasks():
    vm, out = capture({"clock": "virtual"})
    src = """
    pipeline m() {
      let ch = channel("jobs", 1)
      let producer = spawn {
        for i in 0 to 4 { send(ch, i) }
        close_channel(ch)
        "sent"
      }
      var sum = 0
      for x in ch { sum = sum + x }
      println(sum)
      println(await(producer))
      println(send(ch, 9))
      println(receive(ch))
      println(try_receive(ch))
    }
    """
    vm.run(src)
    assert out == ["10\n", "sent\n", "false\n", "nil\n", "nil\n"]


def test_mutex_block_serialises_tasks_across_awaits():
    vm, out = capture({"clock": "virtual"})
    src = """
    pipeline m() {
      let inside = atomic(0)
      let peak = atomic(0)
      parallel 4 { i ->
        mutex {
          let now = atomic_add(inside, 1) + 1
          if now > atomic_get(peak) { atomic_set(peak, now) }
          sleep(5ms)
          atomic_add(inside, -1)
        }
      }
      println(atomic_get(peak))
      println(sync_metrics("mutex", "__default__").acquisition_count)
    }
    """
    vm.run(src)
    assert out == ["1\n", "4\n"]


def test_deadlock_is_reported_instead_of_hanging():
    vm, _ = capture()
    with pytest.raises(harnvm.HarnRuntimeError, match="deadlock"):
        vm.run('pipeline m() { let ch = channel("x"); receive(ch) }')


def test_run_without_async_functions_uses_no_event_loop(monkeypatch):
    vm, out = capture()

    def forbidden(*_a, **_k):
        raise AssertionError("no event loop expected")

    monkeypatch.setattr(asyncio, "new_event_loop", forbidden)
    vm.run("pipeline m() { let h = spawn { sleep(5ms); 7 }; println(await(h)) }")
    assert out == ["7\n"]


def test_the_gil_is_released_while_harn_computes():
    # Harn computes forever once it said so (computing()); only Python code on
    # another thread can stop it, which needs the GIL while Harn computes. With
    # the GIL held the safety limit would end the run with HarnTimeoutError.
    vm, _ = capture({"time_limit": 60.0})
    computing = threading.Event()
    vm.register("computing", computing.set)
    handle = vm.interrupt_handle()
    stopped: list[str] = []

    def stopper():
        computing.wait()
        handle.interrupt()
        stopped.append("interrupt sent")

    thread = threading.Thread(target=stopper, daemon=True)
    thread.start()
    try:
        with pytest.raises(harnvm.HarnInterruptedError):
            vm.run("pipeline m() { computing(); var s = 0; while true { s = s + 1 } }")
    finally:
        computing.set()  # frees the stopper if the run failed before computing()
        thread.join()
    assert stopped == ["interrupt sent"]


def test_time_limit_covers_time_spent_waiting():
    vm, _ = capture({"time_limit": 0.1})
    with pytest.raises(harnvm.HarnTimeoutError):
        vm.run("pipeline m() { sleep(10s) }")
    # The driver was never told to wait past the limit (10 s would be the sleep).
    waits = timer_waits(vm)
    assert waits and all(0 <= w <= 0.1 + EPS for w in waits)

    seen: list[str] = []

    async def forever():
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    vm.register("forever", forever)
    with pytest.raises(harnvm.HarnTimeoutError):
        asyncio.run(vm.run_async("pipeline m() { forever() }"))
    # Cancelled by the limit: had the limit waited for the await, forever()
    # would have finished by itself and never seen the cancellation.
    assert seen == ["cancelled"]


def test_host_function_reentering_its_vm_is_a_harn_error():
    vm, out = capture()

    def reenter():
        return vm.run("pipeline m() { 1 }")

    vm.register("reenter", reenter)
    vm.run('pipeline m() { try { reenter() } catch (e) { println(contains(e, "already running")) } }')
    assert out == ["true\n"]
