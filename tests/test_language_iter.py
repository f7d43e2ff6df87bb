"""Lazy iterators, generators and streams through the Python API: values
crossing the boundary, exact error texts, limits and interruption while a
generator body runs, and a Vm that stays usable after errors inside one."""

from __future__ import annotations

import textwrap

import pytest

import harnvm
from harnvm import HarnObject, HarnRuntimeError, HarnStackOverflowError, HarnTimeoutError

pytestmark = pytest.mark.needs_core


def run_lines(source: str) -> list[str]:
    out: list[str] = []
    harnvm.run(textwrap.dedent(source), output=out.append)
    return "".join(out).splitlines()


NATURALS = """
fn naturals() {
  var i = 0
  while true {
    yield i
    i += 1
  }
}
"""


def test_iters_and_generators_cross_as_opaque_handles():
    vm = harnvm.Vm()
    it = vm.run("pipeline main() { return iter([1, 2]).map({ x -> x + 1 }) }")
    assert isinstance(it, HarnObject)
    assert repr(it) == "<HarnObject iter <iter>>"
    gen = vm.run(NATURALS + "pipeline main() { return naturals }")
    g = vm.call(gen)
    assert isinstance(g, HarnObject)
    assert "generator" in repr(g)
    take = vm.run("pipeline main() { return { g, n -> iter(g).take(n).to_list() } }")
    assert vm.call(take, g, 3) == [0, 1, 2]
    # The handle is shared state: the next pull continues where the last stopped.
    assert vm.call(take, g, 2) == [3, 4]


def test_generator_output_is_dropped_but_the_consumers_is_kept():
    lines = run_lines(
        """
        fn g() {
          println("from the body")
          yield 1
        }
        pipeline main() {
          println("before")
          for x in g() { println("got ${x}") }
          println("after")
        }
        """
    )
    assert lines == ["before", "got 1", "after"]


def test_exact_error_texts():
    cases = {
        "iter(1)": "Type error: iter: value of type int is not iterable (line 1)",
        "iter([1]).chain(true).to_list()": "Type error: iter: value of type bool is not iterable (line 1)",
        "iter([1, 2]).to_dict()": "Type error: iter.to_dict: expected pair, got int (line 1)",
        "iter([1]).map(3).to_list()": "Type error: iter.map: expected callable (line 1)",
    }
    for source, message in cases.items():
        with pytest.raises(HarnRuntimeError) as info:
            harnvm.run(source)
        assert info.value.message == message, source


def test_stream_errors_surface_where_the_stream_is_pulled():
    source = textwrap.dedent(
        """
        gen fn s() {
          emit 1
          throw {code: 7}
        }
        pipeline main() {
          var seen = []
          try {
            for x in s() { seen = seen.push(x) }
          } catch (e) {
            return [seen, e.code]
          }
        }
        """
    )
    assert harnvm.run(source) == [[1], 7]
    with pytest.raises(HarnRuntimeError) as info:
        harnvm.run("gen fn s() {\n  emit 1\n  throw \"boom\"\n}\nfor x in s() { }")
    assert info.value.message == "Thrown: boom"


def test_time_limit_interrupts_an_endless_generator_and_the_vm_recovers():
    vm = harnvm.Vm(time_limit=0.3)
    with pytest.raises(HarnTimeoutError):
        vm.run(NATURALS + "pipeline main() { for x in naturals() { } }")
    # No generator fiber is left parked: the next run starts clean.
    assert vm.run(NATURALS + "pipeline main() { return iter(naturals()).take(3).to_list() }") == [0, 1, 2]


def test_nested_generators_hit_the_frame_limit_not_the_native_stack():
    source = NATURALS + textwrap.dedent(
        """
        fn nest(n) {
          if n == 0 { yield 0 }
          else { for x in nest(n - 1) { yield x + 1 } }
        }
        pipeline main() { return iter(nest(1000000)).first() }
        """
    )
    vm = harnvm.Vm(max_frames=200)
    with pytest.raises(HarnStackOverflowError):
        vm.run(source)
    assert vm.run("pipeline main() { return (1 to 10000000).map({ x -> x * 3 }).take(3).to_list() }") == [3, 6, 9]


def test_ten_million_element_range_stays_lazy():
    # Materializing would allocate 10M values; the lazy chain touches a handful.
    source = """
    pipeline main() {
      let r = 1 to 10000000
      return [
        r.map({ x -> x * 2 }).take(5).to_list(),
        r.iter().skip_while({ x -> x < 4 }).first(),
        r.enumerate().filter({ p -> p.second % 500000 == 0 }).first().first,
        r.count(),
        r.sum(),
      ]
    }
    """
    assert harnvm.run(textwrap.dedent(source)) == [[2, 4, 6, 8, 10], 4, 499999, 10000000, 50000005000000]
