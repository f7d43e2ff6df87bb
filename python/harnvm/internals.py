"""Bytecode and inline-cache internals, for tests and tools.

``Chunk`` emits op sequences and exposes the inline-cache side tables
(the flat offset → slot index and its BTreeMap control); ``Op`` names every
opcode. The entry classes are snapshots of one cache slot, returned by the
``Vm.peek_*`` methods and installed with ``Vm.set_inline_cache_entry``;
``Vm.inline_cache_report()`` lists every site after a run.

``panic_for_test(message, vm=None)`` panics in Rust on purpose, inside the
panic guard, so it raises ``harnvm.HarnInternalError`` (with ``vm``, inside
that Vm's core call, which resets the Vm's state as a real panic would).
Tests use it to check that a panic never escapes and that fuzz oracles
count it as a failure.

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
    panic_for_test,
)

__all__ = [
    "AdaptiveBinaryCacheEntry",
    "Chunk",
    "DirectCallCacheEntry",
    "MethodCacheEntry",
    "Op",
    "PropertyCacheEntry",
    "panic_for_test",
]

#: Every opcode by its disassembler mnemonic; the value is the opcode byte.
#: Built from the Rust opcode table, so it never drifts from it.
Op = IntEnum("Op", _op_table())  # type: ignore[misc]
