"""One command for every benchmark suite:

    python -m perf                      # full pyperf runs, writes perf/results/*.json, prints the ratio table
    python -m perf --quick              # one value per benchmark (smoke mode; numbers are not meaningful)
    python -m perf --plot ratios.png    # also draw the ratio table as a PNG
    python -m perf --suites workloads --workload arithmetic_loop --runtimes harnvm,lua
    python -m perf --suites internals,crossing   # VM-internals fixtures and Python->Harn crossings

Suites: workloads (every workload in harnvm, CPython, Lua and Starlark; the ratio
table), internals (Rust fixtures of harnvm._native.bench: slot lookups, cache reads,
closure-call environments; with the target checks) and crossing (Python -> Harn call
cost; with the target checks) and transcript (transcript_project per policy and
size and on worst cases, beside the 0.9.11 oracle timed in the same run), macro (whole
programs of perf/macro in harnvm, CPython and Lua; the ratio table; --workload picks one
program) and push (list growth by push at 5k/10k/20k). macro and push run only when
named in --suites. Each suite writes <out>/<suite>.json (pyperf JSON; push writes
{loop: {count: seconds}}).

    python -m perf --suites macro --plot ratios.png   # macro table; the plot goes to ratios_macro.png
    python -m perf --suites push
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from perf import report

PERF_DIR = Path(__file__).resolve().parent
SUITES = {
    "workloads": PERF_DIR / "bench_workloads.py",
    "internals": PERF_DIR / "bench_internals.py",
    "crossing": PERF_DIR / "bench_crossing.py",
    "transcript": PERF_DIR / "bench_transcript.py",
    "macro": PERF_DIR / "bench_macro.py",
    "push": PERF_DIR / "bench_push.py",
}
# Suites that run only when named: a full macro run takes minutes and the
# 20k-push loops take seconds each while pushes copy the list.
OPT_IN = ("macro", "push")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m perf", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smoke mode: a single value per benchmark")
    ap.add_argument("--suites", default=",".join(s for s in SUITES if s not in OPT_IN), help=f"comma-separated, from: {', '.join(SUITES)}")
    ap.add_argument("--out", type=Path, default=PERF_DIR / "results", help="directory for the pyperf JSON files")
    ap.add_argument("--plot", type=Path, help="also write the ratio table as a PNG chart")
    ap.add_argument("--workload", default="", help="workloads/macro suite: only this workload or program")
    ap.add_argument("--runtimes", default="", help="workloads/macro suite: comma-separated runtimes")
    ap.add_argument("--pyperf-args", default="", help="extra options passed to pyperf (e.g. '--rigorous')")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    results: dict[str, Path] = {}
    for suite in args.suites.split(","):
        script = SUITES[suite]
        out = args.out / f"{suite}.json"
        out.unlink(missing_ok=True)
        cmd = [sys.executable, str(script), "-o", str(out), "--quiet"]
        if args.quick:
            cmd.append("--quick" if suite == "push" else "--debug-single-value")
        if suite == "workloads":
            if args.workload:
                cmd += ["--workload", args.workload]
            if args.runtimes:
                cmd += ["--runtimes", args.runtimes]
        if suite == "macro":
            if args.workload:
                cmd += ["--program", args.workload]
            if args.runtimes:
                cmd += ["--runtimes", args.runtimes]
        if suite != "push":
            cmd += args.pyperf_args.split()
        print(f"running {suite} suite -> {out}", flush=True)
        subprocess.run(cmd, check=True)
        results[suite] = out

    if "workloads" in results:
        rows = report.load_rows(results["workloads"])
        print(report.format_table(rows))
        if args.plot:
            report.plot(rows, args.plot)
            print(f"plot written to {args.plot}")
    if "macro" in results:
        print("\n## macro\n")
        macro_rows = report.load_rows(results["macro"])
        print(report.format_table(macro_rows, peers=("cpython", "lua")))
        if args.plot:
            macro_plot = args.plot.with_name(f"{args.plot.stem}_macro{args.plot.suffix}")
            report.plot(macro_rows, macro_plot, peers=("cpython", "lua"))
            print(f"plot written to {macro_plot}")
    if "push" in results:
        from perf import bench_push

        print("\n## push growth (best-of-N wall clock)\n")
        print(bench_push.format_table(bench_push.load(results["push"])))
    if args.quick and ("internals" in results or "crossing" in results):
        print("\n(smoke mode: one value per benchmark, so the figures and target checks below are not meaningful)")
    if "internals" in results:
        print("\n## internals\n")
        print(report.format_internals(report.load_medians(results["internals"])))
    if "crossing" in results:
        print("\n## crossing\n")
        print(report.format_crossing(report.load_medians(results["crossing"])))
    if "transcript" in results:
        from perf import transcript_report

        print("\n## transcript (ms per projection)\n")
        print(transcript_report.format_table(report.load_medians(results["transcript"]), transcript_report.oracle_ms(args.quick)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
