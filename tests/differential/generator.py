"""Random Harn programs in harn 0.9's shape, for differential runs.

Every program is `fn main(harness: Harness) { ... }` printing through
`harness.stdio.println`, built from small typed fragments (so the oracle's
static checker accepts most of them): arithmetic, strings, lists, dicts,
closures, loops, match, try/catch/finally, structs, enums and builtins with
edge-case arguments. `program(seed)` is deterministic.
"""

from __future__ import annotations

import random

INTS = ["0", "1", "-1", "2", "7", "-13", "100", "9223372036854775807", "-9223372036854775807"]
FLOATS = ["0.0", "1.5", "-2.25", "0.1", "1e3", "3.0"]
PATHS = ['""', '"/"', '"a"', '"/a/b/c.txt"', '"a/b/"', '"./x/.hidden"', '"a/../../b"', '"//a//b.tar.gz"', '"a."', '"/a/./b/.."']
TEXTS = ['"  a\\n    b\\n  c"', '"\\n  x\\n\\n  y\\n"', '"the quick brown fox jumps"', '"a  b\\n\\nc d"']
EXTS = ['"md"', '".txt"', '""']
STEMS = ['"x"', '""']
PREFIXES = ['"> "', '"  "']
REGEXES = ['"[a-z]+"', '"(l+)(o)?"', '"(?P<d>[0-9])"', '"x"']
STRS = ['""', '"a"', '"hello"', '"héllo wörld"', '"a,b,,c"', '"  pad  "', '"123"', '"ABC def"']


class Gen:
    def __init__(self, seed: int) -> None:
        self.r = random.Random(seed)
        self.n = 0

    def pick(self, xs: list[str]) -> str:
        return self.r.choice(xs)

    def fresh(self) -> str:
        self.n += 1
        return f"v{self.n}"

    # Typed expressions -------------------------------------------------
    def int_expr(self, depth: int = 0) -> str:
        if depth > 2 or self.r.random() < 0.4:
            return self.pick(INTS[:7])
        op = self.pick(["+", "-", "*", "/", "%"])
        return f"({self.int_expr(depth + 1)} {op} {self.int_expr(depth + 1)})"

    def float_expr(self) -> str:
        return f"({self.pick(FLOATS)} {self.pick(['+', '-', '*', '/'])} {self.pick(FLOATS + INTS[:5])})"

    def str_expr(self) -> str:
        s = self.pick(STRS)
        k = self.r.randrange(12)
        i, j = self.pick(["0", "1", "-1", "3", "-3", "100"]), self.pick(["0", "2", "-1", "5", "100"])
        return [
            s,
            f"{s}.upper()",
            f"{s}.trim()",
            f"{s}.slice({i}, {j})",
            f"{s}.slice({i})",
            f"{s}.reverse()",
            f'{s}.replace("a", "X")',
            f"{s} + {self.pick(STRS)}",
            f"to_string({self.int_expr()})",
            f'"n=${{{self.int_expr()}}}"',
            f"{s}.substring({i}, {j})",
            f"{s}.repeat({self.pick(['0', '2', '3'])})",
        ][k]

    def list_expr(self) -> str:
        items = ", ".join(self.pick(INTS[:7]) for _ in range(self.r.randrange(6)))
        base = f"[{items}]"
        k = self.r.randrange(10)
        n = self.pick(["0", "1", "2", "-1", "10"])
        return [
            base,
            f"{base}.map({{ x -> x * 2 }})",
            f"{base}.filter({{ x -> x > 0 }})",
            f"{base}.take_while({{ x -> x < 2 }})",
            f"{base}.drop_while({{ x -> x < 2 }})",
            f"{base}.reverse()",
            f"{base}.slice({n})",
            f"{base}.take({n})",
            f"{base}.sort()",
            f"{base}.unique()",
        ][k]

    def new_builtin_expr(self) -> str:
        """The builtins added for issue 15 (and stream.zip's pairs), with edge-case arguments."""
        path = self.pick(PATHS)
        s, t = self.pick(STRS), self.pick(STRS)
        n = self.pick(["0", "1", "3", "-1", "10"])
        lst = self.list_expr()
        forms = [
            lambda: f"path_parts({path})",
            lambda: f"path_parent({path})",
            lambda: f"path_basename({path})",
            lambda: f"path_stem({path})",
            lambda: f"path_extension({path})",
            lambda: f"path_with_extension({path}, {self.pick(EXTS)})",
            lambda: f"path_with_stem({path}, {self.pick(STEMS)})",
            lambda: f"path_is_absolute({path})",
            lambda: f"path_normalize({path})",
            lambda: f"path_relative_to({path}, {self.pick(PATHS)})",
            lambda: f"path_segments({path})",
            lambda: f"path_to_posix({path})",
            lambda: f"sha224({s})",
            lambda: f"sha384({s})",
            lambda: f"sha512_256({s})",
            lambda: f"sha256_base64url({s})",
            lambda: f"hmac_sha1({s}, {t})",
            lambda: f"bytes_to_base64url(bytes_from_string({s}))",
            lambda: f"bytes_eq(bytes_from_string({s}), bytes_from_string({t}))",
            lambda: f"index_of({s}, {t})",
            lambda: f"chars({s})",
            lambda: f"repeat({s}, {n})",
            lambda: f"indent({s}, {self.pick(PREFIXES)})",
            lambda: f"dedent({self.pick(TEXTS)})",
            lambda: f"word_wrap({self.pick(TEXTS + STRS)}, {self.pick(['0', '1', '4', '10'])})",
            lambda: f"pascal_to_camel({s})",
            lambda: f"camel_to_pascal({s})",
            lambda: f"json_stringify_pretty({self.pick([lst, '{a: [1, {b: nil}], c: 1.5}', s])})",
            lambda: f"unique({lst})",
            lambda: f"take_while({lst}, {{ x -> x < 2 }})",
            lambda: f"drop_while({lst}, {{ x -> x < 2 }})",
            lambda: f"count_by({lst}, {{ x -> to_string(x > 0) }})",
            lambda: f"deep_merge({{a: {{x: 1, y: [1]}}, b: {n}}}, {{a: {{y: {lst}}}, c: {s}}})",
            lambda: f"dict_from_pairs([[{s}, 1], [{t}, {n}]])",
            lambda: f"clone({lst})",
            lambda: f"regex_captures({self.pick(REGEXES)}, {s})",
            lambda: f"stream.collect(stream.zip({lst}, {self.list_expr()}))",
            lambda: "shared_scope_id()",
            lambda: f"channel_is_closed(channel({s}, 1))",
        ]
        return self.r.choice(forms)()

    def value_print(self) -> str:
        if self.r.random() < 0.3:
            return self.new_builtin_expr()
        k = self.r.randrange(16)
        s, lst = self.pick(STRS), self.list_expr()
        return [
            self.int_expr,
            self.float_expr,
            self.str_expr,
            lambda: lst,
            lambda: f"{lst}.includes({self.pick(INTS[:5])})",
            lambda: f"{s}.includes({self.pick(STRS)})",
            lambda: f"{lst}.count_by({{ x -> to_string(x % 2 == 0) }})",
            lambda: f"({self.pick(INTS[:5])} to {self.pick(INTS[:5])}).includes({self.pick(INTS[:5])})",
            lambda: f"len({lst})",
            lambda: f"{s}.split(\",\")",
            lambda: f"{{a: {self.int_expr()}, b: {s}}}",
            lambda: f"{{a: 1, b: 2}}.keys()",
            lambda: f"json_stringify({lst})",
            lambda: f"to_int({s})",
            lambda: f"type_of({self.pick(INTS + FLOATS + STRS)})",
            lambda: f"{lst}.sum()",
        ][k]()

    # Statements ---------------------------------------------------------
    def stmt(self, depth: int = 0) -> list[str]:
        k = self.r.randrange(11 if depth < 2 else 5)
        p = "harness.stdio.println"
        if k <= 3:
            return [f"{p}({self.value_print()})"]
        if k == 4:
            v = self.fresh()
            return [f"let {v} = {self.int_expr()}", f"{p}({v} * 2)"]
        if k == 5:
            v = self.fresh()
            return [f"var {v} = 0", f"for i in {self.list_expr()} {{", f"  {v} = {v} + i", "}", f"{p}({v})"]
        if k == 6:
            v = self.fresh()
            return [
                f"let {v} = {self.int_expr()}",
                f"match {v} {{",
                f'  0 -> {{ {p}("zero") }}',
                f'  1 -> {{ {p}("one") }}',
                f"  _ -> {{ {p}({v}) }}",
                "}",
            ]
        if k == 7:
            body = self.stmt(depth + 1)
            return (
                ["try {", *("  " + s for s in body), f"  {p}({self.int_expr()})", "} catch (e) {", f"  {p}(e)", "} finally {", f'  {p}("finally")', "}"]
            )
        if k == 8:
            f = self.fresh()
            return [f"let {f} = {{ a, b -> a + b }}", f"{p}(try {{ {f}({self.int_expr()}) }})", f"{p}({f}(1, {self.int_expr()}))"]
        if k == 9:
            return [f"{p}(Point {{ x: {self.int_expr()}, y: 2 }}.x)", f"{p}(Shape.Circle({self.pick(INTS[:5])}))"]
        w = self.fresh()
        return [f"var {w} = 0", f"while {w} < {self.pick(['0', '3', '5'])} {{", f"  {w} = {w} + 1", "}", f"{p}({w})"]


PRELUDE = "struct Point { x: int, y: int }\nenum Shape { Circle(int), Square(int) }\n"


def program(seed: int, statements: int = 6) -> str:
    g = Gen(seed)
    body: list[str] = []
    for _ in range(statements):
        body.extend(g.stmt())
    return PRELUDE + "fn main(harness: Harness) {\n" + "".join(f"  {line}\n" for line in body) + "}\n"
