"""Bytecode and inline-cache internals, for tests and tools.

``Chunk`` emits op sequences and reads the inline-cache slot each
instruction carries as its last operand; ``Op`` names every opcode. The entry classes are snapshots of one cache slot of a ``Vm``,
returned by the ``peek_*(vm, set, slot)`` functions and installed with
``set_inline_cache_entry(vm, ...)``; ``inline_cache_report(vm)`` lists every
site after a run and ``inline_cache_disassembly(vm, program)`` shows them next
to the bytecode. (The public ``Vm`` class carries none of these hooks.)

``panic_for_test(message, vm=None)`` panics in Rust on purpose, inside the
panic guard, so it raises ``harnvm.HarnInternalError`` (with ``vm``, inside
that Vm's core call, which resets the Vm's state as a real panic would).
Tests use it to check that a panic never escapes and that fuzz oracles
count it as a failure.

Example::

    from harnvm.internals import Chunk, Op

    chunk = Chunk()
    at = chunk.emit(Op.ADD, 1)
    assert chunk.inline_cache_slot(at) == 0 and chunk.inline_cache_sites() == [(at, 0)]
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
    cache_set_index_for_chunk,
    inline_cache_disassembly,
    inline_cache_report,
    take_timer_waits,
    peek_adaptive_binary_cache,
    peek_direct_call_cache,
    peek_method_cache,
    peek_property_cache,
    set_inline_cache_entry,
)

__all__ = [
    "AdaptiveBinaryCacheEntry",
    "Chunk",
    "DirectCallCacheEntry",
    "MethodCacheEntry",
    "Op",
    "PropertyCacheEntry",
    "panic_for_test",
    "cache_set_index_for_chunk",
    "inline_cache_disassembly",
    "inline_cache_report",
    "take_timer_waits",
    "peek_adaptive_binary_cache",
    "peek_direct_call_cache",
    "peek_method_cache",
    "peek_property_cache",
    "set_inline_cache_entry",
]

#: Every opcode by its disassembler mnemonic; the value is the opcode byte.
#: Built from the Rust opcode table, so it never drifts from it.
Op = IntEnum("Op", _op_table())  # type: ignore[misc]
