"""The static checker from Python: ``harnvm.check``, ``HarnTypeError`` on
every compile/run path, ``typecheck=False``, the warnings hook, and the
``check`` command's rendering (golden files in tests/check_golden)."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import harnvm
from harnvm import conformance

from conftest import SHARED_CONFORMANCE

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
GOLDEN = HERE / "check_golden"

BAD = 'pipeline main(task) {\n  let n: int = "x"\n  log(n)\n}\n'


def test_check_returns_diagnostics() -> None:
    diags = harnvm.check(BAD, filename="bad.harn")
    assert [(d.severity, d.code, d.message, d.file, d.line, d.column) for d in diags] == [
        ("error", "HARN-TYP-007", "'n' declared as int, but assigned string", "bad.harn", 2, 3)
    ]
    assert diags[0].is_error and "^" in diags[0].rendered


def test_check_of_a_valid_program_is_empty() -> None:
    assert harnvm.check('pipeline main(task) { let xs: list<int> = [1]\n log(xs) }') == []


def test_syntax_errors_stay_syntax_errors() -> None:
    with pytest.raises(harnvm.HarnSyntaxError):
        harnvm.check("pipeline main( {")
    with pytest.raises(harnvm.HarnSyntaxError):
        harnvm.run("pipeline main( {")


@pytest.mark.parametrize("entry", ["run", "compile", "vm_run", "vm_compile"])
def test_every_compile_path_checks_first(entry: str) -> None:
    out: list[str] = []
    with pytest.raises(harnvm.HarnTypeError) as info:
        if entry == "run":
            harnvm.run(BAD, output=out.append)
        elif entry == "compile":
            harnvm.compile(BAD)
        elif entry == "vm_run":
            harnvm.Vm(output=out.append).run(BAD)
        else:
            harnvm.Vm().compile(BAD)
    e = info.value
    assert e.message == "'n' declared as int, but assigned string"
    assert (e.line, e.column) == (2, 3)
    assert [d.code for d in e.diagnostics] == ["HARN-TYP-007"]
    assert out == []


def test_run_file_checks_first(tmp_path: Path) -> None:
    f = tmp_path / "bad.harn"
    f.write_text(BAD)
    with pytest.raises(harnvm.HarnTypeError):
        harnvm.run_file(f)


def test_imported_modules_are_not_checked(tmp_path: Path) -> None:
    # harn 0.9.11 checks only the file being run: `harn run main.harn` runs
    # and `harn check main.harn` reports ok when an imported module has a type
    # error (checked: oracle, module with `let x: int = "s"` in an unused fn).
    (tmp_path / "mod.harn").write_text('pub fn bad() -> int {\n  let x: int = "s"\n  return x\n}\n\npub fn ok() -> int {\n  return 1\n}\n')
    main = tmp_path / "main.harn"
    main.write_text('import { ok } from "./mod"\n\npipeline main(task) {\n  return ok()\n}\n')
    assert harnvm.run_file(main) == 1
    assert harnvm.check(main.read_text(), str(main)) == []
    # The module itself, as the checked file, is rejected.
    with pytest.raises(harnvm.HarnTypeError, match="'x' declared as int, but assigned string"):
        harnvm.run_file(tmp_path / "mod.harn")


def test_warnings_are_delivered_before_a_failing_import() -> None:
    # One parse serves the check and the compile: the check's warnings come
    # out even when the compile then fails (harn renders every diagnostic first).
    src = 'import "./no_such_module_here"\n\npipeline main(task) {\n  return 1\n  log(2)\n}\n'
    seen: list[harnvm.Diagnostic] = []
    harnvm.set_warning_hook(seen.append)
    try:
        with pytest.raises(harnvm.HarnImportError):
            harnvm.compile(src)
    finally:
        harnvm.set_warning_hook(None)
    assert [d.message for d in seen] == ["unreachable code"]


def test_typecheck_false_skips_the_check() -> None:
    out: list[str] = []
    src = 'pipeline main(task) {\n  let n: int = "x"\n  println(n)\n}\n'
    harnvm.Vm(output=out.append, typecheck=False).run(src)
    assert "".join(out) == "x\n"
    harnvm.compile(src, typecheck=False)
    harnvm.run(src, output=out.append, typecheck=False)


def test_registered_host_functions_are_defined_call_targets() -> None:
    vm = harnvm.Vm()
    vm.register("fetch_weather", lambda city: city.upper())
    assert vm.run('pipeline main(task) { return fetch_weather("x") }') == "X"
    with pytest.raises(harnvm.HarnTypeError, match="call target `fetch_weather` is not defined"):
        harnvm.Vm().run('pipeline main(task) { return fetch_weather("x") }')


def test_warnings_go_to_the_hook_not_the_output() -> None:
    src = "pipeline main(task) {\n  let a = 1\n  a = 2\n}\n"
    seen: list[harnvm.Diagnostic] = []
    harnvm.set_warning_hook(seen.append)
    try:
        out: list[str] = []
        with pytest.raises(harnvm.HarnRuntimeError):
            harnvm.run(src, output=out.append)
    finally:
        harnvm.set_warning_hook(None)
    assert [d.message for d in seen] == ["Cannot assign to 'a': variable is immutable (declared with 'let')"]
    assert out == []


def test_warnings_default_to_python_warnings() -> None:
    src = "pipeline main(task) {\n  return 1\n  log(2)\n}\n"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert harnvm.run(src) == 1
    assert [str(w.message) for w in caught if issubclass(w.category, harnvm.HarnCheckWarning)] == [
        "<string>:3:3: unreachable code"
    ]


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harnvm", *args], cwd=cwd, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("name", sorted(p.stem for p in GOLDEN.glob("*.harn")))
def test_cli_check_rendering_matches_golden(name: str) -> None:
    r = _cli("check", f"./{name}.harn", cwd=GOLDEN)
    expected = (GOLDEN / f"{name}.stderr").read_text()
    assert r.stderr == expected
    assert r.returncode == (1 if "\nerror" in "\n" + expected else 0)


def test_cli_check_ok_and_no_check(tmp_path: Path) -> None:
    good = tmp_path / "good.harn"
    good.write_text('pipeline main(task) { println("hi") }\n')
    r = _cli("check", str(tmp_path), cwd=tmp_path)
    assert (r.returncode, r.stdout.strip()) == (0, f"{good}: ok")
    bad = tmp_path / "bad.harn"
    bad.write_text('pipeline main(task) {\n  let n: int = "x"\n  println(n)\n}\n')
    r = _cli("run", "bad.harn", cwd=tmp_path)
    assert r.returncode == 1 and "'n' declared as int, but assigned string" in r.stderr and r.stdout == ""
    r = _cli("run", "--no-check", "bad.harn", cwd=tmp_path)
    assert (r.returncode, r.stdout) == (0, "x\n")


def _valid_programs() -> list[Path]:
    files: list[Path] = []
    if SHARED_CONFORMANCE.is_dir():
        files += [c.path for c in conformance.discover(SHARED_CONFORMANCE) if c.kind == "expected"]
    for d in ("examples", "python/harnvm/stdlib", "perf", "rust/harnvm-core/src/compile/prelude"):
        files += sorted((REPO / d).rglob("*.harn"))
    return files


def test_no_errors_on_any_valid_program() -> None:
    """The checker never rejects a program that is valid: every `.expected`
    conformance case, the examples, the std modules, perf workloads and the
    prelude. (Every program the rest of the test suite runs is checked too,
    since every run checks first.)"""
    bad = []
    files = _valid_programs()
    assert len(files) > 100 or not SHARED_CONFORMANCE.is_dir()
    for f in files:
        for d in harnvm.check(f.read_text(encoding="utf-8"), str(f)):
            if d.is_error:
                bad.append(f"{f}:{d.line}:{d.column}: {d.message}")
    assert bad == []
