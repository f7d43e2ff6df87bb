"""`iter(channel)`, `parallel_race`, and scheduler builtins that wait while
called as callbacks of other builtins (`chans.map(receive)`)."""

from __future__ import annotations

import textwrap

import pytest

import harnvm
from harnvm import HarnRuntimeError

pytestmark = pytest.mark.needs_core


def logs(body: str, **vm_kwargs) -> list[str]:
    out: list[str] = []
    vm = harnvm.Vm(output=out.append, **vm_kwargs)
    vm.run("pipeline main() {\n" + textwrap.dedent(body) + "\n}\n")
    return [line.removeprefix("[harn] ") for line in "".join(out).splitlines()]


def test_iter_over_a_channel_is_lazy_and_waits_for_senders():
    assert logs(
        """
        let ch = channel("jobs", 10)
        spawn {
          for i in 1 to 3 {
            sleep(10ms)
            send(ch, i)
          }
          close_channel(ch)
        }
        let it = iter(ch)
        log(type_of(it))
        log(it.map({ x -> x * 10 }).to_list())
        log(it.to_list())
        let ready = channel("ready", 3)
        send(ready, "a")
        send(ready, "b")
        log(ready.iter().first())
        log(try_receive(ready))
        """,
        clock="virtual",
    ) == ["iter", "[10, 20, 30]", "[]", "a", "b"]


def test_iter_over_an_open_channel_nobody_feeds_is_a_deadlock_error_not_a_hang():
    with pytest.raises(HarnRuntimeError, match="deadlock"):
        harnvm.run('pipeline main() { iter(channel("never", 1)).to_list() }')


def test_parallel_race_returns_the_first_success_and_cancels_the_rest():
    assert logs(
        """
        let winner = parallel_race([30, 10, 20], { ms ->
          sleep(ms)
          log("finished ${ms}")
          ms
        })
        log(winner)
        sleep(100)
        log(parallel_race([1, 2, 3], { x ->
          if x < 3 {
            return Err("no ${x}")
          }
          sleep(5)
          return Ok(x * 100)
        }))
        log(parallel_race(["only"], { x -> x }))
        """,
        clock="virtual",
    ) == ["finished 10", "10", "300", "only"]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ('parallel_race([1, 2], { x -> throw "bad ${x}" })', "parallel_race: all 2 tasks failed: bad 1; bad 2"),
        ("parallel_race([], { x -> x })", "parallel_race: no items"),
        ("parallel_race(1 to 3, { x -> x })", "parallel_race: expected a list of items, got range"),
        ("parallel_race([1], 5)", "parallel_race: expected a function, got int"),
    ],
)
def test_parallel_race_failures(call: str, message: str):
    assert logs(f"log(try {{ {call} }} catch (e) {{ e }})") == [message]


def test_waiting_builtins_work_as_callbacks_of_builtins():
    assert logs(
        """
        let a = channel("a", 1)
        let b = channel("b", 1)
        spawn {
          sleep(20)
          send(b, "from b")
          sleep(20)
          send(a, "from a")
        }
        log([a, b].map(receive))
        log([30, 10].map(sleep))
        log(try { [42].map(receive) } catch (e) { e })
        """,
        clock="virtual",
    ) == ["[from a, from b]", "[nil, nil]", "receive: first argument must be a channel"]
