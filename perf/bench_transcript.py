"""pyperf suite: ``transcript_project`` per policy and size, and on worst cases.

    python perf/bench_transcript.py -o transcript.json [pyperf options]

Each benchmark runs its ``loops`` projections inside Rust
(``harnvm._native._transcript_bench``, rust/harnvm-py/src/transcript.rs), timed
as the reference's ``project_for_bench``: option parsing, the JSON view of the
messages, the policy, the provider-safety guard, the prefix hash and the result
dict with its event. The input is converted from Python once, untimed.

* ``transcript.<policy>.tokens_<N>``: the reference's benchmark fixture
  (``harnvm._transcript.benchmark_transcript``) at 10k, 50k and 100k tokens, for
  every policy with default options (``custom``: a projector that returns the
  messages, standing in Rust for a closure);
* ``transcript.worst.<policy>.x<S>``: the input that makes the reference's loop
  for that policy quadratic (``worst_case``), at scale S and 10 × S.

``python -m perf --suites transcript`` also times the 0.9.11 oracle on the same
fixture and prints the table (``perf/transcript_report.py``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pyperf  # noqa: E402

from harnvm import _native  # noqa: E402
from harnvm._transcript import BENCH_SIZES, POLICIES, benchmark_transcript, worst_case  # noqa: E402

WORST_POLICIES = ("clean_tool_repair", "squash_failed_calls", "reachability_gc", "custom")
WORST_SCALES = (200, 2000)


def timer(messages: list[object], options: dict[str, object]) -> Callable[[int], float]:
    """A pyperf time function: ``loops`` projections in Rust, in seconds."""
    opts = dict(options)
    projector = None
    if opts.get("policy") == "custom":
        projector = str(opts.pop("projector", "identity"))
    return lambda loops: _native._transcript_bench(messages, opts, loops, projector) / 1e9


def benchmarks() -> list[tuple[str, Callable[[int], float]]]:
    out = []
    for tokens in BENCH_SIZES:
        messages = benchmark_transcript(tokens)
        for policy in POLICIES:
            out.append((f"transcript.{policy}.tokens_{tokens}", timer(messages, {"policy": policy})))
    for policy in WORST_POLICIES:
        for scale in WORST_SCALES:
            messages, options = worst_case(policy, scale)
            out.append((f"transcript.worst.{policy}.x{scale}", timer(messages, options)))
    return out


def main() -> None:
    runner = pyperf.Runner()
    runner.metadata["description"] = "transcript_project per policy and size (ns per projection, in Rust)"
    for name, fn in benchmarks():
        runner.bench_time_func(name, fn)


if __name__ == "__main__":
    main()
