"""Tokenizer and evaluator in Python: the same generated expressions,
char-by-char tokenizer, recursive-descent parser (returning (tree, pos)),
tree evaluation and checksum as tokenizer_eval.harn. Tokens and trees are
tuples tagged by their first item."""

from __future__ import annotations

MODULUS = 1000003
NAMES = ["x", "y", "z", "rate", "total", "n2"]
OPS = ["+", "-", "*", "/"]


def is_digit(c: str) -> bool:
    return "0" <= c <= "9"


def is_alnum(c: str) -> bool:
    return "a" <= c <= "z" or is_digit(c)


def tokenize(text: str) -> list[tuple]:
    n = len(text)
    tokens: list[tuple] = []
    i = 0
    while i < n:
        c = text[i]
        if c == " ":
            i += 1
        elif is_digit(c):
            j = i
            while j < n and is_digit(text[j]):
                j += 1
            tokens.append(("num", int(text[i:j])))
            i = j
        elif is_alnum(c):
            j = i
            while j < n and is_alnum(text[j]):
                j += 1
            tokens.append(("ident", text[i:j]))
            i = j
        elif c == "(":
            tokens.append(("lparen",))
            i += 1
        elif c == ")":
            tokens.append(("rparen",))
            i += 1
        else:
            tokens.append(("op", c))
            i += 1
    return tokens


def parse_primary(tokens: list[tuple], pos: int) -> tuple[tuple, int]:
    token = tokens[pos]
    if token[0] == "num":
        return ("num", token[1]), pos + 1
    if token[0] == "ident":
        return ("var", token[1]), pos + 1
    expr, end = parse_sum(tokens, pos + 1)
    return expr, end + 1


def op_at(tokens: list[tuple], pos: int) -> str | None:
    if pos >= len(tokens) or tokens[pos][0] != "op":
        return None
    return tokens[pos][1]


def parse_product(tokens: list[tuple], pos: int) -> tuple[tuple, int]:
    left, pos = parse_primary(tokens, pos)
    op = op_at(tokens, pos)
    while op == "*" or op == "/":
        right, pos = parse_primary(tokens, pos + 1)
        left = ("bin", op, left, right)
        op = op_at(tokens, pos)
    return left, pos


def parse_sum(tokens: list[tuple], pos: int) -> tuple[tuple, int]:
    left, pos = parse_product(tokens, pos)
    op = op_at(tokens, pos)
    while op == "+" or op == "-":
        right, pos = parse_product(tokens, pos + 1)
        left = ("bin", op, left, right)
        op = op_at(tokens, pos)
    return left, pos


def evaluate(expr: tuple, env: dict[str, int]) -> int:
    kind = expr[0]
    if kind == "num":
        return expr[1]
    if kind == "var":
        return env[expr[1]]
    _, op, left, right = expr
    a = evaluate(left, env)
    b = evaluate(right, env)
    if op == "+":
        return (a + b) % MODULUS
    if op == "-":
        return (a - b) % MODULUS
    if op == "*":
        return (a * b) % MODULUS
    return 0 if b == 0 else a // b


def make_expressions(count: int) -> list[str]:
    seed = 2024
    out = []
    for _ in range(count):
        parts = []
        for t in range(6):
            seed = (seed * 1103515245 + 12345) % 2147483648
            pick = seed // 65536
            if t > 0:
                parts.append(OPS[pick % 4])
            kind = pick // 4 % 4
            num = f"{pick // 16 % 100}"
            name = NAMES[pick // 1600 % len(NAMES)]
            if kind == 0:
                term = num
            elif kind == 1:
                term = name
            elif kind == 2:
                term = f"({num} + {name})"
            else:
                term = f"({name} * {num} - {pick % 7})"
            parts.append(term)
        out.append(" ".join(parts))
    return out


def run(n: int) -> int:
    env = {"x": 17, "y": 4, "z": 999, "rate": 12, "total": 5000, "n2": 3}
    checksum = 0
    token_count = 0
    for text in make_expressions(n):
        tokens = tokenize(text)
        token_count += len(tokens)
        tree, _ = parse_sum(tokens, 0)
        checksum = (checksum * 31 + evaluate(tree, env)) % MODULUS
    return checksum * 100000 + token_count
