"""Reads pyperf JSON files and prints the ratio table: harnvm/CPython and
harnvm/Lua (and harnvm/Starlark) per workload, plus geometric means.
Optionally draws the same table as a PNG bar chart."""

from __future__ import annotations

import statistics
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
    return statistics.geometric_mean(values)


PEERS = ("cpython", "lua", "starlark")


NAMES = {"cpython": "CPython", "lua": "Lua", "starlark": "Starlark"}


def format_table(rows: list[Row], peers: tuple[str, ...] = PEERS) -> str:
    def ms(v: float | None) -> str:
        return "-" if v is None else f"{v * 1000:.2f}"

    def ratio(v: float | None) -> str:
        return "-" if v is None else f"{v:.2f}x"

    header = "| workload | harnvm ms | " + " | ".join(f"{NAMES[p]} ms" for p in peers) + " | "
    header += " | ".join(f"harnvm/{NAMES[p]}" for p in peers) + " |"
    lines = [header, "|" + "---|" * (2 + 2 * len(peers))]
    for r in rows:
        s = r.seconds
        lines.append(
            f"| {r.workload} | {ms(s.get('harnvm'))} | " + " | ".join(ms(s.get(p)) for p in peers) + " | "
            + " | ".join(ratio(r.ratio(p)) for p in peers) + " |"
        )
    means = [geomean([x for x in (r.ratio(p) for r in rows) if x is not None]) for p in peers]
    lines.append("| **geometric mean** | " + "| " * (1 + len(peers)) + " | ".join(ratio(m) for m in means) + " |")
    return "\n".join(lines)


def plot(rows: list[Row], out: Path, peers: tuple[str, ...] = PEERS) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(11, 5))
    width = 0.27
    xs = range(len(rows))
    for k, peer in enumerate(peers):
        vals = [r.ratio(peer) or 0.0 for r in rows]
        ax.bar([x + (k - (len(peers) - 1) / 2) * width for x in xs], vals, width, label=f"harnvm / {peer}")
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


# ---------------------------------------------------------------------------
# The internals and crossing suites: tables and target checks (reported,
# never asserted: the targets of issue 7 are checked here, not in tests).


def load_medians(path: Path) -> dict[str, float]:
    """Benchmark name -> median seconds (per inner loop) of a pyperf JSON file."""
    suite = pyperf.BenchmarkSuite.load(str(path))
    return {bench.get_name(): bench.median() for bench in suite.get_benchmarks()}


def _ns(v: float | None) -> str:
    return "-" if v is None else f"{v * 1e9:.2f}"


def _check(ok: bool | None) -> str:
    return "n/a" if ok is None else ("met" if ok else "NOT met")


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b <= 0 else a / b


def format_internals(medians: dict[str, float], sizes: tuple[int, ...] = (8, 32, 128, 512)) -> str:
    """Slot-lookup, peek and closure-environment tables plus the target checks."""
    m = medians.get
    lines = ["| slot lookup, ns per lookup | " + " | ".join(f"N={n}" for n in sizes) + " |", "|---|" + "---|" * len(sizes)]
    for kind in ("flat", "btreemap"):
        lines.append(f"| {kind} | " + " | ".join(_ns(m(f"slot_lookup.{kind}.N{n}")) for n in sizes) + " |")
    ratios = [_ratio(m(f"slot_lookup.btreemap.N{n}"), m(f"slot_lookup.flat.N{n}")) for n in sizes]
    lines.append("| btreemap/flat | " + " | ".join("-" if r is None else f"{r:.1f}x" for r in ratios) + " |")
    lines += ["", "| cache read, ns per read | " + " | ".join(f"N={n}" for n in sizes) + " |", "|---|" + "---|" * len(sizes)]
    peek_ratios: list[float] = []
    for family in ("adaptive_binary", "method", "property", "direct_call"):
        for kind in ("production", "control"):
            lines.append(f"| {family} {kind} | " + " | ".join(_ns(m(f"peek.{family}.{kind}.N{n}")) for n in sizes) + " |")
        fam = [_ratio(m(f"peek.{family}.control.N{n}"), m(f"peek.{family}.production.N{n}")) for n in sizes]
        peek_ratios += [r for r in fam if r is not None]
        lines.append(f"| {family} control/peek | " + " | ".join("-" if r is None else f"{r:.1f}x" for r in fam) + " |")
    lines += ["", "| closure call, captures | ns per call (call − baseline) | relative to 0 captures |", "|---|---|---|"]
    per_call: dict[int, float | None] = {}
    for k in (0, 5, 25, 100):
        call, base = m(f"closure_env.call.C{k}"), m(f"closure_env.baseline.C{k}")
        per_call[k] = None if call is None or base is None else (call - base) / 10
        rel = _ratio(per_call[k], per_call.get(0))
        lines.append(f"| {k} | {_ns(per_call[k])} | {'-' if rel is None else f'{rel:.2f}x'} |")
    flat512 = ratios[sizes.index(512)] if 512 in sizes else None
    env = _ratio(per_call.get(100), per_call.get(0))
    lines += [
        "",
        "Targets (issue 7):",
        f"- flat slot lookup >= 5x faster than BTreeMap at N=512: "
        f"{'-' if flat512 is None else f'{flat512:.1f}x'} -> {_check(None if flat512 is None else flat512 >= 5)}",
        f"- peeks >= 2x faster than their controls: worst {min(peek_ratios):.1f}x -> {_check(min(peek_ratios) >= 2)}"
        if peek_ratios
        else "- peeks >= 2x faster than their controls: n/a",
        f"- closure-env cost at 100 captures <= 1.3x the cost at 0: "
        f"{'-' if env is None else f'{env:.2f}x'} -> {_check(None if env is None else env <= 1.3)}",
    ]
    return "\n".join(lines)


CROSSING_TARGETS = {
    "noop": 100e-9,
    "semver_parse": 1e-6,
    "semver_parse_typed": 5e-6,
}


def format_crossing(medians: dict[str, float]) -> str:
    """ns per crossing, and the targets checked against the best variant of each."""
    lines = ["| crossing | ns per call |", "|---|---|"]
    for name in sorted(medians):
        lines.append(f"| {name} | {_ns(medians[name])} |")
    lines += ["", "Targets (issue 7), best warm variant of each:"]
    for group, limit in CROSSING_TARGETS.items():
        warm = [v for k, v in medians.items() if k.startswith(group + ".") and not k.endswith(".cold")]
        best = min(warm) if warm else None
        verdict = _check(None if best is None else best <= limit)
        lines.append(f"- {group} <= {limit * 1e9:.0f} ns: {_ns(best)} ns -> {verdict}")
    return "\n".join(lines)
