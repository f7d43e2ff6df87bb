"""The command line: python -m harnvm run / dis / conformance."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import EXAMPLES, run_cli

needs_core = pytest.mark.needs_core


def test_help():
    proc = run_cli("--help")
    assert proc.returncode == 0
    for command in ("run", "dis", "conformance"):
        assert command in proc.stdout


def test_version():
    import harnvm

    proc = run_cli("--version")
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"harnvm {harnvm.__version__}"


@pytest.mark.parametrize(
    "args",
    [
        # (No arguments at all starts the REPL: tests/test_library_surface.py.)
        ["frobnicate"],
        ["run"],
        ["dis"],
        ["conformance"],
        ["run", "x.harn", "--time-limit", "0"],
        ["run", "x.harn", "--max-frames", "zero"],
        ["conformance", ".", "--timeout", "-1"],
    ],
)
def test_usage_errors_exit_2(args):
    proc = run_cli(*args)
    assert proc.returncode == 2
    assert "usage:" in proc.stderr


def test_run_missing_file_exits_2(tmp_path):
    proc = run_cli("run", str(tmp_path / "missing.harn"))
    assert proc.returncode == 2
    assert "missing.harn" in proc.stderr
    assert proc.stdout == ""


def test_run_syntax_error_exits_1(harn_file):
    path = harn_file("pipeline test(task) {\n  let x = `\n}\n", "bad.harn")
    proc = run_cli("run", str(path))
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"{path}:")
    assert proc.stdout == ""


def test_dis_syntax_error_exits_1(harn_file):
    path = harn_file("let x = `\n", "bad.harn")
    proc = run_cli("dis", str(path))
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"{path}:")


@needs_core
def test_run_hello_example():
    proc = run_cli("run", str(EXAMPLES / "hello.harn"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "Hello from Harn!\n"
    assert proc.stderr == ""


@needs_core
def test_run_syntax_error_shows_line_column_source_and_caret(harn_file):
    path = harn_file('pipeline test(task) {\n  let x = "unterminated\n}\n', "bad.harn")
    proc = run_cli("run", str(path))
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    assert lines[0].startswith(f"{path}:2:11: ")
    assert "Unterminated string" in lines[0]
    assert lines[1].strip() == 'let x = "unterminated'
    assert lines[2].strip() == "^"


@needs_core
def test_run_uncaught_error_exits_1_with_location(harn_file):
    path = harn_file('pipeline default() {\n  println("partial")\n  throw "fatal"\n}\n')
    proc = run_cli("run", str(path))
    assert proc.returncode == 1
    assert proc.stdout == "partial\n"
    assert "Thrown: fatal" in proc.stderr
    assert f"{path}:3" in proc.stderr


@needs_core
def test_run_limits_from_the_command_line(harn_file):
    path = harn_file("pipeline default() {\n  while true {\n  }\n}\n")
    proc = run_cli("run", str(path), "--time-limit", "0.3")
    assert proc.returncode == 1
    assert proc.stderr.strip()


@needs_core
def test_run_ctrl_c_stops_an_endless_program(harn_file):
    path = harn_file('pipeline default() {\n  println("running")\n  var i = 0\n  while true {\n    i = i + 1\n  }\n}\n')
    proc = subprocess.Popen(
        [sys.executable, "-m", "harnvm", "run", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        # Ctrl-C once the program runs (its first line is out), not after a
        # guessed delay: earlier, it would hit interpreter start-up instead.
        assert proc.stdout is not None
        assert proc.stdout.readline() == "running\n"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)  # a hang guard, like run_cli's
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    assert "interrupted" in err


@needs_core
def test_dis_prints_bytecode():
    proc = run_cli("dis", str(EXAMPLES / "shapes.harn"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip()


# ---------------------------------------------------------------------------
# conformance


def make_suite(root: Path, cases: dict[str, str]) -> Path:
    for rel, text in cases.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


# These two cases behave the same with any core: a program that cannot
# compile matches an `.error` of `re:.` (any message) and fails an
# `.expected` test.
BROKEN = "pipeline default( {\n"
CORE_FREE_SUITE = {
    "a/fails_as_expected.harn": BROKEN,
    "a/fails_as_expected.error": "re:.\n",
    "b/should_print.harn": BROKEN,
    "b/should_print.expected": "hello\n",
    "b/support_module.harn": "fn helper() {\n  return 1\n}\n",
}


def test_conformance_last_line_and_exit_code(tmp_path):
    suite = make_suite(tmp_path / "suite", CORE_FREE_SUITE)
    proc = run_cli("conformance", str(suite))
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    assert lines[-1] == "1 passed, 1 failed"
    assert lines[0].startswith("FAIL b/should_print.harn: unexpected error")
    assert len(lines) == 2


def test_conformance_verbose_and_filter(tmp_path):
    suite = make_suite(tmp_path / "suite", CORE_FREE_SUITE)
    proc = run_cli("conformance", str(suite), "-v", "--filter", "a/")
    assert proc.returncode == 0
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("PASS a/fails_as_expected.harn")
    assert lines[-1] == "1 passed, 0 failed"


def test_conformance_empty_dir(tmp_path):
    proc = run_cli("conformance", str(tmp_path))
    assert proc.returncode == 0
    assert proc.stdout.splitlines()[-1] == "0 passed, 0 failed"


def test_conformance_missing_dir_exits_2(tmp_path):
    proc = run_cli("conformance", str(tmp_path / "nope"))
    assert proc.returncode == 2


def test_conformance_writes_known_failures(tmp_path):
    suite = make_suite(tmp_path / "suite", CORE_FREE_SUITE)
    known = tmp_path / "known.txt"
    known.write_text("b/should_print.harn  # parser missing\nzzz/gone.harn  # removed\n", encoding="utf-8")
    proc = run_cli("conformance", str(suite), "--write-known-failures", str(known))
    assert proc.returncode == 1
    entries = [line for line in known.read_text(encoding="utf-8").splitlines() if line and not line.startswith("#")]
    assert entries == ["b/should_print.harn  # parser missing"]


@needs_core
def test_conformance_with_passing_output_case(tmp_path):
    suite = make_suite(
        tmp_path / "suite",
        {
            "ok.harn": 'pipeline default() {\n  println("hello")\n  log(1)\n}\n',
            "ok.expected": "hello\n[harn] 1\n\n\n",
            "wrong.harn": 'pipeline default() {\n  println("bye")\n}\n',
            "wrong.expected": "hello\n",
            "err.harn": 'pipeline default() {\n  throw "fatal"\n}\n',
            "err.error": "Thrown: fatal",
            "succeeds.harn": "pipeline default() {\n}\n",
            "succeeds.error": "anything",
        },
    )
    proc = run_cli("conformance", str(suite))
    lines = proc.stdout.splitlines()
    assert lines[-1] == "2 passed, 2 failed"
    assert proc.returncode == 1
    assert "FAIL succeeds.harn: expected an error" in proc.stdout
    assert "FAIL wrong.harn: output differs at line 1: expected 'hello', got 'bye'" in proc.stdout
