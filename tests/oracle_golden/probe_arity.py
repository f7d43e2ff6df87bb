"""Regenerate rust/harnvm-core/src/builtins/arity_table.rs from the oracle.

    python -m tests.oracle_golden.probe_arity

For every builtin harnvm registers (the `BuiltinDef { name: "..." }`
entries under rust/harnvm-core/src/builtins/), one small program runs on the
reference CLI (harn 0.9.11, `../shared/oracle/harn`) and calls the builtin
through a spread with 20 nil arguments and then with none. A spread call
passes the static checker; the runtime then answers with its own arity
check when the builtin has a declared signature:

    Arity mismatch: 'len' expects 1 argument, got 20
    Arity mismatch: 'split' expects 1..=2 arguments, got 20
    Arity mismatch: 'format' expects at least 1 argument, got 0

and the message alone gives the accepted range. A builtin that answers
neither call with `Arity mismatch` is unchecked on the oracle (it runs with
any count); one the oracle's checker rejects as undefined does not exist
there. Both keep harnvm's permissive behaviour.

SUITE_WINS lists builtins the shared conformance suite (harn 0.7.50) calls
with a count 0.9.11 rejects: the suite is the spec, so those stay
permissive; docs/harn-versions.md lists them.

Each program runs in its own process with a timeout, in a scratch
directory, with no stdin: with an accepted count the builtin really runs.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ORACLE = ROOT.parent / "shared" / "oracle" / "harn"
BUILTINS_DIR = ROOT / "rust" / "harnvm-core" / "src" / "builtins"
TABLE = BUILTINS_DIR / "arity_table.rs"

# name -> why the suite needs the builtin to stay permissive.
SUITE_WINS: dict[str, str] = {}

ARITY_RE = re.compile(r"Arity mismatch: '([^']*)' expects (.*?) arguments?, got \d+")
SPREAD_COUNT = 20


def registered_names() -> list[str]:
    names: set[str] = set()
    for path in BUILTINS_DIR.rglob("*.rs"):
        if path == TABLE:
            continue
        names.update(re.findall(r'BuiltinDef \{ name: "([^"]+)"', path.read_text()))
    return sorted(names)


def program(name: str) -> str:
    nils = ", ".join(["nil"] * SPREAD_COUNT)
    return (
        "fn main(harness: Harness) {\n"
        f"  let many = [{nils}]\n"
        "  let none = []\n"
        f'  harness.stdio.println("@@many " + to_string(try {{ {name}(...many) }}))\n'
        f'  harness.stdio.println("@@none " + to_string(try {{ {name}(...none) }}))\n'
        "}\n"
    )


def parse_expects(text: str) -> tuple[int, int | None]:
    """`1`, `0`, `1..=2`, `at least 1` -> (min, max or None for no limit)."""
    if text.startswith("at least "):
        return int(text[len("at least ") :]), None
    if "..=" in text:
        lo, hi = text.split("..=")
        return int(lo), int(hi)
    return int(text), int(text)


def probe(name: str) -> tuple[str, str]:
    """Returns (rule, note): rule is `checked(min, max)` data or a permissive kind."""
    with tempfile.TemporaryDirectory(prefix="arity-probe-") as tmp:
        src = Path(tmp) / "probe.harn"
        src.write_text(program(name))
        try:
            proc = subprocess.run(
                [str(ORACLE), "run", str(src)],
                capture_output=True,
                timeout=20,
                cwd=tmp,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired:
            return "unknown", "the probe timed out"
    out = proc.stdout.decode("utf-8", "replace")
    err = proc.stderr.decode("utf-8", "replace")
    for line in out.splitlines():
        m = ARITY_RE.search(line)
        if line.startswith("@@") and m and m.group(1) == name:
            lo, hi = parse_expects(m.group(2))
            return f"{lo} {'*' if hi is None else hi}", ""
    if "HARN-NAM-002" in err or "Undefined builtin" in out:
        return "absent", "not a builtin of 0.9.11"
    if "@@many" in out and "@@none" in out:
        return "unchecked", "no Arity mismatch from 0.9.11 for 0 or 20 arguments"
    if "error[" in err:
        return "unknown", "0.9.11's checker rejects the probe: " + err.strip().splitlines()[0][:100]
    return "unknown", f"the probe ended early (exit {proc.returncode})"


def rust_row(name: str, rule: str, note: str) -> str:
    if name in SUITE_WINS:
        return f'    // suite wins (0.9.11: {rule}): {SUITE_WINS[name]}\n    ("{name}", PERMISSIVE),'
    if rule[0].isdigit():
        lo, hi = rule.split()
        hi_rust = "VARIADIC" if hi == "*" else hi
        return f'    ("{name}", ({lo}, {hi_rust})),'
    # The note goes above the row: rustfmt would realign trailing comments.
    return f'    // {rule}: {note}\n    ("{name}", PERMISSIVE),'


def main(argv: list[str]) -> None:
    if not ORACLE.exists():
        raise SystemExit(f"oracle not found at {ORACLE}")
    names = registered_names()
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(probe, names))
    rows = [rust_row(n, rule, note) for n, (rule, note) in zip(names, results)]
    TABLE.write_text(
        "// @generated by `python -m tests.oracle_golden.probe_arity` from harn 0.9.11's\n"
        "// runtime arity errors; do not edit by hand (SUITE_WINS lives in the script).\n"
        "// (min, max) argument counts; VARIADIC = no upper limit; PERMISSIVE = no check\n"
        "// (unchecked on 0.9.11, absent from it, or relaxed because the suite calls it so).\n"
        "\n"
        "use super::arity::{PERMISSIVE, VARIADIC};\n"
        "\n"
        "pub(super) static ORACLE_ARITY: &[(&str, (u8, u8))] = &[\n" + "\n".join(rows) + "\n];\n"
    )
    kinds: dict[str, int] = {}
    for rule, _ in results:
        key = "checked" if rule[0].isdigit() else rule
        kinds[key] = kinds.get(key, 0) + 1
    print(f"{len(names)} builtins: {kinds}; suite wins: {len(SUITE_WINS)}")


if __name__ == "__main__":
    main(sys.argv[1:])
