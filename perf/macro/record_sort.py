"""Record sorting in Python: the same generated employees, key functions,
filter, grouping and checksum as record_sort.harn, with a dataclass and
sorted(key=...)."""

from __future__ import annotations

from dataclasses import dataclass

DEPARTMENTS = ["eng", "ops", "sales", "legal", "design", "support"]
SYLLABLES = ["ka", "lo", "mi", "ra", "ten", "vo", "shi", "dan", "el", "u"]


@dataclass
class Employee:
    id: int
    name: str
    dept: str
    age: int
    salary: int


def make_employees(n: int) -> list[Employee]:
    seed = 7
    staff = []
    for id in range(n):
        seed = (seed * 1103515245 + 12345) % 2147483648
        name = SYLLABLES[seed // 65536 % 10] + SYLLABLES[seed // 1024 % 10] + SYLLABLES[seed // 16 % 10]
        staff.append(Employee(id, f"{name}-{id}", DEPARTMENTS[seed % len(DEPARTMENTS)], 20 + seed // 8 % 45, 30000 + seed // 4096 % 90000))
    return staff


def positional(records: list[Employee]) -> int:
    total = 0
    for position, r in enumerate(records, 1):
        total = (total + position * r.id) % 1000000007
    return total


def run(n: int) -> int:
    staff = make_employees(n)
    by_salary = sorted(staff, key=lambda e: e.salary * 100000 + e.id)
    by_name = sorted(staff, key=lambda e: e.name)
    by_dept_age = sorted(staff, key=lambda e: DEPARTMENTS.index(e.dept) * 10000000 + e.age * 100000 + e.id)
    seniors = sorted((e for e in staff if e.age >= 50), key=lambda e: -e.salary * 100000 - e.id)
    groups: dict[str, list[Employee]] = {}
    for e in by_name:
        groups.setdefault(e.dept, []).append(e)
    best = 0
    for members in groups.values():
        top = max(members, key=lambda e: e.salary * 100000 + e.id)
        best += top.id * len(members)
    return (positional(by_salary) * 3 + positional(by_name) * 5 + positional(by_dept_age) * 7
            + positional(seniors) * 11 + best) % 1000000007
