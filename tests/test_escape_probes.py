"""Deny by default, proven: a corpus of escape probes.

Each probe is a Harn program (or a host setup) that tries to reach outside
the sandbox: files, the environment, processes, sockets, Python objects,
imports, reflection, or the host's resources. Every probe must end in a
clear `HarnError` of the expected class: never a crash, never success.
The programs run on a plain `Vm()` (default budgets) unless the probe says
otherwise, with the static checker off so the run itself is probed too.
"""

from __future__ import annotations

import os

import pytest

import harnvm
from harnvm import (
    HarnConversionError,
    HarnError,
    HarnInstructionLimitError,
    HarnMemoryError,
    HarnModuleNotFoundError,
    HarnOutputLimitError,
    HarnRuntimeError,
    HarnStackOverflowError,
    HarnTimeoutError,
)

pytestmark = [pytest.mark.needs_core, pytest.mark.timeout(120)]

MIB = 1024 * 1024

# (id, program body inside `fn main(harness: Harness) { ... }`, expected class, text the error must contain)
PROGRAM_PROBES = [
    # Files
    ("file-read", 'read_file("/etc/passwd")', HarnRuntimeError, "Undefined builtin"),
    ("file-write", 'write_file("/tmp/harnvm-probe", "x")', HarnRuntimeError, "Undefined builtin"),
    ("file-list", 'list_dir("/")', HarnRuntimeError, "Undefined builtin"),
    ("harness-fs-read", 'harness.fs.read("/etc/passwd")', HarnRuntimeError, "capability is not available"),
    ("harness-fs-write", 'harness.fs.write("/tmp/harnvm-probe", "x")', HarnRuntimeError, "capability is not available"),
    # Environment
    ("env", 'env("HOME")', HarnRuntimeError, "Undefined builtin"),
    ("getenv", 'getenv("PATH")', HarnRuntimeError, "Undefined builtin"),
    ("harness-env", 'harness.env.get("HOME")', HarnRuntimeError, "capability is not available"),
    # Processes
    ("exec", 'exec("id")', HarnRuntimeError, "Undefined builtin"),
    ("shell", 'shell("id")', HarnRuntimeError, "Undefined builtin"),
    ("system", 'system("id")', HarnRuntimeError, "Undefined builtin"),
    ("harness-process", 'harness.process.run("id")', HarnRuntimeError, "capability is not available"),
    # Sockets
    ("http-get", 'http_get("http://127.0.0.1:1/")', HarnRuntimeError, "Undefined builtin"),
    ("fetch", 'fetch("http://127.0.0.1:1/")', HarnRuntimeError, "Undefined builtin"),
    ("tcp", 'tcp_connect("127.0.0.1", 22)', HarnRuntimeError, "Undefined builtin"),
    ("harness-net", 'harness.net.get("http://127.0.0.1:1/")', HarnRuntimeError, "capability is not available"),
    # Reflection and dynamic code
    ("eval", 'eval("1 + 1")', HarnRuntimeError, "Undefined builtin"),
    ("py-import", '__import__("os")', HarnRuntimeError, "Undefined builtin"),
    ("dunder-method", '"abc".__len__()', HarnRuntimeError, "no method"),
    ("harness-dict", "harness.__dict__", HarnRuntimeError, "cannot access property"),
    # Resource exhaustion (default budgets of a plain Vm)
    ("memory-doubling", "var xs = [1]\n while true { xs = xs + xs }", HarnMemoryError, "memory limit"),
    ("memory-interpolation", 'var s = "ab"\n while true { s = "${s}${s}" }', HarnMemoryError, "memory limit"),
    ("memory-range", "range(0, 3000000000).to_list()", HarnMemoryError, ""),
    ("output-flood", 'while true { harness.stdio.println("flood flood flood flood") }', HarnOutputLimitError, "output limit"),
    ("recursion", "fn f(n) { return 1 + f(n + 1) }\n f(0)", HarnStackOverflowError, "Stack overflow"),
]


@pytest.mark.parametrize(("body", "cls", "text"), [p[1:] for p in PROGRAM_PROBES], ids=[p[0] for p in PROGRAM_PROBES])
def test_program_probe_is_denied(body, cls, text):
    vm = harnvm.Vm(typecheck=False, output=lambda s: None)
    with pytest.raises(cls) as info:
        vm.run(f"fn main(harness: Harness) {{\n {body}\n}}")
    assert text in str(info.value)
    # Denied, and the Vm is still fine.
    assert vm.run("pipeline m() { return 1 }") == 1


def test_probe_time_exhaustion():
    vm = harnvm.Vm(time_limit=0.2)
    with pytest.raises(HarnTimeoutError):
        vm.run("pipeline m() { while true { } }")


def test_probe_sleep_forever():
    vm = harnvm.Vm(time_limit=0.2)
    with pytest.raises(HarnTimeoutError):
        vm.run("pipeline m() { sleep(1000000h) }")


def test_probe_instruction_exhaustion():
    vm = harnvm.Vm(max_instructions=10000)
    with pytest.raises(HarnInstructionLimitError):
        vm.run("fn f(n) { return n }\npipeline m() { while true { f(1) } }")


def test_probe_spawn_bomb():
    vm = harnvm.Vm(time_limit=0.5, max_memory=64 * MIB)
    with pytest.raises((HarnTimeoutError, HarnMemoryError)):
        vm.run("pipeline m() { while true { spawn { while true { } } } }")
    assert vm.live_tasks == 0


# Imports: the file system outside the allowed roots is invisible.


@pytest.fixture
def app(tmp_path):
    root = tmp_path / "app"
    root.mkdir()
    secret = tmp_path / "secret.harn"
    secret.write_text("SECRET-VALUE ( ( (\n")
    (tmp_path / "secret.txt").write_text("SECRET-VALUE\n")
    (root / "notes.txt").write_text("SECRET-NOTES\n")
    (root / "alias.harn").symlink_to(secret)
    return root, secret


IMPORT_PROBES = [
    ("absolute-passwd", "/etc/passwd"),
    ("proc-environ", "/proc/self/environ/."),
    ("dotdot", "../secret"),
    ("dotdot-deep", "../../../../../../etc/passwd"),
    ("dotdot-inner", "x/../../secret"),
    ("symlink-out", "alias"),
    ("not-harn", "notes.txt"),
    ("std-dotdot", "std/../../secret"),
]


@pytest.mark.parametrize("spec", [p[1] for p in IMPORT_PROBES], ids=[p[0] for p in IMPORT_PROBES])
def test_import_probe_is_denied(app, spec):
    root, _ = app
    main = root / "main.harn"
    main.write_text(f'import "{spec}"\npipeline m() {{ return 1 }}\n')
    with pytest.raises(HarnModuleNotFoundError) as info:
        harnvm.Vm().run_file(main)
    assert "SECRET" not in str(info.value)


def test_import_probe_absolute_path_to_a_harn_file(app):
    root, secret = app
    main = root / "main.harn"
    main.write_text(f'import "{secret.with_suffix("")}"\npipeline m() {{ return 1 }}\n')
    with pytest.raises(HarnModuleNotFoundError) as info:
        harnvm.Vm().run_file(main)
    assert "SECRET" not in str(info.value)


def test_import_probe_with_file_imports_off(app):
    root, _ = app
    (root / "lib.harn").write_text("pub fn f() { return 1 }\n")
    with pytest.raises(HarnModuleNotFoundError):
        harnvm.Vm(allow_file_imports=False).run(f'import "{root / "lib"}"\npipeline m() {{ return 1 }}')


# Python objects never cross into Harn.


@pytest.mark.parametrize(
    "leaked",
    [os, os.system, type, object(), open],
    ids=["module", "builtin-function", "type", "object", "open"],
)
def test_python_object_probe_is_denied(leaked):
    vm = harnvm.Vm()
    vm.register("leak", lambda: leaked)
    with pytest.raises(HarnRuntimeError) as info:
        vm.run("pipeline m() { let x = leak()\n return x }")
    assert isinstance(info.value.__cause__, HarnConversionError)


def test_python_object_probe_as_an_argument():
    with pytest.raises(HarnConversionError):
        harnvm.Vm().call_export("std/semver", "next", os, "minor")


def test_corpus_has_at_least_30_probes():
    # Program and import probes, plus the 4 resource tests, 2 import tests
    # and 6 Python-object probes above.
    count = len(PROGRAM_PROBES) + len(IMPORT_PROBES) + 4 + 2 + 6
    assert count >= 30
    assert all(issubclass(p[2], HarnError) for p in PROGRAM_PROBES)
