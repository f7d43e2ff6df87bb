"""`harnvm.transcript_project` from Python: worked examples through the
Python API, the fixture generator, and hypothesis properties (raw is the
identity; no message appears that was not in the input, except the
summary; the hash is a pure function of the input; the policies the
reference makes idempotent are)."""

from __future__ import annotations

import hashlib
import json
import random
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import harnvm
from harnvm._transcript import BENCH_SIZES, benchmark_transcript, counted_chars, random_transcript, synthetic_projector, worst_case

E3 = [
    {"role": "user", "content": "run it"},
    {"role": "assistant", "content": "", "tool_calls": [{"id": "call_1", "name": "run", "arguments": {}}]},
    {"role": "tool", "tool_call_id": "call_1", "name": "run", "content": "Error: missing arg", "is_error": True},
    {"role": "assistant", "content": "", "tool_calls": [{"id": "call_2", "name": "run", "arguments": {"arg": "x"}}]},
    {"role": "tool", "tool_call_id": "call_2", "name": "run", "content": "ok"},
]


def canonical_hash(messages: list[Any]) -> str:
    """The reference's prefix hash for float-free messages (§5.3)."""
    text = json.dumps(messages, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def test_e1_raw_from_a_message_list() -> None:
    r = harnvm.transcript_project([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hey"}])
    assert r["prefix_hash"] == "sha256:d0cadcf58715725099c29327fbf5aedf83c82f85323344650901377b6e4e4c8b"
    assert (r["policy"], r["reason"], r["kept_indices"], r["dropped_indices"]) == ("raw", "raw_passthrough", [0, 1], [])
    assert sorted(r) == sorted(r["event"]["metadata"].keys() - {"respects_provider_signatures", "summary_keep_last"} | {"messages", "event"})
    assert len(r) == 16
    assert r["event"]["metadata"]["summary_keep_last"] is None


def test_e3_clean_tool_repair_with_positional_and_keyword_options() -> None:
    for r in (harnvm.transcript_project(E3, "clean_tool_repair"), harnvm.transcript_project({"_type": "transcript", "messages": E3}, policy="clean_tool_repair")):
        assert r["dropped_indices"] == [1, 2]
        assert r["prefix_hash"] == "sha256:bece1ab62bbf6286472f57c2ce9d0bd2c28a256b5e70da68c89f59f9a11507ce"
    r = harnvm.transcript_project(E3, {"policy": "clean_tool_repair"}, reason="mine")
    assert r["reason"] == "mine"


def test_e15_custom_with_a_python_projector() -> None:
    msgs = [{"role": "user", "content": "q1"}, {"role": "assistant", "content": "a1"}, {"role": "user", "content": "q2"}, {"role": "assistant", "content": "a2"}]
    r = harnvm.transcript_project(msgs, policy="custom", projector=lambda m: [{"role": "system", "content": "be brief"}, m[2], m[3]])
    assert (r["kept_indices"], r["dropped_indices"]) == ([2, 3], [0, 1])
    assert r["prefix_hash"] == "sha256:a1457b45d9dfa5941a53653a58e1cecccde1b5f1729f1483917dd3391ce9dc01"
    r = harnvm.transcript_project(msgs, policy="custom", custom=lambda m: {"messages": m, "reason": "noop", "kept_indices": [3, -1]})
    assert (r["reason"], r["kept_indices"], r["dropped_indices"]) == ("noop", [3, 0], [1, 2])
    assert r["prefix_hash"] == "sha256:0931c25447dad57fa4eead7751ed7e973627103c4e5278a8b046cb604fbf3949"


def test_python_projector_errors_propagate() -> None:
    def boom(_: Any) -> Any:
        raise KeyError("mine")

    with pytest.raises(KeyError):
        harnvm.transcript_project([], policy="custom", projector=boom)
    with pytest.raises(harnvm.HarnRuntimeError, match="custom projector must return a list or dict"):
        harnvm.transcript_project([], policy="custom", projector=lambda m: 42)


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (([{"role": "user"}],), {}, None),  # a list is wrapped, so this one succeeds
        (({"messages": []},), {}, "first argument must be a transcript"),
        (([], 5), {}, "options must be a dict, string, or nil"),
        (([], "Raw"), {}, "unknown policy 'Raw'"),
        (([],), {"policy": "custom"}, "policy 'custom' requires a projector closure"),
        (([],), {"policy": "custom", "projector": "not callable"}, "policy 'custom' requires a projector closure"),
        (([],), {"policy": "reachability_gc", "root_window": "3"}, "`root_window` must be a non-negative integer, got string"),
        (([],), {"policy": "reachability_gc", "keep_last": -1}, "`keep_last` must be a non-negative integer"),
        (([],), {"policy": "reachability_gc", "require_barrier": "yes"}, "`require_barrier` must be a bool, got string"),
    ],
)
def test_e17_errors_from_python(args: tuple[Any, ...], kwargs: dict[str, Any], message: str | None) -> None:
    if message is None:
        harnvm.transcript_project(*args, **kwargs)
        return
    with pytest.raises(harnvm.HarnRuntimeError) as info:
        harnvm.transcript_project(*args, **kwargs)
    assert f"transcript_project: {message}" in str(info.value)


def test_messages_not_a_list_is_a_thrown_string() -> None:
    with pytest.raises(harnvm.HarnError, match="transcript.messages must be a list"):
        harnvm.transcript_project({"_type": "transcript", "messages": 5})


def test_benchmark_fixture_sizes_match_the_reference() -> None:
    sizes = {tokens: (len(m), counted_chars(m)) for tokens in BENCH_SIZES for m in [benchmark_transcript(tokens)]}
    assert sizes == {10_000: (103, 41_730), 50_000: (485, 200_452), 100_000: (967, 400_841)}


def test_fixture_is_left_unchanged_by_the_benchmarked_policies() -> None:
    m = benchmark_transcript(10_000)
    raw = harnvm.transcript_project(m)
    for policy in ("clean_tool_repair", "squash_failed_calls", "reachability_gc"):
        r = harnvm.transcript_project(m, policy)
        assert (r["prefix_hash"], r["dropped_count"], r["redacted_count"]) == (raw["prefix_hash"], 0, 0)


def test_worst_cases_do_what_they_claim() -> None:
    m, o = worst_case("clean_tool_repair", 20)
    assert harnvm.transcript_project(m, **o)["dropped_count"] == 0  # no tool ever succeeds
    m, o = worst_case("squash_failed_calls", 20)
    assert harnvm.transcript_project(m, **o)["dropped_count"] == 21  # every result and the empty turn
    m, o = worst_case("reachability_gc", 20)
    assert harnvm.transcript_project(m, **o)["redacted_count"] == 20  # every orphan reclaimed
    m, o = worst_case("custom", 20)
    r = harnvm.transcript_project(m, policy="custom", projector=synthetic_projector)
    assert (r["kept_count"], r["dropped_count"]) == (0, 20)


transcripts = st.builds(lambda seed, size: random_transcript(random.Random(seed), size), st.integers(0, 2**32), st.integers(0, 30))
POLICIES = ["raw", "clean_tool_repair", "squash_failed_calls", "summary_prefix", "reachability_gc"]


@given(transcripts)
def test_raw_is_the_identity(messages: list[Any]) -> None:
    r = harnvm.transcript_project(messages)
    assert r["messages"] == messages
    assert r["kept_indices"] == list(range(len(messages)))
    assert r["prefix_hash"] == canonical_hash(messages)


@given(transcripts, st.sampled_from(POLICIES), st.integers(0, 10), st.booleans())
def test_no_message_appears_that_was_not_in_the_input(messages: list[Any], policy: str, keep_last: int, respect: bool) -> None:
    opts = {"policy": policy, "respect_provider_signatures": respect, "min_chars": 30, "root_window": keep_last}
    if policy == "summary_prefix":
        opts = {"policy": policy, "keep_last": keep_last, "respect_provider_signatures": respect}
    r = harnvm.transcript_project(messages, **opts)
    out = r["messages"]
    if out and isinstance(out[0], dict) and out[0].get("_harn_projection", {}).get("synthetic"):
        assert r["policy"] == "summary_prefix"
        out = out[1:]
    assert len(out) == len(r["kept_indices"])
    for i, m in zip(r["kept_indices"], out):
        if isinstance(m, dict) and m.get("_harn_projection", {}).get("policy") == "reachability_gc":
            # A redacted copy of message i: same keys, bodies replaced.
            assert isinstance(messages[i], dict) and messages[i].keys() | {"_harn_projection"} == m.keys()
        else:
            assert m == messages[i]
    assert r["prefix_hash"] == canonical_hash(r["messages"])


@given(transcripts, st.sampled_from(POLICIES))
def test_the_hash_is_a_pure_function_of_the_input(messages: list[Any], policy: str) -> None:
    a = harnvm.transcript_project(messages, policy)
    b = harnvm.transcript_project(json.loads(json.dumps(messages)), policy)
    a["event"].pop("id")
    b["event"].pop("id")
    assert a == b
    # Projecting the projection with raw hashes the same messages.
    assert harnvm.transcript_project(a["messages"])["prefix_hash"] == a["prefix_hash"]


@given(transcripts, st.integers(0, 10))
def test_idempotent_policies(messages: list[Any], window: int) -> None:
    # reachability_gc never removes messages, and a replacement body (about
    # 230 chars) is below the default min_chars, so a second pass changes nothing.
    once = harnvm.transcript_project(messages, policy="reachability_gc", root_window=window)
    twice = harnvm.transcript_project(once["messages"], policy="reachability_gc", root_window=window)
    assert twice["messages"] == once["messages"]
    # summary_prefix keeping everything is the identity.
    r = harnvm.transcript_project(messages, policy="summary_prefix", keep_last=len(messages))
    assert r["messages"] == messages and r["reason"] == "summary_prefix_noop_short_history"
