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


_PATHS = ("src/lib.rs", "src/main.rs", "docs/notes.md", "crates/core/src/vm.rs", "README", "C:\\temp\\x.txt")
_BODIES = (
    "ok",
    "Error: boom",
    "error:lower",
    "  Tool error: timeout",
    "failed: exit 1",
    "Error without colon",
    'prefix {"is_error":true} suffix',
    "3 matches",
    "",
)


def _body(rng: Any) -> Any:
    kind = rng.randrange(6)
    if kind == 0:
        path = rng.choice(_PATHS)
        return f"{path}\n" + f"line of {rng.choice(('old', 'live', 'CamelCase', 'snake_case_word'))} text\n" * rng.randrange(10, 60)
    if kind == 1:
        return {"is_error": rng.random() < 0.5, "msg": rng.choice(_BODIES), "n": rng.randrange(100)}
    if kind == 2:
        return [{"type": "text", "text": rng.choice(_BODIES)}]
    if kind == 3:
        return None
    return rng.choice(_BODIES)


def random_transcript(rng: Any, size: int) -> list[Any]:
    """A random message list mixing everything projection looks at: OpenAI
    and Anthropic calls and results, ids and names present or missing or
    duplicated, every error marker, big bodies with identifiers, signed
    reasoning, orphans, prose, and non-dict messages. `rng` is a
    `random.Random`; JSON-native values only, no floats."""
    messages: list[Any] = []
    ids = [f"call_{i}" for i in range(6)]
    names = ["read", "run", "grep", None]
    for _ in range(size):
        kind = rng.randrange(16)
        if kind >= 12:
            messages += _coherent_turn(rng, ["read", "run", "grep"])
        elif kind <= 2:
            calls = []
            for _ in range(rng.randrange(1, 4)):
                call: dict[str, Any] = {"arguments": {"path": rng.choice(_PATHS)}}
                if rng.random() < 0.8:
                    call["id" if rng.random() < 0.8 else "tool_call_id"] = rng.choice(ids)
                name = rng.choice(names)
                if name is not None:
                    if rng.random() < 0.8:
                        call["name"] = name
                    else:
                        call["function"] = {"name": name}
                calls.append(call)
            content: Any = rng.choice(("", "  ", "Let me look.", [{"type": "text", "text": " "}], None))
            m: dict[str, Any] = {"role": "assistant", "content": content, "tool_calls": calls}
            if rng.random() < 0.15:
                m["content"] = [{"type": "thinking", "thinking": "hmm", "signature": rng.choice(("sig", None))}]
            messages.append(m)
        elif kind == 3:
            blocks: list[Any] = [{"type": "text", "text": rng.choice(("", "Working on src/lib.rs", " "))}]
            for _ in range(rng.randrange(1, 3)):
                blocks.append({"type": "tool_use", "id": rng.choice(ids), "name": rng.choice(names[:3]), "input": {"path": rng.choice(_PATHS)}})
            if rng.random() < 0.2:
                blocks.insert(0, {"type": "redacted_thinking", "data": "x"})
            messages.append({"role": "assistant", "content": blocks})
        elif kind <= 6:
            r: dict[str, Any] = {"role": rng.choice(("tool", "tool", "tool_result")), "content": _body(rng)}
            if rng.random() < 0.85:
                r[rng.choice(("tool_call_id", "tool_call_id", "tool_use_id"))] = rng.choice(ids)
            name = rng.choice(names)
            if name is not None:
                r["name"] = name
            marker = rng.randrange(8)
            if marker == 0:
                r["is_error"] = rng.choice((True, False))
            elif marker == 1:
                r["error"] = True
            elif marker == 2:
                r["status"] = rng.choice(("error", "failed", "rejected", "exception", "denied", "ok"))
            if rng.random() < 0.05:
                r["thinking_signature"] = "s"
            if rng.random() < 0.1:
                del r["content"]
            messages.append(r)
        elif kind == 7:
            blocks = []
            for _ in range(rng.randrange(1, 3)):
                b: dict[str, Any] = {"type": "tool_result", "tool_use_id": rng.choice(ids), "content": _body(rng)}
                if rng.random() < 0.2:
                    b["is_error"] = True
                blocks.append(b)
            messages.append({"role": "user", "content": blocks})
        elif kind <= 9:
            messages.append({"role": rng.choice(("user", "system", "developer", "Assistant")), "content": rng.choice(("hi", "see src/lib.rs", "next", "Continue"))})
        else:
            messages.append(rng.choice(("plain string", 42, None, ["a", 1], {"no_role": True})))
    return messages


def _coherent_turn(rng: Any, names: list[str]) -> list[Any]:
    """An assistant turn whose calls are answered in order (OpenAI format),
    some failing, matched by id or (id-less) by name."""
    calls = []
    results = []
    for _ in range(rng.randrange(1, 3)):
        name = rng.choice(names)
        call: dict[str, Any] = {"name": name, "arguments": {}}
        result: dict[str, Any] = {"role": "tool", "name": name}
        if rng.random() < 0.8:
            call["id"] = result["tool_call_id"] = f"c{rng.randrange(1000)}"
        result["content"] = rng.choice(("Error: bad input", "ok", "done"))
        calls.append(call)
        results.append(result)
    text = rng.choice(("", "Trying."))
    return [{"role": "assistant", "content": text, "tool_calls": calls}, *results]
