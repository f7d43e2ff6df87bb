"""CPython 3.11 versions of the workloads: the same operations and iteration
counts as perf/workloads/*.harn, written as idiomatic Python."""

from __future__ import annotations

from dataclasses import dataclass


def arithmetic_loop() -> None:
    i = 0
    total = 0
    while i < 200000:
        total = total + (i + 3) * 2 - 1
        i = i + 1
    if total < 0:
        print("unreachable")


def comparison_loop() -> None:
    i = 0
    hits = 0
    while i < 200000:
        if i >= 0 and i <= 100000:
            hits = hits + 1
        if i == 150000:
            hits = hits + 1
        i = i + 1
    if hits < 0:
        print("unreachable")


def dict_property_read() -> None:
    record = {"hot": 7, "cold": 2, "nested": {"value": 3}}
    i = 0
    total = 0
    while i < 150000:
        total = total + record["hot"] + record["nested"]["value"]
        i = i + 1
    if total < 0:
        print("unreachable")


def function_call_loop() -> None:
    def step(value: int) -> int:
        return value + 1

    i = 0
    total = 0
    while i < 100000:
        total = step(total)
        i = i + 1
    if total < 0:
        print("unreachable")


def list_iteration() -> None:
    total = 0
    for value in range(0, 100000):
        total = total + value
    if total < 0:
        print("unreachable")


def list_map_filter() -> None:
    items = list(range(0, 1000))
    iteration = 0
    total = 0
    while iteration < 200:
        evens = list(filter(lambda value: value % 2 == 0, items))
        doubled = list(map(lambda value: value * 2, evens))
        total = total + len(doubled)
        iteration = iteration + 1
    if total < 0:
        print("unreachable")


def local_variable_lookup() -> None:
    a, b, c, d, e, f, g, h = 1, 2, 3, 4, 5, 6, 7, 8
    i = 0
    total = 0
    while i < 200000:
        total = total + a + b + c + d + e + f + g + h
        i = i + 1
    if total < 0:
        print("unreachable")


def method_call_dispatch() -> None:
    items = [1, 3, 5, 7, 9, 11, 13, 15]
    i = 0
    hits = 0
    while i < 100000:
        if items.__contains__(i % 16):
            hits = hits + 1
        i = i + 1
    if hits < 0:
        print("unreachable")


def recursive_countdown() -> None:
    def countdown(n: int, acc: int) -> int:
        if n <= 0:
            return acc
        return countdown(n - 1, acc + 1)

    i = 0
    total = 0
    while i < 500:
        total = total + countdown(60, 0)
        i = i + 1
    if total < 0:
        print("unreachable")


def string_interpolation_loop() -> None:
    i = 0
    text = "x"
    total = 0
    while i < 5000:
        text = f"{text}{i % 10}"
        if len(text) > 64:
            text = "x"
        total = total + len(text)
        i = i + 1
    if total < 0:
        print("unreachable")


@dataclass(slots=True)
class Point:
    x: int
    y: int
    z: int


def struct_field_read() -> None:
    point = Point(x=3, y=4, z=5)
    i = 0
    total = 0
    while i < 150000:
        total = total + point.x + point.y + point.z
        i = i + 1
    if total < 0:
        print("unreachable")
