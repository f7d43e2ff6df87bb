"""Dicts keep Harn's semantics under their hashed representation (issue 13).

Dicts hash their keys and remember entries by slot, and property sites read
and write dict slots through the inline cache. These properties run
GENERATED Harn programs mixing dict literals, index and property writes,
``remove``, ``+`` and ``merge``, iteration, ``keys``/``values``/display,
property reads (some through shared helper functions whose one site meets
many dicts) and aliasing, and compare what the program returns with a
Python model: a dict whose walks are in key byte order and whose every
store copies. Each program also runs with ``Vm(inline_caches=False)`` and
must give the same result.
"""

from __future__ import annotations

import copy
from typing import Any, Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import harnvm

pytestmark = pytest.mark.needs_core

# Keys whose byte order differs from insertion, length and case order.
KEYS = ("a", "b", "ab", "B", "_x", "z1", "z10", "z2", "count", "k")
DICTS = ("d0", "d1", "d2")

PRELUDE = "".join(f"fn rd_{k}(d) {{ return d.{k} }}\n" for k in KEYS) + (
    "fn put_k(d, v) {\n  var e = d\n  e.k = v\n  return e\n}\n"
)

Env = dict[str, Any]
Step = tuple[str, Callable[[Env], None]]


def _ordered(d: dict[str, Any]) -> list[tuple[str, Any]]:
    return sorted(d.items(), key=lambda kv: kv[0].encode())


def _show(v: Any) -> str:
    if v is None:
        return "nil"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {_show(x)}" for k, x in _ordered(v)) + "}"
    return str(v)


keys = st.sampled_from(KEYS)
dicts = st.sampled_from(DICTS)
small = st.integers(0, 99)


def _literal(name: str, pairs: list[tuple[str, int]]) -> Step:
    text = ", ".join(f"{k}: {v}" for k, v in pairs)

    def run(env: Env) -> None:
        env[name] = dict(pairs)

    return (f"  {name} = {{{text}}}", run)


def _index_write(name: str, key: str, v: int) -> Step:
    def run(env: Env) -> None:
        env[name] = {**env[name], key: v}

    return (f'  {name}["{key}"] = {v}', run)


def _prop_write(name: str, key: str, v: int) -> Step:
    def run(env: Env) -> None:
        env[name] = {**env[name], key: v}

    return (f"  {name}.{key} = {v}", run)


def _helper_write(name: str, v: int) -> Step:
    def run(env: Env) -> None:
        env[name] = {**env[name], "k": v}

    return (f"  {name} = put_k({name}, {v})", run)


def _remove(name: str, key: str) -> Step:
    def run(env: Env) -> None:
        env[name] = {k: x for k, x in env[name].items() if k != key}

    return (f'  {name} = {name}.remove("{key}")', run)


def _plus(name: str, other: str) -> Step:
    def run(env: Env) -> None:
        env[name] = {**env[name], **env[other]}

    return (f"  {name} = {name} + {other}", run)


def _merge(name: str, other: str) -> Step:
    def run(env: Env) -> None:
        env[name] = {**env[name], **env[other]}

    return (f"  {name} = {name}.merge({other})", run)


def _alias(name: str, other: str) -> Step:
    def run(env: Env) -> None:
        env[name] = copy.deepcopy(env[other])

    return (f"  {name} = {other}", run)


def _prop_read(name: str, key: str) -> Step:
    def run(env: Env) -> None:
        env["log"].append(env[name].get(key))

    return (f"  log = log.push({name}.{key})", run)


def _helper_read(name: str, key: str) -> Step:
    def run(env: Env) -> None:
        env["log"].append(env[name].get(key))

    return (f"  log = log.push(rd_{key}({name}))", run)


def _walk(name: str) -> Step:
    def run(env: Env) -> None:
        env["log"].append([f"{k}={v}" for k, v in _ordered(env[name])])

    return (f'  log = log.push({name}.entries().map({{ e -> "${{e.key}}=${{e.value}}" }}))', run)


def _for_loop(name: str) -> Step:
    def run(env: Env) -> None:
        env["log"].append([k for k, _ in _ordered(env[name])] + [v for _, v in _ordered(env[name])])

    return (
        f"  var ks = []\n  var vs = []\n  for {{key: k, value: v}} in {name} {{ ks = ks.push(k)\n vs = vs.push(v) }}\n"
        "  log = log.push(ks + vs)",
        run,
    )


def _views(name: str) -> Step:
    def run(env: Env) -> None:
        d = env[name]
        env["log"].append([[k for k, _ in _ordered(d)], [v for _, v in _ordered(d)], _show(d), len(d)])

    return (f"  log = log.push([{name}.keys(), {name}.values(), to_string({name}), {name}.count()])", run)


def _compare(name: str, other: str) -> Step:
    def run(env: Env) -> None:
        env["log"].append(env[name] == env[other])

    return (f"  log = log.push({name} == {other})", run)


def _read_loop(name: str, key: str, n: int) -> Step:
    """The same site read n times while the dict changes under it."""

    def run(env: Env) -> None:
        for i in range(n):
            env["log"].append(env[name].get(key))
            env[name] = {**env[name], f"z{i}": i}

    return (
        f"  for i in 0 to {n} exclusive {{\n    log = log.push({name}.{key})\n"
        f'    {name}["z${{i}}"] = i\n  }}',
        run,
    )


step = st.one_of(
    st.builds(_literal, dicts, st.lists(st.tuples(keys, small), max_size=6)),
    st.builds(_index_write, dicts, keys, small),
    st.builds(_prop_write, dicts, keys, small),
    st.builds(_helper_write, dicts, small),
    st.builds(_remove, dicts, keys),
    st.builds(_plus, dicts, dicts),
    st.builds(_merge, dicts, dicts),
    st.builds(_alias, dicts, dicts),
    st.builds(_prop_read, dicts, keys),
    st.builds(_helper_read, dicts, keys),
    st.builds(_walk, dicts),
    st.builds(_for_loop, dicts),
    st.builds(_views, dicts),
    st.builds(_compare, dicts, dicts),
    st.builds(_read_loop, dicts, keys, st.integers(1, 12)),
)


def _source(steps: list[Step]) -> str:
    body = "\n".join(text for text, _ in steps)
    init = "".join(f"  var {d} = {{}}\n" for d in DICTS)
    return (
        PRELUDE
        + "pipeline default() {\n"
        + init
        + "  var log = []\n"
        + body
        + "\n  return {d0: d0, d1: d1, d2: d2, log: log}\n}\n"
    )


def _expected(steps: list[Step]) -> dict[str, Any]:
    env: Env = {d: {} for d in DICTS}
    env["log"] = []
    for _, run in steps:
        run(env)
    return env


def _check(result: Any, expected: dict[str, Any], source: str) -> None:
    assert result == expected, source
    for d in DICTS:
        # Conversion to Python keeps Harn's key order.
        assert list(result[d].items()) == _ordered(expected[d]), source


@settings(max_examples=150, deadline=None)
@given(st.lists(step, max_size=25))
def test_generated_dict_programs_match_a_key_ordered_model(steps: list[Step]) -> None:
    source = _source(steps)
    expected = _expected(steps)
    program = harnvm.compile(source, "dicts.harn")
    cached = harnvm.Vm().run(program)
    _check(cached, expected, source)
    uncached = harnvm.Vm(inline_caches=False).run(program)
    assert uncached == cached, source
    _check(uncached, expected, source)


@given(st.lists(st.tuples(st.text("abcXYZ_09é", min_size=1, max_size=4), small), max_size=40), st.randoms())
def test_inserts_in_any_order_walk_in_key_byte_order(pairs: list[tuple[str, int]], rnd: Any) -> None:
    """Keys inserted one by one (in a random order, some removed) walk in byte order."""
    model: dict[str, int] = {}
    lines = []
    for k, v in pairs:
        model[k] = v
        lines.append(f"  d[{k!r}] = {v}".replace("'", '"'))
    doomed = [k for k in model if rnd.random() < 0.3]
    for k in doomed:
        del model[k]
        lines.append(f'  d = d.remove("{k}")')
    source = "pipeline default() {\n  var d = {}\n" + "\n".join(lines) + "\n  return [d, d.keys(), to_string(d)]\n}\n"
    d, ks, shown = harnvm.run(source)
    assert list(d.items()) == _ordered(model)
    assert ks == [k for k, _ in _ordered(model)]
    assert shown == _show(model)
