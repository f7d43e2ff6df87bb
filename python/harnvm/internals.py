"""Bytecode and inline-cache internals, for tests and tools.

``Chunk`` emits op sequences and exposes the inline-cache side tables
(the flat offset → slot index and its BTreeMap control); ``Op`` names every
opcode. The entry classes are snapshots of one cache slot, returned by the
``Vm.peek_*`` methods and installed with ``Vm.set_inline_cache_entry``;
``Vm.inline_cache_report()`` lists every site after a run.

Example::

    from harnvm.internals import Chunk, Op

    chunk = Chunk()
    at = chunk.emit(Op.ADD, 1)
    assert chunk.inline_cache_slot(at) == chunk.inline_cache_slot_via_btreemap(at) == 0
"""

from __future__ import annotations

from enum import IntEnum

from harnvm._native import (
    AdaptiveBinaryCacheEntry,
    Chunk,
    DirectCallCacheEntry,
    MethodCacheEntry,
    PropertyCacheEntry,
    _op_table,
)

__all__ = [
    "AdaptiveBinaryCacheEntry",
    "Chunk",
    "DirectCallCacheEntry",
    "MethodCacheEntry",
    "Op",
    "PropertyCacheEntry",
]

#: Every opcode by its disassembler mnemonic; the value is the opcode byte.
#: Built from the Rust opcode table, so it never drifts from it.
Op = IntEnum("Op", _op_table())  # type: ignore[misc]
