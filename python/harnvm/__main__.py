"""Command line: ``python -m harnvm`` (also installed as ``harnvm``).

    harnvm                      an interactive session (REPL); also `harnvm repl`
    harnvm -c CODE              run CODE (Harn source text)
    harnvm run FILE [--time-limit SEC] [--max-frames N] [--no-inline-caches] [--no-check]
    harnvm run -                run the program read from standard input
    harnvm check FILE|DIR...
    harnvm dis FILE [--ic]
    harnvm conformance DIR [--filter PAT] [--timeout SEC] [-v] [--write-known-failures FILE]

Exit status: 0 on success; 1 when the program fails (uncaught error, syntax
error) or a conformance case fails; 2 for usage errors (bad arguments, a
file that cannot be read).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
#: Stack for the thread that runs Harn code (the parser may recurse deeply).
WORKER_STACK_SIZE = 64 * 1024 * 1024


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds: {text!r}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return value


#: Each subcommand's parser, by name (filled by `build_parser`), for its own usage on errors.
_SUBPARSERS: dict[str, argparse.ArgumentParser] = {}


def build_parser() -> argparse.ArgumentParser:
    import harnvm

    parser = argparse.ArgumentParser(
        prog="harnvm",
        description="Run Harn programs on harnvm, a fast bytecode VM.",
    )
    parser.add_argument("--version", action="version", version=f"harnvm {harnvm.__version__}")
    parser.add_argument("-c", dest="code", metavar="CODE", help="run CODE, a Harn program given as text")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = commands.add_parser("run", help="run a .harn file", description="Run a .harn file (- reads standard input).")
    run.add_argument("file", metavar="FILE", help="the .harn file to run, or - for standard input")
    run.add_argument("--time-limit", type=_positive_float, metavar="SEC", help="stop the program after SEC seconds")
    run.add_argument("--max-frames", type=_positive_int, default=512, metavar="N", help="call depth limit (default 512)")
    run.add_argument("--no-inline-caches", action="store_true", help="disable the VM's inline caches")
    run.add_argument("--no-check", action="store_true", help="skip the static type check before running")
    run.add_argument(
        "-I",
        "--module-path",
        action="append",
        default=[],
        metavar="DIR",
        help="also look for imported modules in DIR (repeatable; after the importing file's directory)",
    )

    chk = commands.add_parser(
        "check",
        help="type-check .harn files",
        description="Run the static checker; print every diagnostic. Exit 1 if any error.",
    )
    chk.add_argument("paths", nargs="+", metavar="FILE|DIR", help=".harn files, or directories searched recursively")

    dis = commands.add_parser("dis", help="disassemble a .harn file", description="Print a .harn file's bytecode.")
    dis.add_argument("file", metavar="FILE", help="the .harn file to disassemble")
    dis.add_argument(
        "--ic",
        action="store_true",
        help="run the program first (its output comes first), then show each inline-cache site's final state",
    )

    conf = commands.add_parser(
        "conformance",
        help="run Harn conformance cases",
        description="Run the conformance cases under DIR (see harnvm.conformance). "
        "The last line of output is 'N passed, M failed'.",
    )
    conf.add_argument("dir", metavar="DIR", help="a directory of cases (searched recursively) or one .harn case")
    conf.add_argument("--filter", metavar="PAT", help="only cases whose relative path contains PAT (or matches a glob)")
    conf.add_argument("--timeout", type=_positive_float, default=30.0, metavar="SEC", help="per-case time limit (default 30)")
    conf.add_argument("-v", "--verbose", action="store_true", help="also print a line per passing case")
    conf.add_argument(
        "--write-known-failures",
        metavar="FILE",
        help="rewrite FILE with the failing cases, keeping the reasons of entries already there",
    )
    repl = commands.add_parser(
        "repl",
        help="an interactive session (the default with no command)",
        description="Read Harn lines, run them on one Vm and print their values. "
        "Bindings (let/var) and declarations (fn, struct, enum, import, ...) stay for later lines.",
    )
    _SUBPARSERS.update(run=run, check=chk, dis=dis, conformance=conf, repl=repl)
    return parser


def _stdout_writer(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def _read_source(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except (OSError, UnicodeDecodeError) as e:
        print(f"harnvm: error: cannot read {path}: {e}", file=sys.stderr)
        return None


class _Worker:
    """Runs Harn work on a helper thread so Ctrl-C stays responsive.

    Python runs signal handlers only on the main thread, between bytecodes,
    so while the VM runs on the main thread a Ctrl-C would wait for the
    program to end. Here the main thread just waits; on Ctrl-C it interrupts
    the current Vm (registered through ``watch``), which stops at its next
    check, and the command exits with status 130.
    """

    def __init__(self) -> None:
        self.handle: Any = None
        self.stopping = False

    def watch(self, vm: Any) -> None:
        self.handle = vm.interrupt_handle()
        if self.stopping:
            self.handle.interrupt()

    @staticmethod
    def _start(target: Callable[[], None]) -> None:
        previous = threading.stack_size()
        try:
            threading.stack_size(WORKER_STACK_SIZE)
            thread = threading.Thread(target=target, name="harnvm-worker", daemon=True)
            thread.start()
        except (ValueError, RuntimeError):
            # No room for a big stack: use the default one.
            threading.stack_size(previous)
            threading.Thread(target=target, name="harnvm-worker", daemon=True).start()
        finally:
            threading.stack_size(previous)

    def run(self, work: Callable[[], int]) -> int:
        outcome: dict[str, Any] = {}
        done = threading.Event()

        def target() -> None:
            try:
                outcome["status"] = work()
            except BaseException as e:  # noqa: BLE001 - re-raised on the main thread
                outcome["error"] = e
            finally:
                done.set()

        # Waits on `done`, not on Thread.join: on Python 3.11 a Ctrl-C landing
        # inside join() can mark the still-running thread as stopped (join's
        # interrupt handling releases the thread's own state lock), and the
        # interpreter would then finalize under a worker in Rust code, which
        # aborts the process (SIGABRT) instead of exiting with 130. Starting
        # the thread is inside the same `try`: a Ctrl-C that lands while the
        # worker is already running but before the wait begins is handled
        # the same way.
        try:
            self._start(target)
            while not done.wait(0.1):
                pass
        except KeyboardInterrupt:
            self.stopping = True
            if self.handle is not None:
                self.handle.interrupt()
            done.wait(5)
            sys.stdout.flush()
            print("harnvm: interrupted", file=sys.stderr)
            if not done.is_set():
                # Stuck outside the VM's interrupt checks: leave without waiting.
                sys.stderr.flush()
                os._exit(EXIT_INTERRUPTED)
            return EXIT_INTERRUPTED
        if "error" in outcome:
            raise outcome["error"]
        return int(outcome["status"])


def cmd_run(args: argparse.Namespace) -> int:
    import harnvm

    if args.file == "-":
        args.file = "<stdin>"
        source: str | None = sys.stdin.read()
    else:
        source = _read_source(args.file)
    if source is None:
        return EXIT_USAGE
    return _run_source(args, source)


def _run_source(args: argparse.Namespace, source: str) -> int:
    import harnvm

    worker = _Worker()

    def work() -> int:
        vm = harnvm.Vm(
            output=_stdout_writer,
            inline_caches=not args.no_inline_caches,
            max_frames=args.max_frames,
            time_limit=args.time_limit,
            module_paths=args.module_path,
            typecheck=not args.no_check,
        )
        worker.watch(vm)
        try:
            result = vm.run(source, filename=args.file)
        except harnvm.HarnInterruptedError:
            return EXIT_INTERRUPTED
        except harnvm.HarnError as e:
            sys.stdout.flush()
            print(str(e), file=sys.stderr)
            return EXIT_FAILURE
        if _is_harness_main(source):
            return _main_exit_status(result)
        return EXIT_OK

    return worker.run(work)


_HARNESS_MAIN = re.compile(r"^\s*(?:pub\s+)?fn\s+main\s*\(\s*[A-Za-z_]\w*\s*(?::[^,)]*)?\)", re.M)
_PIPELINE = re.compile(r"^\s*(?:pub\s+)?pipeline\s", re.M)


def _is_harness_main(source: str) -> bool:
    """Whether the compiler made `fn main(harness)` the entry (no pipeline)."""
    return bool(_HARNESS_MAIN.search(source)) and not _PIPELINE.search(source)


def _harn_display(value: Any) -> str:
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_harn_display(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_harn_display(v)}" for k, v in value.items()) + "}"
    return str(value)


def _main_exit_status(result: Any) -> int:
    """harn 0.9.11's exit status for `main`'s return value: an int is the
    status (clamped to 0..255), `Err(e)` prints `e` to stderr and exits 1."""
    import harnvm

    if isinstance(result, int) and not isinstance(result, bool):
        return min(max(result, 0), 255)
    if isinstance(result, harnvm.HarnEnum) and result.enum_name == "Result" and result.variant == "Err":
        sys.stdout.flush()
        payload = result.fields[0] if result.fields else None
        print(_harn_display(payload), file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK


def cmd_check(args: argparse.Namespace) -> int:
    import harnvm
    from harnvm._check import check_path

    files: list[str] = []
    for p in args.paths:
        if os.path.isdir(p):
            files.extend(sorted(str(f) for f in Path(p).rglob("*.harn")))
        else:
            files.append(p)
    status = EXIT_OK
    for f in files:
        try:
            diags = check_path(f)
        except (OSError, UnicodeDecodeError) as e:
            print(f"harnvm: error: cannot read {f}: {e}", file=sys.stderr)
            status = max(status, EXIT_USAGE)
            continue
        except harnvm.HarnSyntaxError as e:
            print(str(e), file=sys.stderr)
            status = max(status, EXIT_FAILURE)
            continue
        if not diags:
            print(f"{os.path.normpath(f)}: ok")
        for d in diags:
            sys.stderr.write(d.rendered)
        if any(d.is_error for d in diags):
            status = max(status, EXIT_FAILURE)
    return status


def cmd_dis(args: argparse.Namespace) -> int:
    import harnvm

    source = _read_source(args.file)
    if source is None:
        return EXIT_USAGE
    if args.ic:
        return _dis_with_caches(args.file, source)
    try:
        text = harnvm.disassemble(source, filename=args.file)
    except harnvm.HarnError as e:
        print(str(e), file=sys.stderr)
        return EXIT_FAILURE
    sys.stdout.write(text if text.endswith("\n") or not text else text + "\n")
    return EXIT_OK


def _dis_with_caches(path: str, source: str) -> int:
    """``dis --ic``: runs the program, then prints the listing annotated
    with each cache site's final state (even when the run failed)."""
    import harnvm
    from harnvm import internals

    worker = _Worker()
    listing: list[str] = []

    def work() -> int:
        # The Vm and Program belong to the thread that makes them: this one.
        try:
            program = harnvm.compile(source, path)
        except harnvm.HarnError as e:
            print(str(e), file=sys.stderr)
            return EXIT_FAILURE
        vm = harnvm.Vm(output=_stdout_writer)
        worker.watch(vm)
        status = EXIT_OK
        try:
            vm.run(program)
        except harnvm.HarnInterruptedError:
            return EXIT_INTERRUPTED
        except harnvm.HarnError as e:
            sys.stdout.flush()
            print(str(e), file=sys.stderr)
            status = EXIT_FAILURE
        listing.append(internals.inline_cache_disassembly(vm, program))
        return status

    status = worker.run(work)
    for text in listing:
        sys.stdout.write(text if text.endswith("\n") or not text else text + "\n")
    return status


def cmd_conformance(args: argparse.Namespace) -> int:
    from harnvm import conformance

    root = Path(args.dir)
    if not root.exists():
        print(f"harnvm: error: no such file or directory: {args.dir}", file=sys.stderr)
        return EXIT_USAGE
    cases = conformance.filter_cases(conformance.discover(root), args.filter)

    from harnvm._progress import Progress

    # A progress bar on stderr when stdout is a terminal; the FAIL/PASS lines print above it.
    progress = Progress(len(cases), "conformance")

    def report(result: conformance.CaseResult) -> None:
        if not result.passed:
            progress.write(f"FAIL {result.case.rel}: {result.reason}")
        elif args.verbose:
            progress.write(f"PASS {result.case.rel} ({result.seconds * 1000:.0f} ms)")
        progress.update()

    worker = _Worker()
    results: list[conformance.CaseResult] = []

    def work() -> int:
        for case in cases:
            if worker.stopping:
                break
            result = conformance.run_case(case, timeout=args.timeout, on_vm=worker.watch)
            if worker.stopping:
                break
            report(result)
            results.append(result)
        return EXIT_OK

    try:
        status = worker.run(work)
    finally:
        progress.close()
    if status == EXIT_INTERRUPTED:
        return status
    failed = sum(1 for r in results if not r.passed)
    if args.write_known_failures:
        count = conformance.write_known_failures(args.write_known_failures, results, ran_all=not args.filter)
        print(f"wrote {count} known failures to {args.write_known_failures}", file=sys.stderr)
    print(f"{len(results) - failed} passed, {failed} failed", flush=True)
    return EXIT_OK if failed == 0 else EXIT_FAILURE


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parses the command line; an unknown option is reported with the usage
    of the subcommand it was given to (argparse would show the top level's)."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        _SUBPARSERS.get(args.command or "", parser).error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def cmd_code(args: argparse.Namespace) -> int:
    """``-c CODE``: runs the text as `run` runs a file, with its defaults."""
    args.file = "<string>"
    args.no_inline_caches = False
    args.max_frames = 512
    args.time_limit = None
    args.module_path = []
    args.no_check = False
    return _run_source(args, args.code)


def cmd_repl(args: argparse.Namespace) -> int:
    from harnvm._repl import Repl

    return Repl().loop(sys.stdin, interactive=sys.stdin.isatty())


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    if args.code is not None and args.command:
        build_parser().error("-c CODE takes no command")
    command = "code" if args.code is not None else (args.command or "repl")
    handler = {
        "run": cmd_run,
        "check": cmd_check,
        "dis": cmd_dis,
        "conformance": cmd_conformance,
        "repl": cmd_repl,
        "code": cmd_code,
    }[command]
    try:
        return handler(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (e.g. `| head`); stop quietly, as Unix tools do.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
