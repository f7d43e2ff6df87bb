"""spectral-norm in Python: the same matrix, ten power-method rounds and
checksum as spectral_norm.harn; vectors are built with append."""

from __future__ import annotations

import math


def a(i: int, j: int) -> float:
    return 1.0 / ((i + j) * (i + j + 1) // 2 + i + 1)


def times(v: list[float]) -> list[float]:
    n = len(v)
    out = []
    for i in range(n):
        total = 0.0
        for j in range(n):
            total = total + a(i, j) * v[j]
        out.append(total)
    return out


def times_transposed(v: list[float]) -> list[float]:
    n = len(v)
    out = []
    for i in range(n):
        total = 0.0
        for j in range(n):
            total = total + a(j, i) * v[j]
        out.append(total)
    return out


def at_times_a(v: list[float]) -> list[float]:
    return times_transposed(times(v))


def run(n: int) -> int:
    u = [1.0] * n
    v = u
    for _ in range(10):
        v = at_times_a(u)
        u = at_times_a(v)
    vbv = vv = 0.0
    for i in range(n):
        vbv = vbv + u[i] * v[i]
        vv = vv + v[i] * v[i]
    return math.floor(math.sqrt(vbv / vv) * 1000000000.0)
