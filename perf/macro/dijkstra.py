"""Dijkstra in Python: the same grid, weights, hand-written binary heap (not
heapq, so that the heap work is done in the language being measured, as in
dijkstra.harn) and checksum."""

from __future__ import annotations


def edge_weight(cell: int, direction: int) -> int:
    return (cell * 7919 + direction * 104729) % 97 + 1


def heap_push(h: list[list[int]], item: list[int]) -> None:
    h.append(item)
    i = len(h) - 1
    while i > 0:
        parent = (i - 1) // 2
        if h[parent][0] <= h[i][0]:
            break
        h[parent], h[i] = h[i], h[parent]
        i = parent


def heap_pop(h: list[list[int]]) -> None:
    last = h.pop()
    size = len(h)
    if size == 0:
        return
    h[0] = last
    i = 0
    while True:
        left = 2 * i + 1
        right = left + 1
        smallest = i
        if left < size and h[left][0] < h[smallest][0]:
            smallest = left
        if right < size and h[right][0] < h[smallest][0]:
            smallest = right
        if smallest == i:
            break
        h[smallest], h[i] = h[i], h[smallest]
        i = smallest


def run(n: int) -> int:
    cells = n * n
    dist = [-1] * cells
    heap = [[0, 0]]
    settled = 0
    while heap:
        d, cell = heap[0]
        heap_pop(heap)
        if dist[cell] >= 0:
            continue
        dist[cell] = d
        settled += 1
        row, col = cell // n, cell % n
        neighbours = [
            cell - n if row > 0 else -1,
            cell + n if row < n - 1 else -1,
            cell - 1 if col > 0 else -1,
            cell + 1 if col < n - 1 else -1,
        ]
        for direction in range(4):
            nxt = neighbours[direction]
            if nxt >= 0 and dist[nxt] < 0:
                heap_push(heap, [d + edge_weight(cell, direction), nxt])
    checksum = settled
    for cell in range(cells):
        checksum = (checksum * 31 + dist[cell]) % 1000000007
    return checksum
