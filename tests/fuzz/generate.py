"""Random Harn programs: a grammar-based generator and a mutator of real programs.

Both are deterministic functions of ``(seed, index)`` so a runner only has
to pass indices around, and a finding can be regenerated from its index.

The generator leans on what breaks implementations rather than on what is
common: values nested deep (`v = Ok(v)` many times), values that share
sub-values (`v = [v, v]`, exponentially many paths), every kind of
container, boundary numbers, and the operations that walk values (`==`,
`<`, `hash_value`, `set`, `to_string`, JSON, returning to Python).

The mutator's seeds are the conformance suite (``../shared/conformance``
beside the repository) and ``examples/``, read at run time.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SEED_DIRS = [REPO_ROOT.parent / "shared" / "conformance", REPO_ROOT / "examples"]

INTS = ["0", "1", "-1", "2", "7", "255", "65536", "2147483648", "9223372036854775807", "-9223372036854775807", "1000000"]
FLOATS = ["0.0", "-0.0", "1.5", "3.0", "0.1", "123456789012345678.5", "0.000001"]
STRINGS = ['""', '"a"', '"héllo"', '"a\\nb"', '"${1 + 1}"', '"{}"', '"[1, 2]"', '"\\u{1F600}"', '"null"']
DURATIONS = ["0ms", "5ms", "1s", "2m"]
BINOPS = ["+", "-", "*", "/", "%", "==", "!=", "<", ">", "<=", ">=", "&&", "||", "??", "**", "in"]
# Walks over a whole value, each one applied to `v` (and `w`, an equal or near copy).
WALKS = [
    "hash_value({v})",
    "{v} == {w}",
    "{v} != {w}",
    "{v} < {w}",
    "set([{v}, {w}])",
    "len(set([{v}, {w}, {v}]))",
    "to_string({v})",
    "json_stringify({v})",
    "json_parse(json_stringify({v}))",
    "type_of({v})",
    "[{v}].contains({w})",
    "{{k: {v}}} == {{k: {w}}}",
    "[{v}, {w}].sort()",
    "pair({v}, {w}) == pair({w}, {v})",
    "Ok({v}) == Ok({w})",
    '"${{{v}}}".len()',
]
# How a chain grows by one level around `c` (and a fresh leaf).
WRAPS = [
    "Ok({c})",
    "Err({c})",
    "[{c}]",
    "[{c}, 1]",
    "pair({c}, 1)",
    "pair(1, {c})",
    "{{next: {c}}}",
    "[pair({c}, nil)]",
    "Node {{next: {c}, n: 1}}",
    "Tree.Leaf({c})",
    "set([{c}])",
]
# How a DAG doubles: both slots share the previous value.
DOUBLES = ["[{v}, {v}]", "pair({v}, {v})", "{{a: {v}, b: {v}}}", "Tree.Two({v}, {v})", "Node {{next: {v}, n: {v}}}"]
BUILTINS1 = [
    "len", "to_string", "type_of", "hash_value", "json_stringify", "keys", "set", "unwrap", "is_ok",
    "is_err", "abs", "floor", "sqrt", "log", "println", "json_parse", "lowercase", "uppercase", "trim",
    "to_int", "to_float", "ident", "rec", "atomic", "unwrap_or", "md5", "sha256", "json_extract",
]
METHODS = [
    ".len()", ".map({{x -> x}})", ".filter({{x -> x}})", ".reverse()", ".first()", ".last()",
    ".keys()", ".values()", ".upper()", ".lower()", ".split(\",\")", ".contains(1)", ".sort()",
    ".to_string()", ".join(\",\")", ".slice(1, 3)", ".reduce(0, {{a, b -> a}})", ".enumerate()",
]

PRELUDE = """struct Node {
  next
  n
}

enum Tree {
  Leaf(v)
  Two(a, b)
}

fn ident(x) {
  return x
}

fn rec(n) {
  if n <= 0 {
    return 0
  }
  return rec(n - 1) + 1
}
"""


class Gen:
    """One random program."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.names: list[str] = []
        self.counter = 0
        self.lines: list[str] = []

    def fresh(self) -> str:
        self.counter += 1
        return f"v{self.counter}"

    def leaf(self) -> str:
        r = self.rng.random()
        if self.names and r < 0.35:
            return self.rng.choice(self.names)
        pool = self.rng.choice([INTS, INTS, FLOATS, STRINGS, DURATIONS, ["true", "false", "nil"]])
        return self.rng.choice(pool)

    def expr(self, depth: int = 0) -> str:
        rng = self.rng
        if depth > 3 or rng.random() < 0.3:
            return self.leaf()
        kind = rng.randrange(14)
        sub = lambda: self.expr(depth + 1)  # noqa: E731
        if kind == 0:
            return f"({sub()} {rng.choice(BINOPS)} {sub()})"
        if kind == 1:
            return f"[{', '.join(sub() for _ in range(rng.randrange(4)))}]"
        if kind == 2:
            keys = ["a", "b", '"c d"', "k"]
            return "{" + ", ".join(f"{rng.choice(keys)}: {sub()}" for _ in range(rng.randrange(3))) + "}"
        if kind == 3:
            return f"pair({sub()}, {sub()})"
        if kind == 4:
            return f"{rng.choice(['Ok', 'Err'])}({sub()})"
        if kind == 5:
            return f"{rng.choice(BUILTINS1)}({sub()})"
        if kind == 6:
            return f"{sub()}{rng.choice(METHODS).format()}"
        if kind == 7:
            return f"({sub()} ? ({sub()}) : ({sub()}))"
        if kind == 8:
            return f"({rng.choice(['-', '!'])}{sub()})"
        if kind == 9:
            return f"{sub()}[{sub()}]"
        if kind == 10:
            return f'"pre ${{{sub()}}} post"'
        if kind == 11:
            return f"Node {{next: {sub()}, n: {sub()}}}"
        if kind == 12:
            return f"Tree.{rng.choice(['Leaf', 'Two'])}({sub()}, {sub()})"
        return f"ident({sub()})"

    def emit(self, line: str, indent: int) -> None:
        self.lines.append("  " * indent + line)

    def deep_chain(self, indent: int) -> None:
        """A value nested `n` levels, built iteratively; then walks over it."""
        rng = self.rng
        n = rng.choice([10, 100, 257, 300]) if rng.random() < 0.95 else rng.choice([1000, 5000, 100000])
        wrap = rng.choice(WRAPS)
        c, d = self.fresh(), self.fresh()
        for name in (c, d):
            self.emit(f"var {name}: any = {self.leaf() if rng.random() < 0.2 else '0'}", indent)
            self.emit(f"for _i in 0 to {n} {{", indent)
            self.emit(f"  {name} = {wrap.format(c=name)}", indent)
            self.emit("}", indent)
        for _ in range(rng.randrange(1, 4)):
            self.emit(f"println({rng.choice(WALKS).format(v=c, w=d)})", indent)
        if rng.random() < 0.3:
            self.emit(f"{c} = nil", indent)
        self.names.append(d)

    def dag(self, indent: int) -> None:
        """A value whose sub-values are shared: 2**n paths, n + 1 nodes."""
        rng = self.rng
        n = rng.choice([1, 3, 8, 10, 30, 60]) if rng.random() < 0.9 else 64
        double = rng.choice(DOUBLES)
        v, w = self.fresh(), self.fresh()
        for name in (v, w):
            self.emit(f"var {name}: any = {self.leaf()}", indent)
            self.emit(f"for _i in 0 to {n} {{", indent)
            self.emit(f"  {name} = {double.format(v=name)}", indent)
            self.emit("}", indent)
        walks = WALKS if n <= 10 else [w_ for w_ in WALKS if "to_string" not in w_ and "json" not in w_ and "${" not in w_]
        for _ in range(rng.randrange(1, 3)):
            walk = rng.choice(walks).format(v=v, w=w)
            # The text of a big DAG is cut at 256 MiB: print only the kind of a result.
            self.emit(f"println({walk})" if n <= 10 else f"println(type_of({walk}))", indent)
        if n <= 8:
            self.names.append(w)

    def stmt(self, indent: int, depth: int) -> None:
        rng = self.rng
        kind = rng.randrange(13)
        if kind == 0 and depth < 2:
            self.emit(f"if {self.expr()} {{", indent)
            self.block(indent + 1, depth + 1)
            self.emit("} else {", indent)
            self.block(indent + 1, depth + 1)
            self.emit("}", indent)
        elif kind == 1 and depth < 2:
            self.emit(f"for _x in {rng.choice(['0 to 3', '[1, 2, 3]', '{a: 1}', self.expr()])} {{", indent)
            self.block(indent + 1, depth + 1)
            self.emit("}", indent)
        elif kind == 2 and depth < 2:
            self.emit("try {", indent)
            self.block(indent + 1, depth + 1)
            self.emit("} catch (e) {", indent)
            self.emit("println(e)", indent + 1)
            self.emit("}", indent)
        elif kind == 3:
            self.deep_chain(indent)
        elif kind == 4:
            self.dag(indent)
        elif kind == 5:
            self.emit(f"throw {self.expr()}", indent)
        elif kind == 6:
            self.emit(f"println(rec({rng.choice(['10', '100', '600', '100000'])}))", indent)
        elif kind == 7:
            self.emit(f"let {self.fresh()} = {{ x -> {self.expr()} }}", indent)
        elif kind == 8 and self.names:
            self.emit(f"{rng.choice(self.names)} = {self.expr()}", indent)
        else:
            name = self.fresh()
            self.emit(f"var {name}: any = {self.expr()}", indent)
            self.names.append(name)

    def block(self, indent: int, depth: int) -> None:
        saved = len(self.names)
        for _ in range(self.rng.randrange(1, 4)):
            self.stmt(indent, depth)
        del self.names[saved:]

    def program(self) -> str:
        self.emit("pipeline default() {", 0)
        for _ in range(self.rng.randrange(1, 7)):
            self.stmt(1, 0)
        if self.rng.random() < 0.6:
            self.emit(f"return {self.rng.choice(self.names) if self.names else self.expr()}", 1)
        self.emit("}", 0)
        return PRELUDE + "\n" + "\n".join(self.lines) + "\n"


def generated(seed: int, index: int) -> str:
    """Program `index` of the grammar-based stream `seed`."""
    return Gen(random.Random(f"gen:{seed}:{index}")).program()


# ---------------------------------------------------------------------------
# Mutation of real programs

_SEEDS: list[tuple[str, str]] | None = None


def seeds() -> list[tuple[str, str]]:
    """(path, text) of every seed program, in a fixed order (read once)."""
    global _SEEDS
    if _SEEDS is None:
        found = []
        for d in SEED_DIRS:
            if d.is_dir():
                found += sorted(p for p in d.rglob("*.harn") if p.is_file())
        _SEEDS = [(str(p), p.read_text(encoding="utf-8", errors="replace")) for p in found]
    return _SEEDS


TOKEN = re.compile(r'"(?:[^"\\\n]|\\.)*"|[A-Za-z_][A-Za-z0-9_]*|\d+(?:\.\d+)?(?:ms|s|m|h)?|\s+|\.\.\.|->|\|>|\?\?|[=!<>]=|&&|\|\||\*\*|.', re.S)
OPERATORS = ["+", "-", "*", "/", "%", "==", "!=", "<", ">", "<=", ">=", "&&", "||", "??", "|>", "**"]
INSERTS = ["[", "]", "(", ")", "{", "}", ",", ".", "?", "Ok(", "[[", "]]", "-", "!", "nil", "\n", "..."]


def mutated(seed: int, index: int) -> tuple[str, str]:
    """(source, filename) of mutant `index` of stream `seed`; the filename is
    the seed's path, so its relative imports resolve."""
    rng = random.Random(f"mut:{seed}:{index}")
    pool = seeds()
    if not pool:
        return generated(seed, index), "fuzz.harn"
    path, text = rng.choice(pool)
    toks = TOKEN.findall(text)
    for _ in range(rng.randrange(1, 5)):
        if not toks:
            break
        i = rng.randrange(len(toks))
        op = rng.randrange(11)
        t = toks[i]
        if op == 0 and t[:1].isdigit():
            toks[i] = rng.choice(INTS + FLOATS + ["100000", "5000"])
        elif op == 1:
            del toks[i]
        elif op == 2:
            toks.insert(i, t)
        elif op == 3:
            j = rng.randrange(len(toks))
            toks[i], toks[j] = toks[j], toks[i]
        elif op == 4 and t in OPERATORS:
            toks[i] = rng.choice(OPERATORS)
        elif op == 5:
            toks.insert(i, rng.choice(INSERTS))
        elif op == 6:
            j = min(len(toks), i + rng.randrange(1, 40))
            del toks[i:j]
        elif op == 7:
            j = min(len(toks), i + rng.randrange(1, 40))
            toks[i:i] = toks[i:j]
        elif op == 8:
            _, other = rng.choice(pool)
            otoks = TOKEN.findall(other)
            if otoks:
                k = rng.randrange(len(otoks))
                toks[i:i] = otoks[k : k + rng.randrange(1, 30)]
        elif op == 9 and t[:1].isalpha():
            idents = [x for x in toks if x[:1].isalpha()]
            toks[i] = rng.choice(idents)
        elif op == 10 and t == "\n":
            g = Gen(rng)
            if rng.random() < 0.5:
                g.deep_chain(1)
            else:
                g.dag(1)
            toks.insert(i + 1, "\n".join(g.lines) + "\n")
    source = "".join(toks)
    if rng.random() < 0.1:
        source = PRELUDE + source
    return source, path


def program(seed: int, index: int) -> tuple[str, str]:
    """Program `index` of stream `seed`: even indices generated, odd ones mutants."""
    if index % 2 == 0:
        return generated(seed, index), "fuzz.harn"
    return mutated(seed, index)
