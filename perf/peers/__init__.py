"""Equivalent programs for the peer runtimes (CPython, Lua 5.4 via lupa, Starlark via starlark-pyo3)."""
