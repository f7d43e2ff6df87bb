"""Reads pyperf JSON files and prints the ratio table: harnvm/CPython and
harnvm/Lua (and harnvm/Starlark) per workload, plus geometric means.
Optionally draws the same table as a PNG bar chart."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pyperf


@dataclass
class Row:
    workload: str
    seconds: dict[str, float]  # runtime -> median seconds per run

    def ratio(self, peer: str) -> float | None:
        mine, theirs = self.seconds.get("harnvm"), self.seconds.get(peer)
        if mine is None or theirs is None or theirs == 0:
            return None
        return mine / theirs


def load_rows(path: Path) -> list[Row]:
    suite = pyperf.BenchmarkSuite.load(str(path))
    table: dict[str, dict[str, float]] = {}
    for bench in suite.get_benchmarks():
        workload, _, runtime = bench.get_name().rpartition(".")
        table.setdefault(workload, {})[runtime] = bench.median()
    return [Row(w, table[w]) for w in sorted(table)]


def geomean(values: list[float]) -> float | None:
    values = [v for v in values if v > 0]
    if not values:
        return None
    return math.exp(sum(math.log(v) for v in values) / len(values))


PEERS = ("cpython", "lua", "starlark")


def format_table(rows: list[Row]) -> str:
    def ms(v: float | None) -> str:
        return "-" if v is None else f"{v * 1000:.2f}"

    def ratio(v: float | None) -> str:
        return "-" if v is None else f"{v:.2f}x"

    header = "| workload | harnvm ms | CPython ms | Lua ms | Starlark ms | harnvm/CPython | harnvm/Lua | harnvm/Starlark |"
    lines = [header, "|" + "---|" * 8]
    for r in rows:
        s = r.seconds
        lines.append(
            f"| {r.workload} | {ms(s.get('harnvm'))} | {ms(s.get('cpython'))} | {ms(s.get('lua'))} | {ms(s.get('starlark'))} "
            f"| {ratio(r.ratio('cpython'))} | {ratio(r.ratio('lua'))} | {ratio(r.ratio('starlark'))} |"
        )
    means = [geomean([x for x in (r.ratio(p) for r in rows) if x is not None]) for p in PEERS]
    lines.append(f"| **geometric mean** | | | | | {ratio(means[0])} | {ratio(means[1])} | {ratio(means[2])} |")
    return "\n".join(lines)


def plot(rows: list[Row], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(11, 5))
    width = 0.27
    xs = range(len(rows))
    for k, peer in enumerate(PEERS):
        vals = [r.ratio(peer) or 0.0 for r in rows]
        ax.bar([x + (k - 1) * width for x in xs], vals, width, label=f"harnvm / {peer}")
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xticks(list(xs))
    ax.set_xticklabels([r.workload for r in rows], rotation=35, ha="right")
    ax.set_yscale("log")
    ax.set_ylabel("time ratio (lower is better for harnvm)")
    ax.set_title("harnvm time relative to peers (median of pyperf samples)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
