"""Differential test of `transcript_project` against the harn 0.9.11 CLI.

The same Harn program body runs on harnvm and on the oracle (wrapped as a
0.7-style pipeline and as a 0.9 `fn main(harness)` respectively); every
projection's result is printed as JSON and compared whole, except
`event.id` (a fresh UUID v7). Inputs: random transcripts for every policy
and option variant, and the reference's benchmark fixture at 10k tokens.
The oracle is looked up beside the checkout (`../shared/oracle/harn`), as
CI has it; without it the test is skipped.
"""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path
from typing import Any

import pytest

import harnvm
from harnvm._transcript import benchmark_transcript, random_transcript, worst_case

ORACLE = Path(__file__).resolve().parent.parent.parent / "shared" / "oracle" / "harn"

pytestmark = pytest.mark.skipif(not ORACLE.exists(), reason=f"the harn 0.9.11 oracle is not at {ORACLE}")

# (options as Harn source). Every policy, the aliases, and the options that change results.
OPTIONS = [
    "nil",
    '{policy: "identity", reason: "preview"}',
    '"clean_tool_repair"',
    '{policy: "clean_tool_repair", respect_provider_signatures: false}',
    '"squash_failed_calls"',
    '{kind: "squash_failed_calls", respect_provider_signatures: false, reason: "sq"}',
    '"summary_prefix"',
    '{policy: "summary_prefix", keep_last: 3}',
    '{policy: "summary_prefix", keep_last: 5, summary: "S", respect_provider_signatures: false}',
    '"reachability_gc"',
    '{policy: "context_gc", root_window: 2, min_chars: 40}',
    '{policy: "tool_result_gc", root_window: 0, min_chars: 0, respect_provider_signatures: false}',
    '{policy: "reachability_gc", recent_messages: 3, min_reclaim_chars: 100, roots: ["src/main.rs", {a: "README"}], '
    'require_barrier: true, barrier_refs: ["v1"], respect_provider_signatures: false}',
    '{policy: "reachability_gc", keep_last: 1, tool_result_min_chars: 10, require_write_barrier: true}',
    '{policy: "custom", projector: { msgs -> {messages: msgs, reason: "r", dropped_indices: [0, -2]} }}',
    '{policy: "custom", projector: { msgs -> [{role: "system", content: "sum"}] + msgs + msgs }}',
    '{policy: "custom", custom: { msgs -> {messages: [{role: "system", content: "only"}], kept_indices: [2, 1]} }, '
    "respect_provider_signatures: false}",
]


def harn_string(text: str) -> str:
    """A Harn string literal for `text` (ASCII JSON, so only quotes and backslashes need escaping)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def program_body(transcripts: list[list[Any]], options: list[str], out: str) -> str:
    lines = []
    for i, messages in enumerate(transcripts):
        data = json.dumps(messages, ensure_ascii=True, separators=(",", ":"))
        assert "$" not in data
        lines.append(f"  let t{i} = {{_type: \"transcript\", messages: json_parse({harn_string(data)})}}")
        for opt in options:
            lines.append(f"  {out}(json_stringify(transcript_project(t{i}, {opt})))")
    return "\n".join(lines)


def run_both(tmp_path: Path, transcripts: list[list[Any]], options: list[str]) -> tuple[list[Any], list[Any]]:
    ours: list[str] = []
    harnvm.run("pipeline default() {\n" + program_body(transcripts, options, "println") + "\n}", output=ours.append)
    src = tmp_path / "oracle.harn"
    src.write_text("fn main(harness: Harness) {\n" + program_body(transcripts, options, "harness.stdio.println") + "\n}\n")
    done = subprocess.run([str(ORACLE), "run", str(src)], capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    parse = lambda text: [json.loads(line) for line in text.splitlines() if line.strip()]  # noqa: E731
    return parse("".join(ours)), parse(done.stdout)


def without_event_id(result: dict[str, Any]) -> dict[str, Any]:
    event = dict(result["event"])
    assert len(event.pop("id")) == 36
    return {**result, "event": event}


def compare(ours: list[Any], theirs: list[Any], labels: list[str]) -> None:
    assert len(ours) == len(theirs) == len(labels)
    for got, want, label in zip(ours, theirs, labels):
        assert without_event_id(got) == without_event_id(want), label


def test_random_transcripts_match_the_oracle(tmp_path: Path) -> None:
    rng = random.Random(17)
    transcripts = [random_transcript(rng, rng.randrange(0, 40)) for _ in range(30)]
    ours, theirs = run_both(tmp_path, transcripts, OPTIONS)
    compare(ours, theirs, [f"transcript {i} options {o}" for i in range(len(transcripts)) for o in OPTIONS])


def test_benchmark_fixture_and_worst_cases_match_the_oracle(tmp_path: Path) -> None:
    options = ['"raw"', '"clean_tool_repair"', '"squash_failed_calls"', '"summary_prefix"', '"reachability_gc"',
               '{policy: "reachability_gc", root_window: 1}', '{policy: "reachability_gc", root_window: 400, min_chars: 0}']
    transcripts = [benchmark_transcript(10_000)]
    transcripts += [worst_case(p, 60)[0] for p in ("clean_tool_repair", "squash_failed_calls", "reachability_gc")]
    ours, theirs = run_both(tmp_path, transcripts, options)
    compare(ours, theirs, [f"transcript {i} options {o}" for i in range(len(transcripts)) for o in options])
    # The reference's claim (§8): nothing is dropped or redacted on the fixture.
    assert all(r["dropped_count"] == 0 and r["redacted_count"] == 0 for r in ours[:3] + ours[4:5])
