"""Checks a built wheel: its extension module is a stripped ELF (no .symtab
section) and the wheel carries the LICENSE and every std module of
python/harnvm/stdlib (nested ones such as json/stream.harn included). Used by
scripts/build-wheels.sh.

    python scripts/check_wheel.py dist/harnvm-*.whl
"""

from __future__ import annotations

import struct
import sys
import zipfile
from pathlib import Path

STDLIB = Path(__file__).resolve().parents[1] / "python" / "harnvm" / "stdlib"


def elf_sections(data: bytes) -> list[str]:
    """Section names of a little-endian ELF64 file (x86_64, aarch64)."""
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise ValueError("not a little-endian ELF64 file")
    (shoff,) = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)

    def header(i: int) -> tuple[int, ...]:
        return struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize)

    names_at = header(shstrndx)[4]
    names = []
    for i in range(shnum):
        start = names_at + header(i)[0]
        names.append(data[start : data.index(b"\0", start)].decode())
    return names


def check(wheel: str) -> None:
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        modules = [n for n in names if n.endswith(".so")]
        assert modules, "no extension module in the wheel"
        data = z.read(modules[0])
        stripped = ".symtab" not in elf_sections(data)
        print(f"{modules[0]}: {len(data) / 1e6:.1f} MB, stripped={stripped}")
        assert stripped, "the extension module is not stripped"
        assert any(n.endswith("LICENSE") for n in names), "LICENSE is missing from the wheel"
        std = sorted(f"harnvm/stdlib/{p.relative_to(STDLIB).as_posix()}" for p in STDLIB.rglob("*.harn"))
        missing = [n for n in std if n not in names]
        assert not missing, f"std modules missing from the wheel: {missing}"
        print(f"{len(std)} std modules present")


if __name__ == "__main__":
    for path in sys.argv[1:]:
        check(path)
