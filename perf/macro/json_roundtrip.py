"""JSON round trip in Python: the same records as json_roundtrip.harn,
serialised with json.dumps (sorted keys and compact separators, which is the
text json_stringify writes), parsed with json.loads and walked the same way."""

from __future__ import annotations

import json


def customer(i: int, round: int) -> dict:
    orders = [
        {"sku": f"sku-{(i + j) % 50}", "qty": j + 1 + round, "price": (i * 7 + j * 13) % 500}
        for j in range(1 + i % 3)
    ]
    return {
        "id": i,
        "name": f"customer {i}",
        "tags": [f"tier{i % 5}", f"region{i % 3}"],
        "active": i % 2 == 0,
        "score": (i * 37 + round) % 101,
        "address": {"city": f"city{i % 17}", "zip": 10000 + i},
        "orders": orders,
    }


def walk(value: object) -> int:
    if isinstance(value, dict):
        return 1 + sum(len(key) + walk(item) for key, item in value.items())
    if isinstance(value, list):
        return sum(walk(item) for item in value)
    if isinstance(value, bool):
        return 1 if value else 0
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        return len(value)
    return 0


def run(n: int) -> int:
    checksum = 0
    for round in range(4):
        records = [customer(i, round) for i in range(n)]
        text = json.dumps({"round": round, "customers": records}, sort_keys=True, separators=(",", ":"))
        parsed = json.loads(text)
        checksum = (checksum * 31 + len(text) * 7 + walk(parsed)) % 1000000007
    return checksum
