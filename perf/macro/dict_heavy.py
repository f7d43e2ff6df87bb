"""Dict-heavy inventory in Python: the same event stream, dict updates and
checksum (folded over the keys in sorted order, as Harn dicts iterate) as
dict_heavy.harn."""

from __future__ import annotations

WAREHOUSES = ["north", "south", "east", "west"]


def run(n: int) -> int:
    stock: dict[str, int] = {}
    by_warehouse: dict[str, int] = {}
    details: dict[str, dict] = {}
    removed = 0
    seed = 99
    for step in range(n):
        seed = (seed * 1103515245 + 12345) % 2147483648
        item = f"item-{seed // 65536 % 400}"
        warehouse = WAREHOUSES[seed // 16 % 4]
        qty = seed // 256 % 20 + 1
        if seed % 5 == 0 and item in stock:
            removed += stock.pop(item)
            del details[item]
            continue
        stock[item] = stock.get(item, 0) + qty
        by_warehouse[warehouse] = by_warehouse.get(warehouse, 0) + qty
        previous = details.get(item) or {"first_step": step, "moves": 0}
        details[item] = {**previous, "last_step": step, "moves": previous["moves"] + 1, "warehouse": warehouse}
    checksum = removed
    for position, key in enumerate(sorted(stock), 1):
        detail = details[key]
        checksum = (checksum + position * (stock[key] * 7 + detail["moves"] * 3 + detail["last_step"] - detail["first_step"] + len(detail["warehouse"]))) % 1000000007
    for name in sorted(by_warehouse):
        checksum = (checksum * 31 + by_warehouse[name]) % 1000000007
    return checksum
