"""The transcript suite's table: harnvm's time per projection (from the
pyperf JSON) beside the 0.9.11 oracle's own, measured in the same run, and
the linearity checks (100k-token cost / 10k-token cost; worst case at 10 × size).

The oracle is timed as the reference note did: the fixture is rebuilt inside
a Harn program, then ``transcript_project(t, {policy: P})`` runs in batches
timed with ``elapsed()`` (a millisecond clock); the figure is the median batch
divided by its calls. It includes builtin dispatch, which harnvm's Rust-side
figure does not; both include option parsing, the projection and the result.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import tempfile
from pathlib import Path

from harnvm._transcript import BENCH_SIZES, POLICIES, benchmark_transcript

ORACLE = Path(__file__).resolve().parent.parent.parent / "shared" / "oracle" / "harn"
ORACLE_POLICIES = ("raw", "clean_tool_repair", "squash_failed_calls", "summary_prefix", "reachability_gc", "custom")
BATCHES = 5


def _harn_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def oracle_ms(quick: bool = False) -> dict[tuple[str, int], float] | None:
    """(policy, tokens) -> oracle ms per projection, or None without the oracle."""
    if not ORACLE.exists():
        return None
    lines = []
    for tokens in BENCH_SIZES:
        data = json.dumps(benchmark_transcript(tokens), ensure_ascii=True, separators=(",", ":"))
        calls = 1 if quick else max(10, 4_000_000 // (tokens * 4) * 4)
        lines.append(f"  let t{tokens} = {{_type: \"transcript\", messages: json_parse({_harn_string(data)})}}")
        for policy in ORACLE_POLICIES:
            opts = '{policy: "custom", projector: { m -> m }}' if policy == "custom" else f'{{policy: "{policy}"}}'
            lines.append(f"  transcript_project(t{tokens}, {opts})")
            lines.append(f"  for b in 0 to {BATCHES} exclusive {{")
            lines.append("    let start = elapsed()")
            lines.append(f"    for i in 0 to {calls} exclusive {{ transcript_project(t{tokens}, {opts}) }}")
            lines.append(f'    harness.stdio.println("{policy} {tokens} {calls} " + to_string(elapsed() - start))')
            lines.append("  }")
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "oracle_bench.harn"
        src.write_text("fn main(harness: Harness) {\n" + "\n".join(lines) + "\n}\n")
        done = subprocess.run([str(ORACLE), "run", str(src)], capture_output=True, text=True, timeout=1800, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise RuntimeError(f"oracle run failed: {done.stderr}")
    per_batch: dict[tuple[str, int], list[float]] = {}
    for line in done.stdout.splitlines():
        policy, tokens, calls, ms = line.split()
        per_batch.setdefault((policy, int(tokens)), []).append(float(ms) / int(calls))
    return {k: statistics.median(v) for k, v in per_batch.items()}


def format_table(medians: dict[str, float], oracle: dict[tuple[str, int], float] | None) -> str:
    def ms(name: str) -> float | None:
        v = medians.get(name)
        return None if v is None else v * 1e3

    def cell(v: float | None, digits: int = 3) -> str:
        return "-" if v is None else f"{v:.{digits}f}"

    out = ["| policy | tokens | harnvm ms | oracle ms | oracle / harnvm |", "|---|---:|---:|---:|---:|"]
    for policy in POLICIES:
        for tokens in BENCH_SIZES:
            mine = ms(f"transcript.{policy}.tokens_{tokens}")
            theirs = None if oracle is None else oracle.get((policy, tokens))
            speedup = None if mine is None or theirs is None or mine == 0 else theirs / mine
            out.append(f"| {policy} | {tokens // 1000}k | {cell(mine)} | {cell(theirs, 2)} | {cell(speedup, 1)} |")
    out += ["", "| linearity | ratio | target |", "|---|---:|---|"]
    for policy in POLICIES:
        a, b = ms(f"transcript.{policy}.tokens_{BENCH_SIZES[0]}"), ms(f"transcript.{policy}.tokens_{BENCH_SIZES[-1]}")
        ratio = None if a is None or b is None or a == 0 else b / a
        out.append(f"| {policy}: 100k / 10k tokens | {cell(ratio, 2)} | <= 10 {'met' if ratio is not None and ratio <= 10 else 'NOT met'} |")
    worst = sorted({n.split(".")[2] for n in medians if n.startswith("transcript.worst.")})
    for policy in worst:
        scales = sorted(int(n.rsplit(".x", 1)[1]) for n in medians if n.startswith(f"transcript.worst.{policy}.x"))
        if len(scales) >= 2:
            a, b = ms(f"transcript.worst.{policy}.x{scales[0]}"), ms(f"transcript.worst.{policy}.x{scales[-1]}")
            ratio = None if a is None or b is None or a == 0 else b / a
            label = f"{policy} worst case: x{scales[-1]} / x{scales[0]} ({cell(a)} -> {cell(b)} ms)"
            out.append(f"| {label} | {cell(ratio, 2)} | <= 10 {'met' if ratio is not None and ratio <= 10 else 'NOT met'} |")
    if oracle is None:
        out.append(f"\n(oracle not found at {ORACLE}: no reference figures)")
    return "\n".join(out)
