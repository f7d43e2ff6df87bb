"""Figures for running untrusted code (issue 14): how fast budgets and
interrupts take effect, compile time of a big source, fuel determinism.

    python -m perf.sandbox_figures [--only NAME] [--harnvm-from DIR] [--runs N]

Wall-clock figures on a shared machine are noisy: each is the median (and
max) of several runs. `--harnvm-from DIR` measures another build (a
`python/` folder holding `harnvm/`), e.g. the one before these changes,
for the compile figure; the other figures need the new API.

Figures:

* `sleep`: `sleep(10s)` under `time_limit=0.1`, wall time from `run` to
  the `HarnTimeoutError`;
* `ctrl_c`: SIGINT sent from a timer thread during a busy loop, time from
  the signal to the `KeyboardInterrupt` reaching Python;
* `interrupt`: `vm.interrupt()` from another thread during a busy loop, a
  `sleep(1h)`, a loop of 4 MB regex scans and a host callback that sleeps
  0.2 s; time from the call to the `HarnInterruptedError` (for the callback,
  from the callback's return);
* `compile`: `harnvm.compile` of a generated 5.9 MB source (one pipeline,
  60,000 distinct string constants);
* `fuel`: 100 runs of a counting loop under `max_instructions`, how many
  distinct stopping points (by the program's output).
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import threading
import time


def _stats(xs: list[float]) -> str:
    return f"median {statistics.median(xs) * 1000:.1f} ms, max {max(xs) * 1000:.1f} ms over {len(xs)} runs"


def fig_sleep(harnvm, runs: int) -> str:
    took = []
    for _ in range(runs):
        vm = harnvm.Vm(time_limit=0.1)
        t = time.perf_counter()
        try:
            vm.run("pipeline m() { sleep(10s) }")
        except harnvm.HarnTimeoutError:
            pass
        took.append(time.perf_counter() - t)
    return "sleep(10s) under time_limit=0.1 stops after: " + _stats(took)


def fig_ctrl_c(harnvm, runs: int) -> str:
    took = []
    for _ in range(runs):
        vm = harnvm.Vm(time_limit=None)
        sent = []

        def send() -> None:
            sent.append(time.perf_counter())
            os.kill(os.getpid(), signal.SIGINT)

        timer = threading.Timer(0.1, send)
        timer.start()
        try:
            vm.run("pipeline m() { var i = 0\n while true { i = i + 1 } }")
        except KeyboardInterrupt:
            took.append(time.perf_counter() - sent[0])
        timer.join()
    return "Ctrl-C (SIGINT) during a busy loop -> KeyboardInterrupt: " + _stats(took)


def _interrupt_latency(harnvm, runs: int, src: str, register=None) -> list[float]:
    took = []
    for _ in range(runs):
        vm = harnvm.Vm(time_limit=None, max_memory=None)
        marks: list[float] = []
        if register:
            register(vm, marks)

        def stop() -> None:
            marks.append(time.perf_counter())
            vm.interrupt()

        timer = threading.Timer(0.1, stop)
        timer.start()
        try:
            vm.run(src)
        except harnvm.HarnInterruptedError:
            took.append(time.perf_counter() - max(marks))
        timer.join()
    return took


def fig_interrupt(harnvm, runs: int) -> str:
    lines = []
    cases = [
        ("busy loop", "pipeline m() { var i = 0\n while true { i = i + 1 } }", None),
        ("sleep(1h)", "pipeline m() { sleep(1h) }", None),
        ("4 MB regex scans", 'pipeline m() { let s = "ab".repeat(2000000)\n while true { regex_match("zz+q", s) } }', None),
    ]

    def slow_callback(vm, marks) -> None:
        def slow() -> None:
            time.sleep(0.2)
            marks.append(time.perf_counter())

        vm.register("slow", slow)

    cases.append(("host callback sleeping 0.2 s (from its return)", "pipeline m() { slow()\n while true { } }", slow_callback))
    for label, src, reg in cases:
        lines.append(f"interrupt() during {label}: " + _stats(_interrupt_latency(harnvm, runs, src, reg)))
    return "\n".join(lines)


def big_source() -> str:
    body = "\n".join(f'  let v{i} = "constant number {i:06d} of the generated compile benchmark for harnvm issue 14 xx."' for i in range(60000))
    return f"pipeline m() {{\n{body}\n  return v0\n}}\n"


def fig_compile(harnvm, runs: int) -> str:
    src = big_source()
    took = []
    for _ in range(max(1, runs // 2)):
        t = time.perf_counter()
        harnvm.compile(src, "big.harn", typecheck=False)
        took.append(time.perf_counter() - t)
    return f"compile of a {len(src) / 1e6:.1f} MB source (60,000 constants in one function): " + _stats(took)


def fig_fuel(harnvm, runs: int) -> str:
    src = 'pipeline m() { var i = 0\n while true { i = i + 1\n print(i)\n print(",") } }'
    stops = set()
    for _ in range(100):
        out: list[str] = []
        vm = harnvm.Vm(max_instructions=100000, output=out.append)
        try:
            vm.run(src)
        except harnvm.HarnInstructionLimitError:
            pass
        stops.add("".join(out).rstrip(",").rsplit(",", 1)[-1])
    return f"max_instructions=100000, 100 runs: {len(stops)} distinct stopping point(s): last value printed {sorted(stops)}"


FIGURES = {"sleep": fig_sleep, "ctrl_c": fig_ctrl_c, "interrupt": fig_interrupt, "compile": fig_compile, "fuel": fig_fuel}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=sorted(FIGURES), action="append")
    ap.add_argument("--harnvm-from", metavar="DIR")
    ap.add_argument("--runs", type=int, default=10)
    args = ap.parse_args()
    if args.harnvm_from:
        sys.path.insert(0, args.harnvm_from)
    import harnvm

    print(f"harnvm from {os.path.dirname(harnvm.__file__)}")
    for name in args.only or list(FIGURES):
        print(FIGURES[name](harnvm, args.runs), flush=True)


if __name__ == "__main__":
    main()
