"""fannkuch-redux in Python: the same permutation order, flip counting and
checksum as fannkuch.harn, on Python lists."""

from __future__ import annotations


def flips_of(perm: list[int]) -> int:
    p = perm[:]
    flips = 0
    k = p[0]
    while k != 0:
        i, j = 0, k
        while i < j:
            p[i], p[j] = p[j], p[i]
            i += 1
            j -= 1
        flips += 1
        k = p[0]
    return flips


def run(n: int) -> int:
    perm = list(range(n))
    count = [0] * n
    max_flips = 0
    checksum = 0
    perm_index = 0
    r = n
    while True:
        while r != 1:
            count[r - 1] = r
            r -= 1
        flips = flips_of(perm)
        max_flips = max(max_flips, flips)
        checksum += flips if perm_index % 2 == 0 else -flips
        while True:
            if r == n:
                return checksum * 1000 + max_flips
            first = perm[0]
            for i in range(r):
                perm[i] = perm[i + 1]
            perm[r] = first
            count[r] -= 1
            if count[r] > 0:
                break
            r += 1
        perm_index += 1
