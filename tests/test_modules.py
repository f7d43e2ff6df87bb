"""Modules: imports in programs, the shipped std library, and the harn_entry
boundary (`Vm.call_export`, `Vm.call_export_typed`, `warm_module`,
`module_is_cached`) with every error path."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Optional, TypedDict

import pytest
from hypothesis import given
from hypothesis import strategies as st

import harnvm
from harnvm import internals

SEMVER = "std/semver"


@pytest.fixture
def lib(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory with user modules; the current directory for host imports."""
    (tmp_path / "counter.harn").write_text(
        """
var count = 0
let step = 2

fn _advance() {
  count = count + step
  return count
}

pub fn bump() {
  return _advance()
}

pub fn current() {
  return count
}

pub fn greet(name, punctuation = "!") {
  return "hello " + name + punctuation
}

pub fn total(first, ...rest) {
  var t = first
  for x in rest {
    t = t + x
  }
  return t
}

pub fn fail(message) {
  throw {reason: message}
}

pub fn describe(payload) {
  return {name: payload.name, tags: payload.tags, score: payload.score * 2, extra: "ignored"}
}

pipeline default() {
  println("pipelines of imported modules never run")
}
"""
    )
    (tmp_path / "facade.harn").write_text('pub import { bump, current } from "counter"\n')
    (tmp_path / "cycle_a.harn").write_text('import "cycle_b"\nfn a() { return 1 }\n')
    (tmp_path / "cycle_b.harn").write_text('import "cycle_a"\nfn b() { return 2 }\n')
    (tmp_path / "dup_a.harn").write_text("pub fn same() { return 1 }\n")
    (tmp_path / "dup_b.harn").write_text("pub fn same() { return 2 }\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


# ---------------------------------------------------------------------------
# std/semver through call_export


def test_semver_exports() -> None:
    vm = harnvm.Vm()
    assert vm.call_export(SEMVER, "parse", "v1.2.3") == {"major": 1, "minor": 2, "patch": 3}
    assert vm.call_export(SEMVER, "parse", "1.2") is None
    assert vm.call_export(SEMVER, "parse", "1.x.3") is None
    assert vm.call_export(SEMVER, "parse", None) is None
    assert vm.call_export(SEMVER, "strip_v", "v2.0.0") == "2.0.0"
    assert vm.call_export(SEMVER, "strip_v", None) == ""
    assert vm.call_export(SEMVER, "add_v", "2.0.0") == "v2.0.0"
    assert vm.call_export(SEMVER, "add_v", "v2.0.0") == "v2.0.0"
    assert vm.call_export(SEMVER, "add_v", "") == ""
    assert vm.call_export(SEMVER, "is_v_semver", "v1.2.3") is True
    assert vm.call_export(SEMVER, "is_v_semver", "1.2.3") is False
    assert vm.call_export(SEMVER, "next", "1.2.3", "major") == "2.0.0"
    assert vm.call_export(SEMVER, "next", "v1.2.3", "minor") == "1.3.0"
    assert vm.call_export(SEMVER, "next", "1.2.3", "patch") == "1.2.4"
    assert vm.call_export(SEMVER, "bump_type", "1.2.3", "2.0.0") == "major"
    assert vm.call_export(SEMVER, "bump_type", "1.2.3", "1.3.0") == "minor"
    assert vm.call_export(SEMVER, "bump_type", "1.2.3", "1.2.4") == "patch"
    assert vm.call_export(SEMVER, "bump_type", "1.2.3", "1.2.5") is None
    assert vm.call_export(SEMVER, "version_from_release_branch", "release/v1.4.0") == "1.4.0"
    assert vm.call_export(SEMVER, "version_from_release_branch", "main") == ""
    assert vm.call_export(SEMVER, "version_from_tag", "v0.9.1") == "0.9.1"


def test_semver_parse_edge_cases() -> None:
    vm = harnvm.Vm()
    parse = lambda v: vm.call_export(SEMVER, "parse", v)  # noqa: E731
    # One optional leading "v" (strip_v's), then exactly three runs of ASCII digits.
    assert parse("1.2.3") == parse("v1.2.3") == {"major": 1, "minor": 2, "patch": 3}
    assert parse("v0.0.0") == {"major": 0, "minor": 0, "patch": 0}
    assert parse("01.002.0003") == {"major": 1, "minor": 2, "patch": 3}
    big = 2**63 - 1
    assert parse(f"v{big}.{big}.{big}") == {"major": big, "minor": big, "patch": big}
    for bad in [
        "vv1.2.3", "V1.2.3", "v", "", ".", "1..2", "1.2.3.4", "1.2.", ".1.2", "1.2.3-beta.1", "1.2.3+build.5",
        "+1.2.3", "-1.2.3", "1.-2.3", " 1.2.3", "1.2.3 ", "1.2.3\n", "\u0661.2.3", "1.2.3v", "x1.2.3",
    ]:
        assert parse(bad) is None, bad
    # Digits beyond a 64-bit int are not a version.
    assert parse(f"{2**63}.0.0") is None
    assert parse(f"1.{'9' * 40}.0") is None
    assert parse("0.0.99999999999999999999") is None
    # Around the 18-digit boundary (longer runs take the overflow-checked path).
    assert parse("999999999999999999.0.0") == {"major": 10**18 - 1, "minor": 0, "patch": 0}
    assert parse("v1000000000000000000.0.0") == {"major": 10**18, "minor": 0, "patch": 0}
    assert parse(f"0.{2**63 - 1}.0") == {"major": 0, "minor": 2**63 - 1, "patch": 0}
    assert parse(f"0.0.{2**63}") is None
    assert parse("0000000000000000000000001.2.3") == {"major": 1, "minor": 2, "patch": 3}
    # Only strings are versions, even when their display would read like one.
    for not_text in [None, 1, 1.5, True, [1, 2, 3], {"major": 1}, ["1.2.3"]]:
        assert parse(not_text) is None, not_text
    out: list[str] = []
    harnvm.Vm(output=out.append).run('import { parse } from "std/semver"\nprintln(parse(1.2))\nprintln(parse(pair(1, 2)))')
    assert "".join(out) == "nil\nnil\n"
    # The other exports keep their behaviour on the same inputs.
    assert vm.call_export(SEMVER, "is_v_semver", "v01.2.3") is True
    assert vm.call_export(SEMVER, "is_v_semver", "vv1.2.3") is False
    assert vm.call_export(SEMVER, "is_v_semver", 123) is False
    assert vm.call_export(SEMVER, "next", "v9.99.1", "minor") == "9.100.0"
    assert vm.call_export(SEMVER, "bump_type", "v1.2.3", "1.2.4") == "patch"
    assert vm.call_export(SEMVER, "version_from_release_branch", "release/v10.20.30") == "10.20.30"
    assert vm.call_export(SEMVER, "version_from_release_branch", "release/1.2.3") == ""


_VERSION_RE = re.compile(r"v?([0-9]+)\.([0-9]+)\.([0-9]+)")


@given(
    st.text(alphabet="v0123456789.+- x\n\u0661", max_size=24)
    | st.from_regex(_VERSION_RE, fullmatch=True)
    | st.from_regex(r"v?[0-9]{17,21}\.[0-9]{1,21}\.(0|9){15,22}", fullmatch=True)
)
def test_semver_parse_matches_its_definition(text: str) -> None:
    # parse = one optional "v", three runs of ASCII digits, each fitting a 64-bit int.
    found = _VERSION_RE.fullmatch(text)
    numbers = [int(g) for g in found.groups()] if found else None
    expected = None if numbers is None or max(numbers) >= 2**63 else dict(zip(["major", "minor", "patch"], numbers))
    assert harnvm.Vm().call_export(SEMVER, "parse", text) == expected


def test_semver_errors_are_harn_errors() -> None:
    vm = harnvm.Vm()
    with pytest.raises(harnvm.HarnRuntimeError, match="current version is not semver: nope") as info:
        vm.call_export(SEMVER, "next", "nope", "major")
    assert info.value.kind == "thrown"
    assert info.value.harn_stack[0].file == SEMVER
    with pytest.raises(harnvm.HarnRuntimeError, match="bump must be major, minor, or patch, got: huge"):
        vm.call_export(SEMVER, "next", "1.0.0", "huge")
    with pytest.raises(harnvm.HarnRuntimeError, match="target version is not semver"):
        vm.call_export(SEMVER, "bump_type", "1.0.0", "x")
    # The module stays usable after an error.
    assert vm.call_export(SEMVER, "next", "1.0.0", "patch") == "1.0.1"


@dataclasses.dataclass
class Version:
    major: int
    minor: int
    patch: int


class VersionDict(TypedDict):
    major: int
    minor: int
    patch: int


class PlainVersion:
    major: int
    minor: int
    patch: int


def test_call_export_typed_semver_result_types() -> None:
    vm = harnvm.Vm()
    assert vm.call_export_typed(SEMVER, "parse", "v3.4.5", Version) == Version(3, 4, 5)
    assert vm.call_export_typed(SEMVER, "parse", "3.4.5", VersionDict) == {"major": 3, "minor": 4, "patch": 5}
    plain = vm.call_export_typed(SEMVER, "parse", "3.4.5", PlainVersion)
    assert isinstance(plain, PlainVersion) and (plain.major, plain.minor, plain.patch) == (3, 4, 5)
    assert vm.call_export_typed(SEMVER, "parse", "bad", Optional[Version]) is None
    assert vm.call_export_typed(SEMVER, "strip_v", "v1.0.0", str) == "1.0.0"


def test_call_export_typed_shape_mismatch() -> None:
    vm = harnvm.Vm()
    with pytest.raises(harnvm.HarnConversionError, match=r"std/semver.parse returned invalid shape: result: expected an object"):
        vm.call_export_typed(SEMVER, "parse", "bad", Version)
    with pytest.raises(harnvm.HarnConversionError, match=r"result.major: expected str, got int"):

        @dataclasses.dataclass
        class Wrong:
            major: str

        vm.call_export_typed(SEMVER, "parse", "1.2.3", Wrong)

    class Missing(TypedDict):
        major: int
        label: str

    with pytest.raises(harnvm.HarnConversionError, match="missing field 'label'"):
        vm.call_export_typed(SEMVER, "parse", "1.2.3", Missing)


# ---------------------------------------------------------------------------
# User modules through call_export


def test_user_module_state_is_shared_and_instantiated_once(lib: Path) -> None:
    vm = harnvm.Vm()
    assert not vm.module_is_cached("counter")
    assert vm.call_export("counter", "bump") == 2
    assert vm.module_is_cached("counter")
    assert vm.call_export("counter", "bump") == 4
    assert vm.call_export("counter", "current") == 4
    # Re-exports reach the same instance; another Vm has its own.
    assert vm.call_export("facade", "current") == 4
    assert vm.call_export("facade", "bump") == 6
    assert harnvm.Vm().call_export("counter.harn", "current") == 0


def test_user_module_arguments(lib: Path) -> None:
    vm = harnvm.Vm()
    assert vm.call_export("counter", "greet", "ada") == "hello ada!"
    assert vm.call_export("counter", "greet", "ada", "?") == "hello ada?"
    assert vm.call_export("counter", "total", 1, 2, 3, 4) == 10
    assert vm.call_export("counter", "total", 5) == 5


def test_warm_module(lib: Path) -> None:
    vm = harnvm.Vm()
    vm.warm_module("counter")
    assert vm.module_is_cached("counter")
    vm.warm_module("counter")  # idempotent: the state survives
    assert vm.call_export("counter", "bump") == 2
    vm.warm_module(SEMVER)
    assert vm.module_is_cached(SEMVER)
    assert not vm.module_is_cached("std/math")
    assert not vm.module_is_cached("no/such/module")


def test_missing_module(lib: Path) -> None:
    vm = harnvm.Vm()
    with pytest.raises(harnvm.HarnModuleNotFoundError, match="module 'nowhere' not found") as info:
        vm.call_export("nowhere", "f")
    assert isinstance(info.value, ModuleNotFoundError)
    assert isinstance(info.value, harnvm.HarnImportError)
    assert info.value.module == "nowhere"
    with pytest.raises(harnvm.HarnModuleNotFoundError):
        vm.call_export_typed("std/nowhere", "f", 1, object)
    with pytest.raises(harnvm.HarnModuleNotFoundError):
        vm.warm_module("nowhere")


def test_missing_export(lib: Path) -> None:
    vm = harnvm.Vm()
    with pytest.raises(harnvm.HarnImportError, match=r"module 'counter' has no export 'nope' \(exports: .*bump") as info:
        vm.call_export("counter", "nope")
    assert info.value.export == "nope"
    # Private fns are not exports (the module has `pub fn`s).
    with pytest.raises(harnvm.HarnImportError, match="no export '_advance'"):
        vm.call_export("counter", "_advance")
    with pytest.raises(harnvm.HarnImportError, match="no export 'parse_it'"):
        vm.call_export_typed(SEMVER, "parse_it", "1.0.0", Version)


def test_wrong_arity(lib: Path) -> None:
    vm = harnvm.Vm()
    with pytest.raises(harnvm.HarnArgumentError, match=r"counter.greet\(name, punctuation\) takes 1 to 2 arguments but 3 were given"):
        vm.call_export("counter", "greet", "a", "b", "c")
    with pytest.raises(harnvm.HarnArgumentError, match="takes 1 to 2 arguments but 0 were given") as info:
        vm.call_export("counter", "greet")
    assert isinstance(info.value, TypeError)
    with pytest.raises(harnvm.HarnArgumentError, match="takes at least 1 arguments but 0 were given"):
        vm.call_export("counter", "total")
    with pytest.raises(harnvm.HarnArgumentError, match=r"std/semver.next\(current, bump\) takes 2 arguments but 1 were given"):
        vm.call_export_typed(SEMVER, "next", "1.0.0", str)
    with pytest.raises(harnvm.HarnArgumentError):
        vm.call_export_typed("counter", "current", None, int)


def test_harn_error_inside_export(lib: Path) -> None:
    vm = harnvm.Vm()
    with pytest.raises(harnvm.HarnRuntimeError) as info:
        vm.call_export("counter", "fail", "boom")
    assert info.value.value == {"reason": "boom"}
    assert info.value.harn_stack[0].function == "fail"
    with pytest.raises(harnvm.HarnRuntimeError):
        vm.call_export_typed("counter", "fail", "boom", object)


def test_bad_payload(lib: Path) -> None:
    vm = harnvm.Vm()
    for payload, where in [
        ({"name": {1, 2}}, r'payload\["name"\] is a set'),
        ({"tags": [b"x"]}, r'payload\["tags"\]\[0\] is a bytes'),
        ({1: "x"}, "has the key 1"),
        (float("nan"), "payload is NaN, which JSON cannot represent"),
        (object(), "payload is a object"),
    ]:
        with pytest.raises(harnvm.HarnConversionError, match=where):
            vm.call_export_typed("counter", "describe", payload, object)


def test_call_export_typed_user_module(lib: Path) -> None:
    @dataclasses.dataclass
    class Described:
        name: str
        tags: list[str]
        score: float
        note: Optional[str] = None

    vm = harnvm.Vm()
    got = vm.call_export_typed("counter", "describe", {"name": "x", "tags": ("a", "b"), "score": 1.5}, Described)
    assert got == Described(name="x", tags=["a", "b"], score=3.0)
    # JSON rules: ints beyond 64 bits become floats; the raw JSON-compatible result with `object`.
    raw = vm.call_export_typed("counter", "describe", {"name": "y", "tags": [], "score": 2**70}, object)
    assert raw == {"name": "y", "tags": [], "score": float(2**71), "extra": "ignored"}


def test_json_marshalling_of_results(lib: Path) -> None:
    (lib / "shapes.harn").write_text(
        """
pub fn values(ignored) {
  return {nan: 0.0 / 0.0, inf: 1.0 / 0.0, duration: 5s, set: set([1]), pair: pair(1, 2), func: { x -> x }}
}
"""
    )
    raw = harnvm.Vm().call_export_typed("shapes", "values", None, dict)
    assert raw["nan"] is None and raw["inf"] is None
    assert raw["duration"] == "5s"
    assert isinstance(raw["func"], str) and isinstance(raw["set"], str) and isinstance(raw["pair"], str)


# ---------------------------------------------------------------------------
# Resolution: module_paths and providers


def test_module_paths_and_providers(tmp_path: Path) -> None:
    libdir = tmp_path / "libs"
    libdir.mkdir()
    (libdir / "tools.harn").write_text("fn triple(x) { return x * 3 }\n")
    vm = harnvm.Vm(module_paths=[libdir])
    assert vm.call_export("tools", "triple", 5) == 15
    assert vm.call_export("tools.harn", "triple", 2) == 6

    calls: list[str] = []

    def provider(path: str) -> str | None:
        calls.append(path)
        return "pub fn answer() { return 42 }" if path == "virtual/answer" else None

    vm2 = harnvm.Vm(module_providers=[{"mem": "fn hi() { return \"hi\" }"}, provider])
    assert vm2.call_export("mem", "hi") == "hi"
    assert vm2.call_export("virtual/answer", "answer") == 42
    out: list[str] = []
    vm3 = harnvm.Vm(output=out.append, module_providers=provider)
    vm3.run('import { answer } from "virtual/answer"\nprintln(answer())')
    assert out == ["42\n"]
    assert "virtual/answer" in calls


def test_provider_errors(tmp_path: Path) -> None:
    def broken(path: str) -> str | None:
        raise ValueError("provider exploded")

    vm = harnvm.Vm(module_providers=broken)
    with pytest.raises(harnvm.HarnImportError, match="provider exploded") as info:
        vm.call_export("anything", "f")
    assert isinstance(info.value.__cause__, ValueError)
    with pytest.raises(TypeError, match="module provider"):
        harnvm.Vm(module_providers=[42])  # type: ignore[list-item]
    bad_type = harnvm.Vm(module_providers=lambda p: b"bytes")  # type: ignore[arg-type,return-value]
    with pytest.raises(harnvm.HarnImportError, match="expected str or None"):
        bad_type.call_export("x", "f")


# ---------------------------------------------------------------------------
# Imports inside programs


def test_import_forms_in_programs(lib: Path) -> None:
    out: list[str] = []
    vm = harnvm.Vm(output=out.append)
    (lib / "main.harn").write_text('import { bump as_is } from "facade"\n')
    # The brace list has two names (commas are optional); `as_is` is not exported.
    with pytest.raises(harnvm.HarnImportError, match="'as_is' is not defined in facade.harn"):
        vm.run_file(lib / "main.harn")
    (lib / "main.harn").write_text(
        """
import { greet } from "counter"
import "facade"
var local = 10

pipeline default() {
  println(bump() + local)
  println(current())
  println(greet("x"))
}
"""
    )
    vm.run_file(lib / "main.harn")
    assert out == ["12\n", "2\n", "hello x!\n"]
    # The instance is per Vm: a second run continues its state.
    out.clear()
    vm.run_file(lib / "main.harn")
    assert out[0] == "14\n"
    assert vm.module_is_cached("counter")


def test_import_errors_in_programs(lib: Path) -> None:
    vm = harnvm.Vm()
    with pytest.raises(harnvm.HarnImportError, match="Import error: 'nope' is not defined in counter.harn") as info:
        vm.run('import { nope } from "counter"')
    assert info.value.line == 1
    with pytest.raises(harnvm.HarnImportError, match="import cycle"):
        vm.run('import "cycle_a"')
    with pytest.raises(
        harnvm.HarnImportError,
        match=r"Import collision: 'same' is already defined when importing dup_b.harn. Use selective imports",
    ):
        vm.run('import "dup_a"\nimport "dup_b"')
    with pytest.raises(harnvm.HarnModuleNotFoundError):
        vm.run('import "lib/absent"')
    with pytest.raises(harnvm.HarnSyntaxError, match="only allowed at the top level"):
        vm.run('fn f() {\n  import "counter"\n}')
    (lib / "broken.harn").write_text("fn oops( {\n")
    with pytest.raises(harnvm.HarnSyntaxError) as syn:
        vm.run('import "broken"')
    assert syn.value.filename.endswith("broken.harn")


def test_imported_fns_shadow_builtins_and_std_math() -> None:
    out: list[str] = []
    harnvm.Vm(output=out.append).run(
        'import "std/math"\nprintln(mean([1, 2, 3, 4]))\nprintln(clamp(12, 0, 10))\n'
        'try { median([]) } catch (e) { println(e) }'
    )
    assert out == ["2.5\n", "10\n", "items must not be empty\n"]


def test_std_modules_are_shipped() -> None:
    names = harnvm.stdlib_modules()
    for name in ["std/semver", "std/math", "std/text", "std/json", "std/schema", "std/collections", "std/context"] + [
        "std/ansi", "std/table", "std/diff", "std/slug", "std/calendar"
    ]:
        assert name in names
    for name in ["std/xml", "std/graphql", "std/json/stream", "std/cli/argparse", "std/eval/stats"]:
        assert name in names
    vm = harnvm.Vm()
    for name in names:
        vm.warm_module(name)
        assert vm.module_is_cached(name)


def test_compile_resolves_std_imports() -> None:
    program = harnvm.compile('import { add_v } from "std/semver"\nadd_v("1.0.0")')
    assert harnvm.Vm().run(program) == "v1.0.0"
    listing = program.disassemble()
    assert "IMPORT_MODULE" in listing
    # Imported modules are listed after the program: init code, then their fns.
    assert "== <module std/semver>() " in listing
    assert "== add_v(v) " in listing


def test_run_shortcuts_and_cli_take_module_paths(tmp_path: Path) -> None:
    import subprocess
    import sys

    libdir = tmp_path / "libs"
    libdir.mkdir()
    (libdir / "tools.harn").write_text("fn triple(x) { return x * 3 }\n")
    main = tmp_path / "main.harn"
    main.write_text('import { triple } from "tools"\nprintln(triple(4))\ntriple(2)\n')
    assert harnvm.run_file(main, module_paths=[libdir], output=lambda s: None) == 6
    assert harnvm.run('import { answer } from "m"\nanswer()', module_providers={"m": "fn answer() { return 1 }"}) == 1
    done = subprocess.run(
        [sys.executable, "-m", "harnvm", "run", str(main), "-I", str(libdir)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "12\n"
    missing = subprocess.run([sys.executable, "-m", "harnvm", "run", str(main)], capture_output=True, text=True, timeout=60)
    assert missing.returncode == 1
    assert "module 'tools' not found" in missing.stderr


def test_module_top_level_runs_once_and_only_lets_and_fns(lib: Path) -> None:
    (lib / "noisy.harn").write_text(
        'println("top-level statements of imported modules never run")\n'
        'var loads = 0\nlet table = build()\n'
        'fn build() { return [1, 2, 3] }\n'
        "pub fn size() { return len(table) }\n"
    )
    out: list[str] = []
    vm = harnvm.Vm(output=out.append)
    vm.warm_module("counter")
    vm.warm_module("noisy")
    assert vm.call_export("noisy", "size") == 3
    vm.run('import "noisy"\nimport { bump } from "counter"\nprintln(size() + bump())')
    assert out == ["5\n"]


def test_failing_module_init_is_retried(lib: Path) -> None:
    (lib / "boom.harn").write_text("let ratio = 1 / 0\npub fn f() { return ratio }\n")
    vm = harnvm.Vm()
    for _ in range(2):
        with pytest.raises(harnvm.HarnRuntimeError, match="Division by zero") as info:
            vm.call_export("boom", "f")
        assert info.value.harn_stack[-1].function.startswith("<module ")
        assert not vm.module_is_cached("boom")
    with pytest.raises(harnvm.HarnRuntimeError, match="Division by zero"):
        vm.run('import "boom"')


def test_inline_cache_feedback_stays_warm_across_crossings(lib: Path) -> None:
    (lib / "hot.harn").write_text(
        "pub fn total(n) {\n  var t = 0\n  var i = 0\n  while i < n {\n    t = t + i\n    i = i + 1\n  }\n  return t\n}\n"
    )
    vm = harnvm.Vm()

    def entries() -> dict[tuple[int, int], dict[str, object]]:
        return {(e["set"], e["offset"]): e for e in internals.inline_cache_report(vm) if e["function"] == "total"}

    assert vm.call_export("hot", "total", 10) == 45
    first = entries()
    assert first, "the export's hot ops have inline caches"
    assert vm.call_export("hot", "total", 10) == 45
    second = entries()
    # The same caches (same cache set), already specialized, keep counting hits.
    assert second.keys() == first.keys()
    for key, entry in second.items():
        assert entry["state"] == first[key]["state"]
        assert entry["misses"] == first[key]["misses"]
        assert entry["hits"] > first[key]["hits"]  # type: ignore[operator]
