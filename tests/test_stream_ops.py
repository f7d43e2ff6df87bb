"""The `stream` namespace (harn-language §11): operators over lists, channels,
streams, generators and iters. Semantics beyond the shared conformance case:
laziness, early stop, error propagation through every operator, channel
sources that wait, timing under the virtual clock, and clear errors for bad
arguments."""

from __future__ import annotations

import textwrap

import pytest

import harnvm
from harnvm import HarnRuntimeError

pytestmark = pytest.mark.needs_core


def run_lines(source: str, **vm_kwargs) -> list[str]:
    out: list[str] = []
    vm = harnvm.Vm(output=out.append, **vm_kwargs)
    vm.run(textwrap.dedent(source))
    return "".join(out).splitlines()


def logs(body: str, **vm_kwargs) -> list[str]:
    lines = run_lines("pipeline main() {\n" + textwrap.dedent(body) + "\n}\n", **vm_kwargs)
    return [line.removeprefix("[harn] ") for line in lines]


NATURALS = """
gen fn naturals() {
  var i = 0
  while true {
    emit i
    i += 1
  }
}
"""


def test_stream_is_a_dict_of_operators_and_each_operator_returns_a_stream():
    assert logs(
        """
        log(type_of(stream))
        log(stream.keys())
        log(type_of(stream.map([1], { x -> x })))
        log(stream.map([1], { x -> x }))
        """
    ) == [
        "dict",
        "[_namespace, broadcast, collect, debounce, filter, first, fold, interleave, map, merge, race, scan, take, take_until, "
        "tap, throttle, zip]",
        "stream",
        "<stream>",
    ]


def test_transformers_over_lists_sets_ranges_and_generators():
    assert logs(
        """
        log(stream.collect(stream.map([1, 2, 3], { x -> x * 10 })))
        log(stream.collect(stream.filter(1 to 10, { x -> x % 3 == 0 })))
        log(stream.collect(stream.scan(set(1, 2, 3), 0, { acc, x -> acc + x })))
        log(stream.fold(iter([1, 2, 3]).map({ x -> x * x }), 0, { acc, x -> acc + x }))
        log(stream.collect(stream.take_until([1, 2, 9, 3], { x -> x == 9 })))
        log(stream.first([]))
        log(stream.collect(stream.map([1, 2], to_string)).map(type_of))
        """
    ) == ["[10, 20, 30]", "[3, 6, 9]", "[1, 3, 6]", "14", "[1, 2]", "nil", '[string, string]']


def test_transformers_are_lazy_and_take_stops_pulling():
    source = NATURALS + """
    pipeline main() {
      let pulled = atomic(0)
      let s = stream.tap(naturals(), { x -> atomic_add(pulled, 1) })
      log(atomic_get(pulled))
      log(stream.collect(stream.take(stream.map(s, { x -> x * 2 }), 3)))
      log(atomic_get(pulled))
      log(stream.first(stream.filter(naturals(), { x -> x > 100 })))
      log(stream.collect(naturals(), {max: 4}))
      log(stream.collect([1, 2, 3], {max: 0}))
    }
    """
    assert [line.removeprefix("[harn] ") for line in run_lines(source)] == [
        "0",
        "[0, 2, 4]",
        "3",
        "101",
        "[0, 1, 2, 3]",
        "[]",
    ]


def test_callback_output_reaches_the_consumer_in_order():
    assert logs(
        """
        log("before")
        let s = stream.tap([1, 2], { x -> log("saw ${x}") })
        for x in s {
          log("got ${x}")
        }
        log("after")
        """
    ) == ["before", "saw 1", "got 1", "saw 2", "got 2", "after"]


def test_output_of_sources_pumped_by_merge_is_joined_when_they_finish():
    assert logs(
        """
        let s = stream.merge(stream.tap([1, 2], { x -> log("tap ${x}") }), [])
        log(stream.collect(s))
        log(stream.collect(stream.debounce(stream.tap([7], { x -> log("saw ${x}") }), 0)))
        """
    ) == ["tap 1", "tap 2", "[1, 2]", "saw 7", "[7]"]


def test_zip_interleave_and_broadcast():
    source = NATURALS + """
    pipeline main() {
      log(stream.collect(stream.zip([1, 2, 3], naturals())))
      log(try { stream.zip([1], [2], naturals()) } catch (e) { e })
      log(stream.collect(stream.interleave([1, 2, 3], ["a"], [])))
      let copies = stream.broadcast(stream.map([1, 2, 3], { x -> x * 10 }), 3)
      log(stream.collect(copies[1]))
      log(stream.collect(copies[0]))
      log(stream.first(copies[2]))
    }
    """
    assert [line.removeprefix("[harn] ") for line in run_lines(source)] == [
        '[(1, 0), (2, 1), (3, 2)]',
        'Type error: stream.zip: expected 2 streams, got 3',
        '[1, a, 2, 3]',
        "[10, 20, 30]",
        "[10, 20, 30]",
        "10",
    ]


def test_broadcast_pulls_the_source_once_per_item():
    assert logs(
        """
        let pulls = atomic(0)
        let copies = stream.broadcast(stream.tap([1, 2], { x -> atomic_add(pulls, 1) }), 2)
        log(stream.collect(copies[0]))
        log(stream.collect(copies[1]))
        log(atomic_get(pulls))
        """
    ) == ["[1, 2]", "[1, 2]", "2"]


def test_merge_takes_items_as_channels_produce_them():
    assert logs(
        """
        let a = channel("a", 10)
        let b = channel("b", 10)
        spawn {
          sleep(30ms)
          send(a, "a1")
          sleep(30ms)
          send(a, "a2")
          close_channel(a)
        }
        spawn {
          sleep(10ms)
          send(b, "b1")
          sleep(30ms)
          send(b, "b2")
          close_channel(b)
        }
        log(stream.collect(stream.merge(a, b)))
        """,
        clock="virtual",
    ) == ["[b1, a1, b2, a2]"]


def test_race_keeps_the_first_source_to_produce_and_cancels_the_rest():
    assert logs(
        """
        let slow = channel("slow", 10)
        let fast = channel("fast", 10)
        spawn {
          sleep(50ms)
          send(slow, "slow")
          close_channel(slow)
        }
        spawn {
          sleep(10ms)
          send(fast, "f1")
          send(fast, "f2")
          close_channel(fast)
        }
        log(stream.collect(stream.race(slow, fast)))
        log(stream.collect(stream.race([], [])))
        """,
        clock="virtual",
    ) == ["[f1, f2]", "[]"]


def test_throttle_spaces_items_and_debounce_keeps_the_last_of_each_burst():
    assert logs(
        """
        let t0 = __clock_ms()
        var times = []
        for x in stream.throttle([1, 2, 3], 100ms) {
          times += [__clock_ms() - t0]
        }
        log(times)
        let ch = channel("keys", 10)
        spawn {
          send(ch, "h")
          sleep(10)
          send(ch, "he")
          sleep(10)
          send(ch, "hel")
          sleep(200)
          send(ch, "help")
          close_channel(ch)
        }
        log(stream.collect(stream.debounce(ch, 50)))
        log(stream.collect(stream.debounce([1, 2, 3], 50)))
        """,
        clock="virtual",
    ) == ["[0.0, 100.0, 200.0]", '[hel, help]', "[3]"]


def test_errors_propagate_through_every_operator():
    failing = 'stream.map([1, 2], { x -> if x == 2 { throw "boom" } \n return x })'
    ops = [
        f"stream.collect({failing})",
        f"stream.collect(stream.filter({failing}, {{ x -> true }}))",
        f"stream.collect(stream.take({failing}, 5))",
        f"stream.fold({failing}, 0, {{ a, x -> a + x }})",
        f"stream.collect(stream.zip({failing}, [1, 2, 3]))",
        f"stream.collect(stream.interleave({failing}, [7]))",
        f"stream.collect(stream.merge({failing}, [3]))",
        f"stream.collect(stream.race({failing}))",
        f"stream.collect(stream.broadcast({failing}, 2)[1])",
        f"stream.collect(stream.debounce({failing}, 0))",
        f"stream.collect(stream.throttle({failing}, 0))",
    ]
    body = "\n".join(f'log(try {{ {op}\n "missing" }} catch (e) {{ "caught ${{e}}" }})' for op in ops)
    assert logs(body) == ["caught boom"] * len(ops)


def test_a_stream_error_is_raised_to_python_with_the_harn_stack():
    with pytest.raises(HarnRuntimeError) as info:
        harnvm.run('pipeline main() { stream.collect(stream.map([1], { x -> x / 0 })) }')
    assert "Division by zero" in str(info.value) or "division" in str(info.value).lower()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ("stream.map(42, { x -> x })", "stream.map: value of type int is not a stream source"),
        ('stream.collect("abc")', "stream.collect: value of type string is not a stream source"),
        ("stream.filter([1], 5)", "stream.filter: expected a function, got int"),
        ('stream.take([1], "2")', "stream.take: expected an int count, got string"),
        ("stream.merge([1], nil)", "stream.merge: value of type nil is not a stream source"),
        ('stream.throttle([1], "fast")', "stream.throttle: expected a non-negative interval"),
        ("stream.broadcast([1], 1.5)", "stream.broadcast: expected an int count, got float"),
        ('stream.collect([1], {max: "x"})', "stream.collect: expected an int count, got string"),
        ("stream.broadcast([1], 1000000000)", "stream.broadcast: copies must be between 0 and 65536, got 1000000000"),
        ("stream.broadcast([1], -1)", "stream.broadcast: copies must be between 0 and 65536, got -1"),
    ],
)
def test_bad_arguments_fail_at_the_call_with_a_clear_message(call: str, message: str):
    assert logs(f'log(try {{ {call}\n "no error" }} catch (e) {{ e }})') == [message + _rest(message)]


def _rest(message: str) -> str:
    # The source-type message lists the accepted kinds; the others end where shown.
    if message.endswith("is not a stream source"):
        return " (expected a list, set, range, channel, stream, generator or iter)"
    if message.endswith("non-negative interval"):
        return ' (int milliseconds or a duration), got fast'
    return ""


def test_a_local_named_stream_shadows_the_namespace():
    assert logs(
        """
        let stream = [1, 2]
        log(stream)
        """
    ) == ["[1, 2]"]


def test_the_namespace_is_built_once_per_vm_and_survives_errors():
    out: list[str] = []
    vm = harnvm.Vm(output=out.append)
    with pytest.raises(HarnRuntimeError):
        vm.run("pipeline main() { stream.collect(stream.map([1], { x -> x.missing() + 1 })) }")
    vm.run("pipeline main() { log(stream.collect(stream.take([5, 6], 1))) }")
    assert out[-1] == "[harn] [5]\n"
