"""binary-trees in Python: the same tree shapes, iteration counts and checksum
as binary_trees.harn; a node is a (left, right) tuple and a leaf is None."""

from __future__ import annotations


def bottom_up(depth: int) -> tuple | None:
    if depth == 0:
        return (None, None)
    return (bottom_up(depth - 1), bottom_up(depth - 1))


def check(tree: tuple | None) -> int:
    if tree is None:
        return 0
    left, right = tree
    return 1 + check(left) + check(right)


def run(n: int) -> int:
    min_depth = 4
    max_depth = max(min_depth + 2, n)
    total = check(bottom_up(max_depth + 1))
    long_lived = bottom_up(max_depth)
    for depth in range(min_depth, max_depth + 1, 2):
        iterations = 2 ** (max_depth - depth + min_depth)
        total += sum(check(bottom_up(depth)) for _ in range(iterations)) * depth
    return total + check(long_lived)
