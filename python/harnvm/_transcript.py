"""Synthetic transcripts for `transcript_project` tests and benchmarks.

`benchmark_transcript(tokens)` rebuilds the reference's benchmark fixture
(transcript-projection reference §8): Anthropic-format turns of a coding
agent, a failed-then-retried call every seventh turn, 4 chars per token.
At 10k / 50k / 100k tokens it has 103 / 485 / 967 messages.

`worst_case(policy, scale)` builds, for each policy whose reference loop is
quadratic (§9), an input that triggers that loop; `scale` multiplies its
size linearly.
"""

from __future__ import annotations

import json
from typing import Any

Message = dict[str, Any]

TOOLS = ("run_command", "read_file", "grep", "edit_file")
WORDS = ("checked", "warning", "resolved", "pending", "matched", "skipped", "compiled", "linked", "cached", "verified")
FIRST = {"role": "user", "content": "Fix the failing build across the workspace and report what changed."}
POLICIES = ("raw", "clean_tool_repair", "squash_failed_calls", "summary_prefix", "reachability_gc", "custom")
BENCH_SIZES = (10_000, 50_000, 100_000)


def filler(seed: int, at_least: int) -> str:
    """`"<word> <index> "` pieces from index `seed` on, until `at_least` chars."""
    out: list[str] = []
    length = 0
    index = seed
    while length < at_least:
        piece = f"{WORDS[index % 10]} {index} "
        out.append(piece)
        length += len(piece)
        index += 1
    return "".join(out)


def _compact_len(message: Message) -> int:
    return len(json.dumps(message, separators=(",", ":"), ensure_ascii=False))


def _turn(t: int) -> list[Message]:
    module = f"crates/module_{t % 23}/src/lib.rs"
    call = f"call_{t:05d}"
    tool = TOOLS[t % 4]
    messages: list[Message] = [
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": f"Working step {t}: inspecting {module} next."},
                {"type": "tool_use", "id": call, "name": tool, "input": {"path": module, "query": f"symbol_{t}"}},
            ],
        },
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call, "content": filler(t, 420 + (t % 5) * 90)}]},
    ]
    if t % 7 == 3:
        messages += [
            {"role": "assistant", "content": [{"type": "tool_use", "id": f"{call}_fail", "name": tool, "input": {"path": "does/not/exist.rs"}}]},
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": f"{call}_fail",
                        "is_error": True,
                        "content": "Error: file not found: does/not/exist.rs",
                    }
                ],
            },
            {"role": "assistant", "content": [{"type": "tool_use", "id": f"{call}_retry", "name": tool, "input": {"path": module}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": f"{call}_retry", "content": filler(t + 1, 380)}]},
        ]
    return messages


def benchmark_transcript(tokens: int) -> list[Message]:
    """The reference's fixture at `tokens` (4 chars per token; the first message is not counted)."""
    messages: list[Message] = [dict(FIRST)]
    counted = 0
    t = 0
    while counted < tokens * 4:
        for m in _turn(t):
            messages.append(m)
            counted += _compact_len(m)
        t += 1
    return messages


def counted_chars(messages: list[Message]) -> int:
    """The fixture's size measure: compact JSON length of every message but the first."""
    return sum(_compact_len(m) for m in messages[1:])


def worst_case(policy: str, scale: int) -> tuple[list[Message], dict[str, Any]]:
    """(messages, options) that make the reference's loop for `policy` quadratic.

    * clean_tool_repair: `scale` distinct tools, each failing once, never
      succeeding (pass 2 rescans every assistant message per tool name);
    * squash_failed_calls: one assistant turn with `scale` calls, each
      answered after a long run of user messages (each call rescans the run);
    * reachability_gc: `scale` orphan tool results of 600 chars with no id
      and no name, `root_window: 1` (each walks back to index 0);
    * custom: `scale` messages, the projector returns as many synthetic
      messages that match none (each miss scans to the end); the options
      hold `projector: "synthetic"` for the caller to replace;
    * raw and summary_prefix have no quadratic path: the benchmark fixture.
    """
    if policy == "clean_tool_repair":
        messages: list[Message] = [dict(FIRST)]
        for i in range(scale):
            messages.append({"role": "assistant", "content": "", "tool_calls": [{"id": f"c{i}", "name": f"tool_{i}", "arguments": {}}]})
            messages.append({"role": "tool", "tool_call_id": f"c{i}", "name": f"tool_{i}", "content": "Error: no"})
        return messages, {"policy": policy}
    if policy == "squash_failed_calls":
        calls = [{"id": f"c{i}", "name": "probe", "arguments": {}} for i in range(scale)]
        messages = [dict(FIRST), {"role": "assistant", "content": "", "tool_calls": calls}]
        messages += [{"role": "user", "content": f"waiting {i}"} for i in range(scale)]
        messages += [{"role": "tool", "tool_call_id": f"c{i}", "name": "probe", "content": "Error: no"} for i in range(scale)]
        return messages, {"policy": policy}
    if policy == "reachability_gc":
        body = "z" * 600
        messages = [dict(FIRST)] + [{"role": "tool", "content": body} for _ in range(scale)] + [{"role": "user", "content": "done"}]
        return messages, {"policy": policy, "root_window": 1}
    if policy == "custom":
        messages = [{"role": "user", "content": f"message {i}"} for i in range(scale)]
        return messages, {"policy": policy, "projector": "synthetic"}
    if policy in ("raw", "summary_prefix"):
        return benchmark_transcript(scale * 10), {"policy": policy}
    raise ValueError(f"unknown policy {policy!r}")


def synthetic_projector(messages: list[Any]) -> list[Message]:
    """The custom worst case's projector: one unmatched message per input message."""
    return [{"role": "system", "content": f"synthetic {i}"} for i in range(len(messages))]
